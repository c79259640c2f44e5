//! The full resync (tombstone collection, protocol v2): run when the server answers a round
//! `fullResync` (it collected deletions this store has not seen). Walks the server's rows by
//! (plugin, key), page by page (`POST /sync/resync`, a resumable cursor), and applies each page
//! as `core::gc::ResyncPage` decides: rows that win LWW land like a reply's records, local
//! records the server had (its coverage includes them) and no longer holds are removed, local
//! writes the server does not cover stay. At the end the walk's coverage becomes `seen` and the
//! copy of the server's coverage, so the next partial round pushes those writes and pulls what
//! changed during the walk. Each page commits on its own, and the walk's position ([`Walk`]:
//! the cursor and the coverage read so far) lives in the `Syncer`: a walk interrupted by a
//! failed page continues after its last applied page when the server asks again (it does:
//! `seen` moves only at the end); a new tab starts the walk over.

use wasm_bindgen::JsValue;
use web_sys::AbortSignal;

use super::error::SyncError;
use super::round::{body_text, node_taken};
use super::transport::{Answer, Transport};
use crate::browser::clock::JsClock;
use crate::core::gc::ResyncPage;
use crate::core::replica::{Batch, Client, VectorKind};
use crate::core::resync::{Cursor, ResyncRequest, ResyncResponse};
use crate::core::{Key, PluginId, Record, Watermarks, PROTOCOL_VERSION};
use crate::store::db::Db;

/// Where a walk stands: the scope it walks, the cursor after its last applied page, and each
/// plugin's coverage as first read (everything at or below it is held once the walk ends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// The scope walked (`None`: every plugin).
    pub scope: Option<Vec<PluginId>>,
    /// Continue after this row (`None`: from the start).
    pub after: Option<Cursor>,
    /// Coverage per plugin, as first read.
    pub base: Watermarks,
}

/// What a walk changed here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walked {
    /// Pages fetched.
    pub pages: usize,
    /// Rows that won LWW here, values.
    pub upserts: usize,
    /// Rows that won LWW here, tombstones (deletions the server still holds).
    pub deleted: usize,
    /// Local records removed: deleted by a tombstone the server collected.
    pub removed: usize,
    /// The (plugin, key)s changed or removed.
    pub changed: Vec<(PluginId, Key)>,
}

/// Reads a page (`core::wire`); any failure is `InvalidReply` naming the member and the byte.
fn parse_page(answer: &Answer) -> Result<ResyncResponse, SyncError> {
    ResyncResponse::from_json(&body_text(answer, "a resync page")?).map_err(|e| {
        crate::core::Error::InvalidReply(format!("not a protocol v2 resync page: {e}")).into()
    })
}

/// Walks the server's rows in `walk.scope` from `walk.after` and converges this store on them;
/// `walk` moves with every applied page, so after a failure it says where to continue.
pub async fn run(
    db: &Db,
    transport: &Transport,
    client: &Client,
    walk: &mut Walk,
    limit: u32,
    signal: Option<&AbortSignal>,
) -> Result<Walked, SyncError> {
    let mut walked = Walked::default();
    let scope = walk.scope.clone();
    let scope = scope.as_deref();
    loop {
        let after = walk.after.clone();
        if signal.is_some_and(AbortSignal::aborted) {
            return Err(SyncError::Aborted);
        }
        let request = ResyncRequest {
            version: PROTOCOL_VERSION,
            node: client.node,
            plugins: scope.map(<[PluginId]>::to_vec),
            after: after.clone(),
            limit: limit.clamp(1, client.limits.max_page),
            secret: client.secret.clone(),
            dataset: client.dataset.clone(),
        };
        let answer = transport
            .resync(&JsValue::from_str(&request.to_json()), signal)
            .await
            .map_err(|e| node_taken(e, client.node))?;
        let page = parse_page(&answer)?;
        let now = JsClock.try_now_ms()?;
        page.check(&request, &client.limits, now)?;
        walked.pages += 1;
        for (plugin, vector) in page.coverage.iter() {
            if walk.base.plugin(plugin).is_empty() {
                walk.base.set(plugin.clone(), vector.clone());
            }
        }
        let cursor = after.as_ref().map(Cursor::id);
        let (step, removals) = db.with_index(|index| {
            let local: Vec<Record> = index.records_in_hlc_order().collect();
            let step = ResyncPage {
                after: cursor.as_ref(),
                rows: &page.rows,
                complete: page.next.is_none(),
                coverage: &page.coverage,
            }
            .step(&local);
            let removals: Vec<Record> = step
                .removals
                .iter()
                .filter_map(|(p, k)| index.record(p, k))
                .collect();
            (step, removals)
        });
        let mut clock = db.clock();
        if let Some(max) = page.rows.iter().map(|r| r.hlc).max() {
            clock.observe(max, now)?;
        }
        walked.deleted += step.upserts.iter().filter(|r| r.is_tombstone()).count();
        walked.upserts += step.upserts.iter().filter(|r| !r.is_tombstone()).count();
        // With the page's rows, the copy of the server's coverage of its plugins becomes the
        // page's: rows arrive in key order, not stamp order, so a round after an interrupted
        // walk must not push them back (a push claims its writer's records up to its stamp, and
        // that claim would end the walk the server asks for while deleted records live here).
        if !step.upserts.is_empty() || !page.coverage.is_empty() {
            walked.changed.extend(
                db.apply_remote(Batch {
                    records: step.upserts,
                    vectors: vec![(VectorKind::PeerCoverage, page.coverage.clone())],
                })
                .await?,
            );
        }
        let removed = db.remove_synced(&removals).await?;
        walked.removed += removed.len();
        walked.changed.extend(removed);
        db.adopt_clock(clock);
        match page.next {
            Some(next) => walk.after = Some(next),
            None => break,
        }
    }
    let base = &walk.base;
    // Every plugin in scope now holds what the walk's coverage says, and no more.
    let plugins: Vec<PluginId> = match scope {
        Some(scope) => scope.to_vec(),
        None => db.with_index(|index| {
            let mut all: Vec<PluginId> = crate::core::Store::plugins(index).unwrap_or_default();
            all.extend(base.plugins().cloned());
            all.sort();
            all.dedup();
            all
        }),
    };
    let vectors: Watermarks = plugins
        .iter()
        .map(|p| (p.clone(), base.plugin(p)))
        .collect();
    db.apply_remote(Batch {
        records: Vec::new(),
        vectors: vec![
            (VectorKind::Seen, vectors.clone()),
            (VectorKind::PeerCoverage, vectors),
        ],
    })
    .await?;
    Ok(walked)
}
