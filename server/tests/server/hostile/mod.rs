//! The server against hostile and broken clients (issue 14), each finding reproduced against the
//! real binary: slow and idle connections under a low descriptor limit, stalled heads and bodies,
//! shutdown with slow clients, hyper's own error answers, invalid values, many large bodies at
//! once against the memory budget, random malformed requests, the safer defaults, per-user caps
//! and the paged coverage of a user with many plugins. Fairness (latency under another user's
//! load) is its own test binary, `server/tests/fairness`.
//! scripts/measure-hostile.py takes the same measurements as figures.

mod connections;
mod coverage;
mod defaults;
mod inputs;
mod nodes;
mod quota;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{token, Server};

/// Every code docs/ERRORS.md lists (first two columns of its tables).
pub fn documented_codes() -> BTreeSet<String> {
    let docs = include_str!("../../../../docs/ERRORS.md");
    docs.lines()
        .filter(|l| l.starts_with('|'))
        .flat_map(|l| l.split('|').skip(1).take(2).collect::<Vec<_>>())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .filter(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The `code` of a JSON error body, if it is one.
    pub fn code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v["code"].as_str().map(str::to_owned)
    }

    /// Panics unless this is a 4xx/5xx with `{ code, message }`, a JSON content type and a code
    /// docs/ERRORS.md lists.
    pub fn assert_documented_error(&self, what: &str) {
        let code = self
            .code()
            .unwrap_or_else(|| panic!("{what}: no JSON error body in {self:?}"));
        assert!(
            self.head.contains("content-type: application/json"),
            "{what}: {}",
            self.head
        );
        assert!(
            documented_codes().contains(&code),
            "{what}: code {code} is not in docs/ERRORS.md"
        );
    }
}

/// Reads one answer: the head, then `Content-Length` bytes (or until EOF); `None` if the
/// connection closed or timed out before a status line.
pub fn read_answer(stream: &mut TcpStream, timeout: Duration) -> Option<Answer> {
    stream.set_read_timeout(Some(timeout)).ok()?;
    let mut data = Vec::new();
    let mut buf = [0; 16 << 10];
    loop {
        if let Some(end) = find(&data, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            if length.is_some_and(|len| data.len() >= end + 4 + len) {
                break;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let end = find(&data, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut body = data[end + 4..].to_vec();
    // Only this answer's body, not the start of a next one read along with it.
    if let Some(length) = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    }) {
        body.truncate(length);
    }
    Some(Answer { status, head, body })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Connects to the server.
pub fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://")).unwrap()
}

/// Sends `request` on a new connection and reads the answer.
pub fn raw(server: &Server, request: &[u8]) -> Option<Answer> {
    let mut stream = connect(server);
    let _ = stream.write_all(request);
    read_answer(&mut stream, Duration::from_secs(20))
}

/// The head of `POST /sync/exchange` as alice, declaring `length` body bytes.
pub fn exchange_head(length: usize) -> String {
    format!(
        "POST /sync/exchange HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n",
        token("alice")
    )
}

/// The process's peak resident memory (`VmHWM`) in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}
