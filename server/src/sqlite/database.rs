//! [`SqliteDatabase`]: what the HTTP layer holds for SQLite. Rounds of one user run one at a time
//! ([`UserGate`]); rounds that push nothing read on a small pool of read-only connections; every
//! other round runs on the one writer connection, one at a time.

use std::path::Path;

use clientdata::core::content::Digest;
use clientdata::core::replica::{ReplicaError, ServeStats};
use clientdata::core::resync::{ResyncRequest, ResyncResponse};
use clientdata::core::{ExchangeRequest, ExchangeResponse, Limits};

use super::readers::Readers;
use super::{SqliteBackend, SqliteError, SqliteOptions};
use crate::auth::UserId;
use crate::backend::{Database, Serialized};
use crate::quota::UserCaps;
use crate::scope::Scope;
use crate::user_gate::UserGate;

/// Read connections by default: rounds of that many users read at once (each user reads on at
/// most one, see [`UserGate`]).
pub const DEFAULT_READERS: usize = 4;

/// A SQLite file served to many request threads.
#[derive(Debug)]
pub struct SqliteDatabase {
    writer: Serialized<SqliteBackend>,
    /// `None`: every round on the writer (no read connections asked for).
    readers: Option<Readers>,
    gate: UserGate,
}

impl SqliteDatabase {
    /// Opens (creating and migrating) the database at `path` with `readers` read connections.
    pub fn open(path: &Path, options: SqliteOptions, readers: usize) -> Result<Self, SqliteError> {
        let writer = SqliteBackend::open(path, options)?;
        let readers = match readers {
            0 => None,
            n => Some(Readers::open(path, n)?),
        };
        Ok(SqliteDatabase {
            writer: Serialized::new(writer),
            readers,
            gate: UserGate::new(),
        })
    }

    /// The writer, for the duration of `f` (tests).
    pub fn with_writer<T>(&self, f: impl FnOnce(&mut SqliteBackend) -> T) -> T {
        self.writer.with(f)
    }
}

impl Database for SqliteDatabase {
    type Error = SqliteError;
    const NAME: &'static str = "sqlite";

    fn exchange(
        &self,
        user: &UserId,
        request: &ExchangeRequest,
        limits: &Limits,
        caps: &UserCaps,
        now_ms: u64,
    ) -> Result<(ExchangeResponse, ServeStats), ReplicaError<SqliteError>> {
        self.gate.run(user, || {
            if let (Some(readers), true) = (&self.readers, request.push.is_empty()) {
                if let Some(answer) = readers.exchange(user, request, limits, caps, now_ms)? {
                    return Ok(answer);
                }
            }
            self.writer.exchange(user, request, limits, caps, now_ms)
        })
    }

    /// On the writer: a walk's page marks its reader.
    fn resync(
        &self,
        user: &UserId,
        request: &ResyncRequest,
        limits: &Limits,
        now_ms: u64,
    ) -> Result<ResyncResponse, ReplicaError<SqliteError>> {
        self.gate
            .run(user, || self.writer.resync(user, request, limits, now_ms))
    }

    fn ping(&self) -> Result<(), SqliteError> {
        self.writer.ping()
    }

    fn salt(&self, user: &UserId, fresh: &[u8; 32]) -> Result<[u8; 32], SqliteError> {
        self.gate.run(user, || self.writer.salt(user, fresh))
    }

    fn put_content(
        &self,
        scope: &Scope,
        sha256: &Digest,
        data: &[u8],
        max_bytes: u64,
    ) -> Result<(), ReplicaError<SqliteError>> {
        self.writer.put_content(scope, sha256, data, max_bytes)
    }

    fn get_content(&self, scope: &Scope, sha256: &Digest) -> Result<Option<Vec<u8>>, SqliteError> {
        self.writer.get_content(scope, sha256)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    use clientdata::core::{Error, Hlc, Key, NodeId, PluginId, Record, Value, Watermarks};

    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap()
    }

