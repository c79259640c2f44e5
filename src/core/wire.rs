//! The sync wire written and read by hand, for the wasm client: requests to JSON text
//! (byte for byte what serde_json writes from the same value) and replies from JSON text (what
//! the serde derives accept, with the same value). The derives stay on the types for the
//! native server; this spares the browser build a serde deserializer, the derive visitors and
//! float formatting (bundle size, issue 17). Both directions are held to serde_json by the
//! differential tests below and by tests/fuzz.rs `wire`.
//!
//! Stricter than serde_json, on purpose (a JSON array in place of a struct's object, and
//! `{"json":null}` for a content kind, are serde quirks no peer writes): both are refused.

use std::fmt::Write as _;

use super::content::{ContentKind, ContentRef, Digest};
use super::error::Error;
use super::hlc::Hlc;
use super::ids::{Key, NodeId, PluginId};
use super::json::push_str;
use super::json_reader::{Fields, Read, ReadError, Reader};
use super::protocol::{ExchangeRequest, ExchangeResponse};
use super::record::{Record, Value};
use super::resync::{Cursor, ResyncRequest, ResyncResponse};
use super::watermark::{VersionVector, Watermarks};

impl ExchangeRequest {
    /// The request as JSON text (field order and escapes as serde_json writes them).
    pub fn to_json(&self) -> String {
        let records: usize = self.push.iter().map(Record::wire_size).sum();
        let mut out = String::with_capacity(256 + records + 64 * self.seen.entries());
        let _ = write!(
            out,
            "{{\"version\":{},\"node\":\"{}\"",
            self.version, self.node
        );
        push_plugins(&mut out, &self.plugins);
        out.push_str(",\"seen\":");
        push_watermarks(&mut out, &self.seen);
        out.push_str(",\"push\":[");
        for (i, record) in self.push.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_record(&mut out, record);
        }
        let _ = write!(out, "],\"limit\":{}", self.limit);
        push_optional(&mut out, "secret", self.secret.as_deref());
        push_optional(&mut out, "dataset", self.dataset.as_deref());
        let from = self.coverage_from.as_ref().map(PluginId::as_str);
        push_optional(&mut out, "coverageFrom", from);
        if let Some(device) = &self.device {
            out.push_str(",\"device\":{\"id\":");
            push_str(&mut out, &device.id);
            out.push_str(",\"epoch\":");
            push_str(&mut out, &device.epoch);
            out.push('}');
        }
        out.push('}');
        out
    }
}

impl ResyncRequest {
    /// The request as JSON text (field order and escapes as serde_json writes them).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        let _ = write!(
            out,
            "{{\"version\":{},\"node\":\"{}\"",
            self.version, self.node
        );
        push_plugins(&mut out, &self.plugins);
        if let Some(after) = &self.after {
            out.push_str(",\"after\":{\"plugin\":");
            push_str(&mut out, after.plugin.as_str());
            out.push_str(",\"key\":");
            push_str(&mut out, after.key.as_str());
            out.push('}');
        }
        let _ = write!(out, ",\"limit\":{}", self.limit);
        push_optional(&mut out, "secret", self.secret.as_deref());
        push_optional(&mut out, "dataset", self.dataset.as_deref());
        out.push('}');
        out
    }
}

fn push_plugins(out: &mut String, plugins: &Option<Vec<PluginId>>) {
    out.push_str(",\"plugins\":");
    let Some(plugins) = plugins else {
        out.push_str("null");
        return;
    };
    out.push('[');
    for (i, plugin) in plugins.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, plugin.as_str());
    }
    out.push(']');
}

fn push_optional(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        let _ = write!(out, ",\"{name}\":");
        push_str(out, value);
    }
}

fn push_watermarks(out: &mut String, watermarks: &Watermarks) {
    out.push('{');
    for (i, (plugin, vector)) in watermarks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, plugin.as_str());
        out.push_str(":{");
        for (j, (node, hlc)) in vector.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{node}\":\"{hlc}\"");
        }
        out.push('}');
    }
    out.push('}');
}

