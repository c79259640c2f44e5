//! The HTTP surface: `POST /sync/exchange`, `POST /sync/resync` (the full-resync walk),
//! `POST /sync/salt`, `/sync/content/{sha256}` (`content`), `GET /health`, CORS and static files.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use clientdata::core::hlc::{Clock, SystemClock};
use clientdata::core::replica::{ReplicaError, ServeStats};
use clientdata::core::resync::ResyncRequest;
use clientdata::core::{ExchangeRequest, Limits};
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{Tokens, UserId};
use crate::backend::Database;
use crate::config::{AllowedOrigin, StaticMount};
use crate::error::{json_errors, ApiError};
use crate::limits::Intake;
use crate::quota::UserCaps;
use crate::static_files::ConfinedDir;
use crate::write_health::WriteHealth;

/// What every handler shares.
pub struct AppState<B> {
    /// The database: SQLite's writer and read connections, or PostgreSQL's pool (no global
    /// lock: rounds of different users run concurrently).
    pub database: B,
    /// Who may call.
    pub tokens: Tokens,
    /// Protocol limits.
    pub limits: Limits,
    /// What one user may hold.
    pub caps: UserCaps,
    /// Body deadline and the shared in-flight byte budget.
    pub intake: Intake,
    /// Whether the last push could be written.
    pub writes: WriteHealth,
}

/// Builds the router: API routes, then static mounts, JSON error bodies, CORS outermost (so
/// error answers carry CORS headers too and browsers can read them).
pub fn router<B: Database>(
    state: Arc<AppState<B>>,
    origins: &[AllowedOrigin],
    statics: &[StaticMount],
) -> Router {
    let mut router = Router::new()
        .route("/sync/exchange", post(exchange::<B>))
        .route("/sync/salt", post(salt::<B>))
        .route("/sync/resync", post(resync::<B>))
        .route(
            "/sync/content/{sha256}",
            get(crate::content::get::<B>).put(crate::content::put::<B>),
        )
        .route("/health", get(health::<B>))
        .with_state(state);
    for mount in statics {
        let files = ConfinedDir::new(&mount.dir);
        router = match mount.prefix.as_str() {
            "/" => router.fallback_service(files),
            prefix => router.nest_service(prefix, files),
        };
    }
    let router = router.layer(middleware::map_response(json_errors));
    match cors(origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

fn cors(origins: &[AllowedOrigin]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.contains(&AllowedOrigin::Any) {
        AllowOrigin::any()
    } else {
        // Validated when parsed (ASCII, no whitespace), so every one is a header value.
        AllowOrigin::list(origins.iter().filter_map(|o| match o {
            AllowedOrigin::Exact(s) => HeaderValue::from_str(s).ok(),
            AllowedOrigin::Any => None,
        }))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT])
            .allow_headers([AUTHORIZATION, CONTENT_TYPE])
            .max_age(Duration::from_secs(600)),
    )
}

/// `POST /sync/exchange`: authenticate, check media type and size, parse, run the round in one
/// transaction, answer [`clientdata::core::ExchangeResponse`]. Cheap checks come first so an
/// unauthenticated or oversized request is refused before its body is read.
async fn exchange<B: Database>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let user = state.tokens.authenticate(&headers)?;
    require_json(&headers)?;
    let (body, held) = state
        .intake
        .read_body(&headers, body, &state.limits)
        .await?;
    let task = Arc::clone(&state);
    let task_user = user.clone();
    // Parsing, the transaction and serialising are blocking work: off the async workers.
    let (json, stats) = tokio::task::spawn_blocking(move || run_exchange(&task, &task_user, &body))
        .await
        .map_err(|e| ApiError::internal("exchange task failed", &e))??;
    // The body's share of the budget covers the answer until it is sent.
    let json = held.hold_until_sent(json);
    tracing::info!(
        user = %user,
        received = stats.received,
        stored = stats.stored,
        answered = stats.answered,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "exchange"
    );
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json,
    )
        .into_response())
}

