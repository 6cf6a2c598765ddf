//! Prometheus remote-write from the store (`[[remote_write]]`): the store is the write-ahead
//! log. One thread per endpoint reads complete steps of the selected series from the store,
//! in order, and POSTs them (protobuf + snappy, [`proto`]); a cursor per endpoint, kept in
//! the store, says where the receiver last acknowledged, so after a restart, a `kill -9` or a
//! receiver outage the agent resumes there: at least once, no gaps.
//!
//! What is sent, per step (the flush interval by default), stamped at the step's end:
//! counters as cumulative `_total` (starting at 0 when the endpoint first saw the series, so
//! the start is stable across restarts), gauges as their last value, distributions as
//! classic histograms (`_bucket{le}` cumulative, `_sum`, `_count`; the bucket layout of
//! `/metrics` unless configured), names and labels by the convention's Prometheus mapping,
//! plus the external labels (`host` by default). A new counter or histogram starts with an
//! explicit 0 at the end of the step before its first, so `rate()` and `increase()` see its
//! first increments. Counters and histograms are repeated at each step for 5 minutes after
//! their last change and every 5 minutes after that, so a quiet series does not look absent.
//!
//! ## Failure modes
//! A 5xx, a 429 or a connection failure is retried with capped exponential backoff and
//! jitter (honouring `Retry-After`); the batch is rebuilt from the store each time, with the
//! same values. Another 4xx drops the batch, counted and logged. A batch refused as out of
//! order (a receiver that already holds part of it: the agent was killed after the receiver
//! acknowledged and before the cursor was kept) is sent again step by step, and the steps
//! the receiver already holds are counted as such, not lost. A cursor further behind than
//! `max_lag` skips ahead, and the skipped time is counted. Memory is bounded by the batch
//! size (at most `MAX_SAMPLES` samples).

pub mod http;
pub mod proto;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use perfstore::convention::prometheus::{label_names, metric_name};
use perfstore::{BucketBounds, Kind, Point, Selector, SeriesInfo, TimeRange};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::exposition::{DURATION_BUCKETS, VALUE_BUCKETS};
use crate::writer::PendingState;
use proto::{Label, Sample, TimeSeries, WriteRequest};

/// At most this many samples in one request (a few MB in memory while it is built).
pub const MAX_SAMPLES: usize = 200_000;
/// Counters and histograms are repeated every step this long after their last change, and on
/// each whole multiple of it after that.
const REPEAT_MS: i64 = 5 * 60_000;

/// One `[[remote_write]]` endpoint.
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    /// Its name in status, `/metrics` and the store's cursor (`url` by default).
    pub name: String,
    /// Where and how to POST.
    pub endpoint: http::Endpoint,
    /// Which series (all by default).
    pub select: Selector,
    /// The step samples are sent at (the flush interval by default).
    pub step: Duration,
    /// Data older than this when it could be sent is skipped and counted (1 day).
    pub max_lag: Duration,
    /// Labels added to every series (`host` = this host's name by default).
    pub external_labels: Vec<(String, String)>,
    /// Histogram bounds for distributions in seconds, and for the others.
    pub buckets: (Vec<f64>, Vec<f64>),
    /// Wait until this much data is ready before sending, so one request carries several
    /// steps (5 s, as Prometheus's `batch_send_deadline`); a backlog goes at once.
    pub batch_wait: Duration,
}

impl RemoteWriteConfig {
    /// The default bucket layouts: those of `/metrics`.
    pub fn default_buckets() -> (Vec<f64>, Vec<f64>) {
        (DURATION_BUCKETS.to_vec(), VALUE_BUCKETS.to_vec())
    }
}

/// A series' running totals, for cumulative counters and histograms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Counter total, or a histogram's count.
    pub count: f64,
    /// A histogram's sum.
    #[serde(default)]
    pub sum: f64,
    /// A histogram's cumulative buckets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<f64>,
    /// When it last changed (Unix ms).
    pub last_ms: i64,
}

