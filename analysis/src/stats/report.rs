//! The `stats` report: what `perfctl stats --format json` prints and the dashboard's
//! `/api/v1/stats` returns.
//!
//! `{db, schema_version, window {since, until}, overall {calls, errors, success_rate,
//! error_rate, cached_pct, batched_pct, batch_efficiency, retries, total_time_s, latency_ms
//! {min, avg, p50, p95, p99, max} | null, cache {…} | null, pool {…} | null}, ops [{op,
//! group?, …same as overall without cache and pool…, last_error, last_error_at}], host {…} |
//! null, circuits [{circuit, open_s, opened}], violations [{target, op, value, threshold,
//! unit}]}`. `*_rate` are ratios 0–1, `*_pct` are 0–100, `calls` excludes retries,
//! `batch_efficiency` is the mean number of requests per batched call, `latency_ms` is null
//! with no calls.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::targets::Targets;
use crate::time::Window;

/// A whole number as an integer, anything else rounded to six decimals: stable JSON.
pub(crate) fn num<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9e15 { s.serialize_i64(*v as i64) } else { s.serialize_f64(round6(*v)) }
}

pub(crate) fn opt_num<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => num(v, s),
        None => s.serialize_none(),
    }
}

/// Six decimals are plenty for a report and keep the JSON stable.
pub fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
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

impl OpStats {
    /// The value of the `--by` tag, when grouping.
    pub fn group_value(&self) -> Option<&str> {
        self.group.as_ref().and_then(|g| g.values().next()).map(String::as_str)
    }
}

impl Report {
    /// The `--by` tag, when the operations are grouped.
    pub fn group_key(&self) -> Option<&str> {
        self.ops.iter().find_map(|o| o.group.as_ref()).and_then(|g| g.keys().next()).map(String::as_str)
    }
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

/// Which target a [`Violation`] is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// An operation's p95 latency.
    P95,
    /// An operation's p99 latency.
    P99,
    /// An operation's error rate.
    ErrorRate,
    /// The host's mean CPU utilization.
    Cpu,
    /// The host's peak memory utilization.
    Memory,
    /// An operation's retries per call (above the ceiling).
    RetryRate,
    /// A cache's hit rate (below the floor; the `op` field names the cache).
    CacheHitRate,
    /// How long a circuit breaker was open (the `op` field names the circuit).
    CircuitOpen,
    /// The trend target: days until a resource's projected peak reaches the capacity target
    /// (the `op` field names the resource: `cpu`, `memory`, `disk:/`, …; 0 when already there).
    Capacity,
}

/// The unit of a [`Violation`]'s value and threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// A ratio, 0–1.
    Ratio,
    /// A percentage, 0–100.
    Pct,
    /// Seconds.
    S,
    /// Days.
    Days,
}

impl TargetKind {
    /// The unit its values are in.
    pub fn unit(self) -> Unit {
        match self {
            TargetKind::P95 | TargetKind::P99 => Unit::Ms,
            TargetKind::ErrorRate | TargetKind::RetryRate | TargetKind::CacheHitRate => Unit::Ratio,
            TargetKind::Cpu | TargetKind::Memory => Unit::Pct,
            TargetKind::CircuitOpen => Unit::S,
            TargetKind::Capacity => Unit::Days,
        }
    }
}

/// A target not met.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// Which target.
    pub target: TargetKind,
    /// The operation (the circuit for `circuit_open`, the cache for `cache_hit_rate`, the
    /// resource for `capacity`; null for host targets).
    pub op: Option<String>,
    /// Measured.
    #[serde(serialize_with = "num")]
    pub value: f64,
    /// The limit.
    #[serde(serialize_with = "num")]
    pub threshold: f64,
    /// The unit of both.
    pub unit: Unit,
}

impl Violation {
    /// `target` measured `value` against `threshold`.
    pub fn new(target: TargetKind, op: Option<String>, value: f64, threshold: f64) -> Self {
        Self { target, op, value, threshold, unit: target.unit() }
    }

    /// In words, as `stats` and alerts say it: `vm.list p95 1.2s > 200ms`, `vm-cache cache
    /// hit rate 32% < 50%`, `cpu reaches 70% of capacity in ≤ 244 days (target: not
    /// within 300 days)`. Names are cleaned for a terminal and cut at 60 characters.
    pub fn describe(&self, targets: &Targets) -> String {
        use crate::human::{ms, pct, seconds};
        let name = self.op.as_deref().map(|n| {
            let n = crate::human::clean(n);
            if n.chars().count() <= 60 { n } else { n.chars().take(59).chain(['…']).collect() }
        });
        let (v, t) = (self.value, self.threshold);
        let (what, value, limit) = match self.target {
            TargetKind::P95 => ("p95", ms(v), ms(t)),
            TargetKind::P99 => ("p99", ms(v), ms(t)),
            TargetKind::ErrorRate => ("error rate", pct(v * 100.0), pct(t * 100.0)),
            TargetKind::Cpu => ("mean CPU", pct(v), pct(t)),
            TargetKind::Memory => ("peak memory", pct(v), pct(t)),
            TargetKind::RetryRate => ("retries per call", format!("{v:.3}"), format!("{t:.3}")),
            TargetKind::CacheHitRate => ("cache hit rate", pct(v * 100.0), pct(t * 100.0)),
            TargetKind::CircuitOpen => ("open for", seconds(v), seconds(t)),
            TargetKind::Capacity => {
                let when = if v <= 0.0 { "already".to_owned() } else { format!("in ≤ {v:.0} days") };
                let what = format!("reaches {} of capacity {when}", pct(targets.capacity_target * 100.0));
                return match name {
                    Some(res) => format!("{res} {what} (target: not within {t:.0} days)"),
                    None => what,
                };
            }
        };
        // A floor is violated from below.
        let cmp = if self.target == TargetKind::CacheHitRate { "<" } else { ">" };
        match name {
            Some(op) if self.target == TargetKind::CircuitOpen => format!("circuit {op} {what} {value} {cmp} {limit}"),
            Some(op) => format!("{op} {what} {value} {cmp} {limit}"),
            None => format!("{what} {value} {cmp} {limit}"),
        }
    }

    /// The target's name as `[targets]` spells it (`p95`, `cache_hit_rate`, `capacity`).
    pub fn name(&self) -> &'static str {
        self.target.name()
    }
}

impl TargetKind {
    /// As `[targets]` and the JSON spell it.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::P95 => "p95",
            TargetKind::P99 => "p99",
            TargetKind::ErrorRate => "error_rate",
            TargetKind::Cpu => "cpu",
            TargetKind::Memory => "memory",
            TargetKind::RetryRate => "retry_rate",
            TargetKind::CacheHitRate => "cache_hit_rate",
            TargetKind::CircuitOpen => "circuit_open",
            TargetKind::Capacity => "capacity",
        }
    }
}
