//! Static files confined to their directory. tower-http's `ServeDir` refuses `..` but follows
//! symlinks, so a link inside the root could serve any file the process can read; here the path
//! is resolved first (every symlink followed) and must stay under the resolved root, else 404.
//! (A link swapped between the check and the open could still escape; that needs write access
//! to the served directory.)

use std::convert::Infallible;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::{Service, ServiceExt};
use tower_http::services::ServeDir;

use crate::error::ApiError;

/// `ServeDir` over a directory, refusing anything that resolves outside it.
#[derive(Clone)]
pub struct ConfinedDir {
    root: Arc<PathBuf>,
    files: ServeDir,
}

impl ConfinedDir {
    /// Serves `dir`, resolved now (it may itself be a symlink).
    pub fn new(dir: &Path) -> Self {
        let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        ConfinedDir {
            files: ServeDir::new(&root),
            root: Arc::new(root),
        }
    }
}

/// The file path a request path names under `root`, as `ServeDir` builds it; `None` when it
/// would not serve it anyway (`..`, bad escapes), which `ServeDir` then answers itself.
fn candidate(root: &Path, request_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(request_path.trim_start_matches('/'))?;
    let mut path = root.to_owned();
    for part in decoded.split('/') {
        match Path::new(part).components().next() {
            None | Some(Component::CurDir) => {}
            Some(Component::Normal(_)) if Path::new(part).components().count() == 1 => {
                path.push(part)
            }
            _ => return None,
        }
    }
    Some(path)
}

/// `%XX` decoding of a URI path into UTF-8; `None` for a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `path`, with every symlink resolved, is inside `root` (a missing path is: `ServeDir`
/// answers 404 for it). A directory is checked with the `index.html` it would serve.
async fn inside(root: &Path, path: &Path) -> bool {
    let Ok(real) = tokio::fs::canonicalize(path).await else {
        return true;
    };
    if !real.starts_with(root) {
        return false;
    }
    if tokio::fs::metadata(&real).await.is_ok_and(|m| m.is_dir()) {
        if let Ok(index) = tokio::fs::canonicalize(real.join("index.html")).await {
            return index.starts_with(root);
        }
    }
    true
}

impl Service<Request> for ConfinedDir {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let root = Arc::clone(&self.root);
        let files = self.files.clone();
        Box::pin(async move {
            if let Some(path) = candidate(&root, request.uri().path()) {
                if !inside(&root, &path).await {
                    tracing::warn!(path = %request.uri().path(), "refused a static path that resolves outside its root");
                    return Ok(
                        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not Found")
                            .into_response(),
                    );
                }
            }
            let response = files.oneshot(request).await?;
            Ok(response.map(Body::new))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_map_like_serve_dir() {
        let root = Path::new("/srv");
        assert_eq!(
            candidate(root, "/a/b.js"),
            Some(PathBuf::from("/srv/a/b.js"))
        );
        assert_eq!(candidate(root, "/"), Some(PathBuf::from("/srv")));
        assert_eq!(
            candidate(root, "/a%20b/./c"),
            Some(PathBuf::from("/srv/a b/c"))
        );
        assert_eq!(candidate(root, "/../etc/passwd"), None);
        assert_eq!(candidate(root, "/%2e%2e/etc"), None);
        assert_eq!(candidate(root, "/%zz"), None);
        assert_eq!(candidate(root, "/a%2f..%2fb"), None);
    }
}
