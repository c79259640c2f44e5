//! The content endpoint (protocol v2, docs/PROTOCOL.md "Content"): the bytes of values synced by
//! reference. `PUT /sync/content/{sha256}` stores a body that hashes to the path's digest;
//! `GET /sync/content/{sha256}` answers it. Both authenticate like `/sync/exchange` and read
//! and write one dataset of the caller (`?dataset=`, percent-encoded; absent: the default
//! dataset), so content is kept apart exactly as records are.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use clientdata::core::content::Digest;
use clientdata::core::protocol::check_dataset;
use clientdata::core::Limits;

use crate::backend::Database;
use crate::error::ApiError;
use crate::routes::AppState;
use crate::scope::Scope;

/// The caller's dataset from the request: the user, and `?dataset=` if given.
fn scope<B: Database>(
    state: &AppState<B>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Scope, ApiError> {
    let user = state.tokens.authenticate(headers)?;
    let dataset = match uri.query() {
        None => None,
        Some(query) => dataset_param(query).map_err(|e| ApiError::core(&e))?,
    };
    Ok(Scope::dataset(user, dataset.as_deref()))
}

/// `dataset=<percent-encoded>` out of a query string (no other parameter is known).
fn dataset_param(query: &str) -> Result<Option<String>, clientdata::core::Error> {
    let invalid = |why: &str| clientdata::core::Error::InvalidRequest(format!("query: {why}"));
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "dataset" || found.is_some() {
            return Err(invalid("only one `dataset` parameter is known"));
        }
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| invalid("dataset is not UTF-8"))?;
        check_dataset(&value)?;
        found = Some(value.into_owned());
    }
    Ok(found)
}

fn digest(text: &str) -> Result<Digest, ApiError> {
    Digest::parse(text).map_err(|e| ApiError::core(&e))
}

/// `PUT /sync/content/{sha256}`: stores the body (at most `Limits::max_content_bytes`) if it
/// hashes to the digest (else 400 `content_hash_mismatch`, nothing stored); 204. Idempotent.
pub async fn put<B: Database>(
    State(state): State<Arc<AppState<B>>>,
    Path(sha256): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let scope = scope(&state, &headers, &uri)?;
    let sha256 = digest(&sha256)?;
    let limits = Limits {
        max_body_bytes: state.limits.max_content_bytes,
        ..state.limits
    };
    let (body, _held) = state.intake.read_body(&headers, body, &limits).await?;
    let task = Arc::clone(&state);
    let max_bytes = state.caps.content_bytes;
    tokio::task::spawn_blocking(move || {
        task.database.put_content(&scope, &sha256, &body, max_bytes)
    })
    .await
    .map_err(|e| ApiError::internal("content task failed", &e))??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /sync/content/{sha256}`: the content, `application/octet-stream`; 404
/// `content_not_found` if this dataset holds none by that digest (another user's or dataset's
/// content is not found either).
pub async fn get<B: Database>(
    State(state): State<Arc<AppState<B>>>,
    Path(sha256): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = scope(&state, &headers, &uri)?;
    let sha256 = digest(&sha256)?;
    let task = Arc::clone(&state);
    let data = tokio::task::spawn_blocking(move || task.database.get_content(&scope, &sha256))
        .await
        .map_err(|e| ApiError::internal("content task failed", &e))?
        .map_err(|e| ApiError::internal("content read failed", &e))?;
    match data {
        Some(data) => Ok((
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )],
            Body::from(data),
        )
            .into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "content_not_found",
            "no content with this digest in this dataset",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dataset_parameter_is_percent_decoded_and_checked() {
        assert_eq!(dataset_param("").unwrap(), None);
        assert_eq!(
            dataset_param("dataset=notes%2Fb%20%C3%A9")
                .unwrap()
                .as_deref(),
            Some("notes/b é")
        );
        for bad in [
            "dataset=",
            "dataset=%01",
            "x=1",
            "dataset=a&dataset=b",
            "dataset=%FF",
        ] {
            assert_eq!(
                dataset_param(bad).unwrap_err().code(),
                "invalid_request",
                "{bad}"
            );
        }
    }
}
