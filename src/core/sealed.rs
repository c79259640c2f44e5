//! End-to-end encryption's pure decisions (docs/THREAT-MODEL.md): blinded names, the envelope,
//! the associated data, key ids, and the translation of a round between the plaintext the
//! replica decides on and the sealed form the server sees. The cryptography itself (AES-GCM,
//! HMAC-SHA-256, PBKDF2) runs in WebCrypto (`browser::sealed`); this module only lays out the
//! bytes it works on and checks what comes back, so every rule is tested natively.
//!
//! - A plugin id leaves as `b` + 48 hex digits of `HMAC(name key, "clientdata/plugin\0" + id)`
//!   (unless the host opts out); a key as 48 hex digits of
//!   `HMAC(name key, "clientdata/key\0" + plugin + "\0" + key)`. Both pass the server's id and
//!   key rules, and are deterministic, so LWW per key still works on the server.
//! - Every value (deletes included: a tombstone leaves as a sealed value, so the server cannot
//!   tell a delete from a write) leaves as `Value::Bytes(envelope)`:
//!   `[version 1][key id, 4 bytes][iv, 12 bytes][AES-GCM ciphertext + 16-byte tag]`, the
//!   plaintext `[kind][plugin len u8][plugin][key len u16 BE][key][value]` carrying the real
//!   names. The associated data binds the wire plugin, wire key, HLC and the envelope header:
//!   a ciphertext moved to another key or replayed under another stamp fails to open.
//! - HLCs and node ids stay clear: the server merges and pages by them.

use super::sorted::{SortedMap, SortedSet};

use super::content::ContentRef;
use super::error::SealError;
use super::hlc::Hlc;
use super::ids::{Key, PluginId};
use super::protocol::{ExchangeRequest, ExchangeResponse};
use super::record::{Record, Value};
use super::watermark::Watermarks;

/// Envelope format version (the first byte of every sealed value).
pub const ENVELOPE_VERSION: u8 = 1;
/// Bytes of a key id.
pub const KEY_ID_LEN: usize = 4;
/// Bytes of an AES-GCM nonce (random per record).
pub const IV_LEN: usize = 12;
/// Bytes of the AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Bytes before the ciphertext: version, key id, nonce.
pub const HEADER_LEN: usize = 1 + KEY_ID_LEN + IV_LEN;
/// PBKDF2-HMAC-SHA256 iterations for a passphrase (OWASP Password Storage Cheat Sheet, 2023
/// onwards: 600,000 for PBKDF2-HMAC-SHA256).
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// Hex digits of the HMAC kept in a blinded name (24 bytes: 192 bits).
pub const BLIND_HEX: usize = 48;
/// First character of a blinded plugin id (a plugin id must start with a letter or digit).
pub const BLIND_PLUGIN_PREFIX: &str = "b";

/// Which key sealed an envelope: 4 bytes derived from the key (never the key itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// The id from the first [`KEY_ID_LEN`] bytes of `mac` (`None` if shorter).
    pub fn from_mac(mac: &[u8]) -> Option<Self> {
        mac.get(..KEY_ID_LEN)?.try_into().ok().map(KeyId)
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::hex::encode(&self.0))
    }
}

/// Bytes of the per-user salt the server keeps for passphrase keys.
pub const SALT_LEN: usize = 32;

/// The server's salt (`{"salt": "<64 lowercase hex>"}`) as bytes; `None` if malformed.
pub fn parse_salt(text: &str) -> Option<Vec<u8>> {
    super::hex::decode::<SALT_LEN>(text).map(|salt| salt.to_vec())
}

/// What the name key's HMAC is computed over to derive a key id.
pub const KEY_ID_INPUT: &[u8] = b"clientdata/key-id";

/// HMAC input that blinds a plugin id.
pub fn plugin_mac_input(plugin: &PluginId) -> Vec<u8> {
    [
        b"clientdata/plugin\0".as_slice(),
        plugin.as_str().as_bytes(),
    ]
    .concat()
}

/// HMAC input that blinds a key: the plugin is part of it (NUL cannot occur in either), so one
/// key name in two plugins gives two unrelated blinded keys.
pub fn key_mac_input(plugin: &PluginId, key: &Key) -> Vec<u8> {
    [
        b"clientdata/key\0".as_slice(),
        plugin.as_str().as_bytes(),
        b"\0",
        key.as_str().as_bytes(),
    ]
    .concat()
}

fn short_mac(mac: &[u8]) -> Result<String, SealError> {
    match mac.get(..BLIND_HEX / 2) {
        Some(head) => Ok(super::hex::encode(head)),
        None => Err(SealError::Unavailable(format!(
            "an HMAC of {} bytes is too short to blind a name",
            mac.len()
        ))),
    }
}

