//! `profile <op>`: where an operation's wall time goes (phases, CPU), and what to change, with
//! savings computed from the recorded data.
//!
//! * Phases come from `op.phase.duration{op, phase}`; time in no phase (and the calls that
//!   record none) is `other` = total − the named phases, so the breakdown adds up to 100 %.
//!   If clients report more phase time than the calls took (overlapping phases sent over
//!   StatsD), the phases are scaled down to the total and a note says so.
//! * CPU: the operation's profile samples, as seconds at the SDK's 99 Hz, and the top
//!   functions by self time (the leaf frame).
//! * Suggestions, each shown only when its condition holds, with `saving = …`:
//!   - `caching`: misses × (mean miss latency − mean hit latency) (hits include stale hits);
//!   - `retries`: retries × the mean call latency (each retry costs about one more attempt);
//!   - `pool_warmup`: calls on a new connection × (their mean latency − that on a reused one);
//!   - `batching`: unbatched calls n at mean latency u, batched calls at mean latency b and mean
//!     size k: n·u − (n/k)·b, when positive;
//!   - `errors`: the time spent in calls that failed.
//!
//! JSON: `{op, window {since, until}, total_s, calls, phases: [{phase, seconds, pct}], cpu
//! {samples, seconds, share_pct, top_functions: [{function, samples, pct}]} | null,
//! suggestions: [{kind, saving_s, saving_pct, evidence, assumption}], notes}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use perfstore::convention::{self as conv, CacheResult, Outcome, PoolResult, tag};
use perfstore::{MatchOp, Point, Selector, SeriesKey, Snapshot, Stack, TimeRange, merge_into};
use serde::Serialize;

use crate::error::{Error, NoData, UnknownOp};
use crate::human::{count, ms, seconds};
use crate::time::Window;

/// Sampling rate the CPU seconds assume (the SDK's default).
pub const PROFILER_HZ: f64 = 99.0;

/// One phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    /// Name (`other` for time in no phase).
    pub phase: String,
    /// Seconds.
    pub seconds: f64,
    /// Share of the total, %.
    pub pct: f64,
}

/// A function by self time.
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    /// Leaf frame.
    pub function: String,
    /// Samples with it at the leaf.
    pub samples: u64,
    /// Share of the operation's samples, %.
    pub pct: f64,
}

/// CPU samples of the operation.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// Samples.
    pub samples: u64,
    /// Seconds, at 99 Hz.
    pub seconds: f64,
    /// CPU seconds / wall seconds, %.
    pub share_pct: f64,
    /// Top 10 by self time.
    pub top_functions: Vec<Function>,
}

/// What a suggestion would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    /// Serve more calls from the cache.
    Caching,
    /// Avoid retries.
    Retries,
    /// Keep a connection pool warm.
    PoolWarmup,
    /// Batch unbatched requests.
    Batching,
    /// Remove the cause of failed calls.
    Errors,
}

impl SuggestionKind {
    /// The JSON name (`pool_warmup`).
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionKind::Caching => "caching",
            SuggestionKind::Retries => "retries",
            SuggestionKind::PoolWarmup => "pool_warmup",
            SuggestionKind::Batching => "batching",
            SuggestionKind::Errors => "errors",
        }
    }
}

/// A suggestion with its estimated saving.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// What to change.
    pub kind: SuggestionKind,
    /// Seconds saved over the window.
    pub saving_s: f64,
    /// Of the total, %.
    pub saving_pct: f64,
    /// The numbers behind it.
    pub evidence: String,
    /// What must hold for the saving to be real.
    pub assumption: String,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The operation.
    pub op: String,
    /// The window.
    pub window: Window,
    /// Wall time of its calls, seconds.
    pub total_s: f64,
    /// Calls.
    pub calls: f64,
    /// Breakdown, largest first (`other` last).
    pub phases: Vec<PhaseTime>,
    /// CPU, when the profiler sampled it.
    pub cpu: Option<Cpu>,
    /// Largest saving first.
    pub suggestions: Vec<Suggestion>,
    /// Caveats.
    pub notes: Vec<String>,
}

