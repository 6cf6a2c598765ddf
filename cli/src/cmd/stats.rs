//! `perfctl stats`: what the recorded operations did over a window: calls, cached %,
//! batched %, success rate, retries, latency (from merged sketches), cache and pool hit
//! rates, the host, and which targets are violated.
//!
//! Everything is derived from the metric convention (see the README): `op.duration` (one
//! event per call, tags `op`, `outcome`, `cache`, `batched`), `op.retries`, `op.batch.size`,
//! `cache.requests`, `cache.refresh`, `pool.acquire`, `pool.evictions`, and the host
//! sampler's `system.*` series. Ratios are Σ/Σ over the window; quantiles come from merging
//! the stored sketches (within 1 % of the nearest-rank value).
//!
//! JSON (`--format json`):
//! `{db, schema_version, window {since, until}, overall {calls, errors, success_rate,
//! error_rate, cached_pct, batched_pct, batch_efficiency, retries, total_time_s, latency_ms
//! {min, avg, p50, p95, p99, max} | null, cache {…} | null, pool {…} | null}, ops [{op,
//! group?, …same as overall without cache and pool…, last_error, last_error_at}], host {…} |
//! null, violations [{target, op, value, threshold, unit}]}`. `*_rate` are ratios 0–1,
//! `*_pct` are 0–100, `calls` excludes retries, `batch_efficiency` is the mean number of
//! requests per batched call, `latency_ms` is null with no calls.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use perfstore::{Point, Reader, Selector, SeriesInfo, TimeRange, glob_match};
use serde::{Serialize, Serializer};

use crate::style::{Paint, bytes, cell, count, csv_field, ms, pct, seconds};
use crate::targets::Targets;
use crate::window::rfc3339;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A summary, a table per operation, the host and the targets.
    Table,
    /// One JSON document (see the module docs).
    Json,
    /// One row per operation, the first (`(all)`) for every operation together.
    Csv,
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct Options {
    /// The window.
    pub range: TimeRange,
    /// Only operations matching this glob.
    pub op: Option<String>,
    /// Split operations by this tag (e.g. `service`).
    pub by: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Store path.
    pub db: String,
    /// Store schema version.
    pub schema_version: i64,
    /// The window, RFC 3339 UTC.
    pub window: Window,
    /// Every selected operation together.
    pub overall: Overall,
    /// Per operation, most total time first.
    pub ops: Vec<OpStats>,
    /// The host, when the sampler recorded it in the window.
    pub host: Option<Host>,
    /// Circuit breakers that were open in the window.
    pub circuits: Vec<CircuitOpen>,
    /// Targets not met.
    pub violations: Vec<Violation>,
    /// The targets checked, for the table.
    #[serde(skip)]
    pub targets: Targets,
}

/// `since` and `until`.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Start (inclusive).
    pub since: String,
    /// End (exclusive).
    pub until: String,
}

fn num<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9e15 { s.serialize_i64(*v as i64) } else { s.serialize_f64(round(*v)) }
}

fn opt_num<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => num(v, s),
        None => s.serialize_none(),
    }
}

/// Six significant decimals are plenty for a report and keep the JSON stable.
fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Call statistics of one operation or of all of them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Calls {
    /// Calls (events of `op.duration`; weighted by 1/rate when sampled).
    #[serde(serialize_with = "num")]
    pub calls: f64,
    /// Calls with `outcome=error`.
    #[serde(serialize_with = "num")]
    pub errors: f64,
    /// (calls − errors) / calls.
    #[serde(serialize_with = "opt_num")]
    pub success_rate: Option<f64>,
    /// errors / calls.
    #[serde(serialize_with = "opt_num")]
    pub error_rate: Option<f64>,
    /// Percentage of calls served from cache (`cache=hit` or `stale`).
    #[serde(serialize_with = "opt_num")]
    pub cached_pct: Option<f64>,
    /// Percentage of calls that were batched (`batched=true`).
    #[serde(serialize_with = "opt_num")]
    pub batched_pct: Option<f64>,
    /// Mean requests per batched call (`op.batch.size`).
    #[serde(serialize_with = "opt_num")]
    pub batch_efficiency: Option<f64>,
    /// Retries (`op.retries`), not counted as calls.
    #[serde(serialize_with = "num")]
    pub retries: f64,
    /// Time spent in calls, seconds.
    #[serde(serialize_with = "num")]
    pub total_time_s: f64,
    /// Latency, ms; null with no calls.
    pub latency_ms: Option<Latency>,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Fastest call.
    #[serde(serialize_with = "num")]
    pub min: f64,
    /// Mean.
    #[serde(serialize_with = "num")]
    pub avg: f64,
    /// Median (nearest rank, within the sketch's 1 %).
    #[serde(serialize_with = "num")]
    pub p50: f64,
    /// 95th percentile.
    #[serde(serialize_with = "num")]
    pub p95: f64,
    /// 99th percentile.
    #[serde(serialize_with = "num")]
    pub p99: f64,
    /// Slowest call.
    #[serde(serialize_with = "num")]
    pub max: f64,
}

