//! `/api/v1/…`: `perfctl`'s reports as JSON, from the same `perfanalysis` calls.
//!
//! | endpoint | as | parameters |
//! |---|---|---|
//! | `/api/v1/info` | (the page header: store, now, operations, the window resolved) | window |
//! | `/api/v1/stats` | `perfctl stats --format json` | `last`, `since`, `until`, `op`, `by` |
//! | `/api/v1/profile` | `perfctl profile OP --format json` | `op`, `service`, window |
//! | `/api/v1/flamegraph` | `perfctl flamegraph OP --json` | `op`, `service`, `full_stacks`, `baseline_since`, `baseline_until`, window |
//! | `/api/v1/capacity` | `perfctl capacity --format json` | `growth` (0.3), `months`, `target`, `redundancy`, `peak_window`, `capacity` |
//! | `/api/v1/capacity.svg` | `perfctl capacity --plot` | the same |
//! | `/api/v1/query` | `perfctl query SELECTOR --format json` | `selector`, `agg`, `step`, `merge` (`all` or a label), window |
//! | `/api/v1/series` | `perfctl series --format json` | `top` |
//! | `/api/v1/slo` | `perfctl slo --format json` | `op`, `window` (28d) |
//! | `/api/v1/alerts` | `perfagent status --format json`'s `alerts_firing`, with pending ones | |
//!
//! Every store read runs on tokio's blocking pool with the store opened read-only for that
//! request (a SQLite snapshot: a page never sees half a flush), so a slow query never holds
//! up `/metrics` on the same runtime.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use perfanalysis::capacity::{self, Growth, parse_capacities, parse_growth};
use perfanalysis::{flame, profile, query, stats};
use perfstore::{Agg, Reader, Selector, TimeRange};
use serde::{Deserialize, Serialize};

use crate::Dashboard;
use crate::params::{Window, clean, duration_ms, step_ms};

/// An answer that is not a report: status and message, sent as `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

impl From<perfanalysis::Error> for ApiError {
    fn from(e: perfanalysis::Error) -> Self {
        use perfanalysis::Error as E;
        let status = match &e {
            E::Invalid(_) => StatusCode::BAD_REQUEST,
            E::NoData(_) | E::UnknownOp(_) | E::NoProfile(_) => StatusCode::NOT_FOUND,
            E::Store(perfstore::Error::NotFound { .. }) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self { status, message: e.to_string() }
    }
}

impl From<perfstore::Error> for ApiError {
    fn from(e: perfstore::Error) -> Self {
        perfanalysis::Error::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, [(header::CONTENT_TYPE, "application/json")], pretty(&body)).into_response()
    }
}

/// As `perfctl`'s `--format json`: pretty, with a final line break.
fn pretty<T: Serialize + ?Sized>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

type Answer = Result<Response, ApiError>;

/// The query string as `T`, or a JSON 400 saying what is wrong with it (a repeated
/// parameter, bad percent-encoding).
struct Params<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e| ApiError::bad(format!("bad query string: {}", e.body_text())))
    }
}

fn json<T: Serialize + ?Sized>(v: &T) -> Answer {
    Ok(([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], pretty(v)).into_response())
}

/// Run `f` with a snapshot of the store, off the async runtime.
async fn read<F>(d: Arc<Dashboard>, f: F) -> Response
where
    F: FnOnce(&Dashboard, &perfstore::Snapshot<'_>) -> Answer + Send + 'static,
{
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = Reader::open(&d.db)?;
        let snap = reader.snapshot()?;
        f(&d, &snap)
    });
    match task.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(e) => {
            log::error!("dashboard request failed: {e}");
            ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: "the request failed; see the log".into() }
                .into_response()
        }
    }
}

/// The API routes.
pub fn routes(d: Arc<Dashboard>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/info", get(info))
        .route("/api/v1/stats", get(stats_api))
        .route("/api/v1/profile", get(profile_api))
        .route("/api/v1/flamegraph", get(flamegraph_api))
        .route("/api/v1/capacity", get(capacity_api))
        .route("/api/v1/capacity.svg", get(capacity_svg))
        .route("/api/v1/query", get(query_api))
        .route("/api/v1/series", get(series_api))
        .route("/api/v1/slo", get(slo_api))
        .route("/api/v1/alerts", get(alerts_api))
        .route("/api/v1/remote_write", get(remote_write_api))
        .with_state(d)
}