/// Everything `profile` needs, read from a store (or built by hand).
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// Store path (for the "no data" message).
    pub db: String,
    /// The newest data in the store.
    pub newest_ms: Option<i64>,
    /// The operation.
    pub op: String,
    /// Its `op.duration` series and their aggregates over the window (`None`: no data).
    pub calls: Vec<(SeriesKey, Option<Point>)>,
    /// Its retries (`op.retries`).
    pub retries: f64,
    /// Its batch sizes (`op.batch.size`), merged.
    pub batch_size: Option<Point>,
    /// Seconds per phase (`op.phase.duration`), `other` left out.
    pub phases: BTreeMap<String, f64>,
    /// Its CPU profile, merged.
    pub stacks: Vec<Stack>,
}

/// Read what `profile` needs about `op` (optionally one service's calls) in `range`.
pub fn gather(
    snap: &Snapshot<'_>,
    db: &Path,
    op: &str,
    service: Option<&str>,
    range: TimeRange,
) -> crate::Result<Input> {
    let sel = |m: &conv::Metric| {
        let s = Selector::name(m.name).with(tag::OP, MatchOp::Eq, op);
        match service {
            Some(svc) => s.with(tag::SERVICE, MatchOp::Eq, svc),
            None => s,
        }
    };
    let durations = snap.series(&sel(&conv::OP_DURATION))?;
    if durations.is_empty() {
        let mut known = snap.label_values(&Selector::name(conv::OP_DURATION.name), tag::OP)?;
        let prefix = op.split('.').next().unwrap_or("");
        known.sort_by_key(|k| (!k.starts_with(prefix), k.clone()));
        return Err(Error::UnknownOp(UnknownOp { op: op.to_owned(), db: db.to_owned(), known }));
    }
    let points = snap.aggregate_many(&durations, range)?;
    let merged = |m: &conv::Metric| -> crate::Result<Option<Point>> {
        let s = snap.series(&sel(m))?;
        let mut acc = None;
        for p in snap.aggregate_many(&s, range)?.iter().flatten() {
            merge_into(&mut acc, p);
        }
        Ok(acc)
    };
    let mut phases = BTreeMap::new();
    let phase_series = snap.series(&sel(&conv::OP_PHASE_DURATION))?;
    for (s, p) in phase_series.iter().zip(snap.aggregate_many(&phase_series, range)?) {
        let name = s.key.get(tag::PHASE).unwrap_or("unnamed");
        if let Some(p) = p.filter(|_| name != conv::OTHER_PHASE) {
            *phases.entry(name.to_owned()).or_default() += p.sum;
        }
    }
    Ok(Input {
        db: db.display().to_string(),
        newest_ms: snap.newest_ms()?,
        op: op.to_owned(),
        calls: durations.into_iter().map(|s| s.key).zip(points).collect(),
        retries: merged(&conv::OP_RETRIES)?.map_or(0.0, |p| p.sum),
        batch_size: merged(&conv::OP_BATCH_SIZE)?,
        phases,
        stacks: snap.profile(op, service, range)?,
    })
}

#[derive(Debug, Default, Clone, Copy)]
struct Sum {
    n: f64,
    s: f64,
}

impl Sum {
    fn add(&mut self, p: &Point) {
        self.n += p.count;
        self.s += p.sum;
    }
    fn mean(self) -> Option<f64> {
        (self.n > 0.0).then(|| self.s / self.n)
    }
}

/// The calls split by what they did.
#[derive(Debug, Default)]
struct Split {
    all: Sum,
    hit: Sum,
    miss: Sum,
    batched: Sum,
    unbatched: Sum,
    pool_hit: Sum,
    pool_miss: Sum,
    errors: Sum,
}