/// Overall figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overall {
    /// Calls of every selected operation.
    #[serde(flatten)]
    pub calls: Calls,
    /// Every cache (`cache.requests`, `cache.refresh`).
    pub cache: Option<Cache>,
    /// Every connection pool (`pool.acquire`, `pool.evictions`).
    pub pool: Option<Pool>,
}

/// Cache lookups.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cache {
    /// Lookups.
    #[serde(serialize_with = "num")]
    pub requests: f64,
    /// Fresh hits.
    #[serde(serialize_with = "num")]
    pub hits: f64,
    /// Stale hits (served from cache while it refreshes).
    #[serde(serialize_with = "num")]
    pub stale_hits: f64,
    /// Misses.
    #[serde(serialize_with = "num")]
    pub misses: f64,
    /// (hits + stale hits) / lookups.
    #[serde(serialize_with = "opt_num")]
    pub hit_rate: Option<f64>,
    /// Background refreshes.
    #[serde(serialize_with = "num")]
    pub refreshes: f64,
}

/// Connection-pool checkouts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pool {
    /// Checkouts.
    #[serde(serialize_with = "num")]
    pub acquires: f64,
    /// Checkouts served by an idle connection.
    #[serde(serialize_with = "num")]
    pub hits: f64,
    /// Checkouts that had to connect.
    #[serde(serialize_with = "num")]
    pub misses: f64,
    /// hits / checkouts.
    #[serde(serialize_with = "opt_num")]
    pub hit_rate: Option<f64>,
    /// Connections evicted.
    #[serde(serialize_with = "num")]
    pub evictions: f64,
}

/// One operation.
#[derive(Debug, Clone, Serialize)]
pub struct OpStats {
    /// Operation name (`op` tag; `(none)` for calls without one).
    pub op: String,
    /// The `--by` tag and its value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<BTreeMap<String, String>>,
    /// Its calls.
    #[serde(flatten)]
    pub calls: Calls,
    /// The latest error message recorded for it in the window.
    pub last_error: Option<String>,
    /// When, RFC 3339.
    pub last_error_at: Option<String>,
}

/// The host, from the sampler's series.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Host {
    /// Mean CPU utilization, % of the cores (or of the cgroup's limit).
    #[serde(serialize_with = "opt_num")]
    pub cpu_avg_pct: Option<f64>,
    /// Highest flush-interval CPU utilization.
    #[serde(serialize_with = "opt_num")]
    pub cpu_peak_pct: Option<f64>,
    /// Cores available (the cgroup's limit when there is one).
    #[serde(serialize_with = "opt_num")]
    pub cpu_cores: Option<f64>,
    /// Mean memory utilization, % of the limit.
    #[serde(serialize_with = "opt_num")]
    pub mem_avg_pct: Option<f64>,
    /// Peak memory utilization.
    #[serde(serialize_with = "opt_num")]
    pub mem_peak_pct: Option<f64>,
    /// Peak memory used, bytes.
    #[serde(serialize_with = "opt_num")]
    pub mem_peak_bytes: Option<f64>,
    /// Memory limit (the cgroup's, or the machine's), bytes.
    #[serde(serialize_with = "opt_num")]
    pub mem_limit_bytes: Option<f64>,
    /// Filesystems, fullest first.
    pub disks: Vec<Disk>,
    /// Bytes read from disks.
    #[serde(serialize_with = "opt_num")]
    pub disk_read_bytes: Option<f64>,
    /// Bytes written to disks.
    #[serde(serialize_with = "opt_num")]
    pub disk_write_bytes: Option<f64>,
    /// Bytes received on network interfaces (loopback excluded).
    #[serde(serialize_with = "opt_num")]
    pub net_receive_bytes: Option<f64>,
    /// Bytes sent.
    #[serde(serialize_with = "opt_num")]
    pub net_transmit_bytes: Option<f64>,
}

