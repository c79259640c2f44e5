//! Wire types of `POST /sync/resync` (protocol version 2, docs/PROTOCOL.md): the full-resync
//! walk of a client the server told `fullResync` (it may have missed collected deletions). The
//! walk pages the server's rows in (plugin, key) order with a resumable cursor; each page carries
//! the coverage of the plugins it spans, which `core::gc::ResyncPage` needs to tell a deleted
//! record from an unsynced one.

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::ids::{Key, NodeId, PluginId};
use super::protocol::{check_dataset, check_page, check_secret, check_version, Limits};
use super::record::Record;
use super::watermark::Watermarks;

/// Where a walk continues: after this (plugin, key), exclusive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// The plugin of the last row of the previous page.
    pub plugin: PluginId,
    /// Its key.
    pub key: Key,
}

impl Cursor {
    /// The cursor as the (plugin, key) pair `core::gc` walks with.
    pub fn id(&self) -> (PluginId, Key) {
        (self.plugin.clone(), self.key.clone())
    }
}

/// The body of `POST /sync/resync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResyncRequest {
    /// Must equal [`super::PROTOCOL_VERSION`].
    pub version: u32,
    /// The walking writer (its node claim is checked as in an exchange).
    pub node: NodeId,
    /// The plugins in scope; `None` means every plugin.
    #[serde(default)]
    pub plugins: Option<Vec<PluginId>>,
    /// Continue after this row; absent: from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Cursor>,
    /// Largest number of rows to answer (1 ..= `Limits::max_page`).
    pub limit: u32,
    /// The device secret that owns `node` (as in an exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The dataset walked (as in an exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

/// One page of the walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResyncResponse {
    /// Must equal the request's version.
    pub version: u32,
    /// The server's rows after the cursor, tombstones not yet collected included, ascending by
    /// (plugin, key), at most `limit`, cut earlier at the page byte budget (at least one row).
    pub rows: Vec<Record>,
    /// The server's coverage of every plugin in scope the page spans (from the cursor's plugin to
    /// the last row's, or to the end on the last page), read in the same transaction as `rows`.
    pub coverage: Watermarks,
    /// Where the next page starts; absent: this page was the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Cursor>,
}

impl ResyncRequest {
    /// Whether `plugin` is in scope.
    pub fn in_scope(&self, plugin: &PluginId) -> bool {
        self.plugins.as_ref().is_none_or(|p| p.contains(plugin))
    }

    /// Checks version, dataset, secret, limit and scope size.
    pub fn validate(&self, limits: &Limits) -> Result<()> {
        check_version(self.version)?;
        if let Some(dataset) = &self.dataset {
            check_dataset(dataset)?;
        }
        if let Some(secret) = &self.secret {
            check_secret(secret).map_err(Error::InvalidRequest)?;
        }
        if self.limit == 0 || self.limit > limits.max_page {
            return Err(Error::InvalidRequest(format!(
                "limit {} out of range 1..={}",
                self.limit, limits.max_page
            )));
        }
        if self
            .plugins
            .as_ref()
            .is_some_and(|p| p.len() > limits.max_plugins)
        {
            return Err(Error::InvalidRequest(format!(
                "more than {} plugins in scope",
                limits.max_plugins
            )));
        }
        Ok(())
    }
}