/// What an endpoint has done, kept in the store with its cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Steps before this (Unix ms) have been acknowledged; None before the first send.
    pub next_ms: Option<i64>,
    /// Running totals by series id.
    pub totals: BTreeMap<i64, Totals>,
    /// Samples acknowledged.
    pub samples_sent: u64,
    /// Requests retried (5xx, 429, connection failures).
    pub retried: u64,
    /// Samples dropped on a 4xx.
    pub dropped: u64,
    /// Samples the receiver already held (sent again after a restart).
    pub duplicates: u64,
    /// Milliseconds of data skipped past `max_lag`.
    pub skipped_ms: i64,
    /// Last acknowledged request (Unix ms).
    pub last_success_ms: Option<i64>,
    /// The last failure, for status.
    pub last_error: Option<String>,
}

/// The store's state name of an endpoint's progress.
pub fn state_name(endpoint: &str) -> String {
    format!("remote_write.{endpoint}")
}

/// One batch: samples by series (labels), each stamped; and the totals after it.
#[derive(Debug, Default)]
struct Batch {
    series: Vec<TimeSeries>,
    samples: usize,
    totals: BTreeMap<i64, Totals>,
}

fn label_set(s: &SeriesInfo, name: &str, extra: &[(String, String)], le: Option<&str>) -> Vec<Label> {
    let names = label_names(s.key.labels().map(|(k, _)| k));
    // An external label the series already has (by its Prometheus name) is the series' own.
    let extra: Vec<Label> = extra
        .iter()
        .filter(|(k, _)| !names.contains(k))
        .map(|(k, v)| Label { name: k.clone(), value: v.clone() })
        .collect();
    let mut labels: Vec<Label> = names
        .into_iter()
        .zip(s.key.labels())
        .map(|(n, (_, v))| Label { name: n, value: v.to_owned() })
        .chain(extra)
        .collect();
    if let Some(le) = le {
        labels.push(Label { name: "le".into(), value: le.into() });
    }
    labels.push(Label { name: "__name__".into(), value: name.into() });
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels
}

fn le_text(b: f64) -> String {
    format!("{b}")
}

