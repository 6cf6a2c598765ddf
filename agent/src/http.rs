//! The agent's HTTP endpoint, served through [`perfweb`] (limits, Host allow-list, token,
//! security headers): the dashboard at `/` with its JSON API under `/api/v1/` ([`perfdash`]),
//! `/metrics` (Prometheus text), `/healthz`, `/readyz` (503 while starting
//! or degraded, saying why), and `POST /profile?op=NAME[&service=S][&at=UNIX_SECONDS]` taking
//! folded stacks for an operation (`py-spy record --format raw`, `inferno-collapse-*`) with the
//! agent's token.
//!
//! ## Failure modes
//! Uploads are stored with the next flush; what waits is bounded ([`UPLOAD_BUDGET_BYTES`]): past
//! it an upload gets 429 with `Retry-After`, and its body is never read. A body over
//! [`MAX_BODY_BYTES`] gets 413; a body that ends before its `Content-Length`, is not UTF-8 or
//! has a malformed line gets 400 with the reason, and nothing of it is stored. A bad `op`,
//! `service` or `at` gets 400 naming the parameter and the form expected.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use perfstore::ProfileWindow;
use perfweb::guard::text;

use crate::clock::Clock;
use crate::exposition::Exposition;
use crate::health::Health;
use crate::statsd::aggregate::HeldBytes;

/// Largest profile upload.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Folded-stack text waiting for the next flush, at most.
pub const UPLOAD_BUDGET_BYTES: usize = 16 << 20;
/// Longest operation or service name.
pub const MAX_NAME_CHARS: usize = 200;
/// How far ahead of now an upload's `at` may be.
const MAX_FUTURE_MS: i64 = 10 * 60_000;

/// Uploaded profiles waiting for the next flush.
#[derive(Debug)]
pub struct Uploads {
    /// The windows, and the budget bytes they hold.
    pending: Mutex<(Vec<ProfileWindow>, usize)>,
    bytes: Arc<AtomicUsize>,
    service: String,
    clock: Clock,
    /// Oldest `at` accepted, as an age (the store keeps profiles this long).
    max_age_ms: i64,
    /// Seconds a client refused for a full queue should wait.
    retry_after_s: u64,
}

impl Uploads {
    /// No uploads yet; those without a service go under `service`.
    pub fn new(service: String, clock: Clock, max_age_ms: i64, flush_interval_ms: i64) -> Self {
        let retry_after_s = (flush_interval_ms / 1000).clamp(1, 60) as u64;
        Self {
            pending: Mutex::new((Vec::new(), 0)),
            bytes: Arc::new(AtomicUsize::new(0)),
            service,
            clock,
            max_age_ms,
            retry_after_s,
        }
    }

    /// Everything uploaded since the last call, and its hold on the budget: the bytes return
    /// to the budget when the flush carrying them is written (or given up), so a store slower
    /// than the uploads turns them away with 429 instead of queueing them in memory.
    pub fn take(&self) -> (Vec<ProfileWindow>, Option<Arc<HeldBytes>>) {
        let (windows, bytes) = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let held = (bytes > 0).then(|| Arc::new(HeldBytes::new(self.bytes.clone(), bytes)));
        (windows, held)
    }

    /// Reserve `n` bytes of the budget; false when they do not fit.
    fn reserve(&self, n: usize) -> bool {
        self.bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| (b + n <= UPLOAD_BUDGET_BYTES).then_some(b + n))
            .is_ok()
    }

    fn release(&self, n: usize) {
        let _ = self.bytes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| Some(b.saturating_sub(n)));
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `/metrics`.
    pub metrics: Arc<Mutex<Exposition>>,
    /// `/readyz`.
    pub health: Arc<Health>,
    /// `POST /profile`.
    pub uploads: Arc<Uploads>,
    /// The dashboard at `/` and `/api/v1/` (none: not served).
    pub dashboard: Option<perfdash::Dashboard>,
}

/// The agent's routes (before the guard).
pub fn router(e: Endpoint) -> axum::Router {
    let dashboard = e.dashboard.clone().map(perfdash::router).unwrap_or_default();
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { text(StatusCode::OK, "ok\n") }))
        .route("/readyz", get(readyz))
        .route("/profile", post(profile))
        .fallback(|| async {
            text(
                StatusCode::NOT_FOUND,
                "try / (the dashboard), /api/v1/stats, /metrics, /healthz, /readyz or POST /profile?op=NAME\n",
            )
        })
        .with_state(e)
        .merge(dashboard)
}

/// Serve `router` on `addr` with the policy for that address and `token`.
pub fn serve(addr: SocketAddr, e: Endpoint, token: Option<String>, token_hint: &str) -> std::io::Result<SocketAddr> {
    let policy = perfweb::Policy::for_listener(addr, token, &[], token_hint);
    let app = perfweb::guard::layer(router(e), policy);
    Ok(perfweb::serve(addr, app, perfweb::Limits::default())?.addr)
}

