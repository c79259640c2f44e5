//! Wire types of `POST /sync/exchange`, protocol version 2 (docs/PROTOCOL.md), and their limits.
//! The full-resync walk's wire types (`POST /sync/resync`) are in `core::resync`.
//! Both sides call `validate` on what they receive before anything changes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::content::MAX_CONTENT_BYTES;
use super::error::{Error, Result};
use super::hlc::{check_drift, Hlc, DEFAULT_MAX_DRIFT_MS};
use super::ids::{NodeId, PluginId};
use super::record::{Record, Value, MAX_VALUE_BYTES};
use super::watermark::Watermarks;

/// The protocol version this build speaks. 2: tombstone collection (`collected`,
/// `fullResync` in the reply, the `/sync/resync` walk) and values that may be references to
/// content (`core::content`); a version-1 client could see neither, so it is refused
/// (`unsupported_version`), never answered wrong data.
pub const PROTOCOL_VERSION: u32 = 2;

/// Bounds both sides enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest page (records pushed or answered in one round).
    pub max_page: u32,
    /// Largest request or reply body in bytes.
    pub max_body_bytes: usize,
    /// Byte budget for the records of one direction of a round (`Record::wire_size` summed);
    /// a page is cut when it would exceed this, keeping at least one record.
    pub page_bytes: usize,
    /// Largest value of one record carried inline.
    pub max_value_bytes: usize,
    /// Largest value of one record carried by reference (its content's size).
    pub max_content_bytes: usize,
    /// Largest number of plugins named in one request's scope.
    pub max_plugins: usize,
    /// How far a stamp may be ahead of the receiver's physical time.
    pub max_drift_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_page: 1000,
            max_body_bytes: 8 << 20,
            page_bytes: 3 << 20,
            max_value_bytes: MAX_VALUE_BYTES,
            max_content_bytes: MAX_CONTENT_BYTES,
            max_plugins: 1000,
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
        }
    }
}

impl Limits {
    /// Rejects a body larger than `max_body_bytes` before it is parsed.
    pub fn check_body(&self, size: usize) -> Result<()> {
        if size > self.max_body_bytes {
            return Err(Error::BodyTooLarge {
                size,
                max: self.max_body_bytes,
            });
        }
        Ok(())
    }

    /// Checks one record's value size, JSON syntax and stamp drift.
    pub fn check_record(&self, record: &Record, now_ms: u64) -> Result<()> {
        let max = match &record.value {
            Some(Value::Ref(_)) => self.max_content_bytes,
            _ => self.max_value_bytes,
        };
        record.check_size(max)?;
        check_drift(record.hlc, now_ms, self.max_drift_ms)?;
        record.check_json()
    }

    /// Checks every stamp of a set of watermarks for drift.
    pub fn check_watermarks(&self, watermarks: &Watermarks, now_ms: u64) -> Result<()> {
        watermarks
            .iter()
            .flat_map(|(_, v)| v.iter())
            .try_for_each(|(_, h)| check_drift(h, now_ms, self.max_drift_ms))
    }
}

/// Shortest device secret a request may carry (printable ASCII characters, so also bytes).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest device secret a request may carry (printable ASCII characters, so also bytes).
pub const MAX_SECRET_LEN: usize = 128;

/// A device secret is 16 ..= 128 printable ASCII characters (`!` to `~`): characters and bytes
/// are then the same count, as the OpenAPI document's lengths say (the browser client's are hex).
pub(crate) fn check_secret(secret: &str) -> std::result::Result<(), String> {
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
        return Err(format!(
            "secret of {} bytes, must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN}",
            secret.len()
        ));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("secret must be printable ASCII (! to ~)".into());
    }
    Ok(())
}

/// Longest dataset name (bytes): the longest database name, so every name is a dataset.
pub const MAX_DATASET_LEN: usize = 256;