/// A blinded plugin id from its HMAC.
pub fn blinded_plugin(mac: &[u8]) -> Result<PluginId, SealError> {
    let id = format!("{BLIND_PLUGIN_PREFIX}{}", short_mac(mac)?);
    PluginId::new(id).map_err(|e| SealError::Unavailable(e.to_string()))
}

/// A blinded key from its HMAC.
pub fn blinded_key(mac: &[u8]) -> Result<Key, SealError> {
    Key::new(short_mac(mac)?).map_err(|e| SealError::Unavailable(e.to_string()))
}

/// The envelope's first bytes before its nonce: version and key id.
pub fn header(key: KeyId) -> [u8; 1 + KEY_ID_LEN] {
    let mut out = [ENVELOPE_VERSION; 1 + KEY_ID_LEN];
    out[1..].copy_from_slice(&key.0);
    out
}

/// The associated data of a record's ciphertext: the wire plugin and key, the HLC and the
/// envelope's version and key id. Any of them changed and the ciphertext no longer opens.
pub fn associated_data(wire_plugin: &PluginId, wire_key: &Key, hlc: Hlc, key: KeyId) -> Vec<u8> {
    [
        b"clientdata/sealed/v1\0".as_slice(),
        wire_plugin.as_str().as_bytes(),
        b"\0",
        wire_key.as_str().as_bytes(),
        b"\0",
        hlc.to_string().as_bytes(),
        b"\0",
        &header(key),
    ]
    .concat()
}

const KIND_TOMBSTONE: u8 = 0;
const KIND_JSON: u8 = 1;
const KIND_BYTES: u8 = 2;
/// A value by reference (`core::content`): its encoded reference. The sealer does not offload
/// content (the round pushes sealed values inline), so only a record that arrived unhydrated
/// from an unsealed peer of the same dataset could carry one.
const KIND_REF: u8 = 3;

/// The plaintext sealed for `record`: its real names and value (or a tombstone mark).
pub fn inner(record: &Record) -> Vec<u8> {
    let plugin = record.plugin.as_str().as_bytes();
    let key = record.key.as_str().as_bytes();
    let reference;
    let (kind, value): (u8, &[u8]) = match &record.value {
        None => (KIND_TOMBSTONE, &[]),
        Some(Value::Json(text)) => (KIND_JSON, text.as_bytes()),
        Some(Value::Bytes(bytes)) => (KIND_BYTES, bytes),
        Some(Value::Ref(r)) => {
            reference = r.encode();
            (KIND_REF, reference.as_bytes())
        }
    };
    // Plugin ids are at most 64 bytes and keys at most 1024: both lengths fit.
    let mut out = Vec::with_capacity(4 + plugin.len() + key.len() + value.len());
    out.push(kind);
    out.push(plugin.len() as u8);
    out.extend_from_slice(plugin);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// Reads an opened plaintext back into a record stamped `hlc`.
pub fn parse_inner(plain: &[u8], hlc: Hlc) -> Result<Record, SealError> {
    let bad = |why: &str| SealError::Invalid(format!("record @{hlc}: {why}"));
    let (&kind, rest) = plain.split_first().ok_or_else(|| bad("empty plaintext"))?;
    let (&plugin_len, rest) = rest.split_first().ok_or_else(|| bad("no plugin"))?;
    let (plugin, rest) = rest
        .split_at_checked(usize::from(plugin_len))
        .ok_or_else(|| bad("plugin cut short"))?;
    let (key_len, rest) = rest.split_at_checked(2).ok_or_else(|| bad("no key"))?;
    let key_len = usize::from(u16::from_be_bytes([key_len[0], key_len[1]]));
    let (key, value) = rest
        .split_at_checked(key_len)
        .ok_or_else(|| bad("key cut short"))?;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| bad("names are not UTF-8"));
    let plugin = PluginId::new(text(plugin)?).map_err(|e| bad(&e.to_string()))?;
    let key = Key::new(text(key)?).map_err(|e| bad(&e.to_string()))?;
    let value = match kind {
        KIND_TOMBSTONE if value.is_empty() => None,
        KIND_JSON => Some(Value::Json(text(value)?)),
        KIND_BYTES => Some(Value::Bytes(value.to_vec())),
        KIND_REF => Some(Value::Ref(
            ContentRef::decode(&text(value)?).ok_or_else(|| bad("malformed reference"))?,
        )),
        _ => return Err(bad("unknown kind")),
    };
    Ok(Record {
        plugin,
        key,
        hlc,
        value,
    })
}

/// A sealed value split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Which key sealed it.
    pub key: KeyId,
    /// The nonce.
    pub iv: &'a [u8],
    /// Ciphertext and tag.
    pub sealed: &'a [u8],
}

