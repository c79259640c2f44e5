//! Command line and environment. Every option can also come from a `CLIENTDATA_*` variable;
//! repeatable options take a comma-separated list there.

use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;
use tracing_subscriber::filter::Targets;

use crate::database::DatabaseUrl;
use crate::ops::Command;

/// Reference sync server for clientdata: answers `POST /sync/exchange` with the shared core over
/// SQLite or PostgreSQL, and can serve the demo's static files. Without a subcommand it serves;
/// the subcommands are operations on the database (see docs/DEPLOY.md).
#[derive(Debug, Clone, Parser)]
#[command(name = "clientdata-server", version, about)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port. The bound address is printed on stdout as
    /// `listening on http://ADDR`.
    #[arg(long, env = "CLIENTDATA_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: String,

    /// SQLite database file, created on first run (WAL mode, synchronous=NORMAL), or a
    /// PostgreSQL URL `postgres://user[:password]@host[:port]/db` (migrated at startup; several
    /// server processes may share it).
    #[arg(
        long,
        env = "CLIENTDATA_DATABASE",
        default_value = "clientdata.sqlite",
        global = true,
        value_name = "FILE|URL"
    )]
    pub database: DatabaseUrl,

    /// PostgreSQL only: most connections this process opens (rounds beyond it wait for one).
    #[arg(long, env = "CLIENTDATA_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,

    /// SQLite only: read-only connections for rounds that push nothing, so rounds of that many
    /// users read at once beside the one writer; 0 runs every round on the writer.
    #[arg(long, env = "CLIENTDATA_SQLITE_READERS", default_value_t = crate::sqlite::DEFAULT_READERS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=64))]
    pub sqlite_readers: usize,

    /// Tokens file: one `TOKEN USER` pair per line, `#` starts a comment line. Without it the
    /// server runs in DEV MODE, where `dev-token-<user>` authenticates as `<user>`.
    #[arg(long, env = "CLIENTDATA_TOKENS")]
    pub tokens: Option<PathBuf>,

    /// Origin allowed to call the API from a browser (CORS), e.g. `http://localhost:5173`, or
    /// `*` for any. Repeatable. Without it, only same-origin pages can call the API.
    #[arg(
        long = "allow-origin",
        env = "CLIENTDATA_ALLOW_ORIGIN",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allow_origins: Vec<AllowedOrigin>,

    /// Serve the files of DIR under PREFIX (default `/`), e.g. `--static www --static /pkg=pkg`.
    /// Repeatable.
    #[arg(
        long = "static",
        env = "CLIENTDATA_STATIC",
        value_delimiter = ',',
        value_name = "[PREFIX=]DIR"
    )]
    pub statics: Vec<StaticMount>,

    /// Log filter: a level (`info`) or per-target levels (`warn,clientdata_server=debug`).
    #[arg(
        long,
        env = "CLIENTDATA_LOG",
        default_value = "info",
        value_name = "FILTER"
    )]
    pub log: Targets,

    /// Allow dev mode (no --tokens) on an address other than loopback. Without it the server
    /// refuses to start, since anyone reaching it could read any user's data.
    #[arg(long, env = "CLIENTDATA_DEV_ANY_ADDRESS")]
    pub dev_any_address: bool,

    /// Connection limits and timeouts.
    #[command(flatten)]
    pub connections: crate::serve::ConnectionOptions,

    /// Request body limits.
    #[command(flatten)]
    pub requests: crate::limits::RequestOptions,

    /// Per-user caps.
    #[command(flatten)]
    pub caps: crate::quota::UserCaps,

    /// Test only: sleep this many milliseconds inside the transaction after writing half of a
    /// push, so a test can kill the server mid-apply.
    #[arg(long, env = "CLIENTDATA_TEST_APPLY_DELAY_MS", hide = true)]
    pub test_apply_delay_ms: Option<u64>,

    /// An operation instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A CORS origin: `*` or `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigin {
    /// Any origin.
    Any,
    /// Exactly this origin.
    Exact(String),
}

impl FromStr for AllowedOrigin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(AllowedOrigin::Any);
        }
        // Browsers send `Origin` without path or trailing slash; one here could never match.
        let valid = s.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && !rest.is_empty()
                && !rest.contains('/')
                && s.is_ascii()
                && !s.contains(char::is_whitespace)
        });
        if !valid {
            return Err(format!(
                "{s:?} is not `*` or `scheme://host[:port]` (no path, no trailing slash)"
            ));
        }
        Ok(AllowedOrigin::Exact(s.to_owned()))
    }
}

/// A directory served under a URL prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticMount {
    /// `/` or `/segment[/segment...]` without trailing slash.
    pub prefix: String,
    /// The directory.
    pub dir: PathBuf,
}

/// Prefixes the API owns.
const RESERVED: &[&str] = &["/sync", "/health"];

impl FromStr for StaticMount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (prefix, dir) = match s.split_once('=') {
            Some((prefix, dir)) if prefix.starts_with('/') => (prefix.trim_end_matches('/'), dir),
            _ => ("", s),
        };
        if dir.is_empty() {
            return Err(format!("{s:?}: empty directory"));
        }
        let prefix = if prefix.is_empty() { "/" } else { prefix };
        if prefix != "/"
            && prefix[1..].split('/').any(|seg| {
                seg.is_empty() || seg == "." || seg == ".." || seg.contains(['{', '}', '*'])
            })
        {
            return Err(format!("{prefix:?} is not a plain path prefix"));
        }
        if RESERVED
            .iter()
            .any(|r| prefix == *r || prefix.starts_with(&format!("{r}/")))
        {
            return Err(format!("{prefix:?} is reserved for the API"));
        }
        Ok(StaticMount {
            prefix: prefix.to_owned(),
            dir: PathBuf::from(dir),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(s: &str) -> Result<(String, String), String> {
        s.parse::<StaticMount>()
            .map(|m| (m.prefix, m.dir.display().to_string()))
    }

    #[test]
    fn static_mounts_default_to_the_root_prefix() {
        assert_eq!(mount("www"), Ok(("/".into(), "www".into())));
        assert_eq!(mount("/pkg=pkg"), Ok(("/pkg".into(), "pkg".into())));
        assert_eq!(mount("/a/b/=d=x"), Ok(("/a/b".into(), "d=x".into())));
        assert_eq!(mount("/=www"), Ok(("/".into(), "www".into())));
        assert_eq!(
            mount("dir=with=equals"),
            Ok(("/".into(), "dir=with=equals".into()))
        );
        for bad in [
            "/pkg=",
            "/a//b=x",
            "/../x=y",
            "/sync=x",
            "/health/x=y",
            "/{id}=x",
        ] {
            assert!(mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_are_star_or_scheme_host_port() {
        assert_eq!("*".parse(), Ok(AllowedOrigin::Any));
        assert_eq!(
            "http://127.0.0.1:5173".parse(),
            Ok(AllowedOrigin::Exact("http://127.0.0.1:5173".into()))
        );
        for bad in [
            "localhost",
            "http://x/",
            "http://x/app",
            "://x",
            "http://",
            "http://a b",
        ] {
            assert!(bad.parse::<AllowedOrigin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_option_has_an_environment_variable() {
        use clap::CommandFactory;
        for arg in Config::command().get_arguments() {
            if arg.get_long().is_some() && !matches!(arg.get_id().as_str(), "help" | "version") {
                assert!(
                    arg.get_env().is_some(),
                    "--{:?} has no env var",
                    arg.get_long()
                );
            }
        }
    }
}