/// Checks a dataset name: 1 to [`MAX_DATASET_LEN`] bytes without control characters (the rule
/// for database names, which are the default dataset).
pub fn check_dataset(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_DATASET_LEN || name.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!(
            "dataset must be 1 to {MAX_DATASET_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Longest device id (characters) of [`DeviceEpoch::id`].
pub const MAX_DEVICE_ID_CHARS: usize = 128;
/// Longest store epoch (bytes) of [`DeviceEpoch::epoch`] and
/// [`ExchangeResponse::replaced_store_epoch`].
pub const MAX_EPOCH_LEN: usize = 64;

/// Whether `id` is a device id: 1 to [`MAX_DEVICE_ID_CHARS`] characters without control
/// characters. (A bool, not a `Result`: the browser client words its own error.)
pub fn is_device_id(id: &str) -> bool {
    let chars = id.chars().count();
    (1..=MAX_DEVICE_ID_CHARS).contains(&chars) && !id.chars().any(char::is_control)
}

/// Whether `epoch` has the shape of a store epoch: 1 to [`MAX_EPOCH_LEN`] ASCII letters,
/// digits, `-` or `_` (the browser client's are 16 hex digits).
pub fn is_epoch(epoch: &str) -> bool {
    (1..=MAX_EPOCH_LEN).contains(&epoch.len())
        && epoch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The request's `device`: the app's id for this device (stable across wipes, it comes from the
/// app's own login) and the epoch of the local store the round comes from. The server keeps
/// the last epoch per device and says when it changes
/// ([`ExchangeResponse::replaced_store_epoch`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceEpoch {
    /// The app's device id (see [`is_device_id`]).
    pub id: String,
    /// The local store's epoch (see [`is_epoch`]).
    pub epoch: String,
}

impl DeviceEpoch {
    /// Checks both parts (`invalid_request`).
    pub fn check(&self) -> Result<()> {
        if !is_device_id(&self.id) {
            return Err(Error::InvalidRequest(format!(
                "device id must be 1 to {MAX_DEVICE_ID_CHARS} characters without control characters"
            )));
        }
        if !is_epoch(&self.epoch) {
            return Err(Error::InvalidRequest(format!(
                "device epoch must be 1 to {MAX_EPOCH_LEN} ASCII letters, digits, - or _"
            )));
        }
        Ok(())
    }
}

/// The body of `POST /sync/exchange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExchangeRequest {
    /// Must equal [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The requesting writer (the server never answers records stamped with it).
    pub node: NodeId,
    /// The plugins in scope; `None` means every plugin.
    #[serde(default)]
    pub plugins: Option<Vec<PluginId>>,
    /// What the client already holds, per plugin and node.
    #[serde(default)]
    pub seen: Watermarks,
    /// Records the server has not covered (as far as the client knows), in ascending HLC order.
    #[serde(default)]
    pub push: Vec<Record>,
    /// Largest number of records to answer (1 ..= `Limits::max_page`).
    pub limit: u32,
    /// The device secret that owns `node` (16 ..= 128 characters): the first request with a
    /// secret claims the node for its user; later ones with another secret, or none, are refused
    /// as `node_id_taken`. Absent (clients before it): the node stays unclaimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The dataset of this user the round reads and writes: the server keeps each dataset's
    /// records, coverage and node claims apart. Absent (clients before it): the user's default
    /// dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Continues a reply's coverage: the server's coverage of the plugins in scope from this one
    /// on (in plugin order), as the previous reply's `coverageNext` said. Absent: from the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_from: Option<PluginId>,
    /// The app's device id and the local store's epoch, when the app configured a device: the
    /// server tells a store that replaced the one it last saw for the device
    /// (`replacedStoreEpoch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceEpoch>,
}

/// The reply to an [`ExchangeRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExchangeResponse {
    /// Must equal the request's version.
    pub version: u32,
    /// Records above the client's watermarks, in ascending HLC order, at most `limit`.
    pub records: Vec<Record>,
    /// The server's coverage per plugin in scope, after applying the push.
    pub coverage: Watermarks,
    /// More records remain above this page.
    pub has_more: bool,
    /// The coverage was cut to the page budget before this plugin: it covers the plugins of the
    /// records and of the push, and every plugin in scope from the request's `coverageFrom` up
    /// to (not including) this one; the next request continues with `coverageFrom` set to it.
    /// Absent: the coverage runs to the last plugin in scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_next: Option<PluginId>,
    /// Tombstone collection (v2): per plugin the reply speaks for and per writer, the highest
    /// stamp of a tombstone the server collected; the client drops its tombstones at or below it
    /// (`core::gc::drop_collected`). Absent when empty.
    #[serde(default, skip_serializing_if = "Watermarks::is_empty")]
    pub collected: Watermarks,
    /// Tombstone collection (v2): the server collected deletions this client has not seen (its
    /// `seen` does not cover the collected stamps), so a partial round could leave deleted records
    /// alive here. Nothing of the request was applied; the client walks the live set
    /// (`POST /sync/resync`) and then syncs again. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_resync: bool,
    /// Only to a request with `device`: the server last saw that device with this other store
    /// epoch, so the store the device syncs from now replaced it (wiped and created anew since;
    /// the client reports it like a wipe it found itself). A plain string, not an object: the
    /// client's deserializer costs code per struct (bundle size). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_store_epoch: Option<String>,
}

/// The `{ code, message }` body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code (`Error::code` or a transport code such as `unauthorized`).
    pub code: String,
    /// Human-readable detail.
    pub message: String,
}