/// Build the samples of `[start, end)` for `series` from `steps` (each series' points per step,
/// from the store), continuing `totals`.
fn build(
    cfg: &RemoteWriteConfig,
    series: &[(SeriesInfo, Vec<(i64, Point)>)],
    range: TimeRange,
    step_ms: i64,
    totals: &BTreeMap<i64, Totals>,
) -> Batch {
    let mut b = Batch { totals: totals.clone(), ..Batch::default() };
    let ext = &cfg.external_labels;
    // Each bound's keys, found once per batch: a sketch's buckets are then one pass of
    // integer compares over its bins, not a power per bin and bound (`BucketBounds`).
    let (secs, values) = (BucketBounds::new(&cfg.buckets.0), BucketBounds::new(&cfg.buckets.1));
    let mut counts = Vec::new();
    for (s, points) in series {
        let name = metric_name(&s.key.name, s.key.kind, &s.key.unit);
        let by_step: BTreeMap<i64, &Point> = points.iter().map(|(t, p)| (*t, p)).collect();
        let keyed = if s.key.unit == "s" { &secs } else { &values };
        let bounds = keyed.bounds();
        counts.resize(bounds.len(), 0.0);
        match s.key.kind {
            Kind::Gauge | Kind::Set => {
                let samples: Vec<Sample> =
                    points.iter().map(|(t, p)| Sample { value: p.last, timestamp: t + step_ms }).collect();
                if !samples.is_empty() {
                    b.samples += samples.len();
                    b.series.push(TimeSeries { labels: label_set(s, &name, ext, None), samples });
                }
            }
            Kind::Counter | Kind::Distribution => {
                let hist = s.key.kind == Kind::Distribution;
                let mut t = b.totals.get(&s.id.0).cloned();
                // A bucket layout changed since the totals were kept (the config was edited):
                // the buckets start again from 0 (a counter reset to a receiver), never indexed
                // out of range.
                if let Some(tt) = t.as_mut().filter(|tt| hist && tt.buckets.len() != bounds.len()) {
                    tt.buckets = vec![0.0; bounds.len()];
                }
                // Rows: the counter (or count), sum, then each bucket and +Inf.
                let rows = if hist { 2 + bounds.len() + 1 } else { 1 };
                let mut out: Vec<Vec<Sample>> = vec![Vec::new(); rows];
                let mut at = range.start_ms;
                while at < range.end_ms {
                    if let Some(p) = by_step.get(&at) {
                        if t.is_none() {
                            // A new series starts from an explicit 0 at the end of the step
                            // before its first one, so rate() and increase() count its first
                            // increments too.
                            let zero = Sample { value: 0.0, timestamp: at };
                            for row in &mut out {
                                row.push(zero.clone());
                            }
                        }
                        let tt = t.get_or_insert_with(|| Totals {
                            buckets: vec![0.0; if hist { bounds.len() } else { 0 }],
                            ..Totals::default()
                        });
                        if hist {
                            tt.count += p.count;
                            tt.sum += p.sum;
                            if let Some(sk) = &p.sketch {
                                sk.counts_at_most(keyed, &mut counts);
                                for (bucket, c) in tt.buckets.iter_mut().zip(&counts) {
                                    *bucket += c;
                                }
                            }
                        } else {
                            tt.count += p.sum;
                        }
                        tt.last_ms = at + step_ms;
                    }
                    // Repeated every step for 5 minutes after a change, then on each whole
                    // 5 minutes while the series is in the store: a quiet series never reads
                    // as absent, and its last value is always within a day's lookback.
                    if let Some(tt) = &t
                        && (at + step_ms - tt.last_ms < REPEAT_MS || (at + step_ms) % REPEAT_MS == 0)
                    {
                        let ts = at + step_ms;
                        out[0].push(Sample { value: tt.count, timestamp: ts });
                        if hist {
                            out[1].push(Sample { value: tt.sum, timestamp: ts });
                            for (i, v) in tt.buckets.iter().enumerate() {
                                out[2 + i].push(Sample { value: *v, timestamp: ts });
                            }
                            out[rows - 1].push(Sample { value: tt.count, timestamp: ts });
                        }
                    }
                    at += step_ms;
                }
                if let Some(tt) = t {
                    b.totals.insert(s.id.0, tt);
                }
                for (row, samples) in out.into_iter().enumerate() {
                    if samples.is_empty() {
                        continue;
                    }
                    b.samples += samples.len();
                    let labels = if !hist {
                        label_set(s, &name, ext, None)
                    } else if row == 0 {
                        label_set(s, &format!("{name}_count"), ext, None)
                    } else if row == 1 {
                        label_set(s, &format!("{name}_sum"), ext, None)
                    } else if row == rows - 1 {
                        label_set(s, &format!("{name}_bucket"), ext, Some("+Inf"))
                    } else {
                        label_set(s, &format!("{name}_bucket"), ext, Some(&le_text(bounds[row - 2])))
                    };
                    b.series.push(TimeSeries { labels, samples });
                }
            }
        }
    }
    b
}

/// How the sender is doing, for `/metrics`.
pub type Shared = Arc<Mutex<BTreeMap<String, Progress>>>;

