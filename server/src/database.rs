//! Which database a `--database` value names: a `postgres://` (or `postgresql://`) URL selects
//! PostgreSQL, anything else is a SQLite file path.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The database to use.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An embedded SQLite file, created on first run.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (libpq syntax: `postgres://user[:password]@host[:port]/db`).
    Postgres(String),
    /// A URL of another scheme: refused at startup ([`DatabaseUrl::check`]). Parsing never
    /// fails on a URL, because the argument parser would print the raw value, password and all.
    Unsupported(String),
}

impl DatabaseUrl {
    /// The backend's name, as `/health` reports it.
    pub fn kind(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) | DatabaseUrl::Unsupported(_) => "postgres",
        }
    }

    /// Refuses what cannot be opened; the reason never shows a password (the driver's parse
    /// errors name the option, not its value).
    pub fn check(&self) -> Result<(), String> {
        match self {
            DatabaseUrl::Sqlite(_) => Ok(()),
            DatabaseUrl::Postgres(url) => url
                .parse::<postgres::Config>()
                .map(drop)
                .map_err(|e| e.to_string()),
            DatabaseUrl::Unsupported(_) => Err("only postgres:// URLs or SQLite file paths".into()),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty database".into());
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(s.to_owned()));
        }
        if s.contains("://") {
            return Ok(DatabaseUrl::Unsupported(s.to_owned()));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(s)))
    }
}

/// Shown in logs and errors: a URL's password is replaced by `***`.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "{}", path.display()),
            DatabaseUrl::Postgres(url) | DatabaseUrl::Unsupported(url) => f.write_str(&redact(url)),
        }
    }
}

/// Debug output never carries the password either.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `scheme://user:secret@host/...` → `scheme://user:***@host/...`; a `password=` query
/// parameter likewise.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                out = format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]);
            }
        }
    }
    if let Some(at) = out.find("password=") {
        let end = out[at..].find('&').map_or(out.len(), |e| at + e);
        out.replace_range(at..end, "password=***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_postgres_and_paths_sqlite() {
        assert_eq!(
            "data.sqlite".parse(),
            Ok(DatabaseUrl::Sqlite("data.sqlite".into()))
        );
        assert_eq!(
            "/var/lib/x.db".parse::<DatabaseUrl>().map(|d| d.kind()),
            Ok("sqlite")
        );
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgresql://u:pw@localhost/db?connect_timeout=5",
        ] {
            let db: DatabaseUrl = url.parse().unwrap();
            assert_eq!((db.kind(), db.check()), ("postgres", Ok(())));
        }
        assert!("".parse::<DatabaseUrl>().is_err());
        for bad in [
            "mysql://u@h/db",
            "POSTGRES://u@h/db",
            "postgres://u@h:notaport/db",
        ] {
            let url: DatabaseUrl = bad.parse().unwrap();
            assert!(url.check().is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_show() {
        let url: DatabaseUrl = "postgres://app:s3cret@db:5432/clientdata".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/clientdata");
        assert!(!format!("{url:?}").contains("s3cret"));
        let url: DatabaseUrl = "postgres://app@db/c?password=s3cret&sslmode=disable"
            .parse()
            .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://app@db/c?password=***&sslmode=disable"
        );
        let bad: DatabaseUrl = "postgres://app:s3cret@db:nope/c".parse().unwrap();
        assert!(!bad.check().unwrap_err().contains("s3cret"));
        let other: DatabaseUrl = "mysql://app:s3cret@db/c".parse().unwrap();
        assert!(!other.check().unwrap_err().contains("s3cret"));
    }
}