    fn request(node: u64, push: Vec<Record>, secret: Option<&str>) -> ExchangeRequest {
        ExchangeRequest {
            version: clientdata::core::PROTOCOL_VERSION,
            node: NodeId::new(node).unwrap(),
            plugins: None,
            seen: Watermarks::new(),
            push,
            limit: 100,
            secret: secret.map(str::to_owned),
            dataset: None,
            coverage_from: None,
            device: None,
        }
    }

    fn put(n: u64, wall: u64) -> Record {
        Record::put(
            PluginId::new("p").unwrap(),
            Key::new(format!("k{wall}")).unwrap(),
            Value::Json(wall.to_string()),
            Hlc::new(NOW - 1000 + wall, 0, NodeId::new(n).unwrap()).unwrap(),
        )
    }

    fn open(dir: &tempfile::TempDir, readers: usize) -> SqliteDatabase {
        SqliteDatabase::open(
            &dir.path().join("db.sqlite"),
            SqliteOptions::default(),
            readers,
        )
        .unwrap()
    }

    fn round(db: &SqliteDatabase, who: &str, r: &ExchangeRequest) -> ExchangeResponse {
        db.exchange(&user(who), r, &Limits::default(), &UserCaps::DEFAULT, NOW)
            .unwrap()
            .0
    }

    #[test]
    fn a_read_round_answers_what_the_writer_committed_as_the_writer_would() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, 2);
        let pushed: Vec<Record> = (1..=5).map(|w| put(1, w)).collect();
        round(&db, "u", &request(1, pushed.clone(), None));
        let read = round(&db, "u", &request(2, vec![], None));
        assert_eq!(read.records, pushed);
        drop(db);
        let writer_only = open(&dir, 0);
        assert_eq!(round(&writer_only, "u", &request(2, vec![], None)), read);
    }

    #[test]
    fn a_read_round_does_not_wait_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(open(&dir, 2));
        round(&db, "bob", &request(1, vec![put(1, 1)], None));
        // Node 2's first round records it as a reader (a write); from then on its rounds that
        // prove nothing new read only.
        round(&db, "bob", &request(2, vec![], None));
        // Another user's long round holds the writer.
        let (held, release) = (mpsc::channel(), mpsc::channel::<()>());
        let holder = {
            let (db, held) = (db.clone(), held.0);
            std::thread::spawn(move || {
                db.with_writer(|_| {
                    held.send(()).unwrap();
                    release.1.recv().unwrap();
                })
            })
        };
        held.1.recv().unwrap();
        let (done_tx, done) = mpsc::channel();
        let reader = {
            let db = db.clone();
            std::thread::spawn(move || {
                done_tx
                    .send(round(&db, "bob", &request(2, vec![], None)).records.len())
                    .unwrap();
            })
        };
        let answered = done.recv_timeout(Duration::from_secs(5));
        release.0.send(()).unwrap();
        holder.join().unwrap();
        reader.join().unwrap();
        assert_eq!(answered, Ok(1), "bob's read round waited for the writer");
    }

    #[test]
    fn rounds_that_must_write_run_on_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir, 2);
        // A user without a row: the writer creates it.
        assert!(round(&db, "new", &request(1, vec![], None))
            .records
            .is_empty());
        // An empty push claiming a node: the claim is written, and binds.
        let secret = "s".repeat(16);
        round(&db, "new", &request(1, vec![], Some(&secret)));
        let other = "t".repeat(16);
        let refused = db.exchange(
            &user("new"),
            &request(1, vec![], Some(&other)),
            &Limits::default(),
            &UserCaps::DEFAULT,
            NOW,
        );
        assert!(matches!(
            refused,
            Err(ReplicaError::Protocol(Error::NodeIdTaken(_)))
        ));
        // The rightful device still reads (on a reader now that the claim exists).
        round(&db, "new", &request(1, vec![], Some(&secret)));
    }
}