impl ErrorBody {
    /// Code for a body that is not valid JSON or not of the protocol's shape.
    pub const MALFORMED: &'static str = "malformed_request";

    /// Classifies a deserializer's message: a field rule broken inside the JSON keeps its typed
    /// code (`invalid_key`, `invalid_hlc`, ...); anything else is `malformed_request`.
    pub fn from_parse_error(message: &str) -> Self {
        // Only a message that starts with the tag counts, so text quoted from the input (an
        // unknown field named "[clock_drift]") can never choose the code.
        let code = message
            .strip_prefix('[')
            .and_then(|rest| rest.find(']').map(|len| &rest[..len]))
            .filter(|code| {
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
            .unwrap_or(Self::MALFORMED);
        ErrorBody {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> Self {
        ErrorBody {
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

pub(crate) fn check_version(got: u32) -> Result<()> {
    if got != PROTOCOL_VERSION {
        return Err(Error::UnsupportedVersion {
            got,
            supported: PROTOCOL_VERSION,
        });
    }
    Ok(())
}

/// A page-shaped reply against its request: the request's protocol version, and at most the
/// `limit` items it asked for (`what`: "records", "rows").
pub(crate) fn check_page(
    (version, request_version): (u32, u32),
    (items, limit): (usize, u32),
    what: &str,
) -> Result<()> {
    if version != request_version {
        return Err(Error::InvalidReply(format!(
            "version {version} answers request version {request_version}"
        )));
    }
    if items > limit as usize {
        return Err(Error::InvalidReply(format!(
            "{items} {what} exceed the requested limit {limit}"
        )));
    }
    Ok(())
}

/// Records must be strictly ascending by HLC (which also rules out duplicates).
pub(crate) fn check_ascending(
    records: &[Record],
    what: &str,
    err: fn(String) -> Error,
) -> Result<()> {
    match records.windows(2).find(|w| w[0].hlc >= w[1].hlc) {
        Some(w) => Err(err(format!(
            "{what} not in ascending HLC order at {}",
            w[1].hlc
        ))),
        None => Ok(()),
    }
}

impl ExchangeRequest {
    /// The plugins in scope as a set, or `None` for every plugin.
    pub fn scope(&self) -> Option<BTreeSet<&PluginId>> {
        self.plugins.as_ref().map(|p| p.iter().collect())
    }

    /// Whether `plugin` is in scope.
    pub fn in_scope(&self, plugin: &PluginId) -> bool {
        self.plugins.as_ref().is_none_or(|p| p.contains(plugin))
    }

    /// Checks version, limits, scope, sizes and stamp drift against the receiver's `now_ms`.
    pub fn validate(&self, limits: &Limits, now_ms: u64) -> Result<()> {
        check_version(self.version)?;
        let invalid = Error::InvalidRequest;
        if let Some(dataset) = &self.dataset {
            check_dataset(dataset)?;
        }
        if let Some(device) = &self.device {
            device.check()?;
        }
        if let Some(secret) = &self.secret {
            check_secret(secret).map_err(invalid)?;
        }
        if self.limit == 0 || self.limit > limits.max_page {
            return Err(invalid(format!(
                "limit {} out of range 1..={}",
                self.limit, limits.max_page
            )));
        }
        if self.push.len() > limits.max_page as usize {
            return Err(invalid(format!(
                "{} records pushed, at most {}",
                self.push.len(),
                limits.max_page
            )));
        }
        if let Some(plugins) = &self.plugins {
            if plugins.len() > limits.max_plugins {
                return Err(invalid(format!(
                    "{} plugins in scope, at most {}",
                    plugins.len(),
                    limits.max_plugins
                )));
            }
        }
        if let Some(p) = self.seen.plugins().find(|p| !self.in_scope(p)) {
            return Err(invalid(format!(
                "watermarks for plugin {p} outside the scope"
            )));
        }
        limits.check_watermarks(&self.seen, now_ms)?;
        check_ascending(&self.push, "pushed records", invalid)?;
        for record in &self.push {
            if !self.in_scope(&record.plugin) {
                return Err(invalid(format!(
                    "pushed record of plugin {} outside the scope",
                    record.plugin
                )));
            }
            limits.check_record(record, now_ms)?;
        }
        Ok(())
    }
}

impl ExchangeResponse {
    /// Shape checks that need no request: version, order, sizes, drift. The full check against
    /// the request lives in `replica::Client::plan`.
    pub fn validate(&self, limits: &Limits, now_ms: u64) -> Result<()> {
        check_version(self.version)?;
        if let Some(replaced) = &self.replaced_store_epoch {
            if !is_epoch(replaced) {
                return Err(Error::InvalidReply(
                    "replacedStoreEpoch is not a store epoch".into(),
                ));
            }
        }
        check_ascending(&self.records, "records", Error::InvalidReply)?;
        for record in &self.records {
            limits.check_record(record, now_ms)?;
        }
        limits.check_watermarks(&self.collected, now_ms)?;
        limits.check_watermarks(&self.coverage, now_ms)
    }

    /// The highest stamp in the reply (records and coverage), which the client's clock observes.
    pub fn max_hlc(&self) -> Option<Hlc> {
        let records = self.records.iter().map(|r| r.hlc);
        let coverage = self
            .coverage
            .iter()
            .flat_map(|(_, v)| v.iter().map(|(_, h)| h));
        records.chain(coverage).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Key;

    const NOW: u64 = 1_700_000_000_000;

    fn node(n: u64) -> NodeId {
        NodeId::new(n).unwrap()
    }
    fn rec(plugin: &str, wall: u64, value: Value) -> Record {
        Record::put(
            PluginId::new(plugin).unwrap(),
            Key::new("k").unwrap(),
            value,
            Hlc::new(wall, 0, node(1)).unwrap(),
        )
    }
    fn request() -> ExchangeRequest {
        ExchangeRequest {
            version: PROTOCOL_VERSION,
            node: node(1),
            plugins: None,
            seen: Watermarks::new(),
            push: vec![rec("a", NOW, Value::Json("1".into()))],
            limit: 100,
            secret: None,
            dataset: None,
            coverage_from: None,
            device: None,
        }
    }

    /// A request within the 8 MiB body cap can list 600,000 plugins in `seen` (`"p1":{}`);
    /// the server reads it before any check. In reverse order, inserting them one by one into
    /// the sorted map moved O(n²) entries (200,000 took 13 s here, 600,000 about two minutes
    /// of CPU per request); they are sorted once, seconds even in a debug build. The thread
    /// gets a minute.
    #[test]
    fn a_request_with_many_watermarks_in_reverse_order_is_read_in_one_sort() {
        let n = 600_000;
        let seen = (0..n)
            .rev()
            .map(|i| format!(r#""p{i}":{{}}"#))
            .collect::<Vec<_>>()
            .join(",");
        assert!(seen.len() < Limits::default().max_body_bytes);
        // Spliced as text: a JSON value's map would put the plugins back in order.
        let empty = serde_json::to_string(&request()).unwrap();
        assert!(empty.contains(r#""seen":{}"#));
        let text = empty.replace(r#""seen":{}"#, &format!(r#""seen":{{{seen}}}"#));
        let (done, read) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(
                serde_json::from_str::<ExchangeRequest>(&text).map(|r| r.seen.plugins().count()),
            );
        });
        let plugins = read
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("read within a minute")
            .unwrap();
        assert_eq!(plugins, n);
    }

    #[test]
    fn a_page_must_answer_its_request_version_and_stay_within_its_limit() {
        let v = PROTOCOL_VERSION;
        check_page((v, v), (3, 3), "rows").unwrap();
        check_page((v, v), (0, 1), "records").unwrap();
        let err = check_page((v, v + 1), (0, 1), "records").unwrap_err();
        assert_eq!(err.code(), "invalid_reply");
        assert!(err.to_string().contains("answers request version"), "{err}");
        let err = check_page((v, v), (4, 3), "rows").unwrap_err();
        assert_eq!(err.code(), "invalid_reply");
        assert!(
            err.to_string()
                .contains("4 rows exceed the requested limit 3"),
            "{err}"
        );
    }

    #[test]
    fn a_valid_request_passes_and_round_trips_as_camel_case_json() {
        let r = request();
        r.validate(&Limits::default(), NOW).unwrap();
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"push\"") && text.contains("\"limit\":100"));
        assert_eq!(serde_json::from_str::<ExchangeRequest>(&text).unwrap(), r);
        assert!(
            !text.contains("secret") && !text.contains("dataset"),
            "absent, not null, for servers before them"
        );
        let with = ExchangeRequest {
            secret: Some("s".repeat(MIN_SECRET_LEN)),
            dataset: Some("notes/b \u{e9}".into()),
            ..r.clone()
        };
        with.validate(&Limits::default(), NOW).unwrap();
        let text = serde_json::to_string(&with).unwrap();
        assert_eq!(
            serde_json::from_str::<ExchangeRequest>(&text).unwrap(),
            with
        );
        let reply = ExchangeResponse {
            version: PROTOCOL_VERSION,
            records: vec![],
            coverage: Watermarks::new(),
            has_more: false,
            coverage_next: None,
            collected: Watermarks::new(),
            full_resync: false,
            replaced_store_epoch: None,
        };
        let text = serde_json::to_string(&reply).unwrap();
        assert!(text.contains("\"hasMore\":false"));
        // The coverage cursor is absent unless used, both ways (older peers know neither).
        assert!(!text.contains("coverageNext"));
        let paged = ExchangeResponse {
            coverage_next: Some(PluginId::new("p2").unwrap()),
            ..reply
        };
        let text = serde_json::to_string(&paged).unwrap();
        assert!(text.contains("\"coverageNext\":\"p2\""));
        assert_eq!(
            serde_json::from_str::<ExchangeResponse>(&text).unwrap(),
            paged
        );
        let from = ExchangeRequest {
            coverage_from: Some(PluginId::new("p2").unwrap()),
            ..r.clone()
        };
        let text = serde_json::to_string(&from).unwrap();
        assert!(text.contains("\"coverageFrom\":\"p2\""));
        assert!(!serde_json::to_string(&r).unwrap().contains("coverageFrom"));
        assert_eq!(
            serde_json::from_str::<ExchangeRequest>(&text).unwrap(),
            from
        );
    }

    #[test]
    fn every_bad_request_gets_its_typed_code() {
        let limits = Limits::default();
        type Mutation = Box<dyn Fn(&mut ExchangeRequest)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("unsupported_version", Box::new(|r| r.version = 1)),
            ("unsupported_version", Box::new(|r| r.version = 3)),
            ("invalid_request", Box::new(|r| r.limit = 0)),
            ("invalid_request", Box::new(|r| r.limit = 1001)),
            (
                "invalid_request",
                Box::new(|r| r.secret = Some("x".repeat(MIN_SECRET_LEN - 1))),
            ),
            (
                "invalid_request",
                Box::new(|r| r.secret = Some("x".repeat(MAX_SECRET_LEN + 1))),
            ),
            // 18 bytes but 6 characters: not printable ASCII, so refused (the OpenAPI
            // document's lengths count characters).
            (
                "invalid_request",
                Box::new(|r| r.secret = Some("\u{20ac}".repeat(6))),
            ),
            (
                "invalid_request",
                Box::new(|r| r.secret = Some(format!("{} ", "x".repeat(MIN_SECRET_LEN)))),
            ),
            (
                "invalid_request",
                Box::new(|r| r.plugins = Some(vec![PluginId::new("b").unwrap()])),
            ),
            (
                "invalid_request",
                Box::new(|r| r.dataset = Some(String::new())),
            ),
            (
                "invalid_request",
                Box::new(|r| r.dataset = Some("x".repeat(MAX_DATASET_LEN + 1))),
            ),
            (
                "invalid_request",
                Box::new(|r| r.dataset = Some("a\nb".into())),
            ),
            (
                "invalid_request",
                Box::new(|r| {
                    r.push = (0..1001)
                        .map(|i| rec("a", NOW - 5000 + i, Value::Json("1".into())))
                        .collect()
                }),
            ),
            (
                "invalid_request",
                Box::new(|r| r.push.push(r.push[0].clone())),
            ),
            (
                "invalid_request",
                Box::new(|r| {
                    r.plugins = Some(
                        (0..1001)
                            .map(|i| PluginId::new(format!("p{i}")).unwrap())
                            .collect(),
                    )
                }),
            ),
            (
                "value_too_large",
                Box::new(|r| r.push[0].value = Some(Value::Bytes(vec![0; MAX_VALUE_BYTES + 1]))),
            ),
            (
                "clock_drift",
                Box::new(|r| r.push[0].hlc.wall_ms = NOW + 60_001),
            ),
            (
                "invalid_json",
                Box::new(|r| r.push[0].value = Some(Value::Json("{not json".into()))),
            ),
            (
                "invalid_json",
                Box::new(|r| r.push[0].value = Some(Value::Json("1 2".into()))),
            ),
            (
                "clock_drift",
                Box::new(|r| {
                    r.seen.advance(
                        &PluginId::new("a").unwrap(),
                        Hlc::new(NOW + 10_000_000, 0, node(2)).unwrap(),
                    )
                }),
            ),
            (
                "invalid_request",
                Box::new(|r| {
                    r.plugins = Some(vec![PluginId::new("a").unwrap()]);
                    r.seen.advance(
                        &PluginId::new("z").unwrap(),
                        Hlc::new(1, 0, node(2)).unwrap(),
                    );
                }),
            ),
        ];
        for (i, (code, mutate)) in cases.iter().enumerate() {
            let mut r = request();
            mutate(&mut r);
            assert_eq!(
                r.validate(&limits, NOW).map_err(|e| e.code()),
                Err(*code),
                "case {i}"
            );
        }
        assert!(limits.check_body(8 << 20).is_ok());
        assert_eq!(
            limits.check_body((8 << 20) + 1).unwrap_err().code(),
            "body_too_large"
        );
    }

    #[test]
    fn a_device_is_bounded_and_its_reply_names_a_store_epoch() {
        let limits = Limits::default();
        let with = |id: &str, epoch: &str| ExchangeRequest {
            device: Some(DeviceEpoch {
                id: id.into(),
                epoch: epoch.into(),
            }),
            ..request()
        };
        let ok = with(&"\u{e9}".repeat(MAX_DEVICE_ID_CHARS), "00000000000000ff");
        ok.validate(&limits, NOW).unwrap();
        let text = serde_json::to_string(&ok).unwrap();
        assert!(text.contains(r#""device":{"id":"#));
        assert!(text.contains(r#""epoch":"00000000000000ff"}"#));
        assert_eq!(serde_json::from_str::<ExchangeRequest>(&text).unwrap(), ok);
        assert!(!serde_json::to_string(&request())
            .unwrap()
            .contains("device"));
        let long_id = "d".repeat(MAX_DEVICE_ID_CHARS + 1);
        let long_epoch = "e".repeat(MAX_EPOCH_LEN + 1);
        for (id, epoch) in [
            ("", "aa"),
            (long_id.as_str(), "aa"),
            ("a\nb", "aa"),
            ("a\u{7f}", "aa"),
            ("laptop", ""),
            ("laptop", long_epoch.as_str()),
            ("laptop", "a b"),
        ] {
            assert_eq!(
                with(id, epoch).validate(&limits, NOW).unwrap_err().code(),
                "invalid_request",
                "{id:?} {epoch:?}"
            );
        }
        // Unknown fields inside `device` are refused like anywhere else in a request.
        let extra = r#"{"version":2,"node":"0000000000000001","limit":1,"device":{"id":"a","epoch":"b","x":1}}"#;
        assert!(serde_json::from_str::<ExchangeRequest>(extra).is_err());

        let mut reply = ExchangeResponse {
            version: PROTOCOL_VERSION,
            records: vec![],
            coverage: Watermarks::new(),
            has_more: false,
            coverage_next: None,
            collected: Watermarks::new(),
            full_resync: false,
            replaced_store_epoch: Some("00000000000000aa".into()),
        };
        reply.validate(&limits, NOW).unwrap();
        let text = serde_json::to_string(&reply).unwrap();
        assert!(text.contains(r#""replacedStoreEpoch":"00000000000000aa""#));
        reply.replaced_store_epoch = Some("not an epoch".into());
        assert_eq!(
            reply.validate(&limits, NOW).unwrap_err().code(),
            "invalid_reply"
        );
    }

    #[test]
    fn malformed_json_is_rejected_by_serde_with_field_level_rules() {
        for bad in [
            r#"{"version":2,"node":"0000000000000000","limit":1}"#,
            r#"{"version":2,"node":"0000000000000001"}"#,
            r#"{"version":2,"node":"0000000000000001","limit":1,"extra":true}"#,
            r#"{"version":2,"node":"0000000000000001","limit":1,"plugins":["Bad"]}"#,
            r#"{"version":2,"node":"0000000000000001","limit":1,"push":[{"plugin":"a","key":"","hlc":"000000000001-0000-0000000000000001"}]}"#,
            r#"{"version":2,"node":"0000000000000001","limit":-1}"#,
            // Unknown fields inside a record or its value.
            r#"{"version":2,"node":"0000000000000001","limit":1,"push":[{"plugin":"a","key":"k","hlc":"000000000001-0000-0000000000000001","extra":1}]}"#,
            r#"{"version":2,"node":"0000000000000001","limit":1,"push":[{"plugin":"a","key":"k","hlc":"000000000001-0000-0000000000000001","value":{"json":"1","bytes":""}}]}"#,
            r#"{"version":2,"node":"0000000000000001","limit":1,"push":[{"plugin":"a","key":"k","hlc":"000000000001-0000-0000000000000001","value":{"text":"1"}}]}"#,
        ] {
            assert!(
                serde_json::from_str::<ExchangeRequest>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn parse_errors_keep_the_typed_code_of_the_field_rule() {
        let cases = [
            (
                r#"{"version":2,"node":"0000000000000001","limit":1,"plugins":["Bad"]}"#,
                "invalid_plugin_id",
            ),
            (
                r#"{"version":2,"node":"0000000000000000","limit":1}"#,
                "invalid_node_id",
            ),
            (
                r#"{"version":2,"node":"0000000000000001","limit":1,"push":[{"plugin":"a","key":"","hlc":"000000000001-0000-0000000000000001"}]}"#,
                "invalid_key",
            ),
            (
                r#"{"version":2,"node":"0000000000000001","limit":1,"push":[{"plugin":"a","key":"k","hlc":"nope"}]}"#,
                "invalid_hlc",
            ),
            (
                r#"{"version":2,"node":"0000000000000001","limit":1,"#,
                "malformed_request",
            ),
            (
                r#"{"version":2,"node":"0000000000000001","limit":"x"}"#,
                "malformed_request",
            ),
            (r#"[1]"#, "malformed_request"),
            (
                r#"{"version":2,"node":"0000000000000001","limit":1,"[clock_drift]":1}"#,
                "malformed_request",
            ),
        ];
        for (text, code) in cases {
            let err = serde_json::from_str::<ExchangeRequest>(text).unwrap_err();
            assert_eq!(
                ErrorBody::from_parse_error(&err.to_string()).code,
                code,
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn response_validation_checks_order_and_drift() {
        let limits = Limits::default();
        let mut reply = ExchangeResponse {
            version: PROTOCOL_VERSION,
            records: vec![rec("a", NOW, Value::Json("1".into()))],
            coverage: Watermarks::new(),
            has_more: false,
            coverage_next: None,
            collected: Watermarks::new(),
            full_resync: false,
            replaced_store_epoch: None,
        };
        reply.validate(&limits, NOW).unwrap();
        assert_eq!(reply.max_hlc().unwrap().wall_ms, NOW);
        reply
            .records
            .push(rec("a", NOW - 1, Value::Json("1".into())));
        assert_eq!(
            reply.validate(&limits, NOW).unwrap_err().code(),
            "invalid_reply"
        );
        reply.records.pop();
        reply.coverage.advance(
            &PluginId::new("a").unwrap(),
            Hlc::new(NOW + 70_000, 0, node(1)).unwrap(),
        );
        assert_eq!(
            reply.validate(&limits, NOW).unwrap_err().code(),
            "clock_drift"
        );
        reply.version = 0;
        assert_eq!(
            reply.validate(&limits, NOW).unwrap_err().code(),
            "unsupported_version"
        );
    }
}
