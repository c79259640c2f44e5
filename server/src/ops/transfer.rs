//! `export` and `import`: one user's records, the content their references name, and coverage
//! as JSON lines, through the same [`Backend`](crate::backend::Backend) transaction the
//! exchange uses.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use clientdata::core::content::Digest;
use sha2::Digest as _;
use std::io::{BufRead, Write};

use clientdata::core::{Batch, Key, PluginId, Record, Store, VectorKind, Watermarks};
use serde::{Deserialize, Serialize};

use super::{Admin, OpsError};
use crate::backend::Transaction;
use crate::scope::Scope;

/// One line of an export: a header first, then records, then the coverage.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Line {
    Export {
        format: u32,
        user: String,
    },
    Record(Record),
    /// The content a later record's reference names (protocol v2), base64; written before
    /// the first record that needs it, once.
    Content {
        sha256: Digest,
        data: String,
    },
    Coverage(Watermarks),
}

const FORMAT: u32 = 1;
/// Records per page of an export and per batch of an import.
const PAGE: usize = 1000;

/// Writes `user`'s records (in HLC order, a page at a time) and coverage, read in one
/// transaction so the export is a consistent snapshot. Returns the number of records.
pub fn export<B: Admin>(
    backend: &mut B,
    user: &Scope,
    out: &mut impl Write,
) -> Result<usize, OpsError>
where
    OpsError: From<B::Error>,
{
    if !backend.has_scope(user)? {
        return Err(OpsError::UnknownUser(user.row_name().into_owned()));
    }
    let mut tx = backend.begin(user)?;
    write_line(
        out,
        &Line::Export {
            format: FORMAT,
            user: user.row_name().into_owned(),
        },
    )?;
    let plugins = tx.plugins()?;
    // Pages come in global HLC order, cut at some stamp h: every record at or below h is in
    // the page, so per node "the highest written" is an exact floor for the next page.
    let mut floor = Watermarks::new();
    let mut written = 0;
    let mut contents = BTreeSet::new();
    loop {
        let page = tx.records_above(&plugins, &floor, PAGE)?;
        for record in &page {
            floor.advance(&record.plugin, record.hlc);
            if let Some(r) = record.value.as_ref().and_then(|v| v.as_ref_content()) {
                if contents.insert(r.sha256) {
                    let data = tx.content(&r.sha256)?.unwrap_or_default();
                    let data = base64::engine::general_purpose::STANDARD.encode(data);
                    write_line(
                        out,
                        &Line::Content {
                            sha256: r.sha256,
                            data,
                        },
                    )?;
                }
            }
            write_line(out, &Line::Record(record.clone()))?;
        }
        written += page.len();
        if page.len() < PAGE {
            break;
        }
    }
    write_line(
        out,
        &Line::Coverage(tx.vectors(VectorKind::Coverage, &plugins)?),
    )?;
    out.flush()?;
    // Read only: dropping the transaction rolls back (nothing to keep).
    drop(tx);
    Ok(written)
}

fn write_line(out: &mut impl Write, line: &Line) -> Result<(), OpsError> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Reads an export into `user` in one transaction; returns (records read, records stored).
/// Any bad line fails the whole import before it commits.
pub fn import<B: Admin>(
    backend: &mut B,
    user: &Scope,
    input: impl BufRead,
) -> Result<(usize, usize), OpsError>
where
    OpsError: From<B::Error>,
{
    let mut tx = backend.begin(user)?;
    let (mut read, mut stored) = (0, 0);
    let mut coverage = Watermarks::new();
    let mut pending: Vec<Record> = Vec::new();
    let mut header = false;
    let mut contents = BTreeSet::new();
    for (i, text) in input.lines().enumerate() {
        let bad = |message: String| OpsError::BadLine {
            line: i + 1,
            message,
        };
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        match line {
            Line::Export { format, .. } if !header && format == FORMAT => header = true,
            Line::Export { format, .. } if !header => {
                return Err(bad(format!("export format {format}, expected {FORMAT}")))
            }
            _ if !header => return Err(bad("the first line must be the export header".into())),
            Line::Export { .. } => return Err(bad("a second header".into())),
            Line::Content { sha256, data } => {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|e| bad(format!("content {}: {e}", sha256.to_hex())))?;
                if Digest(sha2::Sha256::digest(&data).into()) != sha256 {
                    return Err(bad(format!(
                        "content {} does not hash to it",
                        sha256.to_hex()
                    )));
                }
                tx.put_content(&sha256, &data)?;
                contents.insert(sha256);
            }
            Line::Record(record) => {
                if let Some(r) = record.value.as_ref().and_then(|v| v.as_ref_content()) {
                    if !contents.contains(&r.sha256) && !tx.has_content(&r.sha256)? {
                        return Err(bad(format!(
                            "no content {} before its record",
                            r.sha256.to_hex()
                        )));
                    }
                }
                read += 1;
                pending.push(record);
                if pending.len() == PAGE {
                    stored += apply(&mut tx, std::mem::take(&mut pending))?;
                }
            }
            Line::Coverage(vectors) => coverage.merge(&vectors),
        }
    }
    if !header {
        return Err(OpsError::BadLine {
            line: 1,
            message: "empty input: no export header".into(),
        });
    }
    stored += apply(&mut tx, pending)?;
    // The stored coverage merged with the imported (only ever up).
    let plugins: Vec<PluginId> = coverage.plugins().cloned().collect();
    let mut merged = tx.vectors(VectorKind::Coverage, &plugins)?;
    merged.merge(&coverage);
    tx.commit(Batch {
        records: Vec::new(),
        vectors: vec![(VectorKind::Coverage, merged)],
    })?;
    tx.commit_transaction()?;
    Ok((read, stored))
}

/// Stores the records that win LWW against the store and each other; returns how many.
fn apply<S: Store>(tx: &mut S, records: Vec<Record>) -> Result<usize, S::Error> {
    let mut best: BTreeMap<(PluginId, Key), Record> = BTreeMap::new();
    for r in records {
        match best.get(&(r.plugin.clone(), r.key.clone())) {
            Some(held) if held.hlc >= r.hlc => {}
            _ => {
                best.insert((r.plugin.clone(), r.key.clone()), r);
            }
        }
    }
    let keys: Vec<(&PluginId, &Key)> = best.keys().map(|(p, k)| (p, k)).collect();
    let stored = tx.versions(&keys)?;
    let winners: Vec<Record> = best
        .values()
        .zip(stored)
        .filter(|(r, s)| r.wins_over(s.as_ref()))
        .map(|(r, _)| r.clone())
        .collect();
    let n = winners.len();
    tx.commit(Batch {
        records: winners,
        vectors: Vec::new(),
    })?;
    Ok(n)
}
