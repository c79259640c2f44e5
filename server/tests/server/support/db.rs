//! The database of one test: a SQLite file in a temp directory, or a fresh database in the
//! PostgreSQL cluster named by `CLIENTDATA_TEST_PG` (scripts/test.sh starts one with
//! scripts/pg.sh). Without that variable the PostgreSQL half of each test is skipped with a
//! note, unless `CLIENTDATA_REQUIRE_PG=1` (set by scripts/test.sh), which makes it fail.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs a test function `fn(&TestDb)` as two tests, `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&$crate::support::TestDb::sqlite());
            }
            #[test]
            fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres() {
                    super::$name(&db);
                }
            }
        }
    };
}

/// A test's database, and its temp directory (the server's working directory, tokens file).
pub struct TestDb {
    dir: tempfile::TempDir,
    arg: String,
    /// For PostgreSQL: the cluster's admin URL and this test's database name (dropped after).
    pg: Option<(String, String)>,
}

impl TestDb {
    /// `db.sqlite` in a fresh temp directory.
    pub fn sqlite() -> TestDb {
        TestDb {
            dir: tempfile::tempdir().unwrap(),
            arg: "db.sqlite".into(),
            pg: None,
        }
    }

    /// A fresh database in the test cluster, or `None` (skip) when there is none.
    pub fn postgres() -> Option<TestDb> {
        let admin = match std::env::var("CLIENTDATA_TEST_PG") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var("CLIENTDATA_REQUIRE_PG").as_deref() != Ok("1"),
                    "CLIENTDATA_REQUIRE_PG=1 but CLIENTDATA_TEST_PG is not set"
                );
                eprintln!("skipped on PostgreSQL: CLIENTDATA_TEST_PG is not set");
                return None;
            }
        };
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("CLIENTDATA_TEST_PG {admin}: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Some(TestDb {
            dir: tempfile::tempdir().unwrap(),
            arg: database_url(&admin, &name),
            pg: Some((admin, name)),
        })
    }

    /// The value of `--database`.
    pub fn arg(&self) -> &str {
        &self.arg
    }

    /// `"sqlite"` or `"postgres"`, as `/health` says.
    pub fn kind(&self) -> &'static str {
        if self.pg.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// The temp directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// For PostgreSQL: the cluster's admin URL and this test's database name.
    pub fn postgres_admin(&self) -> Option<(&str, &str)> {
        self.pg.as_ref().map(|(a, n)| (a.as_str(), n.as_str()))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg {
            // Best effort: the cluster is thrown away after the run anyway.
            if let Ok(mut client) = postgres::Client::connect(admin, postgres::NoTls) {
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// `admin` with its database name replaced by `name` (query parameters kept).
pub fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin, String::new()),
    };
    let (server, _) = base.rsplit_once('/').unwrap_or((base, ""));
    format!("{server}/{name}{query}")
}
