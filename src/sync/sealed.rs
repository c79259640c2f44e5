//! `Sealer`: end-to-end encryption of a round (docs/THREAT-MODEL.md). The replica plans in
//! plaintext; the sealer turns its request into what the server may see (names blinded,
//! values sealed; `core::sealed` decides, WebCrypto in `browser::sealed` computes) and the
//! server's reply back into plaintext, refusing the whole reply if any record does not open:
//! nothing is applied and no watermark moves. The server's coverage cursor is in wire order,
//! so the sealer keeps it (adopted only after the round committed).
//!
//! Rotation: the id of the key the last complete sync sealed with is kept in localStorage
//! (`clientdata:<db>:sealed-key`). Opened with another key, the first complete sync re-stamps
//! every local record (values and deletes, after pulling everything the server had; `setMany`'s
//! path, one transaction per plugin) and pushes
//! them again under the new key: LWW replaces the old ciphertexts everywhere, and a device that
//! holds only the old key gets `encryption_key_unknown` for them.

use std::cell::{Cell, RefCell};

use super::error::SyncError;
use crate::browser::sealed::Ring;
use crate::browser::web_storage::local_storage;
use crate::core::replica::{Store, VectorKind};
use crate::core::sealed::{self, Names};
use crate::core::sorted::{SortedMap, SortedSet};
use crate::core::{ExchangeRequest, ExchangeResponse, PluginId};
use crate::store::codec::Encoded;
use crate::store::db::Db;

/// A coverage cursor in wire order, for the scope of the round that got it.
type Cursor = (Option<Vec<PluginId>>, PluginId);

/// Seals requests and opens replies with one key ring.
#[derive(Debug)]
pub struct Sealer {
    ring: Ring,
    blind_plugins: bool,
    names: RefCell<Names>,
    cursor: RefCell<Option<Cursor>>,
    pending: RefCell<Option<Option<Cursor>>>,
    /// Where the last sealing key's id is kept, and whether it differs from ours.
    marker: String,
    rotate: Cell<bool>,
}

/// The localStorage value naming the key the last complete sync sealed with.
fn marker_name(db: &Db) -> String {
    format!("clientdata:{}:sealed-key", db.info().name)
}

impl Sealer {
    /// A sealer of `db`'s rounds over `ring`; `blind_plugins: false` sends plugin ids in the
    /// clear.
    pub fn new(db: &Db, ring: Ring, blind_plugins: bool) -> Self {
        let marker = marker_name(db);
        let last = local_storage().and_then(|s| s.get_item(&marker).ok().flatten());
        let rotate = last.is_some_and(|last| last != ring.current.to_string());
        Sealer {
            ring,
            blind_plugins,
            names: RefCell::default(),
            cursor: RefCell::default(),
            pending: RefCell::default(),
            marker,
            rotate: Cell::new(rotate),
        }
    }

    /// After a complete sync: if the key changed since the last one, re-stamps every local
    /// record, one transaction per plugin (so the next rounds push them sealed with the new
    /// key), and says so; otherwise remembers the key.
    pub async fn after_complete_sync(&self, db: &Db) -> Result<bool, SyncError> {
        if !self.rotate.get() {
            if let Some(storage) = local_storage() {
                let _ = storage.set_item(&self.marker, &self.ring.current.to_string());
            }
            return Ok(false);
        }
        let mut by_plugin: SortedMap<PluginId, Vec<_>> = SortedMap::new();
        for r in db.with_index(|i| i.records_in_hlc_order().collect::<Vec<_>>()) {
            let value = r.value.map(Encoded::plain);
            by_plugin
                .get_or_insert_with(r.plugin, Vec::new)
                .push((r.key, value));
        }
        for (plugin, entries) in by_plugin {
            db.set_many(&plugin, entries, None).await?;
        }
        self.rotate.set(false);
        Ok(true)
    }

