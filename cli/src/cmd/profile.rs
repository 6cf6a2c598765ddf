//! `perfctl profile <op>`: where an operation's wall time goes (phases, CPU), and what to
//! change, with savings computed from the recorded data.
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
use std::io::Write;
use std::path::Path;

use perfstore::{MatchOp, Reader, Selector, TimeRange};
use serde::Serialize;

use crate::style::{cell, count, ms, pct, seconds};
use crate::window::rfc3339;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Breakdown, CPU and suggestions.
    Table,
    /// One JSON document.
    Json,
}

/// Sampling rate the CPU seconds assume.
const PROFILER_HZ: f64 = 99.0;

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

/// A suggestion with its estimated saving.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// `caching`, `retries`, `pool_warmup`, `batching`, `errors`.
    pub kind: &'static str,
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
    pub window: super::stats::Window,
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

#[derive(Debug, Default, Clone, Copy)]
struct Sum {
    n: f64,
    s: f64,
}

impl Sum {
    fn add(&mut self, n: f64, s: f64) {
        self.n += n;
        self.s += s;
    }
    fn mean(self) -> Option<f64> {
        (self.n > 0.0).then(|| self.s / self.n)
    }
}

/// Read and compute.
pub fn collect(db: &Path, op: &str, service: Option<&str>, range: TimeRange) -> anyhow::Result<Report> {
    let mut reader = Reader::open(db)?;
    let snap = reader.snapshot()?;
    let mut sel = Selector::name("op.duration").with("op", MatchOp::Eq, op);
    if let Some(s) = service {
        sel = sel.with("service", MatchOp::Eq, s);
    }
    let durations = snap.series(&sel)?;
    if durations.is_empty() {
        let mut known = snap.label_values(&Selector::name("op.duration"), "op")?;
        known.sort_by_key(|k| (!k.starts_with(op.split('.').next().unwrap_or("")), k.clone()));
        anyhow::bail!(
            "unknown operation '{op}' in {}: no op.duration series{}",
            db.display(),
            if known.is_empty() { String::new() } else { format!("; operations: {}", known.join(", ")) }
        );
    }
    let points = snap.aggregate_many(&durations, range)?;
    let (mut all, mut hit, mut miss, mut batched, mut unbatched, mut pool_hit, mut pool_miss, mut errors) = (
        Sum::default(),
        Sum::default(),
        Sum::default(),
        Sum::default(),
        Sum::default(),
        Sum::default(),
        Sum::default(),
        Sum::default(),
    );
    for (s, p) in durations.iter().zip(&points) {
        let Some(p) = p else { continue };
        let k = &s.key;
        all.add(p.count, p.sum);
        match k.get("cache") {
            Some("hit" | "stale") => hit.add(p.count, p.sum),
            Some("miss") => miss.add(p.count, p.sum),
            _ => {}
        }
        match k.get("batched") {
            Some("true") => batched.add(p.count, p.sum),
            Some("false") => unbatched.add(p.count, p.sum),
            _ => {}
        }
        match k.get("pool") {
            Some("hit") => pool_hit.add(p.count, p.sum),
            Some("miss") => pool_miss.add(p.count, p.sum),
            _ => {}
        }
        if k.get("outcome") == Some("error") {
            errors.add(p.count, p.sum);
        }
    }
    let window = super::stats::Window { since: rfc3339(range.start_ms), until: rfc3339(range.end_ms) };
    if all.n <= 0.0 {
        return Err(crate::window::no_data(&format!(" for {op}"), range, db, Some(durations.len()), snap.newest_ms()?));
    }
    let total = all.s;
    let sum_of = |name: &str| -> anyhow::Result<f64> {
        let mut sel = Selector::name(name).with("op", MatchOp::Eq, op);
        if let Some(s) = service {
            sel = sel.with("service", MatchOp::Eq, s);
        }
        let s = snap.series(&sel)?;
        Ok(snap.aggregate_many(&s, range)?.iter().flatten().map(|p| p.sum).sum())
    };
    let retries = sum_of("op.retries")?;
    let mut batch_size = Sum::default();
    {
        let mut sel = Selector::name("op.batch.size").with("op", MatchOp::Eq, op);
        if let Some(s) = service {
            sel = sel.with("service", MatchOp::Eq, s);
        }
        let s = snap.series(&sel)?;
        for p in snap.aggregate_many(&s, range)?.into_iter().flatten() {
            batch_size.add(p.count, p.sum);
        }
    }

    // Phases.
    let mut notes = Vec::new();
    let mut sel = Selector::name("op.phase.duration").with("op", MatchOp::Eq, op);
    if let Some(s) = service {
        sel = sel.with("service", MatchOp::Eq, s);
    }
    let phase_series = snap.series(&sel)?;
    let mut by_phase: BTreeMap<String, f64> = BTreeMap::new();
    for (s, p) in phase_series.iter().zip(snap.aggregate_many(&phase_series, range)?) {
        if let Some(p) = p {
            let name = s.key.get("phase").unwrap_or("unnamed").to_owned();
            if name != "other" {
                *by_phase.entry(name).or_default() += p.sum;
            }
        }
    }
    let named: f64 = by_phase.values().sum();
    if named > total * (1.0 + 1e-9) {
        notes.push(format!(
            "the phases sent add up to {} but the calls took {}: they overlap (parallel sub-calls sent over StatsD?); \
             they are scaled down to the total",
            seconds(named),
            seconds(total)
        ));
        for v in by_phase.values_mut() {
            *v *= total / named;
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
        phases.push(PhaseTime { phase: "other".into(), seconds: other, pct: other / total * 100.0 });
    }

    // CPU.
    let stacks = snap.profile(op, service, range)?;
    let samples: u64 = stacks.iter().map(|s| s.samples).sum();
    let cpu = (samples > 0).then(|| {
        let mut leaves: BTreeMap<&str, u64> = BTreeMap::new();
        for s in &stacks {
            *leaves.entry(s.frames.rsplit(';').next().unwrap_or(&s.frames)).or_default() += s.samples;
        }
        let mut top: Vec<Function> = leaves
            .into_iter()
            .map(|(f, n)| Function { function: f.to_owned(), samples: n, pct: n as f64 / samples as f64 * 100.0 })
            .collect();
        top.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.function.cmp(&b.function)));
        top.truncate(10);
        let secs = samples as f64 / PROFILER_HZ;
        Cpu { samples, seconds: secs, share_pct: secs / total * 100.0, top_functions: top }
    });

    // Suggestions.
    let mut suggestions = Vec::new();
    let mut suggest = |kind: &'static str, saving: f64, evidence: String, assumption: &str| {
        if saving > 0.0 {
            suggestions.push(Suggestion {
                kind,
                saving_s: saving,
                saving_pct: saving / total * 100.0,
                evidence,
                assumption: assumption.to_owned(),
            });
        }
    };
    if let (Some(mh), Some(mm)) = (hit.mean(), miss.mean())
        && mm > mh
    {
        suggest(
            "caching",
            miss.n * (mm - mh),
            format!(
                "{} cache misses averaging {} vs {} for {} hits",
                count(miss.n),
                ms(mm * 1e3),
                ms(mh * 1e3),
                count(hit.n)
            ),
            "every miss could have been served like a hit (a longer TTL, warming, a bigger cache); misses that must \
             reach the API for fresh data cannot",
        );
    }
    if retries > 0.0 {
        let mean = total / all.n;
        suggest(
            "retries",
            retries * mean,
            format!("{} retries over {} calls; a call averages {}", count(retries), count(all.n), ms(mean * 1e3)),
            "each retry cost about one more average attempt (backoff waits not counted); fixing the cause \
             (throttling, timeouts) or a client-side rate limit avoids them",
        );
    }
    if let (Some(ph), Some(pm)) = (pool_hit.mean(), pool_miss.mean())
        && pm > ph
    {
        suggest(
            "pool_warmup",
            pool_miss.n * (pm - ph),
            format!(
                "{} calls opened a connection, averaging {} vs {} for {} on a reused one",
                count(pool_miss.n),
                ms(pm * 1e3),
                ms(ph * 1e3),
                count(pool_hit.n)
            ),
            "a pool kept warm (minimum idle connections, a longer idle timeout) would serve those calls like the reused ones",
        );
    }
    if let (Some(mu), Some(mb), Some(k)) = (unbatched.mean(), batched.mean(), batch_size.mean())
        && k > 1.0
    {
        let saving = unbatched.n * mu - unbatched.n / k * mb;
        suggest(
            "batching",
            saving,
            format!(
                "{} unbatched calls averaging {}; batched calls carry {k:.1} requests and average {}",
                count(unbatched.n),
                ms(mu * 1e3),
                ms(mb * 1e3)
            ),
            "the unbatched requests could be sent in batches of the observed mean size, at the observed batched latency",
        );
    }
    if errors.n > 0.0 {
        suggest(
            "errors",
            errors.s,
            format!("{} failed calls took {} in all", count(errors.n), seconds(errors.s)),
            "failed calls did no useful work; removing their cause (quota, bad input, expired commands) saves their time",
        );
    }
    suggestions.sort_by(|a, b| b.saving_s.total_cmp(&a.saving_s));
    Ok(Report { op: op.to_owned(), window, total_s: total, calls: all.n, phases, cpu, suggestions, notes })
}

