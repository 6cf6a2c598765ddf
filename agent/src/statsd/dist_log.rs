//! Distribution values waiting for their series, a batch at a time.
//!
//! The common distribution line (`ms`, `h` or `d`, one value, no sample rate) of a series
//! already held is not folded into its series at once: its value is appended here with the
//! series' place, and the batch is applied when it fills, at the flush, and before any other
//! line changes a distribution. Applied line by line, each value brought in its series'
//! distribution and the end of its waiting values, two places in memory more than a
//! counter's line, in the middle of the grouped lookups. Here a line writes 12 bytes after
//! the last, and the batch is sorted by series (a counting sort: stable, so a series takes
//! its values in the order they came, and its count and sum come out to the same bits) and
//! applied in one loop that brings in each series once per batch, a few series ahead.
//!
//! Measured at 1.6 M lines/s with 10 000 tagged series (a quarter of the lines timers and
//! histograms), in alternating runs of `scripts/bench-ab`: 0.094 → 0.084 and 0.119 → 0.114
//! CPU-s per 1 M lines (medians of 8 and 6 runs), for 14 more instructions a line; with
//! 90 000 series at 1 M lines/s, 0.313 → 0.278 (one harness run each). It costs 20 bytes a
//! value of the batch (1.3 MB) and 4 a series.

use super::super::index::prefetch;
use super::super::state::dist_scale;
use super::{Aggregator, Dist, State};

/// Values held before they are applied. The more, the more values a series takes each time
/// it is brought in (with 10 000 series, half of them distributions, 13 a batch); half as
/// many saved 0.5 MiB and took 0.118 CPU-s per 1 M lines against 0.114 (6 runs each).
pub(super) const LOG_VALUES: usize = 1 << 16;

/// In [`DistLog`]'s places: the value is a timer's (`ms`, in milliseconds), scaled by 0.001
/// whatever the series' name says.
const TIMER: u32 = 1 << 31;

/// The batch, and the sort's scratch (kept: a batch allocates nothing).
#[derive(Debug, Default)]
pub(super) struct DistLog {
    /// Each value's series, as its place in the live table, with [`TIMER`] set for a timer's.
    at: Vec<u32>,
    /// The values as received (not scaled).
    values: Vec<f64>,
    /// By series place: its values in the batch, then where the next goes in `sorted`, then
    /// where they end. Zero again after each batch.
    counts: Vec<u32>,
    /// The places with values in the batch, in the order first seen.
    touched: Vec<u32>,
    /// The values by series…
    sorted: Vec<f64>,
    /// …and which of them are timers', a bit each.
    timers: Vec<u64>,
}

impl DistLog {
    /// Hold `x`, a value of the distribution at live place `at`; true when the batch is full
    /// and must be applied.
    #[inline(always)]
    pub fn push(&mut self, at: usize, x: f64, timer: bool) -> bool {
        // Places stay under the series limit, at most a billion (`MAX_SERIES_LIMIT` in the
        // configuration), below the flag.
        debug_assert!(at < TIMER as usize);
        self.at.push(at as u32 | if timer { TIMER } else { 0 });
        self.values.push(x);
        self.at.len() >= LOG_VALUES
    }

    /// No values waiting.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

impl Aggregator {
    /// Apply the waiting distribution values to their series, each series' in the order they
    /// came, exactly as line by line would (a value that would make a sum infinite is dropped
    /// as `value_overflow`, its line no longer counted as taken).
    ///
    /// Call before the live table's places change (the flush's expiry) and before any other
    /// value reaches a distribution.
    #[inline(never)]
    pub(super) fn apply_logged(&mut self) {
        let Self { dist_log: log, live, stats, .. } = self;
        if log.at.is_empty() {
            return;
        }
        if log.counts.len() < live.entries.len() {
            log.counts.resize(live.entries.len(), 0);
        }
        for &a in &log.at {
            let c = &mut log.counts[(a & !TIMER) as usize];
            if *c == 0 {
                log.touched.push(a & !TIMER);
            }
            *c += 1;
        }
        let mut next = 0;
        for &s in &log.touched {
            let c = &mut log.counts[s as usize];
            (*c, next) = (next, next + *c);
        }
        log.sorted.resize(log.at.len(), 0.0);
        log.timers.clear();
        log.timers.resize(log.at.len().div_ceil(64), 0);
        for (&a, &x) in log.at.iter().zip(&log.values) {
            let c = &mut log.counts[(a & !TIMER) as usize];
            let k = *c as usize;
            log.sorted[k] = x;
            log.timers[k / 64] |= u64::from(a >> 31) << (k % 64);
            *c += 1;
        }
        let mut start = 0;
        for (j, &s) in log.touched.iter().enumerate() {
            // Brought in ahead: the entry 16 series on, and the box of the one 8 on (its entry
            // arrived 8 series ago).
            if let Some(&far) = log.touched.get(j + 16) {
                live.prefetch_entry(far as usize);
            }
            if let Some(&near) = log.touched.get(j + 8)
                && let State::Dist(d) = &live.entries[near as usize].state
            {
                let at: *const Dist = &raw const **d;
                prefetch(at);
                prefetch(at.cast::<u8>().wrapping_add(size_of::<Dist>() - 1));
            }
            let end = std::mem::take(&mut log.counts[s as usize]) as usize;
            let (from, values) = (start, &log.sorted[start..end]);
            start = end;
            let State::Dist(dist) = &mut live.entries[s as usize].state else {
                debug_assert!(false, "a logged place holds a distribution");
                continue;
            };
            for (k, &x) in (from..).zip(values) {
                let timer = log.timers[k / 64] >> (k % 64) & 1 != 0;
                // As `apply` does for a value of weight 1. (A logged value has at most 15
                // digits, and no finite sum reaches infinity by adding it; the check keeps
                // the two paths the same whatever comes. Calling `apply` itself here took 19
                // more instructions a tagged line, the match and its iterator per value.)
                let v = x * dist_scale(timer, dist);
                if (dist.sum + v).is_finite() && (dist.count + 1.0).is_finite() {
                    dist.record(v, 1.0);
                } else {
                    stats.lines -= 1;
                    stats.drop("value_overflow");
                }
            }
        }
        log.at.clear();
        log.values.clear();
        log.touched.clear();
    }
}