    /// Learns the wire id of every plugin of `request` not blinded yet (one HMAC batch).
    async fn blind_plugins(&self, request: &ExchangeRequest) -> Result<(), SyncError> {
        let unknown = self.names.borrow().unknown_in(request);
        if !self.blind_plugins {
            let mut names = self.names.borrow_mut();
            unknown.into_iter().for_each(|p| names.learn(p.clone(), p));
            return Ok(());
        }
        let inputs: Vec<Vec<u8>> = unknown.iter().map(sealed::plugin_mac_input).collect();
        let macs = self.ring.blind(&inputs).await?;
        let mut names = self.names.borrow_mut();
        for (plugin, mac) in unknown.into_iter().zip(macs) {
            names.learn(plugin, sealed::blinded_plugin(&mac)?);
        }
        Ok(())
    }

    /// `request` as the server may see it.
    pub async fn seal(
        &self,
        request: &ExchangeRequest,
        scope: Option<&[PluginId]>,
    ) -> Result<ExchangeRequest, SyncError> {
        self.blind_plugins(request).await?;
        let inputs: Vec<Vec<u8>> = request
            .push
            .iter()
            .map(|r| sealed::key_mac_input(&r.plugin, &r.key))
            .collect();
        let wire_keys = self
            .ring
            .blind(&inputs)
            .await?
            .iter()
            .map(|mac| sealed::blinded_key(mac))
            .collect::<Result<Vec<_>, _>>()?;
        let jobs = sealed::seal_jobs(request, &self.names.borrow(), wire_keys, self.ring.current)?;
        let pairs: Vec<(&[u8], &[u8])> = jobs
            .iter()
            .map(|j| (j.plain.as_slice(), j.ad.as_slice()))
            .collect();
        let envelopes = self
            .ring
            .seal(&pairs)
            .await?
            .iter()
            .map(|s| sealed::envelope(self.ring.current, s))
            .collect();
        let from = self
            .cursor
            .borrow()
            .as_ref()
            .filter(|(asked, _)| asked.as_deref() == scope)
            .map(|(_, from)| from.clone());
        Ok(sealed::wire_request(
            request,
            &self.names.borrow(),
            jobs,
            envelopes,
            from,
        )?)
    }

    /// The server's `reply` to `wire` (what [`Sealer::seal`] made of `request`), opened. Also
    /// says whether the server's coverage continues in another round.
    pub async fn open(
        &self,
        db: &Db,
        request: &ExchangeRequest,
        wire: &ExchangeRequest,
        reply: &ExchangeResponse,
        scope: Option<&[PluginId]>,
    ) -> Result<(ExchangeResponse, bool), SyncError> {
        let jobs = sealed::open_jobs(reply, &self.ring.held, self.ring.current)?;
        let triples: Vec<_> = jobs
            .iter()
            .map(|j| (j.key, j.iv_and_sealed.as_slice(), j.ad.as_slice()))
            .collect();
        let opened = self.ring.open(&triples).await?;
        let mut names = self.names.borrow_mut();
        let mut plain = sealed::plain_reply(reply, &mut names, opened)?;
        if let Some(next) = &reply.coverage_next {
            let mut known: SortedSet<PluginId> =
                request.plugins.iter().flatten().cloned().collect();
            known.extend(request.seen.plugins().cloned());
            known.extend(plain.records.iter().map(|r| r.plugin.clone()));
            let known: Vec<PluginId> = known.into_iter().collect();
            let peer =
                db.with_index(
                    |index| match index.vectors(VectorKind::PeerCoverage, &known) {
                        Ok(peer) => peer,
                        Err(never) => match never {},
                    },
                );
            let from = wire.coverage_from.as_ref();
            sealed::fill_outside_window(&mut plain, &names, &known, &peer, from, next);
        }
        let next = reply
            .coverage_next
            .clone()
            .map(|next| (scope.map(<[PluginId]>::to_vec), next));
        let more = next.is_some();
        *self.pending.borrow_mut() = Some(next);
        Ok((plain, more))
    }

    /// The round committed: adopt the coverage cursor its reply gave.
    pub fn committed(&self) {
        if let Some(next) = self.pending.borrow_mut().take() {
            *self.cursor.borrow_mut() = next;
        }
    }
}