/// One filesystem.
#[derive(Debug, Clone, Serialize)]
pub struct Disk {
    /// Mount point.
    pub mountpoint: String,
    /// Used at the end of the window, %.
    #[serde(serialize_with = "num")]
    pub used_pct: f64,
    /// Highest use in the window, %.
    #[serde(serialize_with = "num")]
    pub peak_pct: f64,
    /// Used at the end of the window, bytes.
    #[serde(serialize_with = "opt_num")]
    pub used_bytes: Option<f64>,
}

/// A circuit breaker that was open in the window.
#[derive(Debug, Clone, Serialize)]
pub struct CircuitOpen {
    /// Its name (`circuit` tag).
    pub circuit: String,
    /// Seconds it was open (flush intervals whose state reached 2).
    #[serde(serialize_with = "num")]
    pub open_s: f64,
    /// Times it opened (`circuit.transitions{to="open"}`).
    #[serde(serialize_with = "num")]
    pub opened: f64,
}

/// A target not met.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// `p95`, `p99`, `error_rate`, `cpu` or `memory`.
    pub target: &'static str,
    /// The operation (null for host targets).
    pub op: Option<String>,
    /// Measured.
    #[serde(serialize_with = "num")]
    pub value: f64,
    /// The limit.
    #[serde(serialize_with = "num")]
    pub threshold: f64,
    /// `ms`, `ratio` or `pct`.
    pub unit: &'static str,
}

/// Per-operation sums while reading.
#[derive(Debug, Default)]
struct Acc {
    calls: f64,
    errors: f64,
    cached: f64,
    batched: f64,
    retries: f64,
    durations: Option<Point>,
    batch: Option<Point>,
}

impl Acc {
    fn absorb(&mut self, o: &Acc) {
        self.calls += o.calls;
        self.errors += o.errors;
        self.cached += o.cached;
        self.batched += o.batched;
        self.retries += o.retries;
        merge(&mut self.durations, o.durations.as_ref());
        merge(&mut self.batch, o.batch.as_ref());
    }

    fn calls(&self) -> Calls {
        let n = self.calls;
        let of = |x: f64| (n > 0.0).then(|| x / n);
        Calls {
            calls: n,
            errors: self.errors,
            success_rate: of(n - self.errors),
            error_rate: of(self.errors),
            cached_pct: of(self.cached).map(|r| r * 100.0),
            batched_pct: of(self.batched).map(|r| r * 100.0),
            batch_efficiency: self.batch.as_ref().and_then(Point::avg),
            retries: self.retries,
            total_time_s: self.durations.as_ref().map_or(0.0, |p| p.sum),
            latency_ms: self.durations.as_ref().filter(|p| p.count > 0.0).map(|p| {
                let q = |q: f64| p.quantile(q).unwrap_or(f64::NAN) * 1000.0;
                Latency {
                    min: p.min * 1000.0,
                    avg: p.sum / p.count * 1000.0,
                    p50: q(0.50),
                    p95: q(0.95),
                    p99: q(0.99),
                    max: p.max * 1000.0,
                }
            }),
        }
    }
}

fn merge(acc: &mut Option<Point>, p: Option<&Point>) {
    if let Some(p) = p {
        match acc {
            Some(a) => a.merge(p),
            None => *acc = Some(p.clone()),
        }
    }
}

/// The names `stats` reads.
const NAMES: &[&str] = &[
    "op.duration",
    "op.retries",
    "op.batch.size",
    "cache.requests",
    "cache.refresh",
    "pool.acquire",
    "pool.evictions",
    "system.cpu.utilization",
    "system.cpu.logical_cpus",
    "container.cpu.limit",
    "system.memory.utilization",
    "system.memory.usage",
    "system.memory.limit",
    "system.filesystem.utilization",
    "system.filesystem.usage",
    "system.disk.io",
    "system.network.io",
    "circuit.transitions",
];

