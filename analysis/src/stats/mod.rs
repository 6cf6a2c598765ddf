//! `stats`: what the recorded operations did over a window: calls, cached %, batched %,
//! success rate, retries, latency (from merged sketches), cache and pool hit rates, the host,
//! open circuits, and which targets are violated.
//!
//! Everything is derived from the metric convention ([`perfstore::convention`]). Ratios are
//! Σ/Σ over the window; quantiles come from merging the stored sketches (within 1 % of the
//! nearest-rank value). [`gather`] reads what is needed from a store snapshot into an
//! [`Input`]; [`compute`] turns an input into the [`Report`] without touching a database, so
//! it can be tested on hand-built inputs (and fed from other sources).

mod compute;
mod report;

use std::collections::BTreeMap;
use std::path::Path;

use perfstore::convention::{self as conv, Metric};
use perfstore::{Event, EventKind, Point, Selector, SeriesKey, Snapshot, Tier, TimeRange};

use crate::targets::Targets;

pub use compute::compute;
pub use report::{
    Cache, Calls, CircuitOpen, Disk, Host, Latency, OpStats, Overall, Pool, Report, TargetKind, Unit, Violation, round6,
};

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

/// Everything `stats` needs, read from a store (or built by hand).
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// Store path, as shown.
    pub db: String,
    /// Store schema version.
    pub schema_version: i64,
    /// The newest data in the store (for the "no data" message).
    pub newest_ms: Option<i64>,
    /// Each series `stats` reads, aggregated over the window (series without data left out).
    pub series: Vec<(SeriesKey, Point)>,
    /// The latest error of each (service, operation) in the window.
    pub last_errors: Vec<Event>,
    /// Seconds each circuit breaker was open in the window.
    pub circuit_open_s: BTreeMap<String, f64>,
}

/// The metrics `stats` reads.
pub const METRICS: &[Metric] = &[
    conv::OP_DURATION,
    conv::OP_RETRIES,
    conv::OP_BATCH_SIZE,
    conv::CACHE_REQUESTS,
    conv::CACHE_REFRESH,
    conv::POOL_ACQUIRE,
    conv::POOL_EVICTIONS,
    conv::SYSTEM_CPU_UTILIZATION,
    conv::SYSTEM_CPU_LOGICAL_COUNT,
    conv::CONTAINER_CPU_LIMIT,
    conv::SYSTEM_MEMORY_UTILIZATION,
    conv::SYSTEM_MEMORY_USAGE,
    conv::SYSTEM_MEMORY_LIMIT,
    conv::SYSTEM_FILESYSTEM_UTILIZATION,
    conv::SYSTEM_FILESYSTEM_USAGE,
    conv::SYSTEM_DISK_IO,
    conv::SYSTEM_NETWORK_IO,
    conv::CIRCUIT_TRANSITIONS,
];

/// Read what `stats` needs for `range` from a snapshot of the store at `db`.
pub fn gather(snap: &Snapshot<'_>, db: &Path, range: TimeRange) -> crate::Result<Input> {
    let all = snap.series(&Selector::default())?;
    let wanted: Vec<_> = all.into_iter().filter(|s| METRICS.iter().any(|m| m.name == s.key.name)).collect();
    let points = snap.aggregate_many(&wanted, range)?;
    let series =
        wanted.into_iter().zip(points).filter_map(|(s, p)| p.map(|p| (s.key, p))).collect::<Vec<(SeriesKey, Point)>>();
    Ok(Input {
        db: db.display().to_string(),
        schema_version: snap.schema_version()?,
        newest_ms: snap.newest_ms()?,
        series,
        last_errors: snap.last_events(EventKind::Error, range)?,
        circuit_open_s: circuit_open_seconds(snap, range)?,
    })
}

/// `stats` as `perfctl stats` and the dashboard show it: [`gather`], [`compute`], and when the
/// trend target is set ([`Targets::capacity_within_days`]), [`capacity_violations`] at the
/// window's end.
pub fn report(
    snap: &Snapshot<'_>,
    db: &Path,
    opts: &Options,
    targets: &Targets,
    capacities: crate::capacity::Capacities,
) -> crate::Result<Report> {
    let mut r = compute(&gather(snap, db, opts.range)?, opts, targets)?;
    r.violations.extend(capacity_violations(snap, db, opts.range.end_ms, targets, capacities)?);
    Ok(r)
}