impl ResyncResponse {
    /// Everything a page must satisfy before it is believed: version, limit, rows in scope,
    /// strictly after the cursor and ascending, stamps within drift, a `next` only forward (the
    /// last row), coverage in scope. A walk that does not move is `no_progress`.
    pub fn check(&self, request: &ResyncRequest, limits: &Limits, now_ms: u64) -> Result<()> {
        check_version(self.version)?;
        check_page(
            (self.version, request.version),
            (self.rows.len(), request.limit),
            "rows",
        )?;
        let mut last = request.after.as_ref().map(Cursor::id);
        for row in &self.rows {
            if !request.in_scope(&row.plugin) {
                return Err(Error::InvalidReply(format!(
                    "row of plugin {} outside the scope",
                    row.plugin
                )));
            }
            let id = (row.plugin.clone(), row.key.clone());
            if last.as_ref().is_some_and(|l| &id <= l) {
                return Err(Error::InvalidReply(format!(
                    "row {}/{} not after the cursor or out of order",
                    row.plugin, row.key
                )));
            }
            limits.check_record(row, now_ms)?;
            last = Some(id);
        }
        if let Some(next) = &self.next {
            if self.rows.is_empty() {
                return Err(Error::NoProgress);
            }
            if Some(next.id()) != last {
                return Err(Error::InvalidReply(
                    "next is not the page's last row".into(),
                ));
            }
        }
        if let Some(p) = self.coverage.plugins().find(|p| !request.in_scope(p)) {
            return Err(Error::InvalidReply(format!(
                "coverage for plugin {p} outside the scope"
            )));
        }
        limits.check_watermarks(&self.coverage, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hlc::Hlc;
    use crate::core::record::Value;
    use crate::core::PROTOCOL_VERSION;

    const NOW: u64 = 1_700_000_000_000;

    fn row(p: &str, k: &str) -> Record {
        Record::put(
            PluginId::new(p).unwrap(),
            Key::new(k).unwrap(),
            Value::Json("1".into()),
            Hlc::new(NOW, 0, NodeId::new(2).unwrap()).unwrap(),
        )
    }
    fn cursor(p: &str, k: &str) -> Cursor {
        Cursor {
            plugin: PluginId::new(p).unwrap(),
            key: Key::new(k).unwrap(),
        }
    }
    fn request() -> ResyncRequest {
        ResyncRequest {
            version: PROTOCOL_VERSION,
            node: NodeId::new(1).unwrap(),
            plugins: None,
            after: Some(cursor("a", "b")),
            limit: 2,
            secret: None,
            dataset: None,
        }
    }

    #[test]
    fn a_page_after_the_cursor_passes_and_round_trips() {
        let page = ResyncResponse {
            version: PROTOCOL_VERSION,
            rows: vec![row("a", "c"), row("b", "a")],
            coverage: Watermarks::new(),
            next: Some(cursor("b", "a")),
        };
        page.check(&request(), &Limits::default(), NOW).unwrap();
        let text = serde_json::to_string(&page).unwrap();
        assert_eq!(serde_json::from_str::<ResyncResponse>(&text).unwrap(), page);
        let text = serde_json::to_string(&request()).unwrap();
        assert!(
            text.contains(r#""after":{"plugin":"a","key":"b"}"#),
            "{text}"
        );
    }

    #[test]
    fn bad_pages_and_requests_get_their_typed_codes() {
        let limits = Limits::default();
        let page = |rows: Vec<Record>, next: Option<Cursor>| ResyncResponse {
            version: PROTOCOL_VERSION,
            rows,
            coverage: Watermarks::new(),
            next,
        };
        let code = |p: ResyncResponse| p.check(&request(), &limits, NOW).unwrap_err().code();
        assert_eq!(code(page(vec![row("a", "a")], None)), "invalid_reply");
        assert_eq!(
            code(page(vec![row("a", "d"), row("a", "c")], None)),
            "invalid_reply"
        );
        assert_eq!(code(page(vec![], Some(cursor("a", "c")))), "no_progress");
        assert_eq!(
            code(page(vec![row("a", "c")], Some(cursor("a", "z")))),
            "invalid_reply"
        );
        assert_eq!(
            code(page(
                vec![row("a", "c"), row("a", "d"), row("a", "e")],
                None
            )),
            "invalid_reply"
        );
        let mut old = request();
        old.version = 1;
        assert_eq!(
            old.validate(&limits).unwrap_err().code(),
            "unsupported_version"
        );
        let mut zero = request();
        zero.limit = 0;
        assert_eq!(
            zero.validate(&limits).unwrap_err().code(),
            "invalid_request"
        );
    }
}