/// Read the store and compute the report.
pub fn collect(db: &Path, opts: &Options, targets: &Targets) -> anyhow::Result<Report> {
    let mut reader = Reader::open(db)?;
    let snap = reader.snapshot()?;
    let all = snap.series(&Selector::default()).with_context(|| format!("listing series in {}", db.display()))?;
    let wanted: Vec<SeriesInfo> = all.into_iter().filter(|s| NAMES.contains(&s.key.name.as_str())).collect();
    let points = snap.aggregate_many(&wanted, opts.range)?;

    let op_of = |s: &SeriesInfo| s.key.get("op").unwrap_or("(none)").to_owned();
    let keep_op = |op: &str| opts.op.as_deref().is_none_or(|g| glob_match(g, op));
    let group_of = |s: &SeriesInfo| opts.by.as_deref().map(|t| s.key.get(t).unwrap_or("").to_owned());

    let mut ops: BTreeMap<(Option<String>, String), Acc> = BTreeMap::new();
    let mut cache = Cache::default();
    let mut pool = Pool::default();
    let (mut has_cache, mut has_pool) = (false, false);
    let mut host_points: HashMap<&str, Vec<(&SeriesInfo, &Point)>> = HashMap::new();
    for (s, p) in wanted.iter().zip(&points) {
        let Some(p) = p else { continue };
        let result = s.key.get("result").unwrap_or("");
        match s.key.name.as_str() {
            "op.duration" | "op.retries" | "op.batch.size" => {
                let op = op_of(s);
                if !keep_op(&op) {
                    continue;
                }
                let acc = ops.entry((group_of(s), op)).or_default();
                match s.key.name.as_str() {
                    "op.duration" => {
                        acc.calls += p.count;
                        if s.key.get("outcome") == Some("error") {
                            acc.errors += p.count;
                        }
                        if matches!(s.key.get("cache"), Some("hit" | "stale")) {
                            acc.cached += p.count;
                        }
                        if s.key.get("batched") == Some("true") {
                            acc.batched += p.count;
                        }
                        merge(&mut acc.durations, Some(p));
                    }
                    "op.retries" => acc.retries += p.sum,
                    _ => merge(&mut acc.batch, Some(p)),
                }
            }
            "cache.requests" => {
                has_cache = true;
                cache.requests += p.sum;
                match result {
                    "hit" => cache.hits += p.sum,
                    "stale" => cache.stale_hits += p.sum,
                    "miss" => cache.misses += p.sum,
                    _ => {}
                }
            }
            "cache.refresh" => {
                has_cache = true;
                cache.refreshes += p.sum;
            }
            "pool.acquire" => {
                has_pool = true;
                pool.acquires += p.sum;
                match result {
                    "hit" => pool.hits += p.sum,
                    "miss" => pool.misses += p.sum,
                    _ => {}
                }
            }
            "pool.evictions" => {
                has_pool = true;
                pool.evictions += p.sum;
            }
            name => host_points.entry(name).or_default().push((s, p)),
        }
    }
    cache.hit_rate = (cache.requests > 0.0).then(|| (cache.hits + cache.stale_hits) / cache.requests);
    pool.hit_rate = (pool.acquires > 0.0).then(|| pool.hits / pool.acquires);

    let mut total = Acc::default();
    for acc in ops.values() {
        total.absorb(acc);
    }

    // The latest error per operation (and group, when grouping by service).
    let events = snap.last_events(perfstore::EventKind::Error, opts.range)?;
    let mut last_error: HashMap<(Option<String>, String), (i64, String)> = HashMap::new();
    for e in events {
        let group = opts.by.as_deref().map(|t| if t == "service" { e.service.clone() } else { String::new() });
        let slot = last_error.entry((group, e.op.clone())).or_insert((i64::MIN, String::new()));
        if e.ts_ms > slot.0 {
            *slot = (e.ts_ms, e.message);
        }
    }

    let mut op_rows: Vec<OpStats> = ops
        .into_iter()
        .map(|((group, op), acc)| {
            let err = last_error.get(&(group.clone(), op.clone()));
            OpStats {
                group: group.map(|g| BTreeMap::from([(opts.by.clone().unwrap_or_default(), g)])),
                calls: acc.calls(),
                last_error: err.map(|e| e.1.clone()),
                last_error_at: err.map(|e| rfc3339(e.0)),
                op,
            }
        })
        .collect();
    op_rows.sort_by(|a, b| {
        b.calls.total_time_s.total_cmp(&a.calls.total_time_s).then_with(|| a.op.cmp(&b.op)).then(a.group.cmp(&b.group))
    });

    let host = host(&host_points);
    if op_rows.is_empty() && host.is_none() && !has_cache && !has_pool {
        let what = opts.op.as_deref().map_or(String::new(), |g| format!(" for operations matching '{g}'"));
        return Err(crate::window::no_data(&what, opts.range, db, None, snap.newest_ms()?));
    }
    let circuits = circuits(&snap, &wanted, &points, opts.range)?;
    let violations = violations(&op_rows, host.as_ref(), targets);
    Ok(Report {
        db: db.display().to_string(),
        schema_version: snap.schema_version()?,
        window: Window { since: rfc3339(opts.range.start_ms), until: rfc3339(opts.range.end_ms) },
        overall: Overall { calls: total.calls(), cache: has_cache.then_some(cache), pool: has_pool.then_some(pool) },
        ops: op_rows,
        host,
        circuits,
        violations,
        targets: targets.clone(),
    })
}

