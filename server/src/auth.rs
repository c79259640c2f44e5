//! Bearer tokens and the users they stand for.
//!
//! Tokens file: one `TOKEN USER` pair per line, separated by whitespace; blank lines and lines
//! starting with `#` are ignored. Several tokens may name the same user (one per device). Tokens
//! shorter than 16 characters are refused. Without a file the server runs in dev mode, where
//! `dev-token-<user>` is accepted for any valid user (on loopback only, see `app`).
//! Neither tokens nor lines containing them are ever logged or put into an error message.
//!
//! Tokens are kept and looked up as SHA-256 digests: the time a lookup takes depends on the
//! digest of what was presented, which tells an attacker nothing about a real token's bytes.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;

/// The token prefix accepted in dev mode.
pub const DEV_TOKEN_PREFIX: &str = "dev-token-";

/// Shortest token accepted in a tokens file.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A token's SHA-256 digest.
type Digest = [u8; 32];

fn digest(token: &str) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// An authenticated user: 1 to 128 characters of `A-Z a-z 0-9 . _ - @ +`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// Longest user id.
    pub const MAX_LEN: usize = 128;

    /// Validates a user id.
    pub fn new(id: &str) -> Option<Self> {
        let ok = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b));
        ok.then(|| UserId(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tokens file that could not be used. Messages name the line, never its content.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The file could not be read.
    #[error("cannot read tokens file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line breaks the format.
    #[error("tokens file line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The file names no token at all.
    #[error("tokens file has no tokens")]
    Empty,
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum Tokens {
    /// Tokens from a file, by digest.
    File(HashMap<Digest, UserId>),
    /// Dev mode: `dev-token-<user>` is `<user>`.
    Dev,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tokens::File(map) => write!(f, "Tokens::File({} tokens)", map.len()),
            Tokens::Dev => f.write_str("Tokens::Dev"),
        }
    }
}

impl Tokens {
    /// Reads a tokens file.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses the tokens file format.
    pub fn parse(text: &str) -> Result<Self, TokensError> {
        let mut map = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let bad = |reason| TokensError::Line {
                line: line_no,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(token), Some(user), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected `TOKEN USER`"));
            };
            let user = UserId::new(user)
                .ok_or_else(|| bad("user must be 1-128 characters of A-Z a-z 0-9 . _ - @ +"))?;
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(bad("token shorter than 16 characters"));
            }
            if map.insert(digest(token), user).is_some() {
                return Err(bad("duplicate token"));
            }
        }
        if map.is_empty() {
            return Err(TokensError::Empty);
        }
        Ok(Tokens::File(map))
    }

    /// The user `token` stands for.
    pub fn user(&self, token: &str) -> Option<UserId> {
        match self {
            Tokens::File(map) => map.get(&digest(token)).cloned(),
            Tokens::Dev => token.strip_prefix(DEV_TOKEN_PREFIX).and_then(UserId::new),
        }
    }

    /// The user of a request's `Authorization: Bearer <token>` header.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<UserId, AuthError> {
        let value = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(bearer)
            .ok_or(AuthError::Malformed)?;
        self.user(token).ok_or(AuthError::Unknown)
    }
}

/// Why a request is not authenticated (the message goes to the client, so it names no token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing Authorization header (expected `Bearer <token>`)")]
    Missing,
    /// The header is not `Bearer <token>`.
    #[error("Authorization header must be `Bearer <token>`")]
    Malformed,
    /// The token is not known.
    #[error("unknown token")]
    Unknown,
}

/// The token of a `Bearer <token>` credential (scheme case-insensitive, RFC 9110 11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_file_format_allows_comments_blank_lines_and_shared_users() {
        let tokens = Tokens::parse(
            "# devices\n\n  tok-aaaaaaaaaaaaaaaa alice\ntok-bbbbbbbbbbbbbbbb\talice # no\n",
        )
        .unwrap_err();
        assert!(
            matches!(tokens, TokensError::Line { line: 4, .. }),
            "a trailing comment is a third field"
        );
        let tokens = Tokens::parse(
            "# devices\n\n  tok-aaaaaaaaaaaaaaaa alice\ntok-bbbbbbbbbbbbbbbb\talice\n",
        )
        .unwrap();
        assert_eq!(
            tokens.user("tok-aaaaaaaaaaaaaaaa").unwrap().as_str(),
            "alice"
        );
        assert_eq!(
            tokens.user("tok-bbbbbbbbbbbbbbbb").unwrap().as_str(),
            "alice"
        );
        assert_eq!(
            tokens.user("dev-token-alice"),
            None,
            "dev tokens only in dev mode"
        );
    }

    #[test]
    fn bad_files_name_the_line_but_never_the_token() {
        for (text, line) in [
            ("secret-token-xyz\n", 1),
            ("# c\nsecret-token-xyz a b\n", 2),
            ("t1-0123456789abcdef alice\nt1-0123456789abcdef bob\n", 2),
            ("t1-0123456789abcdef al/ice\n", 1),
            ("t1-0123456789abcdef alice\nt1-short bob\n", 2),
        ] {
            let err = Tokens::parse(text).unwrap_err();
            assert!(
                matches!(err, TokensError::Line { line: l, .. } if l == line),
                "{text:?}: {err}"
            );
            assert!(
                !err.to_string().contains("secret") && !err.to_string().contains("t1"),
                "{err}"
            );
        }
        let short = Tokens::parse("abcdefghijklmno alice\n").unwrap_err();
        assert!(short.to_string().contains("shorter than 16"), "{short}");
        assert!(Tokens::parse("abcdefghijklmnop alice\n").is_ok());
        assert!(matches!(
            Tokens::parse("# nothing\n"),
            Err(TokensError::Empty)
        ));
    }

    #[test]
    fn dev_mode_maps_the_prefix_to_a_valid_user() {
        assert_eq!(Tokens::Dev.user("dev-token-bob").unwrap().as_str(), "bob");
        assert_eq!(Tokens::Dev.user("dev-token-"), None);
        assert_eq!(Tokens::Dev.user("dev-token-a b"), None);
        assert_eq!(Tokens::Dev.user("bob"), None);
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        let t = Tokens::Dev;
        assert_eq!(
            t.authenticate(&headers("Bearer dev-token-x"))
                .unwrap()
                .as_str(),
            "x"
        );
        assert_eq!(
            t.authenticate(&headers("bearer  dev-token-x "))
                .unwrap()
                .as_str(),
            "x"
        );
        assert_eq!(t.authenticate(&HeaderMap::new()), Err(AuthError::Missing));
        assert_eq!(
            t.authenticate(&headers("Basic dev-token-x")),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            t.authenticate(&headers("Bearer")),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            t.authenticate(&headers("Bearer nope")),
            Err(AuthError::Unknown)
        );
        assert!(
            format!("{:?}", Tokens::parse("sekrit-sekrit-sekrit u").unwrap()).contains("1 tokens")
        );
    }
}