/// The `/metrics` families of every endpoint: samples sent, retried, dropped, already held,
/// seconds skipped, lag and the last success.
pub fn exposition(shared: &Shared, now_ms: i64) -> String {
    use std::fmt::Write as _;
    let map = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = String::new();
    let esc = perfstore::convention::prometheus::escape_label_value;
    let families: [(&str, &str, &str); 7] = [
        ("perfagent_remote_write_samples_sent_total", "counter", "Samples the receiver acknowledged."),
        ("perfagent_remote_write_retries_total", "counter", "Requests retried (5xx, 429, connection failures)."),
        ("perfagent_remote_write_samples_dropped_total", "counter", "Samples dropped on a 4xx answer."),
        (
            "perfagent_remote_write_samples_duplicate_total",
            "counter",
            "Samples sent again that the receiver already held.",
        ),
        ("perfagent_remote_write_skipped_seconds_total", "counter", "Seconds of data skipped past max_lag."),
        ("perfagent_remote_write_lag_seconds", "gauge", "How far behind now the data acknowledged reaches."),
        ("perfagent_remote_write_last_success_timestamp_seconds", "gauge", "When a request was last acknowledged."),
    ];
    for (name, ty, help) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
        for (endpoint, p) in map.iter() {
            let v = match name {
                "perfagent_remote_write_samples_sent_total" => p.samples_sent as f64,
                "perfagent_remote_write_retries_total" => p.retried as f64,
                "perfagent_remote_write_samples_dropped_total" => p.dropped as f64,
                "perfagent_remote_write_samples_duplicate_total" => p.duplicates as f64,
                "perfagent_remote_write_skipped_seconds_total" => p.skipped_ms as f64 / 1000.0,
                "perfagent_remote_write_lag_seconds" => match p.next_ms {
                    Some(n) => (now_ms - n).max(0) as f64 / 1000.0,
                    None => continue,
                },
                _ => match p.last_success_ms {
                    Some(t) => t as f64 / 1000.0,
                    None => continue,
                },
            };
            let _ = writeln!(out, "{name}{{endpoint=\"{}\"}} {v}", esc(endpoint));
        }
    }
    out
}

/// Everything a sender thread needs from the agent.
#[derive(Debug, Clone)]
pub struct Env {
    /// The store.
    pub db: PathBuf,
    /// The agent's clock.
    pub clock: Clock,
    /// The flush interval (how long until a step is surely written).
    pub flush_ms: i64,
    /// Where the progress goes to be kept in the store.
    pub pending: PendingState,
    /// Every endpoint's progress.
    pub shared: Shared,
    /// Where `/metrics` shows it.
    pub metrics: Option<Arc<Mutex<crate::exposition::Exposition>>>,
}

/// Every endpoint's progress kept in the store at `db` (for `perfagent status`).
pub fn kept(db: &std::path::Path) -> Vec<(String, Progress)> {
    let prefix = state_name("");
    perfstore::Reader::open(db)
        .and_then(|mut r| r.snapshot()?.states(&prefix))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, text)| Some((name.strip_prefix(&prefix)?.to_owned(), serde_json::from_str(&text).ok()?)))
        .collect()
}

/// The progress of `name` kept in the store, or a fresh one.
fn load(db: &std::path::Path, name: &str) -> Progress {
    perfstore::Reader::open(db)
        .and_then(|mut r| r.snapshot()?.state(&state_name(name)))
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn keep(env: &Env, name: &str, p: &Progress) {
    if let Ok(text) = serde_json::to_string(p) {
        env.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(state_name(name), text);
    }
    env.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_owned(), p.clone());
    if let Some(m) = &env.metrics {
        let text = exposition(&env.shared, env.clock.now_ms());
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner).set_remote_write(text);
    }
}

/// A pseudo-random fraction for jitter (no need for a generator: the clock's nanoseconds).
fn jitter() -> f64 {
    f64::from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) % 1000)
        / 1000.0
}

/// Start one sender thread per endpoint.
pub fn spawn(cfgs: Vec<RemoteWriteConfig>, env: &Env) -> std::io::Result<()> {
    for cfg in cfgs {
        let env = env.clone();
        std::thread::Builder::new().name("perfagent-remote-write".into()).spawn(move || run(&cfg, &env))?;
    }
    Ok(())
}

fn run(cfg: &RemoteWriteConfig, env: &Env) {
    let mut p = load(&env.db, &cfg.name);
    keep(env, &cfg.name, &p);
    let step_ms = i64::try_from(cfg.step.as_millis()).unwrap_or(1000).max(1000);
    let mut failures = 0u32;
    loop {
        let wait = match once(cfg, env, &mut p, step_ms) {
            Ok(true) => {
                failures = 0;
                continue;
            }
            Ok(false) => {
                failures = 0;
                Duration::from_millis(u64::try_from(step_ms).unwrap_or(1000))
            }
            Err(retry_after) => {
                failures += 1;
                p.retried += 1;
                keep(env, &cfg.name, &p);
                let backoff = (0.5 * 2f64.powi(failures.min(6) as i32)).min(30.0) * (0.5 + jitter());
                // A receiver's Retry-After is honoured up to 5 minutes.
                retry_after.map_or(Duration::from_secs_f64(backoff), |d| d.min(Duration::from_secs(300)))
            }
        };
        std::thread::sleep(wait);
    }
}