/// Builds an envelope from its key id and what AES-GCM returned (`iv` + ciphertext + tag).
pub fn envelope(key: KeyId, iv_and_sealed: &[u8]) -> Vec<u8> {
    [header(key).as_slice(), iv_and_sealed].concat()
}

/// Splits a wire record's value into an envelope; anything else is `sealed_record_invalid`.
pub fn parse_envelope(record: &Record) -> Result<Envelope<'_>, SealError> {
    let bad = |why: &str| {
        SealError::Invalid(format!(
            "record {}/{}@{}: {why}",
            record.plugin, record.key, record.hlc
        ))
    };
    let Some(Value::Bytes(bytes)) = &record.value else {
        return Err(bad("not a sealed value (written without encryption?)"));
    };
    if bytes.len() < HEADER_LEN + TAG_LEN {
        return Err(bad("envelope too short"));
    }
    if bytes[0] != ENVELOPE_VERSION {
        return Err(bad("unknown envelope version"));
    }
    let key = KeyId::from_mac(&bytes[1..]).ok_or_else(|| bad("no key id"))?;
    Ok(Envelope {
        key,
        iv: &bytes[1 + KEY_ID_LEN..HEADER_LEN],
        sealed: &bytes[HEADER_LEN..],
    })
}

/// The two-way map between real plugin ids and the ones on the wire, learnt from blinding
/// (requests) and from opened records (replies). With blinding off both sides are equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    wire: SortedMap<PluginId, PluginId>,
    real: SortedMap<PluginId, PluginId>,
}

impl Names {
    /// Remembers that `real` travels as `wire`.
    pub fn learn(&mut self, real: PluginId, wire: PluginId) {
        self.real.insert(wire.clone(), real.clone());
        self.wire.insert(real, wire);
    }

    /// The wire id of `real`, if known.
    pub fn wire(&self, real: &PluginId) -> Option<&PluginId> {
        self.wire.get(real)
    }

    /// The real id behind `wire`, if known.
    pub fn real(&self, wire: &PluginId) -> Option<&PluginId> {
        self.real.get(wire)
    }

    /// The plugins of `request` whose wire id is not known yet (to be blinded first).
    pub fn unknown_in(&self, request: &ExchangeRequest) -> Vec<PluginId> {
        let mut all: Vec<&PluginId> = request.plugins.iter().flatten().collect();
        all.extend(request.seen.plugins());
        all.extend(request.push.iter().map(|r| &r.plugin));
        let out: SortedSet<PluginId> = all
            .into_iter()
            .filter(|p| !self.wire.contains_key(*p))
            .cloned()
            .collect();
        out.into_iter().collect()
    }

    fn to_wire(&self, real: &PluginId) -> Result<PluginId, SealError> {
        self.wire
            .get(real)
            .cloned()
            .ok_or_else(|| SealError::Unavailable(format!("plugin {real} was not blinded")))
    }

    fn map_watermarks(&self, marks: &Watermarks, to_wire: bool) -> Result<Watermarks, SealError> {
        let mut out = Watermarks::new();
        for (plugin, vector) in marks.iter() {
            let mapped = if to_wire {
                Some(self.to_wire(plugin)?)
            } else {
                self.real(plugin).cloned()
            };
            // A wire plugin nobody told us about (another device's, with no record in this
            // reply) is left out: absent coverage means "none known", which costs a re-push at
            // most, never a lost record.
            if let Some(mapped) = mapped {
                out.set(mapped, vector.clone());
            }
        }
        Ok(out)
    }
}

/// One pushed record ready to be sealed: its wire names, the plaintext and associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealJob {
    /// The record as it leaves, without its value yet.
    pub wire: Record,
    /// The plaintext.
    pub plain: Vec<u8>,
    /// The associated data.
    pub ad: Vec<u8>,
}

/// The sealing jobs of a request's push: `wire_keys[i]` is the blinded key of `push[i]`.
pub fn seal_jobs(
    request: &ExchangeRequest,
    names: &Names,
    wire_keys: Vec<Key>,
    key: KeyId,
) -> Result<Vec<SealJob>, SealError> {
    if wire_keys.len() != request.push.len() {
        return Err(SealError::Unavailable("one blinded key per record".into()));
    }
    request
        .push
        .iter()
        .zip(wire_keys)
        .map(|(record, wire_key)| {
            let wire_plugin = names.to_wire(&record.plugin)?;
            let ad = associated_data(&wire_plugin, &wire_key, record.hlc, key);
            Ok(SealJob {
                wire: Record::tombstone(wire_plugin, wire_key, record.hlc),
                plain: inner(record),
                ad,
            })
        })
        .collect()
}