/// Open time per breaker: the flush intervals in which `circuit.state` reached 2 (open), each
/// counted for the spacing of its series' points.
fn circuits(
    snap: &perfstore::Snapshot<'_>,
    wanted: &[SeriesInfo],
    points: &[Option<Point>],
    range: TimeRange,
) -> anyhow::Result<Vec<CircuitOpen>> {
    let mut out: BTreeMap<String, CircuitOpen> = BTreeMap::new();
    for s in snap.series(&Selector::name("circuit.state"))? {
        let name = s.key.get("circuit").unwrap_or("").to_owned();
        let steps = snap.range(&s, range, 1000)?.steps;
        let mut gaps: Vec<i64> = steps.windows(2).map(|w| w[1].0 - w[0].0).filter(|g| *g > 0).collect();
        gaps.sort_unstable();
        let spacing = gaps.get(gaps.len() / 2).copied().unwrap_or(1000) as f64 / 1000.0;
        let open = steps.iter().filter(|(_, p)| p.max >= 2.0).count() as f64 * spacing;
        let e = out.entry(name.clone()).or_insert(CircuitOpen { circuit: name, open_s: 0.0, opened: 0.0 });
        e.open_s += open;
    }
    for (s, p) in wanted.iter().zip(points) {
        if s.key.name == "circuit.transitions"
            && s.key.get("to") == Some("open")
            && let Some(p) = p
        {
            let name = s.key.get("circuit").unwrap_or("").to_owned();
            out.entry(name.clone()).or_insert(CircuitOpen { circuit: name, open_s: 0.0, opened: 0.0 }).opened += p.sum;
        }
    }
    Ok(out.into_values().filter(|c| c.open_s > 0.0 || c.opened > 0.0).collect())
}

fn host(points: &HashMap<&str, Vec<(&SeriesInfo, &Point)>>) -> Option<Host> {
    let merged = |name: &str| -> Option<Point> {
        let mut acc = None;
        for (_, p) in points.get(name)? {
            merge(&mut acc, Some(p));
        }
        acc
    };
    let cpu = merged("system.cpu.utilization");
    let mem = merged("system.memory.utilization");
    if cpu.is_none() && mem.is_none() {
        return None;
    }
    let by_label = |name: &str, label: &str| -> BTreeMap<String, Vec<&Point>> {
        let mut m: BTreeMap<String, Vec<&Point>> = BTreeMap::new();
        for (s, p) in points.get(name).into_iter().flatten() {
            m.entry(s.key.get(label).unwrap_or("").to_owned()).or_default().push(p);
        }
        m
    };
    let used: BTreeMap<String, f64> = by_label("system.filesystem.usage", "mountpoint")
        .into_iter()
        .filter_map(|(m, ps)| ps.iter().max_by_key(|p| p.last_ts_ms).map(|p| (m, p.last)))
        .collect();
    let mut disks: Vec<Disk> = by_label("system.filesystem.utilization", "mountpoint")
        .into_iter()
        .filter_map(|(m, ps)| {
            let last = ps.iter().max_by_key(|p| p.last_ts_ms)?;
            let peak = ps.iter().map(|p| p.max).fold(f64::MIN, f64::max);
            Some(Disk {
                used_bytes: used.get(&m).copied(),
                used_pct: last.last * 100.0,
                peak_pct: peak * 100.0,
                mountpoint: m,
            })
        })
        .collect();
    disks.sort_by(|a, b| b.peak_pct.total_cmp(&a.peak_pct).then_with(|| a.mountpoint.cmp(&b.mountpoint)));
    let io = |name: &str, direction: &str| -> Option<f64> {
        points
            .get(name)?
            .iter()
            .filter(|(s, _)| s.key.get("direction") == Some(direction) && s.key.get("device") != Some("lo"))
            .map(|(_, p)| p.sum)
            .reduce(|a, b| a + b)
    };
    let last = |name: &str| merged(name).map(|p| p.last);
    Some(Host {
        cpu_avg_pct: cpu.as_ref().and_then(Point::avg).map(|v| v * 100.0),
        cpu_peak_pct: cpu.as_ref().map(|p| p.max * 100.0),
        cpu_cores: last("container.cpu.limit").or_else(|| last("system.cpu.logical_cpus")),
        mem_avg_pct: mem.as_ref().and_then(Point::avg).map(|v| v * 100.0),
        mem_peak_pct: mem.as_ref().map(|p| p.max * 100.0),
        mem_peak_bytes: merged("system.memory.usage").map(|p| p.max),
        mem_limit_bytes: last("system.memory.limit"),
        disks,
        disk_read_bytes: io("system.disk.io", "read"),
        disk_write_bytes: io("system.disk.io", "write"),
        net_receive_bytes: io("system.network.io", "receive"),
        net_transmit_bytes: io("system.network.io", "transmit"),
    })
}

