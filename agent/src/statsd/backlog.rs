//! The backlog between the receive loop and the store writer.

use super::aggregate::Flush;

/// Flushes the store has not taken yet, merged into one up to a bound of points, so a slow
/// store never blocks the receive loop (which would turn into silent kernel drops).
#[derive(Debug)]
pub struct Backlog {
    pending: Option<Flush>,
    max_points: usize,
}

impl Backlog {
    /// A backlog holding at most `max_points` points.
    pub fn new(max_points: usize) -> Self {
        Self { pending: None, max_points }
    }

    /// Points waiting.
    pub fn points(&self) -> usize {
        self.pending.as_ref().map_or(0, |f| f.points.len())
    }

    /// Add a flush. Returns how many of the oldest points had to be dropped to stay within
    /// the bound (the caller counts them).
    pub fn push(&mut self, f: Flush) -> usize {
        let p = match &mut self.pending {
            None => self.pending.insert(f),
            Some(p) => {
                p.points.extend(f.points);
                p.events.extend(f.events);
                p.profiles.extend(f.profiles);
                p.held.extend(f.held);
                p.interval_start_ms = f.interval_start_ms;
                p.over_limit = match (p.over_limit.take(), f.over_limit) {
                    (Some((a, ex)), Some((b, _))) => Some((a + b, ex)),
                    (a, b) => a.or(b),
                };
                p
            }
        };
        if p.points.len() <= self.max_points {
            return 0;
        }
        let excess = p.points.len() - self.max_points;
        p.points.sort_by_key(|(_, ts, _)| *ts); // stable: the oldest intervals go first
        p.points.drain(..excess);
        excess
    }

    /// Take everything waiting.
    pub fn take(&mut self) -> Option<Flush> {
        self.pending.take()
    }

    /// Put back a flush the store could not take yet (newer flushes merge into it).
    pub fn restore(&mut self, f: Flush) {
        match self.pending.take() {
            None => self.pending = Some(f),
            Some(newer) => {
                self.pending = Some(f);
                self.push(newer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statsd::aggregate::{Aggregator, AggregatorConfig};

    const T0: i64 = 1_767_225_600_000;

    fn agg() -> Aggregator {
        Aggregator::new(AggregatorConfig { service: "api".into(), ..AggregatorConfig::default() }, T0, 10_000)
    }

    #[test]
    fn the_backlog_merges_flushes_and_drops_the_oldest_past_its_bound() {
        let mut a = agg();
        let mut b = Backlog::new(5);
        for i in 0..3 {
            a.ingest_datagram(format!("c{i}:1|c\nshared:1|c").as_bytes());
            let dropped = b.push(a.flush());
            assert_eq!(dropped, if i == 2 { 1 } else { 0 }, "flush {i}");
        }
        assert_eq!(b.points(), 5);
        let f = b.take().unwrap();
        assert_eq!(f.interval_start_ms, T0 + 20_000, "the newest interval");
        assert!(f.points.iter().all(|(_, ts, _)| *ts >= T0), "{:?}", f.points);
        assert_eq!(f.points.iter().filter(|(_, ts, _)| *ts == T0).count(), 1, "one of the oldest points dropped");
        // A flush the store refused comes back first, newer ones merge after it.
        b.restore(f);
        a.ingest_datagram(b"late:1|c");
        b.push(a.flush());
        assert_eq!(b.points(), 5);
        assert!(b.take().unwrap().points.iter().any(|(k, _, _)| k.name == "late"));
    }
}