/// The request as it leaves: names blinded, each push value sealed (`sealed[i]` is the envelope
/// of `jobs[i]`), the coverage cursor the sealed side keeps (`coverage_from`, in wire order).
pub fn wire_request(
    request: &ExchangeRequest,
    names: &Names,
    jobs: Vec<SealJob>,
    sealed: Vec<Vec<u8>>,
    coverage_from: Option<PluginId>,
) -> Result<ExchangeRequest, SealError> {
    if sealed.len() != jobs.len() {
        return Err(SealError::Unavailable("one envelope per record".into()));
    }
    let plugins = match &request.plugins {
        Some(scope) => Some(
            scope
                .iter()
                .map(|p| names.to_wire(p))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let push = jobs
        .into_iter()
        .zip(sealed)
        .map(|(job, envelope)| Record {
            value: Some(Value::Bytes(envelope)),
            ..job.wire
        })
        .collect();
    Ok(ExchangeRequest {
        plugins,
        seen: names.map_watermarks(&request.seen, true)?,
        push,
        coverage_from,
        ..request.clone()
    })
}

/// One reply record to open: the envelope's parts and the associated data it must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenJob {
    /// Which key sealed it.
    pub key: KeyId,
    /// `iv` + ciphertext + tag, as AES-GCM takes them.
    pub iv_and_sealed: Vec<u8>,
    /// The associated data.
    pub ad: Vec<u8>,
}

/// The opening jobs of a reply's records; a record sealed by a key not in `held` is
/// `encryption_key_unknown` (`current` names the key this device seals with).
pub fn open_jobs(
    reply: &ExchangeResponse,
    held: &[KeyId],
    current: KeyId,
) -> Result<Vec<OpenJob>, SealError> {
    reply
        .records
        .iter()
        .map(|record| {
            let envelope = parse_envelope(record)?;
            if !held.contains(&envelope.key) {
                return Err(SealError::KeyUnknown {
                    record: format!("{}/{}@{}", record.plugin, record.key, record.hlc),
                    sealed_with: envelope.key.to_string(),
                    held: current.to_string(),
                });
            }
            Ok(OpenJob {
                key: envelope.key,
                iv_and_sealed: [envelope.iv, envelope.sealed].concat(),
                ad: associated_data(&record.plugin, &record.key, record.hlc, envelope.key),
            })
        })
        .collect()
}

/// The reply as the replica sees it: records opened (`opened[i]` is the plaintext of record
/// `i`, `None` if it failed authentication: the whole reply is refused), plugin ids mapped back
/// (learning each record's), the coverage cursor dropped (the sealed side keeps it in wire
/// order, see [`fill_outside_window`]).
pub fn plain_reply(
    reply: &ExchangeResponse,
    names: &mut Names,
    opened: Vec<Option<Vec<u8>>>,
) -> Result<ExchangeResponse, SealError> {
    if opened.len() != reply.records.len() {
        return Err(SealError::Unavailable("one plaintext per record".into()));
    }
    let mut records = Vec::with_capacity(opened.len());
    for (wire, plain) in reply.records.iter().zip(opened) {
        let Some(plain) = plain else {
            return Err(SealError::DecryptionFailed(format!(
                "{}/{}@{}",
                wire.plugin, wire.key, wire.hlc
            )));
        };
        let record = parse_inner(&plain, wire.hlc)?;
        match names.real(&wire.plugin) {
            Some(known) if *known != record.plugin => {
                return Err(SealError::Invalid(format!(
                    "record {}/{}@{} names plugin {} but travels as {known}'s",
                    wire.plugin, wire.key, wire.hlc, record.plugin
                )))
            }
            Some(_) => {}
            None => names.learn(record.plugin.clone(), wire.plugin.clone()),
        }
        records.push(record);
    }
    Ok(ExchangeResponse {
        records,
        coverage: names.map_watermarks(&reply.coverage, false)?,
        coverage_next: None,
        ..reply.clone()
    })
}

/// When the server cut its coverage at `next` (a cursor in wire order), the plugins of `known`
/// outside the window `[from, next)` that the reply does not carry keep `peer` (our copy of
/// the server's coverage): the replica then replaces nothing it was not told about.
pub fn fill_outside_window(
    reply: &mut ExchangeResponse,
    names: &Names,
    known: &[PluginId],
    peer: &Watermarks,
    from: Option<&PluginId>,
    next: &PluginId,
) {
    for plugin in known {
        let Some(wire) = names.wire(plugin) else {
            continue;
        };
        let inside = from.is_none_or(|f| wire >= f) && wire < next;
        if !inside && reply.coverage.plugin(plugin).is_empty() {
            let kept = peer.plugin(plugin);
            if !kept.is_empty() {
                reply.coverage.set(plugin.clone(), kept);
            }
        }
    }
}