fn violations(ops: &[OpStats], host: Option<&Host>, targets: &Targets) -> Vec<Violation> {
    let mut out = Vec::new();
    for o in ops {
        let t = targets.for_op(&o.op);
        let op = Some(o.op.clone());
        if let Some(l) = &o.calls.latency_ms {
            for (name, value, limit) in [("p95", l.p95, t.p95_ms), ("p99", l.p99, t.p99_ms)] {
                if let Some(limit) = limit.filter(|&limit| value > limit) {
                    out.push(Violation { target: name, op: op.clone(), value, threshold: limit, unit: "ms" });
                }
            }
        }
        if let (Some(rate), Some(limit)) = (o.calls.error_rate, t.error_rate)
            && rate > limit
        {
            out.push(Violation { target: "error_rate", op, value: rate, threshold: limit, unit: "ratio" });
        }
    }
    if let Some(h) = host {
        if let (Some(v), Some(limit)) = (h.cpu_avg_pct, targets.cpu_pct)
            && v > limit
        {
            out.push(Violation { target: "cpu", op: None, value: v, threshold: limit, unit: "pct" });
        }
        if let (Some(v), Some(limit)) = (h.mem_peak_pct, targets.memory_pct)
            && v > limit
        {
            out.push(Violation { target: "memory", op: None, value: v, threshold: limit, unit: "pct" });
        }
    }
    out
}

fn violation_text(v: &Violation) -> String {
    let (what, value, limit) = match v.target {
        "p95" | "p99" => (v.target.to_string(), ms(v.value), ms(v.threshold)),
        "error_rate" => ("error rate".into(), pct(v.value * 100.0), pct(v.threshold * 100.0)),
        "cpu" => ("mean CPU".into(), pct(v.value), pct(v.threshold)),
        _ => ("peak memory".into(), pct(v.value), pct(v.threshold)),
    };
    match &v.op {
        Some(op) => format!("{} {what} {value} > {limit}", cell(op, 60)),
        None => format!("{what} {value} > {limit}"),
    }
}

fn window_len(r: &Report) -> String {
    let parse = |s: &str| humantime::parse_rfc3339(s).ok();
    let Some(secs) = parse(&r.window.since)
        .zip(parse(&r.window.until))
        .and_then(|(a, b)| b.duration_since(a).ok())
        .map(|d| d.as_secs())
    else {
        return String::new();
    };
    let text = match secs {
        s if s % 86_400 == 0 && s > 3 * 86_400 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => humantime::format_duration(std::time::Duration::from_secs(s)).to_string(),
    };
    format!(" ({text})")
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

/// Print the report.
pub fn render(r: &Report, format: Format, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, r)?;
            writeln!(out)
        }
        Format::Csv => render_csv(r, out),
        Format::Table => render_table(r, paint, out),
    }
}