/// One step of the sender: Ok(true) when it sent (or skipped) a batch and more may be ready,
/// Ok(false) when caught up, Err(retry after) when the request must be retried.
fn once(cfg: &RemoteWriteConfig, env: &Env, p: &mut Progress, step_ms: i64) -> Result<bool, Option<Duration>> {
    let now = env.clock.now_ms();
    // A step is complete once the flush after it has surely been written.
    let ready = (now - 2 * env.flush_ms - 1000).div_euclid(step_ms) * step_ms;
    let next = *p.next_ms.get_or_insert(ready - step_ms);
    let floor = ready - i64::try_from(cfg.max_lag.as_millis()).unwrap_or(i64::MAX / 4);
    if next < floor {
        let to = floor.div_euclid(step_ms) * step_ms;
        p.skipped_ms += to - next;
        log::warn!(
            "remote write {}: {} behind; skipping to the last {}",
            cfg.name,
            humantime::format_duration(Duration::from_secs(u64::try_from((ready - next) / 1000).unwrap_or(0))),
            humantime::format_duration(cfg.max_lag)
        );
        p.next_ms = Some(to);
        keep(env, &cfg.name, p);
        return Ok(true);
    }
    let wait_ms = i64::try_from(cfg.batch_wait.as_millis()).unwrap_or(0).max(step_ms);
    if next >= ready || ready - next < wait_ms {
        return Ok(false);
    }
    let mut reader = perfstore::Reader::open(&env.db).map_err(|e| fail(cfg, p, &e.to_string()))?;
    let snap = reader.snapshot().map_err(|e| fail(cfg, p, &e.to_string()))?;
    let series = snap.series(&cfg.select).map_err(|e| fail(cfg, p, &e.to_string()))?;
    // Bounded batches: as many steps as keep the samples under MAX_SAMPLES (histograms count
    // as their rows).
    let rows: usize = series
        .iter()
        .map(|s| match s.key.kind {
            Kind::Distribution if s.key.unit == "s" => cfg.buckets.0.len() + 3,
            Kind::Distribution => cfg.buckets.1.len() + 3,
            _ => 1,
        })
        .sum::<usize>()
        .max(1);
    let steps = (MAX_SAMPLES / rows).clamp(1, 60) as i64;
    let end = ready.min(next + steps * step_ms);
    let range = TimeRange::new(next, end);
    // One pass over the store for every series and step of the batch.
    let cuts: Vec<i64> = (1..(end - next) / step_ms).map(|k| next + k * step_ms).collect();
    let per_step = snap.aggregate_split(&series, range, &cuts).map_err(|e| fail(cfg, p, &e.to_string()))?;
    drop(snap);
    let mut data: Vec<(SeriesInfo, Vec<(i64, Point)>)> = series.into_iter().map(|s| (s, Vec::new())).collect();
    for (k, points) in per_step.into_iter().enumerate() {
        let at = next + k as i64 * step_ms;
        for (slot, point) in data.iter_mut().zip(points) {
            if let Some(pt) = point {
                slot.1.push((at, pt));
            }
        }
    }
    let batch = build(cfg, &data, range, step_ms, &p.totals);
    // Series gone from the store (expired) leave the totals.
    let live: std::collections::HashSet<i64> = data.iter().map(|(s, _)| s.id.0).collect();
    let advance = |p: &mut Progress, totals: BTreeMap<i64, Totals>| {
        p.totals = totals.into_iter().filter(|(id, _)| live.contains(id)).collect();
        p.next_ms = Some(end);
    };
    if batch.samples == 0 {
        advance(p, batch.totals);
        keep(env, &cfg.name, p);
        return Ok(true);
    }
    match send(cfg, &batch.series) {
        Sent::Ok => {
            p.samples_sent += batch.samples as u64;
            p.last_success_ms = Some(now);
            p.last_error = None;
        }
        Sent::Retry(after, why) => {
            p.last_error = Some(why);
            return Err(after);
        }
        Sent::OutOfOrder(why) => {
            log::info!("remote write {}: {why}; sending the batch step by step", cfg.name);
            by_step(cfg, &batch.series, TimeRange::new(next, end), step_ms, p)?;
            p.last_success_ms = Some(now);
        }
        Sent::Drop(why) => {
            log::error!("remote write {}: {why}; {} samples dropped", cfg.name, batch.samples);
            p.dropped += batch.samples as u64;
            p.last_error = Some(why);
        }
    }
    advance(p, batch.totals);
    keep(env, &cfg.name, p);
    Ok(true)
}