/// The trend target: every resource with a capacity whose projected peak (`perfctl capacity
/// --growth auto` at `now_ms`, with [`Targets::capacity_target`]) reaches the target within
/// [`Targets::capacity_within_days`], at the projection's one-month step (90 days reads as
/// 3 months, so it warns up to a month early, never late). The value is the days until it
/// does: month `m` as `m × 30.44` days (an upper bound), 0 when already there.
/// Nothing when the target is off or there is no hourly history to project from.
pub fn capacity_violations(
    snap: &Snapshot<'_>,
    db: &Path,
    now_ms: i64,
    targets: &Targets,
    capacities: crate::capacity::Capacities,
) -> crate::Result<Vec<Violation>> {
    use crate::capacity::{self, Crossing, Growth};
    let Some(within) = targets.capacity_within_days else { return Ok(Vec::new()) };
    let o = capacity::Options {
        now_ms,
        growth: Growth::Auto,
        months: (within / DAYS_PER_MONTH).ceil().clamp(1.0, 120.0) as u32,
        target: targets.capacity_target,
        redundancy: 1,
        peak_window_ms: None,
        history_ms: capacity::HISTORY_MS,
        capacities,
    };
    let report = match capacity::compute(&capacity::gather(snap, db, &o)?, &o) {
        Ok(r) => r,
        Err(crate::Error::NoData(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(report
        .resources
        .into_iter()
        .filter(|r| r.capacity.is_some())
        .filter_map(|r| {
            let days = match r.months_to_target {
                Crossing::Already => 0.0,
                Crossing::In(m) => (f64::from(m) * DAYS_PER_MONTH).round(),
                Crossing::NotWithin => return None,
            };
            Some(Violation::new(TargetKind::Capacity, Some(r.resource), days, within))
        })
        .collect())
}

/// Days in an average month (the capacity projection's step).
const DAYS_PER_MONTH: f64 = 30.44;

/// The error for a window without operation calls (`opts.op` narrowing them or not): the
/// window, the store, how many operation series exist, and the newest operation data (else
/// the newest data of any kind), so the reader knows where to look instead.
pub fn no_calls(snap: &Snapshot<'_>, db: &Path, opts: &Options) -> crate::Result<crate::Error> {
    let name = conv::OP_DURATION.name;
    let usage: Vec<_> = snap.series_usage()?.into_iter().filter(|u| u.series.key.name == name).collect();
    let subject = match &opts.op {
        Some(op) => format!(" for operations matching '{op}'"),
        None => format!(" for operation calls ({name})"),
    };
    Ok(crate::Error::NoData(crate::NoData {
        subject,
        range: opts.range,
        db: db.to_path_buf(),
        matched: Some(usage.len()),
        newest_ms: match usage.iter().filter_map(|u| u.newest_ms).max() {
            Some(t) => Some(t),
            None => snap.newest_ms()?,
        },
    }))
}

/// Open time per breaker, from the stored points themselves (never a dense grid, so any
/// window works). The state is a step function: each point holds until the next one, but
/// never longer than its tier's usual spacing (the median gap between its points, and at least
/// the tier's own step for rolled-up points), so a stopped agent does not count as open. A raw
/// point is open or not; a rolled-up point covering `count` intervals is open for the share of
/// them at 2: all when its minimum is 2, none when its maximum is below 2, else `sum / 2` of
/// them (exact when the breaker was never half-open inside that minute or hour: the states
/// are 0, 1 and 2, so `sum = n₁ + 2·n₂`).
fn circuit_open_seconds(snap: &Snapshot<'_>, range: TimeRange) -> crate::Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    let open_code = f64::from(conv::CircuitState::Open.code());
    for s in snap.series(&Selector::name(conv::CIRCUIT_STATE.name))? {
        let name = s.key.get(conv::tag::CIRCUIT).unwrap_or("").to_owned();
        // (time, tier, share of the point's intervals that were open)
        let mut points: Vec<(i64, Tier, f64)> = Vec::new();
        snap.points(&s, range, &mut |tier, p| {
            let open = if p.count <= 0.0 || p.max < open_code {
                0.0
            } else if p.min >= open_code {
                1.0
            } else {
                (p.sum / open_code / p.count).min(1.0)
            };
            points.push((p.ts_ms, tier, open));
        })?;
        points.sort_unstable_by_key(|p| p.0);
        let mut hold_ms: BTreeMap<Tier, i64> = BTreeMap::new();
        for tier in [Tier::Raw, Tier::Minute, Tier::Hour] {
            let ts: Vec<i64> = points.iter().filter(|p| p.1 == tier).map(|p| p.0).collect();
            let mut gaps: Vec<i64> = ts.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0).collect();
            gaps.sort_unstable();
            let median = gaps.get(gaps.len() / 2).copied();
            let hold = median.unwrap_or(0).max(tier.step_ms().unwrap_or(0));
            hold_ms.insert(tier, if hold > 0 { hold } else { 1000 });
        }
        let mut open_ms = 0.0;
        for (i, &(ts, tier, share)) in points.iter().enumerate() {
            if share == 0.0 {
                continue;
            }
            let hold = hold_ms.get(&tier).copied().unwrap_or(1000);
            let until = points.get(i + 1).map_or(ts + hold, |next| next.0.min(ts + hold)).min(range.end_ms);
            open_ms += share * (until - ts.max(range.start_ms)).max(0) as f64;
        }
        *out.entry(name).or_default() += open_ms / 1000.0;
    }
    Ok(out)
}