fn render_csv(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let by = r.ops.iter().find_map(|o| o.group.as_ref()).and_then(|g| g.keys().next().cloned());
    write!(out, "op,")?;
    if let Some(by) = &by {
        write!(out, "{},", csv_field(by))?;
    }
    writeln!(
        out,
        "calls,errors,success_rate,cached_pct,batched_pct,batch_efficiency,retries,total_time_s,\
         min_ms,avg_ms,p50_ms,p95_ms,p99_ms,max_ms,last_error"
    )?;
    let n = |v: Option<f64>| v.map_or(String::new(), |v| format!("{}", round(v)));
    let row = |out: &mut dyn Write, op: &str, group: Option<&str>, c: &Calls, err: Option<&str>| {
        write!(out, "{},", csv_field(op))?;
        if by.is_some() {
            write!(out, "{},", csv_field(group.unwrap_or("")))?;
        }
        let l = c.latency_ms.as_ref();
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            n(Some(c.calls)),
            n(Some(c.errors)),
            n(c.success_rate),
            n(c.cached_pct),
            n(c.batched_pct),
            n(c.batch_efficiency),
            n(Some(c.retries)),
            n(Some(c.total_time_s)),
            n(l.map(|l| l.min)),
            n(l.map(|l| l.avg)),
            n(l.map(|l| l.p50)),
            n(l.map(|l| l.p95)),
            n(l.map(|l| l.p99)),
            n(l.map(|l| l.max)),
            csv_field(err.unwrap_or(""))
        )
    };
    row(out, "(all)", None, &r.overall.calls, None)?;
    for o in &r.ops {
        let g = o.group.as_ref().and_then(|g| g.values().next()).map(String::as_str);
        row(out, &o.op, g, &o.calls, o.last_error.as_deref())?;
    }
    Ok(())
}