/// Send a batch the receiver refused as out of order again, one step at a time: it holds
/// some steps already (counted as such) and takes the others.
fn by_step(
    cfg: &RemoteWriteConfig,
    series: &[TimeSeries],
    range: TimeRange,
    step_ms: i64,
    p: &mut Progress,
) -> Result<(), Option<Duration>> {
    let mut at = range.start_ms;
    while at < range.end_ms {
        let ts = at + step_ms;
        // The first step also carries a new series' explicit 0, stamped at the batch's start.
        let first = at == range.start_ms;
        let one: Vec<TimeSeries> = series
            .iter()
            .filter_map(|t| {
                let samples: Vec<Sample> = t
                    .samples
                    .iter()
                    .filter(|s| s.timestamp == ts || (first && s.timestamp == range.start_ms))
                    .cloned()
                    .collect();
                (!samples.is_empty()).then(|| TimeSeries { labels: t.labels.clone(), samples })
            })
            .collect();
        let n: usize = one.iter().map(|t| t.samples.len()).sum();
        if n > 0 {
            match send(cfg, &one) {
                Sent::Ok => p.samples_sent += n as u64,
                Sent::OutOfOrder(_) => p.duplicates += n as u64,
                Sent::Retry(after, why) => {
                    p.last_error = Some(why);
                    return Err(after);
                }
                Sent::Drop(why) => {
                    log::error!("remote write {}: {why}; {n} samples dropped", cfg.name);
                    p.dropped += n as u64;
                }
            }
        }
        at += step_ms;
    }
    Ok(())
}

fn fail(cfg: &RemoteWriteConfig, p: &mut Progress, why: &str) -> Option<Duration> {
    log::warn!("remote write {}: reading the store: {why}", cfg.name);
    p.last_error = Some(why.to_owned());
    None
}

enum Sent {
    Ok,
    Retry(Option<Duration>, String),
    OutOfOrder(String),
    Drop(String),
}

fn send(cfg: &RemoteWriteConfig, series: &[TimeSeries]) -> Sent {
    let body = proto::body(&WriteRequest { timeseries: series.to_vec() });
    match http::post(&cfg.endpoint, &proto::HEADERS, &body) {
        Err(e) => {
            log::warn!("remote write {}: {e}; will retry", cfg.name);
            Sent::Retry(None, e)
        }
        Ok(r) if (200..300).contains(&r.status) => Sent::Ok,
        Ok(r) if r.status == 429 || r.status >= 500 => {
            let why = format!("{} answered {}: {}", cfg.name, r.status, r.body);
            log::warn!("remote write {why}; will retry");
            Sent::Retry(r.retry_after, why)
        }
        Ok(r) => {
            let why = format!("{} answered {}: {}", cfg.name, r.status, r.body);
            let lower = r.body.to_ascii_lowercase();
            if lower.contains("out of order") || lower.contains("duplicate sample") || lower.contains("too old") {
                Sent::OutOfOrder(why)
            } else {
                Sent::Drop(why)
            }
        }
    }
}

#[cfg(test)]
mod tests;