fn run_exchange<B: Database>(
    state: &AppState<B>,
    user: &UserId,
    body: &[u8],
) -> Result<(Vec<u8>, ServeStats), ApiError> {
    let request: ExchangeRequest = serde_json::from_slice(body).map_err(|e| ApiError::parse(&e))?;
    let result = state.database.exchange(
        user,
        &request,
        &state.limits,
        &state.caps,
        SystemClock.now_ms(),
    );
    if !request.push.is_empty() {
        match &result {
            Ok(_) => state.writes.succeeded(),
            Err(ReplicaError::Store(_)) => state.writes.failed(),
            Err(ReplicaError::Protocol(_)) => {}
        }
    }
    let (response, stats) = result?;
    let json = serde_json::to_vec(&response)
        .map_err(|e| ApiError::internal("cannot serialise reply", &e))?;
    Ok((json, stats))
}

/// The `/sync/salt` answer.
#[derive(Debug, Serialize)]
struct Salt {
    /// 32 bytes as 64 lowercase hex digits.
    salt: String,
    /// The PBKDF2-HMAC-SHA256 iterations clients stretch a passphrase with.
    iterations: u32,
}

/// `POST /sync/salt`: the caller's salt for passphrase keys (end-to-end encryption), made on
/// first use and the same ever after, so every device of the user derives the same key. The
/// body is ignored. Not secret: it only makes a precomputed dictionary useless across users.
async fn salt<B: Database>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = state.tokens.authenticate(&headers)?;
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| ApiError::internal("no randomness", &e))?;
    let salt = tokio::task::spawn_blocking(move || state.database.salt(&user, &fresh))
        .await
        .map_err(|e| ApiError::internal("salt task failed", &e))?
        .map_err(|e| ApiError::internal("store failed", &e))?;
    let salt = salt.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Json(Salt {
        salt,
        iterations: clientdata::core::sealed::PBKDF2_ITERATIONS,
    })
    .into_response())
}

/// `POST /sync/resync`: one page of a full-resync walk (tombstone collection, protocol v2), with
/// the exchange's checks in the same order: authenticate, media type, size, parse.
async fn resync<B: Database>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let user = state.tokens.authenticate(&headers)?;
    require_json(&headers)?;
    let (body, held) = state
        .intake
        .read_body(&headers, body, &state.limits)
        .await?;
    let task = Arc::clone(&state);
    let json = tokio::task::spawn_blocking(move || {
        let request: ResyncRequest =
            serde_json::from_slice(&body).map_err(|e| ApiError::parse(&e))?;
        let page = task
            .database
            .resync(&user, &request, &task.limits, SystemClock.now_ms())?;
        serde_json::to_vec(&page).map_err(|e| ApiError::internal("cannot serialise reply", &e))
    })
    .await
    .map_err(|e| ApiError::internal("resync task failed", &e))??;
    let json = held.hold_until_sent(json);
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json,
    )
        .into_response())
}

/// Only `application/json` bodies (any parameters, e.g. `; charset=utf-8`). Requiring it also
/// makes every cross-origin call a CORS preflight, so no plain HTML form can post here.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let media_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    match media_type {
        Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        )),
    }
}

/// The `/health` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    healthy: bool,
    version: &'static str,
    database: &'static str,
    latency_ms: f64,
    /// When unhealthy, the error shape's `code` and `message` too.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// `GET /health`: 200 when a trivial query succeeds and the last push could be written, 503
/// otherwise; `latencyMs` includes waiting for the database, which is what a caller would wait too.
async fn health<B: Database>(State(state): State<Arc<AppState<B>>>) -> Response {
    let started = Instant::now();
    let write_failed = state.writes.last_failed();
    let result =
        tokio::task::spawn_blocking(move || state.database.ping().map_err(|e| e.to_string())).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    let failure = match result {
        Ok(Ok(())) => write_failed.then(|| {
            let message = "the last push failed in the database (see the server log)";
            ("write_failed", message.to_owned())
        }),
        Ok(Err(e)) => {
            tracing::error!(cause = %e, "health check failed");
            Some(("unavailable", "the database does not answer".to_owned()))
        }
        Err(e) => {
            tracing::error!(cause = %e, "health check task failed");
            Some(("unavailable", "the health check failed".to_owned()))
        }
    };
    let healthy = failure.is_none();
    let (code, message) = failure.unzip();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            healthy,
            version: env!("CARGO_PKG_VERSION"),
            database: B::NAME,
            latency_ms,
            code,
            message,
        }),
    )
        .into_response()
}