fn push_record(out: &mut String, record: &Record) {
    out.push_str("{\"plugin\":");
    push_str(out, record.plugin.as_str());
    out.push_str(",\"key\":");
    push_str(out, record.key.as_str());
    let _ = write!(out, ",\"hlc\":\"{}\"", record.hlc);
    match &record.value {
        None => {}
        Some(Value::Json(text)) => {
            out.push_str(",\"value\":{\"json\":");
            push_str(out, text);
            out.push('}');
        }
        Some(Value::Bytes(bytes)) => {
            out.push_str(",\"value\":{\"bytes\":\"");
            out.push_str(&super::base64::encode(bytes));
            out.push_str("\"}");
        }
        Some(Value::Ref(r)) => {
            let kind = match r.kind {
                ContentKind::Json => "json",
                ContentKind::Bytes => "bytes",
            };
            let _ = write!(
                out,
                ",\"value\":{{\"ref\":{{\"kind\":\"{kind}\",\"size\":{},\"sha256\":\"{}\"}}}}",
                r.size,
                r.sha256.to_hex()
            );
        }
    }
    out.push('}');
}

impl ExchangeResponse {
    /// Reads a reply from its JSON text, accepting what the serde derive accepts.
    pub fn from_json(text: &str) -> Read<Self> {
        const FIELDS: Fields = Fields {
            names: &[
                "version",
                "records",
                "coverage",
                "hasMore",
                "coverageNext",
                "collected",
                "fullResync",
                "replacedStoreEpoch",
            ],
            required: 0b1111,
            deny_unknown: true,
        };
        let mut reply = ExchangeResponse {
            version: 0,
            records: Vec::new(),
            coverage: Watermarks::new(),
            has_more: false,
            coverage_next: None,
            collected: Watermarks::new(),
            full_resync: false,
            replaced_store_epoch: None,
        };
        let mut r = Reader::new(text);
        r.fields(FIELDS, &mut |r, i| {
            match i {
                0 => reply.version = r.u32()?,
                1 => reply.records = records(r)?,
                2 => reply.coverage = watermarks(r)?,
                3 => reply.has_more = r.bool()?,
                4 => reply.coverage_next = optional(r, plugin_id)?,
                5 => reply.collected = watermarks(r)?,
                6 => reply.full_resync = r.bool()?,
                _ => reply.replaced_store_epoch = optional(r, |s| Ok(s.to_owned()))?,
            }
            Ok(())
        })?;
        r.end()?;
        Ok(reply)
    }
}

impl ResyncResponse {
    /// Reads a page from its JSON text, accepting what the serde derive accepts.
    pub fn from_json(text: &str) -> Read<Self> {
        const FIELDS: Fields = Fields {
            names: &["version", "rows", "coverage", "next"],
            required: 0b0111,
            deny_unknown: true,
        };
        let mut page = ResyncResponse {
            version: 0,
            rows: Vec::new(),
            coverage: Watermarks::new(),
            next: None,
        };
        let mut r = Reader::new(text);
        r.fields(FIELDS, &mut |r, i| {
            match i {
                0 => page.version = r.u32()?,
                1 => page.rows = records(r)?,
                2 => page.coverage = watermarks(r)?,
                _ => page.next = if r.null()? { None } else { Some(cursor(r)?) },
            }
            Ok(())
        })?;
        r.end()?;
        Ok(page)
    }
}

/// A string checked by one of the types' own constructors (a plain `fn`: one copy of this per
/// type, not per call site).
fn checked<T>(r: &mut Reader, make: fn(&str) -> Result<T, Error>) -> Read<T> {
    let at = r.error("");
    let text = r.string()?;
    make(&text).map_err(|e| tagged(at, e))
}

/// A constructor's error at `at`, keeping the typed code in the message (`[invalid_hlc] ...`),
/// as the serde impls tag it.
fn tagged(at: ReadError, e: Error) -> ReadError {
    ReadError {
        reason: format!("[{}] {e}", e.code()),
        ..at
    }
}

/// An `Option` member: `null` is `None`.
fn optional<T>(r: &mut Reader, make: fn(&str) -> Result<T, Error>) -> Read<Option<T>> {
    if r.null()? {
        return Ok(None);
    }
    checked(r, make).map(Some)
}

fn plugin_id(text: &str) -> Result<PluginId, Error> {
    PluginId::new(text.to_owned())
}

fn key_of(text: &str) -> Result<Key, Error> {
    Key::new(text.to_owned())
}

fn records(r: &mut Reader) -> Read<Vec<Record>> {
    let mut out = Vec::new();
    r.array(&mut |r| {
        out.push(record(r)?);
        Ok(())
    })?;
    Ok(out)
}