fn render_table(r: &Report, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    let label = |s: &str| paint.bold(&format!("{s:<9}"));
    writeln!(out, "{} {} → {}{}   store {}", label("Window"), r.window.since, r.window.until, window_len(r), r.db)?;
    writeln!(out)?;
    let c = &r.overall.calls;
    if c.calls > 0.0 || c.retries > 0.0 {
        writeln!(
            out,
            "{} {} (errors {}, success {}, retries {})",
            label("Calls"),
            count(c.calls),
            count(c.errors),
            opt(c.success_rate, |v| pct(v * 100.0)),
            count(c.retries)
        )?;
        let batch = c.batch_efficiency.map_or(String::new(), |v| format!(", {v:.1} requests per batch"));
        writeln!(
            out,
            "{} {} of calls; batched {} of calls{batch}",
            label("Cached"),
            opt(c.cached_pct, pct),
            opt(c.batched_pct, pct)
        )?;
        if let Some(l) = &c.latency_ms {
            writeln!(
                out,
                "{} min {}  avg {}  p50 {}  p95 {}  p99 {}  max {}   (total {})",
                label("Latency"),
                ms(l.min),
                ms(l.avg),
                ms(l.p50),
                ms(l.p95),
                ms(l.p99),
                ms(l.max),
                seconds(c.total_time_s)
            )?;
        }
    } else {
        writeln!(out, "{} {}", label("Calls"), paint.dim("no operation calls in the window (no op.duration data)"))?;
    }
    if let Some(k) = &r.overall.cache {
        writeln!(
            out,
            "{} hit rate {} (hits {}, stale {}, misses {}), {} refreshes",
            label("Cache"),
            opt(k.hit_rate, |v| pct(v * 100.0)),
            count(k.hits),
            count(k.stale_hits),
            count(k.misses),
            count(k.refreshes)
        )?;
    }
    if let Some(p) = &r.overall.pool {
        writeln!(
            out,
            "{} hit rate {} ({} of {} checkouts reused a connection), {} evictions",
            label("Pool"),
            opt(p.hit_rate, |v| pct(v * 100.0)),
            count(p.hits),
            count(p.acquires),
            count(p.evictions)
        )?;
    }

    if !r.ops.is_empty() {
        writeln!(out)?;
        let by = r.ops.iter().find_map(|o| o.group.as_ref()).and_then(|g| g.keys().next().cloned());
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header: Vec<String> = vec!["OPERATION".into()];
        if let Some(by) = &by {
            header.push(by.to_uppercase());
        }
        header.extend(
            ["CALLS", "ERR%", "CACHED", "BATCHED", "RETRIES", "TOTAL", "AVG", "P50", "P95", "P99", "MAX", "LAST ERROR"]
                .map(String::from),
        );
        for o in &r.ops {
            let c = &o.calls;
            let l = c.latency_ms.as_ref();
            let mut row = vec![cell(&o.op, 40)];
            if by.is_some() {
                row.push(cell(o.group.as_ref().and_then(|g| g.values().next()).map_or("", String::as_str), 24));
            }
            row.extend([
                count(c.calls),
                opt(c.error_rate, |v| pct(v * 100.0)),
                opt(c.cached_pct, pct),
                opt(c.batched_pct, pct),
                count(c.retries),
                seconds(c.total_time_s),
                opt(l, |l| ms(l.avg)),
                opt(l, |l| ms(l.p50)),
                opt(l, |l| ms(l.p95)),
                opt(l, |l| ms(l.p99)),
                opt(l, |l| ms(l.max)),
                o.last_error.as_deref().map_or(String::new(), |e| cell(e, 60)),
            ]);
            rows.push(row);
        }
        let cols = header.len();
        let widths: Vec<usize> = (0..cols)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
            .collect();
        // Text columns (names, last error) align left; numbers right.
        let left = |i: usize| i == 0 || (by.is_some() && i == 1) || i == cols - 1;
        let line = |cells: &[String]| -> String {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = widths[i].saturating_sub(c.chars().count());
                if left(i) {
                    s.push_str(c);
                    if i + 1 < cols {
                        s.push_str(&" ".repeat(pad));
                    }
                } else {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                }
            }
            s.trim_end().to_owned()
        };
        writeln!(out, "{}", paint.bold(&line(&header)))?;
        for row in &rows {
            writeln!(out, "{}", line(row))?;
        }
    }

    for c in &r.circuits {
        writeln!(
            out,
            "{} {} open {} (opened {} times)",
            label("Circuit"),
            cell(&c.circuit, 40),
            seconds(c.open_s),
            count(c.opened)
        )?;
    }

    if let Some(h) = &r.host {
        writeln!(out)?;
        let cores = h.cpu_cores.map_or(String::new(), |c| format!(" of {} cores", count(c)));
        writeln!(
            out,
            "{} CPU avg {}, peak {}{cores}; memory avg {}, peak {}{}",
            label("Host"),
            opt(h.cpu_avg_pct, pct),
            opt(h.cpu_peak_pct, pct),
            opt(h.mem_avg_pct, pct),
            opt(h.mem_peak_pct, pct),
            h.mem_limit_bytes.map_or(String::new(), |b| format!(" of {}", bytes(b)))
        )?;
        let disks: Vec<String> =
            h.disks.iter().take(3).map(|d| format!("{} {} used", cell(&d.mountpoint, 40), pct(d.used_pct))).collect();
        let mut io = Vec::new();
        if let (Some(r), Some(w)) = (h.disk_read_bytes, h.disk_write_bytes) {
            io.push(format!("disk read {}, written {}", bytes(r), bytes(w)));
        }
        if let (Some(r), Some(t)) = (h.net_receive_bytes, h.net_transmit_bytes) {
            io.push(format!("network in {}, out {}", bytes(r), bytes(t)));
        }
        if !disks.is_empty() {
            writeln!(out, "{} {}", label(""), disks.join(", "))?;
        }
        if !io.is_empty() {
            writeln!(out, "{} {}", label(""), io.join("; "))?;
        }
    }

    writeln!(out)?;
    let t = &r.targets.ops;
    let mut checked = Vec::new();
    if let Some(v) = t.p95_ms {
        checked.push(format!("p95 ≤ {}", ms(v)));
    }
    if let Some(v) = t.p99_ms {
        checked.push(format!("p99 ≤ {}", ms(v)));
    }
    if let Some(v) = t.error_rate {
        checked.push(format!("error rate ≤ {}", pct(v * 100.0)));
    }
    if let Some(v) = r.targets.cpu_pct {
        checked.push(format!("mean CPU ≤ {}", pct(v)));
    }
    if let Some(v) = r.targets.memory_pct {
        checked.push(format!("peak memory ≤ {}", pct(v)));
    }
    if !r.targets.overrides.is_empty() {
        checked.push(format!("{} per-operation overrides", r.targets.overrides.len()));
    }
    if r.violations.is_empty() {
        writeln!(out, "{} all met ({})", label("Targets"), checked.join(", "))?;
    } else {
        let n = r.violations.len();
        writeln!(out, "{} {}", label("Targets"), paint.red(&format!("{n} violated")))?;
        for v in &r.violations {
            writeln!(out, "{} {}", label(""), paint.red(&violation_text(v)))?;
        }
    }
    Ok(())
}