/// The page is copied under the lock (keys and histogram counts shared, other values
/// copied) and ordered and rendered outside it, a piece at a time as the response is sent,
/// so a scrape neither holds the whole text (40 MB at 100 000 series) nor keeps the writer
/// waiting.
async fn metrics(State(e): State<Endpoint>) -> Response {
    let page = e.metrics.lock().map(|m| m.page()).ok();
    let body = Body::new(PageBody(page));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// A [`crate::exposition::Page`] as a response body.
struct PageBody(Option<crate::exposition::Page>);

impl hyper::body::Body for PageBody {
    type Data = hyper::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let piece = self.get_mut().0.as_mut().and_then(Iterator::next);
        std::task::Poll::Ready(piece.map(|p| Ok(hyper::body::Frame::data(p.into()))))
    }
}

async fn readyz(State(e): State<Endpoint>) -> Response {
    match e.health.readiness() {
        Ok(()) => text(StatusCode::OK, "ready\n"),
        Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

/// `?op=…&service=…&at=…`, validated.
#[derive(Debug, serde::Deserialize)]
struct ProfileQuery {
    op: Option<String>,
    service: Option<String>,
    at: Option<String>,
}

fn name(param: &str, v: &str) -> Result<String, String> {
    if v.is_empty() || v.chars().count() > MAX_NAME_CHARS || v.chars().any(char::is_control) {
        return Err(format!("invalid '{param}': expected 1 to {MAX_NAME_CHARS} characters without control characters"));
    }
    Ok(v.to_owned())
}

impl ProfileQuery {
    /// `(op, service, at ms)`.
    fn check(&self, uploads: &Uploads) -> Result<(String, String, i64), String> {
        let op = name("op", self.op.as_deref().ok_or("POST /profile needs ?op=NAME")?)?;
        let service = match &self.service {
            Some(s) => name("service", s)?,
            None => uploads.service.clone(),
        };
        let now = uploads.clock.now_ms();
        let at = match &self.at {
            None => now,
            Some(t) => {
                let secs: f64 = t.parse().map_err(|_| format!("invalid 'at': expected Unix seconds, got '{t}'"))?;
                let ms = secs * 1000.0;
                let (lo, hi) = (now - uploads.max_age_ms, now + MAX_FUTURE_MS);
                if !ms.is_finite() || ms < lo as f64 || ms > hi as f64 {
                    return Err(format!(
                        "invalid 'at': {t} is outside what the store keeps (from {} to {} Unix seconds)",
                        lo / 1000,
                        hi / 1000
                    ));
                }
                ms as i64
            }
        };
        Ok((op, service, at))
    }
}

/// `POST /profile`: check the request, reserve its bytes, read and parse the body, queue it.
async fn profile(State(e): State<Endpoint>, Query(q): Query<ProfileQuery>, headers: HeaderMap, body: Body) -> Response {
    let length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let Some(length) = length else {
        return text(StatusCode::LENGTH_REQUIRED, "send Content-Length\n");
    };
    if length > MAX_BODY_BYTES {
        return text(StatusCode::PAYLOAD_TOO_LARGE, format!("at most {} MiB of folded stacks\n", MAX_BODY_BYTES >> 20));
    }
    if !e.uploads.reserve(length) {
        let retry = e.uploads.retry_after_s.to_string();
        let mut r = text(
            StatusCode::TOO_MANY_REQUESTS,
            "uploads waiting for the next flush fill the queue; retry after the flush\n",
        );
        if let Ok(v) = retry.parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let result = accept(&e.uploads, &q, body, length).await;
    match result {
        Ok((msg, kept)) => {
            e.uploads.release(length.saturating_sub(kept));
            text(StatusCode::ACCEPTED, msg)
        }
        Err(why) => {
            e.uploads.release(length);
            text(StatusCode::BAD_REQUEST, format!("{why}; nothing was stored\n"))
        }
    }
}

/// Read, check and queue one upload: `(reply, bytes kept in the queue)`.
async fn accept(uploads: &Uploads, q: &ProfileQuery, body: Body, length: usize) -> Result<(String, usize), String> {
    // Read the body before refusing a bad query, so the client sees the answer rather than
    // a reset connection.
    let bytes = axum::body::to_bytes(body, length)
        .await
        .map_err(|_| format!("the body ended before its Content-Length ({length} bytes)"))?;
    if bytes.len() != length {
        return Err(format!("the body has {} bytes, not its Content-Length {length}", bytes.len()));
    }
    let (op, service, at) = q.check(uploads)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "the body is not UTF-8".to_string())?;
    let stacks = perfstore::parse_folded(text).map_err(|e| e.to_string())?;
    let (n, samples) = (stacks.len(), stacks.iter().map(|s| s.samples).sum::<u64>());
    let kept: usize = stacks.iter().map(|s| s.frames.len() + 24).sum();
    let kept = kept.min(length);
    let mut pending = uploads.pending.lock().unwrap_or_else(|e| e.into_inner());
    pending.0.push(ProfileWindow { service, op: op.clone(), start_ms: at, end_ms: at + 1, stacks });
    pending.1 += kept;
    drop(pending);
    let op = op.escape_debug();
    Ok((format!("accepted {n} stacks ({samples} samples) for {op}; stored with the next flush\n"), kept))
}
