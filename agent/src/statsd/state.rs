//! A live series' state, and how a line's values fold into it and an interval's sample
//! comes out of it.

use std::collections::HashSet;

use perfstore::Sample;

use super::parser::{MetricType, Value};
use super::series::Dist;
use super::sets::Members;

/// What a series holds between flushes.
#[derive(Debug, Clone)]
pub(super) enum State {
    Counter {
        sum: f64,
        touched: bool,
    },
    Gauge {
        last: f64,
        min: f64,
        max: f64,
    },
    /// A distribution. Its common lines wait in the aggregator's log (`dist_log`) and reach
    /// it a batch at a time.
    Dist(Box<Dist>),
    Set(Option<Box<Members>>),
}

/// The aggregator's `scale_of` for a line of a held distribution (whose `h`/`d` scale was
/// found from its name). Where only distributions pay for it: a test of every line's type and
/// state before [`apply`] mispredicted about one line in seven.
#[inline(always)]
pub(super) fn dist_scale(timer: bool, d: &Dist) -> f64 {
    if timer { 0.001 } else { d.named_scale }
}

/// Fold `values` (of a line of type `t`) into a series' state; false (and nothing changed for
/// that value) when a result would not be finite (`1e308|c` twice, or a huge value over a
/// tiny sample rate).
// Inlined into the aggregator's lookups as it was when it lived beside them: from this module
// without the hint, 631 -> 653 instructions a tagged line (callgrind, `ingest-cost`).
#[inline]
pub(super) fn apply<'v>(
    state: &mut State,
    values: impl Iterator<Item = Value<'v>>,
    weight: f64,
    t: MetricType,
    exact_limit: usize,
) -> bool {
    let mut all = true;
    for v in values {
        match (&mut *state, v) {
            (State::Counter { sum, touched }, Value::Number(x)) => {
                let next = *sum + x * weight;
                if !next.is_finite() {
                    all = false;
                    continue;
                }
                *sum = next;
                *touched = true;
            }
            (State::Gauge { last, min, max }, v) => {
                let x = match v {
                    Value::Delta(d) if last.is_finite() => *last + d,
                    Value::Delta(d) => d,
                    Value::Number(x) => x,
                    Value::Member(_) => continue,
                };
                if !x.is_finite() {
                    all = false;
                    continue;
                }
                if !last.is_finite() {
                    (*min, *max) = (x, x);
                }
                *last = x;
                *min = min.min(x);
                *max = max.max(x);
            }
            (State::Dist(dist), Value::Number(x)) => {
                let v = x * dist_scale(t == MetricType::Timer, dist);
                if !(weight.is_finite() && (dist.sum + v * weight).is_finite() && (dist.count + weight).is_finite()) {
                    all = false;
                    continue;
                }
                dist.record(v, weight);
            }
            (State::Set(members), Value::Member(s)) => {
                members.get_or_insert_with(|| Box::new(Members::Exact(HashSet::new()))).insert(s, exact_limit)
            }
            _ => {}
        }
    }
    all
}

/// The interval's sample, resetting per-interval state (gauges keep their value).
pub(super) fn take_sample(state: &mut State) -> Option<Sample> {
    match state {
        State::Counter { sum, touched } => {
            let out = touched.then_some(Sample::Counter(*sum));
            (*sum, *touched) = (0.0, false);
            out
        }
        State::Gauge { last, min, max } => {
            if !last.is_finite() {
                return None;
            }
            let out = Sample::Gauge { last: *last, min: *min, max: *max };
            (*min, *max) = (*last, *last);
            Some(out)
        }
        State::Dist(d) => {
            if d.count <= 0.0 {
                return None;
            }
            Some(Sample::Distribution(Box::new(d.take())))
        }
        State::Set(members) => members.take().map(|m| Sample::Set(m.count().round())),
    }
}