/// Print the report.
pub fn render(r: &Report, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut *out, r)?;
        return writeln!(out);
    }
    writeln!(
        out,
        "{}: {} calls, {} in all (avg {}), {} → {}",
        cell(&r.op, 80),
        count(r.calls),
        seconds(r.total_s),
        ms(r.total_s / r.calls * 1e3),
        r.window.since,
        r.window.until
    )?;
    writeln!(out)?;
    let w = r.phases.iter().map(|p| p.phase.chars().count()).max().unwrap_or(5).max(5);
    writeln!(out, "{:<w$}  {:>9}  {:>7}", "PHASE", "TIME", "SHARE")?;
    for p in &r.phases {
        writeln!(out, "{:<w$}  {:>9}  {:>7}", cell(&p.phase, 40), seconds(p.seconds), pct(p.pct))?;
    }
    writeln!(out)?;
    match &r.cpu {
        Some(c) => {
            writeln!(
                out,
                "CPU: {} samples ≈ {} at 99 Hz ({} of the wall time); top functions by self time:",
                c.samples,
                seconds(c.seconds),
                pct(c.share_pct)
            )?;
            for f in &c.top_functions {
                writeln!(out, "  {:>6}  {}", pct(f.pct), cell(&f.function, 100))?;
            }
        }
        None => writeln!(out, "CPU: no profile samples for this operation in the window")?,
    }
    writeln!(out)?;
    if r.suggestions.is_empty() {
        writeln!(out, "Suggestions: none the data supports")?;
    } else {
        writeln!(out, "Suggestions (estimated saving over the window):")?;
        for (i, s) in r.suggestions.iter().enumerate() {
            writeln!(
                out,
                "  {}. {:<12} saves ~{} ({} of the time): {}",
                i + 1,
                s.kind,
                seconds(s.saving_s),
                pct(s.saving_pct),
                s.evidence
            )?;
            writeln!(out, "     assumes {}", s.assumption)?;
        }
    }
    for n in &r.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}
