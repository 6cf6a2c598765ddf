//! The periodic summary log line, from the convention's `op.duration` events:
//! `calls=…, successes=…, failures=…, success_rate=…, avg_duration=…, cache_hit_rate=…`.

use perfstore::Sample;
use perfstore::convention::{self as conv, CacheResult, Outcome, tag};

use crate::statsd::aggregate::Flush;

/// Totals over one summary window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallSummary {
    /// Calls (weighted `op.duration` events).
    pub calls: f64,
    /// Calls with `outcome` other than `error`.
    pub successes: f64,
    /// Calls with `outcome=error`.
    pub failures: f64,
    /// Sum of call durations, seconds.
    pub duration_sum: f64,
    /// Calls with a `cache` tag.
    pub cache_lookups: f64,
    /// Calls with `cache=hit` or `cache=stale`.
    pub cache_hits: f64,
}

impl CallSummary {
    /// Add a flush's `op.duration` points.
    pub fn add(&mut self, flush: &Flush) {
        for (key, _, sample) in &flush.points {
            let Sample::Distribution(d) = sample else { continue };
            if key.name != conv::OP_DURATION.name {
                continue;
            }
            self.calls += d.count;
            self.duration_sum += d.sum;
            if key.get(tag::OUTCOME) == Some(Outcome::Error.as_str()) {
                self.failures += d.count;
            } else {
                self.successes += d.count;
            }
            if let Some(c) = key.get(tag::CACHE) {
                self.cache_lookups += d.count;
                if CacheResult::parse(c).is_some_and(CacheResult::is_hit) {
                    self.cache_hits += d.count;
                }
            }
        }
    }

    /// The log line, or None when there were no calls.
    pub fn line(&self) -> Option<String> {
        if self.calls <= 0.0 {
            return None;
        }
        let hit_rate = if self.cache_lookups > 0.0 {
            format!("{:.3}", self.cache_hits / self.cache_lookups)
        } else {
            "n/a".to_string()
        };
        Some(format!(
            "calls={}, successes={}, failures={}, success_rate={:.3}, avg_duration={:.1}ms, cache_hit_rate={hit_rate}",
            self.calls.round(),
            self.successes.round(),
            self.failures.round(),
            self.successes / self.calls,
            self.duration_sum / self.calls * 1000.0,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statsd::aggregate::{Aggregator, AggregatorConfig};

    #[test]
    fn summarises_calls_outcomes_durations_and_cache_hits() {
        let mut a = Aggregator::new(AggregatorConfig::default(), 0, 10_000);
        a.ingest_datagram(
            b"op.duration:100|ms|#op:vm.list,outcome:ok,cache:hit\n\
              op.duration:300|ms|#op:vm.list,outcome:ok,cache:miss\n\
              op.duration:200|ms|#op:vm.start,outcome:error\n\
              op.duration:400|ms|@0.5|#op:vm.start,outcome:ok\n\
              op.retries:1|c",
        );
        let mut s = CallSummary::default();
        s.add(&a.flush());
        assert_eq!(
            s.line().unwrap(),
            "calls=5, successes=4, failures=1, success_rate=0.800, avg_duration=280.0ms, cache_hit_rate=0.500"
        );
        assert_eq!(CallSummary::default().line(), None);
    }
}