/// What the page header shows.
#[derive(Debug, Serialize)]
struct Info {
    source: String,
    db: String,
    now: String,
    now_ms: i64,
    newest: Option<String>,
    demo: bool,
    operations: Vec<String>,
    /// The window the parameters give, resolved against now.
    window: perfanalysis::time::Window,
}

async fn info(State(d): State<Arc<Dashboard>>, Params(w): Params<Window>) -> Response {
    read(d, move |d, snap| {
        let now_ms = (d.now)();
        let window = w.range(now_ms).map_err(ApiError::bad)?.into();
        let mut operations: Vec<String> = snap
            .series(&Selector::name(perfstore::convention::OP_DURATION.name))?
            .iter()
            .filter_map(|s| s.key.get(perfstore::convention::tag::OP).map(str::to_owned))
            .collect();
        operations.sort();
        operations.dedup();
        json(&Info {
            source: d.source.clone(),
            db: d.db.display().to_string(),
            now: perfanalysis::time::rfc3339(now_ms),
            now_ms,
            newest: snap.newest_ms()?.map(perfanalysis::time::rfc3339),
            demo: snap.demo_created_ms()?.is_some(),
            operations,
            window,
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
struct StatsQuery {
    #[serde(flatten)]
    window: Window,
    op: Option<String>,
    by: Option<String>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

async fn stats_api(State(d): State<Arc<Dashboard>>, Params(q): Params<StatsQuery>) -> Response {
    read(d, move |d, snap| {
        let opts = stats::Options {
            range: q.window.range((d.now)()).map_err(ApiError::bad)?,
            op: nonempty(q.op),
            by: nonempty(q.by),
        };
        let report = stats::report(snap, &d.db, &opts, &d.targets, d.capacities)?;
        if report.ops.is_empty() {
            return Err(stats::no_calls(snap, &d.db, &opts)?.into());
        }
        json(&report)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct OpQuery {
    #[serde(flatten)]
    window: Window,
    op: Option<String>,
    service: Option<String>,
    full_stacks: Option<String>,
    baseline_since: Option<String>,
    baseline_until: Option<String>,
}

impl OpQuery {
    fn op(&self) -> Result<String, ApiError> {
        nonempty(self.op.clone()).ok_or_else(|| ApiError::bad("missing 'op': the operation, e.g. op=vm.list"))
    }
}

async fn profile_api(State(d): State<Arc<Dashboard>>, Params(q): Params<OpQuery>) -> Response {
    read(d, move |d, snap| {
        let range = q.window.range((d.now)()).map_err(ApiError::bad)?;
        let service = nonempty(q.service.clone());
        let input = profile::gather(snap, &d.db, &q.op()?, service.as_deref(), range)?;
        json(&profile::compute(&input, range)?)
    })
    .await
}

fn flag(param: &str, v: Option<&str>) -> Result<bool, ApiError> {
    match v {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(v) => Err(ApiError::bad(format!("invalid '{param}': expected true or false, got '{}'", clean(v)))),
    }
}

/// The baseline window of a diff: `baseline_since` (and `baseline_until`, default the
/// window's start), read like `since`/`until`.
fn baseline(q: &OpQuery, range: TimeRange, now: i64) -> Result<Option<TimeRange>, ApiError> {
    let Some(since) = nonempty(q.baseline_since.clone()) else { return Ok(None) };
    let w = Window { last: None, since: Some(since), until: q.baseline_until.clone() };
    let until = nonempty(q.baseline_until.clone());
    let r = w
        .range(now)
        .map_err(|e| ApiError::bad(e.replace("'since'", "'baseline_since'").replace("'until'", "'baseline_until'")))?;
    Ok(Some(if until.is_none() { TimeRange::new(r.start_ms, range.start_ms.max(r.start_ms + 1)) } else { r }))
}

async fn flamegraph_api(State(d): State<Arc<Dashboard>>, Params(q): Params<OpQuery>) -> Response {
    read(d, move |d, snap| {
        let now = (d.now)();
        let range = q.window.range(now).map_err(ApiError::bad)?;
        let opts = flame::Options {
            op: q.op()?,
            service: nonempty(q.service.clone()),
            range,
            baseline: baseline(&q, range, now)?,
            full_stacks: flag("full_stacks", q.full_stacks.as_deref())?,
        };
        let stacks = flame::gather(snap, &d.db, &opts)?;
        json(&flame::Document::new(&opts, &stacks))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct CapacityQuery {
    growth: Option<String>,
    months: Option<String>,
    target: Option<String>,
    redundancy: Option<String>,
    peak_window: Option<String>,
    capacity: Option<String>,
}

fn number<T: std::str::FromStr>(param: &str, v: Option<&str>, default: T, expected: &str) -> Result<T, ApiError> {
    match v {
        None | Some("") => Ok(default),
        Some(s) => {
            s.parse().map_err(|_| ApiError::bad(format!("invalid '{param}': expected {expected}, got '{}'", clean(s))))
        }
    }
}

impl CapacityQuery {
    fn options(&self, d: &Dashboard) -> Result<capacity::Options, ApiError> {
        let growth = match self.growth.as_deref() {
            None | Some("") => Growth::Given(0.3),
            Some(g) => parse_growth(g).map_err(|e| ApiError::bad(format!("invalid 'growth': {e}")))?,
        };
        let months: u32 = number("months", self.months.as_deref(), 12, "a number of months from 1 to 120")?;
        if !(1..=120).contains(&months) {
            return Err(ApiError::bad(format!("invalid 'months': expected 1 to 120, got {months}")));
        }
        let target: f64 = number("target", self.target.as_deref(), 0.7, "a utilization between 0 and 1 like 0.7")?;
        if !(target > 0.0 && target <= 1.0) {
            return Err(ApiError::bad(format!(
                "invalid 'target': expected a utilization between 0 and 1, got {target}"
            )));
        }
        let peak_window_ms = match self.peak_window.as_deref() {
            None | Some("") => None,
            Some(s) => Some(duration_ms("peak_window", s).map_err(ApiError::bad)?),
        };
        let capacities = match self.capacity.as_deref() {
            None | Some("") => d.capacities,
            Some(s) => parse_capacities(s).map_err(|e| ApiError::bad(format!("invalid 'capacity': {e}")))?,
        };
        Ok(capacity::Options {
            now_ms: (d.now)(),
            growth,
            months,
            target,
            redundancy: number("redundancy", self.redundancy.as_deref(), 1, "a number of spare instances")?,
            peak_window_ms,
            history_ms: capacity::HISTORY_MS,
            capacities,
        })
    }
}

fn capacity_report(
    d: &Dashboard,
    snap: &perfstore::Snapshot<'_>,
    q: &CapacityQuery,
) -> Result<capacity::Report, ApiError> {
    let o = q.options(d)?;
    Ok(capacity::compute(&capacity::gather(snap, &d.db, &o)?, &o)?)
}

async fn capacity_api(State(d): State<Arc<Dashboard>>, Params(q): Params<CapacityQuery>) -> Response {
    read(d, move |d, snap| json(&capacity_report(d, snap, &q)?)).await
}

async fn capacity_svg(State(d): State<Arc<Dashboard>>, Params(q): Params<CapacityQuery>) -> Response {
    read(d, move |d, snap| {
        let svg = crate::chart::capacity(&capacity_report(d, snap, &q)?);
        Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg).into_response())
    })
    .await
}

#[derive(Debug, Deserialize)]
struct QueryQuery {
    #[serde(flatten)]
    window: Window,
    selector: Option<String>,
    agg: Option<String>,
    step: Option<String>,
    merge: Option<String>,
}

async fn query_api(State(d): State<Arc<Dashboard>>, Params(q): Params<QueryQuery>) -> Response {
    read(d, move |d, snap| {
        let range = q.window.range((d.now)()).map_err(ApiError::bad)?;
        let text = nonempty(q.selector.clone())
            .ok_or_else(|| ApiError::bad("missing 'selector': a series like op.duration{op=\"vm.list\"}"))?;
        let sel = Selector::parse(&text).map_err(|e| ApiError::bad(format!("invalid 'selector': {e}")))?;
        let agg = match q.agg.as_deref() {
            None | Some("") => Agg::Sum,
            Some(a) => Agg::parse(a).map_err(|e| ApiError::bad(format!("invalid 'agg': {e}")))?,
        };
        let step = step_ms(q.step.as_deref(), range).map_err(ApiError::bad)?;
        let merge = match q.merge.as_deref() {
            None | Some("") => query::Merge::None,
            Some("all") => query::Merge::All,
            Some(l) => query::Merge::By(l.to_owned()),
        };
        let result = query::query_merged(snap, &sel, range, step, agg, &merge)?;
        json(&result.series)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct SeriesQuery {
    top: Option<String>,
}

async fn series_api(State(d): State<Arc<Dashboard>>, Params(q): Params<SeriesQuery>) -> Response {
    read(d, move |_, snap| {
        let top = match q.top.as_deref() {
            None | Some("") => None,
            Some(t) => Some(number("top", Some(t), 0usize, "a number of series")?),
        };
        json(&query::series(snap, top)?)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct SloQuery {
    op: Option<String>,
    window: Option<String>,
}

async fn slo_api(State(d): State<Arc<Dashboard>>, Params(q): Params<SloQuery>) -> Response {
    read(d, move |d, snap| {
        let window_ms = match q.window.as_deref() {
            None | Some("") => 28 * perfstore::DAY_MS,
            Some(w) => duration_ms("window", w).map_err(ApiError::bad)?,
        };
        let o =
            perfanalysis::slo::Options { now_ms: (d.now)(), window_ms, op: nonempty(q.op), extra_spans_ms: Vec::new() };
        json(&perfanalysis::slo::report(snap, &d.db, &o, &d.targets)?)
    })
    .await
}

/// One alert the agent holds.
#[derive(Debug, Serialize)]
struct AlertRow {
    op: String,
    /// `availability`, `latency`, or `target:<name>`.
    slo: String,
    severity: String,
    state: &'static str,
    since: String,
    /// The long window's burn rate, or the value measured against the target.
    burn: f64,
    /// The violated target in words (target alerts).
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
}

/// Each remote-write endpoint's progress, as the agent keeps it in the store (what
/// `perfagent status` shows): `[{endpoint, lag_s, last_success, samples_sent, retried,
/// dropped, duplicates, skipped_s, last_error}]`.
async fn remote_write_api(State(d): State<Arc<Dashboard>>) -> Response {
    read(d, |d, snap| {
        let now = (d.now)();
        let rows: Vec<serde_json::Value> = snap
            .states("remote_write.")?
            .into_iter()
            .filter_map(|(name, text)| {
                let p: serde_json::Value = serde_json::from_str(&text).ok()?;
                let ms = |k: &str| p[k].as_i64();
                Some(serde_json::json!({
                    "endpoint": name.strip_prefix("remote_write.")?,
                    "lag_s": ms("next_ms").map(|n| (now - n).max(0) as f64 / 1000.0),
                    "last_success": ms("last_success_ms").map(perfanalysis::time::rfc3339),
                    "samples_sent": p["samples_sent"],
                    "retried": p["retried"],
                    "dropped": p["dropped"],
                    "duplicates": p["duplicates"],
                    "skipped_s": ms("skipped_ms").map(|v| v as f64 / 1000.0),
                    "last_error": p["last_error"],
                }))
            })
            .collect();
        json(&rows)
    })
    .await
}

async fn alerts_api(State(d): State<Arc<Dashboard>>) -> Response {
    read(d, |_, snap| {
        let rows: Vec<AlertRow> = perfanalysis::alerts::read_state(snap)
            .alerts
            .into_values()
            .map(|(k, e)| AlertRow {
                op: k.op,
                slo: k.slo,
                severity: k.severity,
                state: if e.firing_ms.is_some() { "firing" } else { "pending" },
                since: perfanalysis::time::rfc3339(e.firing_ms.unwrap_or(e.since_ms)),
                burn: e.burn,
                text: e.text,
            })
            .collect();
        json(&rows)
    })
    .await
}