impl Split {
    fn of(calls: &[(SeriesKey, Option<Point>)]) -> Self {
        let mut s = Split::default();
        for (k, p) in calls {
            let Some(p) = p else { continue };
            s.all.add(p);
            match k.get(tag::CACHE).and_then(CacheResult::parse) {
                Some(c) if c.is_hit() => s.hit.add(p),
                Some(_) => s.miss.add(p),
                None => {}
            }
            match k.get(tag::BATCHED) {
                Some(conv::BATCHED_TRUE) => s.batched.add(p),
                Some(conv::BATCHED_FALSE) => s.unbatched.add(p),
                _ => {}
            }
            match k.get(tag::POOL).and_then(PoolResult::parse) {
                Some(PoolResult::Hit) => s.pool_hit.add(p),
                Some(PoolResult::Miss) => s.pool_miss.add(p),
                None => {}
            }
            if k.get(tag::OUTCOME) == Some(Outcome::Error.as_str()) {
                s.errors.add(p);
            }
        }
        s
    }
}

/// The report for `input` over `range`.
pub fn compute(input: &Input, range: TimeRange) -> crate::Result<Report> {
    let split = Split::of(&input.calls);
    if split.all.n <= 0.0 {
        return Err(Error::NoData(NoData {
            subject: format!(" for {}", input.op),
            range,
            db: input.db.clone().into(),
            matched: Some(input.calls.len()),
            newest_ms: input.newest_ms,
        }));
    }
    let total = split.all.s;
    let mut notes = Vec::new();
    let phases = phases(&input.phases, total, &mut notes);
    let mut suggestions = suggestions(&split, input.retries, input.batch_size.as_ref());
    suggestions.sort_by(|a, b| b.saving_s.total_cmp(&a.saving_s));
    Ok(Report {
        op: input.op.clone(),
        window: Window::from(range),
        total_s: total,
        calls: split.all.n,
        phases,
        cpu: cpu(&input.stacks, total),
        suggestions,
        notes,
    })
}

fn phases(named: &BTreeMap<String, f64>, total: f64, notes: &mut Vec<String>) -> Vec<PhaseTime> {
    let mut by_phase = named.clone();
    let sum: f64 = by_phase.values().sum();
    if sum > total * (1.0 + 1e-9) {
        notes.push(format!(
            "the phases sent add up to {} but the calls took {}: they overlap (parallel sub-calls sent over StatsD?); \
             they are scaled down to the total",
            seconds(sum),
            seconds(total)
        ));
        for v in by_phase.values_mut() {
            *v *= total / sum;
        }
    }
    if by_phase.is_empty() {
        notes.push("no phases recorded for this operation (op.phase.duration): all of its time is `other`".into());
    }
    let named: f64 = by_phase.values().sum();
    let mut phases: Vec<PhaseTime> = by_phase
        .into_iter()
        .map(|(phase, secs)| PhaseTime { phase, pct: secs / total * 100.0, seconds: secs })
        .collect();
    phases.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then_with(|| a.phase.cmp(&b.phase)));
    let other = (total - named).max(0.0);
    if other > 0.0 || phases.is_empty() {
        phases.push(PhaseTime { phase: conv::OTHER_PHASE.into(), seconds: other, pct: other / total * 100.0 });
    }
    phases
}

fn cpu(stacks: &[Stack], total: f64) -> Option<Cpu> {
    let samples: u64 = stacks.iter().map(|s| s.samples).sum();
    if samples == 0 {
        return None;
    }
    let mut leaves: BTreeMap<&str, u64> = BTreeMap::new();
    for s in stacks {
        *leaves.entry(s.frames.rsplit(';').next().unwrap_or(&s.frames)).or_default() += s.samples;
    }
    let mut top: Vec<Function> = leaves
        .into_iter()
        .map(|(f, n)| Function { function: f.to_owned(), samples: n, pct: n as f64 / samples as f64 * 100.0 })
        .collect();
    top.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.function.cmp(&b.function)));
    top.truncate(10);
    let secs = samples as f64 / PROFILER_HZ;
    Some(Cpu { samples, seconds: secs, share_pct: secs / total * 100.0, top_functions: top })
}

