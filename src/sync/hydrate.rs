//! Values by reference (protocol v2, docs/PROTOCOL.md "Content"), the browser's half. Before a
//! push, every value above `sync.lazyThreshold` is uploaded (`PUT /sync/content/{sha256}`) and
//! pushed as its reference. A pull brings references only; their content is fetched when the
//! app asks (`getAsync`, `hydrateFile`) or, for plugins in `sync.eagerHydration`, within the
//! round. Fetched content is hashed (WebCrypto) and must match its reference, else it is
//! refused (`ContentHashMismatchError`) and nothing is stored.

use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use super::error::SyncError;
use super::transport::Transport;
use crate::browser::fetch::sha256_hex;
use crate::core::content::{content_bytes, ContentRef, Digest};
use crate::core::replica::VectorKind;
use crate::core::{Batch, Error, Hlc, PluginId, Record, Value};
use crate::store::db::Db;

/// The content endpoint of one dataset.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    /// The server connection.
    pub transport: &'a Transport,
    /// The dataset rounds read and write.
    pub dataset: &'a str,
}

/// SHA-256 of `bytes` by WebCrypto.
async fn digest(bytes: &js_sys::Uint8Array) -> Result<Digest, SyncError> {
    let hex = JsFuture::from(sha256_hex(bytes))
        .await
        .ok()
        .and_then(|h| h.as_string())
        .ok_or_else(|| Error::InvalidRequest("crypto.subtle.digest is unavailable".into()))?;
    Ok(Digest::parse(&hex)?)
}

impl Content<'_> {
    /// Uploads the content of every pushed value above `threshold` and replaces the value by
    /// its reference. Values already references (pulled, never hydrated) go as they are.
    pub async fn offload(
        &self,
        push: &mut [Record],
        threshold: usize,
        signal: Option<&AbortSignal>,
    ) -> Result<(), SyncError> {
        for record in push.iter_mut() {
            let Some(value) = &record.value else { continue };
            let Some(content) = content_bytes(value).filter(|c| c.len() > threshold) else {
                continue;
            };
            let bytes = js_sys::Uint8Array::from(content);
            let sha256 = digest(&bytes).await?;
            let url = self.transport.config().content_url(&sha256, self.dataset);
            self.transport.put_content(&url, &bytes, signal).await?;
            record.value = ContentRef::of(value, sha256).map(Value::Ref);
        }
        Ok(())
    }

    /// Fetches `reference`'s content and checks it: the value, or `content_hash_mismatch`
    /// (`invalid_json` for JSON content that is not JSON text).
    pub async fn fetch(
        &self,
        reference: &ContentRef,
        signal: Option<&AbortSignal>,
    ) -> Result<Value, SyncError> {
        let url = self
            .transport
            .config()
            .content_url(&reference.sha256, self.dataset);
        let bytes = self.transport.get_content(&url, signal).await?;
        let got = digest(&bytes).await?;
        Ok(reference.value_from(bytes.to_vec(), &got)?)
    }

    /// Fetches the content of the batch's references in eager plugins, in place. A record
    /// whose content cannot be had holds back its node in its plugin (`hydrate_plan`); the
    /// batch keeps the rest. Returns how many fetches failed. An abort stops it with
    /// `Aborted`.
    pub async fn eager(
        &self,
        batch: &mut Batch,
        eager: &super::config::Eager,
        db: &Db,
        signal: Option<&AbortSignal>,
    ) -> Result<usize, SyncError> {
        let mut failed: Vec<(PluginId, Hlc)> = Vec::new();
        for record in batch.records.iter_mut() {
            let Some(Value::Ref(reference)) = &record.value else {
                continue;
            };
            if !eager.includes(&record.plugin) {
                continue;
            }
            match self.fetch(reference, signal).await {
                Ok(value) => record.value = Some(value),
                Err(SyncError::Aborted) => return Err(SyncError::Aborted),
                Err(_) => failed.push((record.plugin.clone(), record.hlc)),
            }
        }
        db.with_index(|index| {
            super::hydrate_plan::hold_back(batch, &failed, |plugin, node| {
                index.vector(VectorKind::Seen, plugin).get(node)
            })
        });
        Ok(failed.len())
    }
}

/// Brings the content of (plugin, key)'s current value into the store if it is a reference:
/// fetches, checks and commits it at the same stamp (`Record::replaces`). Returns whether
/// there was anything to fetch. A newer write meanwhile wins as usual.
pub async fn hydrate_key(
    content: Content<'_>,
    db: &Db,
    plugin: &PluginId,
    key: &crate::core::Key,
    signal: Option<&AbortSignal>,
) -> Result<bool, SyncError> {
    let current = db.with_index(|index| index.record(plugin, key));
    let Some(mut record) = current else {
        return Ok(false);
    };
    let Some(Value::Ref(reference)) = &record.value else {
        return Ok(false);
    };
    record.value = Some(content.fetch(reference, signal).await?);
    // A sync commit of one record: put only where it replaces what is stored, posted to the
    // other tabs like any pulled row.
    db.apply_remote(Batch {
        records: vec![record],
        vectors: Vec::new(),
    })
    .await?;
    Ok(true)
}