fn record(r: &mut Reader) -> Read<Record> {
    const FIELDS: Fields = Fields {
        names: &["plugin", "key", "hlc", "value"],
        required: 0b0111,
        deny_unknown: true,
    };
    let (mut plugin, mut key, mut hlc, mut value) = (None, None, None, None);
    r.fields(FIELDS, &mut |r, i| {
        match i {
            0 => plugin = Some(checked(r, plugin_id)?),
            1 => key = Some(checked(r, key_of)?),
            2 => hlc = Some(checked(r, Hlc::parse)?),
            _ => value = if r.null()? { None } else { Some(value_of(r)?) },
        }
        Ok(())
    })?;
    match (plugin, key, hlc) {
        (Some(plugin), Some(key), Some(hlc)) => Ok(Record {
            plugin,
            key,
            hlc,
            value,
        }),
        _ => Err(r.error("missing field")),
    }
}

/// `{"json": text}`, `{"bytes": base64}` or `{"ref": {...}}`: exactly one member.
fn value_of(r: &mut Reader) -> Read<Value> {
    let mut value = None;
    r.object(&mut |r, kind| {
        if value.is_some() {
            return Err(r.error("a value has exactly one member"));
        }
        value = Some(match kind {
            "json" => Value::Json(r.string()?.into_owned()),
            "bytes" => {
                let at = r.error("");
                let text = r.string()?;
                let bytes = super::base64::decode(&text).ok_or_else(|| ReadError {
                    reason: "invalid base64 (standard alphabet, padded)".into(),
                    ..at
                })?;
                Value::Bytes(bytes)
            }
            "ref" => Value::Ref(content_ref(r)?),
            _ => return Err(r.error("unknown variant, expected `json`, `bytes` or `ref`")),
        });
        Ok(())
    })?;
    value.ok_or_else(|| r.error("a value has exactly one member: json, bytes or ref"))
}

fn content_ref(r: &mut Reader) -> Read<ContentRef> {
    const FIELDS: Fields = Fields {
        names: &["kind", "size", "sha256"],
        required: 0b111,
        deny_unknown: true,
    };
    let (mut kind, mut size, mut sha256) = (None, None, None);
    r.fields(FIELDS, &mut |r, i| {
        match i {
            0 => {
                let at = r.error("unknown kind, expected `json` or `bytes`");
                kind = Some(match &*r.string()? {
                    "json" => ContentKind::Json,
                    "bytes" => ContentKind::Bytes,
                    _ => return Err(at),
                })
            }
            1 => size = Some(r.u64()?),
            _ => sha256 = Some(checked(r, Digest::parse)?),
        }
        Ok(())
    })?;
    match (kind, size, sha256) {
        (Some(kind), Some(size), Some(sha256)) => Ok(ContentRef { kind, size, sha256 }),
        _ => Err(r.error("missing field")),
    }
}

fn cursor(r: &mut Reader) -> Read<Cursor> {
    const FIELDS: Fields = Fields {
        names: &["plugin", "key"],
        required: 0b11,
        deny_unknown: true,
    };
    let (mut plugin, mut key) = (None, None);
    r.fields(FIELDS, &mut |r, i| {
        match i {
            0 => plugin = Some(checked(r, plugin_id)?),
            _ => key = Some(checked(r, key_of)?),
        }
        Ok(())
    })?;
    match (plugin, key) {
        (Some(plugin), Some(key)) => Ok(Cursor { plugin, key }),
        _ => Err(r.error("missing field")),
    }
}

/// Per plugin, per node: a repeated name keeps its last value, as serde's maps do. Sorted once
/// per level, not inserted one by one: a reply may hold hundreds of thousands of plugins, and in
/// reverse order per-pair inserts move O(n²) entries.
fn watermarks(r: &mut Reader) -> Read<Watermarks> {
    let mut plugins = Vec::new();
    r.object(&mut |r, plugin| {
        let at = r.error("");
        let plugin = plugin_id(plugin).map_err(|e| tagged(at, e))?;
        let mut nodes = Vec::new();
        r.object(&mut |r, node| {
            let at = r.error("");
            let node = NodeId::parse(node).map_err(|e| tagged(at, e))?;
            nodes.push((node, checked(r, Hlc::parse)?));
            Ok(())
        })?;
        plugins.push((plugin, VersionVector::from_unsorted(nodes)));
        Ok(())
    })?;
    Ok(Watermarks::from_unsorted(plugins))
}