fn suggestions(c: &Split, retries: f64, batch_size: Option<&Point>) -> Vec<Suggestion> {
    let total = c.all.s;
    let mut out = Vec::new();
    let mut suggest = |kind, saving: f64, evidence: String, assumption: &str| {
        if saving > 0.0 {
            let assumption = assumption.to_owned();
            out.push(Suggestion { kind, saving_s: saving, saving_pct: saving / total * 100.0, evidence, assumption });
        }
    };
    if let (Some(mh), Some(mm)) = (c.hit.mean(), c.miss.mean())
        && mm > mh
    {
        let mut e = format!("{} cache misses averaging {} vs {} for ", count(c.miss.n), ms(mm * 1e3), ms(mh * 1e3));
        let _ = write!(e, "{} hits", count(c.hit.n));
        suggest(
            SuggestionKind::Caching,
            c.miss.n * (mm - mh),
            e,
            "every miss could have been served like a hit (a longer TTL, warming, a bigger cache); misses that must \
             reach the API for fresh data cannot",
        );
    }
    if retries > 0.0 {
        let mean = total / c.all.n;
        suggest(
            SuggestionKind::Retries,
            retries * mean,
            format!("{} retries over {} calls; a call averages {}", count(retries), count(c.all.n), ms(mean * 1e3)),
            "each retry cost about one more average attempt (backoff waits not counted); fixing the cause \
             (throttling, timeouts) or a client-side rate limit avoids them",
        );
    }
    if let (Some(ph), Some(pm)) = (c.pool_hit.mean(), c.pool_miss.mean())
        && pm > ph
    {
        suggest(
            SuggestionKind::PoolWarmup,
            c.pool_miss.n * (pm - ph),
            format!(
                "{} calls opened a connection, averaging {} vs {} for {} on a reused one",
                count(c.pool_miss.n),
                ms(pm * 1e3),
                ms(ph * 1e3),
                count(c.pool_hit.n)
            ),
            "a pool kept warm (minimum idle connections, a longer idle timeout) would serve those calls like the reused ones",
        );
    }
    if let (Some(mu), Some(mb), Some(k)) = (c.unbatched.mean(), c.batched.mean(), batch_size.and_then(Point::avg))
        && k > 1.0
    {
        let n = c.unbatched.n;
        suggest(
            SuggestionKind::Batching,
            n * mu - n / k * mb,
            format!(
                "{} unbatched calls averaging {}; batched calls carry {k:.1} requests and average {}",
                count(n),
                ms(mu * 1e3),
                ms(mb * 1e3)
            ),
            "the unbatched requests could be sent in batches of the observed mean size, at the observed batched latency",
        );
    }
    if c.errors.n > 0.0 {
        suggest(
            SuggestionKind::Errors,
            c.errors.s,
            format!("{} failed calls took {} in all", count(c.errors.n), seconds(c.errors.s)),
            "failed calls did no useful work; removing their cause (quota, bad input, expired commands) saves their time",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfstore::{Distribution, Sample};

    const T0: i64 = 1_795_392_000_000;

    fn calls(tags: &[(&str, &str)], secs: &[f64]) -> (SeriesKey, Option<Point>) {
        let mut k = conv::OP_DURATION.key("api").label(tag::OP, "vm.list").label(tag::OUTCOME, "ok");
        for (a, b) in tags {
            k = k.label(a, b);
        }
        let d = Distribution::from_values(secs);
        (k, Some(Point::from_sample(T0, &Sample::Distribution(Box::new(d)))))
    }

    fn input(calls: Vec<(SeriesKey, Option<Point>)>) -> Input {
        Input { db: "/x.db".into(), op: "vm.list".into(), calls, ..Input::default() }
    }

    fn range() -> TimeRange {
        TimeRange::new(T0, T0 + 3_600_000)
    }

    #[test]
    fn savings_match_hand_computations() {
        let mut i = input(vec![
            calls(&[("cache", "hit")], &[0.01, 0.01, 0.01, 0.01]),
            calls(&[("cache", "miss"), ("pool", "miss")], &[0.2, 0.2]),
            calls(&[("pool", "hit")], &[0.05, 0.05]),
            calls(&[("batched", "false")], &[0.1, 0.1, 0.1, 0.1]),
            calls(&[("batched", "true")], &[0.2]),
            calls(&[("outcome", "error")], &[0.3]),
        ]);
        i.retries = 2.0;
        i.batch_size = Some(Point::from_sample(T0, &Sample::Distribution(Box::new(Distribution::from_values(&[4.0])))));
        let r = compute(&i, range()).unwrap();
        assert!((r.total_s - 1.44).abs() < 1e-12, "{}", r.total_s);
        let saving = |k: SuggestionKind| r.suggestions.iter().find(|s| s.kind == k).map(|s| s.saving_s);
        // caching: 2 misses × (0.2 − 0.01); pool: 2 × (0.2 − 0.05); batching: 4·0.1 − 4/4·0.2;
        // retries: 2 × 1.44/14; errors: 0.3.
        assert!((saving(SuggestionKind::Caching).unwrap() - 0.38).abs() < 1e-12);
        assert!((saving(SuggestionKind::PoolWarmup).unwrap() - 0.30).abs() < 1e-12);
        assert!((saving(SuggestionKind::Batching).unwrap() - 0.20).abs() < 1e-12);
        assert!((saving(SuggestionKind::Retries).unwrap() - 2.0 * 1.44 / 14.0).abs() < 1e-12);
        assert!((saving(SuggestionKind::Errors).unwrap() - 0.3).abs() < 1e-12);
        assert!(r.suggestions.windows(2).all(|w| w[0].saving_s >= w[1].saving_s), "largest first");
        assert_eq!(r.phases.len(), 1, "no phases: all other");
        assert!(r.cpu.is_none());
    }

    #[test]
    fn phases_add_up_and_overlaps_are_scaled() {
        let mut i = input(vec![calls(&[], &[1.0])]);
        i.phases = BTreeMap::from([("api".into(), 0.6), ("parse".into(), 0.1)]);
        let r = compute(&i, range()).unwrap();
        let got: Vec<(&str, f64)> = r.phases.iter().map(|p| (p.phase.as_str(), p.pct)).collect();
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].0, got[1].0, got[2].0), ("api", "parse", "other"));
        assert!((got.iter().map(|p| p.1).sum::<f64>() - 100.0).abs() < 1e-9);
        i.phases = BTreeMap::from([("api".into(), 1.5), ("wait".into(), 0.5)]);
        let r = compute(&i, range()).unwrap();
        assert!((r.phases[0].seconds - 0.75).abs() < 1e-12, "scaled to the 1 s total");
        assert!(r.notes[0].contains("they overlap"), "{:?}", r.notes);
    }

    #[test]
    fn cpu_top_functions_by_self_time() {
        let mut i = input(vec![calls(&[], &[1.0])]);
        i.stacks = vec![Stack::new("main;a;leaf1", 60), Stack::new("main;b;leaf1", 39), Stack::new("main;c", 98)];
        let c = compute(&i, range()).unwrap().cpu.unwrap();
        assert_eq!((c.samples, c.seconds), (197, 197.0 / 99.0));
        assert_eq!(c.top_functions[0].function, "leaf1");
        assert_eq!(c.top_functions[0].samples, 99);
        assert_eq!(c.top_functions[1].function, "c");
    }

    #[test]
    fn an_operation_without_calls_in_the_window_is_no_data() {
        let i = input(vec![(calls(&[], &[1.0]).0, None)]);
        let e = compute(&i, range()).unwrap_err().to_string();
        assert!(e.starts_with("no data for vm.list between"), "{e}");
        assert!(e.contains("(1 matching series; the store holds no data yet)"), "{e}");
    }
}
