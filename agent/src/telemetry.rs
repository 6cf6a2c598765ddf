//! What the agent counts about itself, spelled once (Vector's internal events): each event is
//! a struct whose [`Event::emit`] does both the log line and the counter, and every counter
//! has one name and one HELP text here, for `/metrics`, the status file and `perfagent status`.
//!
//! Labels are bounded (`reason` is a fixed set of drop and refusal reasons, never raw error
//! text).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use perfstore::RejectReason;
use serde::{Deserialize, Serialize};

use crate::statsd::aggregate::Stats;

/// The agent's own counters (kept by the writer thread).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telemetry {
    /// Metric lines aggregated since start.
    pub lines: u64,
    /// Metric lines in the last interval.
    pub lines_last_interval: u64,
    /// Lines dropped since start, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Series held in memory.
    pub series_in_memory: usize,
    /// Points written to the store since start.
    pub points_written: usize,
    /// Points the store refused since start, by reason.
    pub rejected: BTreeMap<String, usize>,
    /// Flushes the store failed to take since start.
    pub failed_writes: usize,
    /// Datagrams the kernel dropped because the receive buffer was full, since start.
    pub kernel_drops: u64,
    /// Points received but not yet in the store (waiting for it to take writes again).
    #[serde(default)]
    pub pending_points: usize,
    /// Points lost because the store could not take them, by reason (`disk_full`, …).
    #[serde(default)]
    pub lost: BTreeMap<String, u64>,
    /// Times the store file was found deleted or replaced and reopened.
    #[serde(default)]
    pub store_reopened: u64,
}

/// Something that happened to the agent: a log line and a counter.
pub trait Event {
    /// Log it and count it.
    fn emit(self, t: &mut Telemetry);
}

/// The receive side's counters at a flush.
#[derive(Debug)]
pub struct Ingested<'a> {
    /// The aggregator's totals.
    pub stats: &'a Stats,
    /// Series in memory.
    pub series: usize,
}

impl Event for Ingested<'_> {
    fn emit(self, t: &mut Telemetry) {
        t.lines_last_interval = self.stats.lines.saturating_sub(t.lines);
        t.lines = self.stats.lines;
        t.dropped = self.stats.dropped.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        t.series_in_memory = self.series;
    }
}

/// A flush landed in the store.
#[derive(Debug)]
pub struct FlushWritten {
    /// Points written.
    pub points: usize,
}

impl Event for FlushWritten {
    fn emit(self, t: &mut Telemetry) {
        t.points_written += self.points;
    }
}

/// The store refused new series (a cardinality limit, a kind conflict).
#[derive(Debug)]
pub struct StoreRefused {
    /// Why.
    pub reason: RejectReason,
    /// Points refused.
    pub points: usize,
}

impl Event for StoreRefused {
    fn emit(self, t: &mut Telemetry) {
        log::warn!("the store refused {} series this interval ({})", self.points, self.reason.as_str());
        *t.rejected.entry(self.reason.as_str().to_owned()).or_default() += self.points;
    }
}

/// A flush the store could not take.
#[derive(Debug)]
pub struct FlushFailed<'a> {
    /// Points in it.
    pub points: usize,
    /// The store's error.
    pub error: &'a perfstore::Error,
}

impl Event for FlushFailed<'_> {
    fn emit(self, t: &mut Telemetry) {
        // The first failure of a kind is logged with its cause by the retry queue; repeats
        // are only counted.
        log::debug!("writing {} points to the store: {}", self.points, self.error);
        t.failed_writes += 1;
    }
}

/// The kernel's count of datagrams dropped on the UDP socket.
#[derive(Debug)]
pub struct KernelDrops {
    /// Dropped since the socket opened.
    pub total: u64,
}

impl Event for KernelDrops {
    fn emit(self, t: &mut Telemetry) {
        if self.total > t.kernel_drops {
            log::warn!(
                "the kernel dropped {} StatsD datagrams (receive buffer full; {} in all): raise net.core.rmem_max \
                 or send less per burst",
                self.total - t.kernel_drops,
                self.total
            );
            t.kernel_drops = self.total;
        }
    }
}

/// Lines refused by the cardinality limits in one interval (counted in `dropped` by the
/// aggregator; this names the first series refused).
#[derive(Debug)]
pub struct OverCardinality<'a> {
    /// Lines refused.
    pub lines: u64,
    /// The first series refused.
    pub first: &'a str,
}

impl Event for OverCardinality<'_> {
    fn emit(self, _: &mut Telemetry) {
        log::warn!(
            "dropped {} lines over the cardinality limits this interval (first: {}); raise [statsd] max_series / \
             max_series_per_name or drop the tag that varies",
            self.lines,
            self.first.escape_debug()
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Type {
    Counter,
    Gauge,
}

/// One family of the agent's own metrics.
#[derive(Debug, Clone, Copy)]
struct Family {
    name: &'static str,
    kind: Type,
    help: &'static str,
}

const LINES: Family =
    Family { name: "perfagent_lines_received_total", kind: Type::Counter, help: "StatsD metric lines aggregated." };
const DROPPED: Family =
    Family { name: "perfagent_dropped_lines_total", kind: Type::Counter, help: "StatsD lines dropped, by reason." };
const KERNEL_DROPS: Family = Family {
    name: "perfagent_kernel_drops_total",
    kind: Type::Counter,
    help: "Datagrams the kernel dropped (receive buffer full).",
};
const SERIES: Family = Family { name: "perfagent_series", kind: Type::Gauge, help: "Series held in memory." };
const POINTS: Family =
    Family { name: "perfagent_points_written_total", kind: Type::Counter, help: "Points written to the store." };
const REJECTED: Family = Family {
    name: "perfagent_store_rejected_total",
    kind: Type::Counter,
    help: "Points the store refused, by reason.",
};
const FLUSH_FAILURES: Family =
    Family { name: "perfagent_flush_failures_total", kind: Type::Counter, help: "Flushes the store failed to take." };
const PENDING: Family = Family {
    name: "perfagent_pending_points",
    kind: Type::Gauge,
    help: "Points received but not yet written (the store is not taking writes).",
};
const LOST: Family = Family {
    name: "perfagent_lost_points_total",
    kind: Type::Counter,
    help: "Points lost because the store could not take them, by reason.",
};
const REOPENED: Family = Family {
    name: "perfagent_store_reopened_total",
    kind: Type::Counter,
    help: "Times the store file was found deleted or replaced and reopened.",
};
const DB_BYTES: Family =
    Family { name: "perfagent_db_bytes", kind: Type::Gauge, help: "Size of the store's database file." };
const WAL_BYTES: Family =
    Family { name: "perfagent_wal_bytes", kind: Type::Gauge, help: "Size of the store's write-ahead log." };
const RECEIVE_BUFFER: Family = Family {
    name: "perfagent_receive_buffer_bytes",
    kind: Type::Gauge,
    help: "UDP receive buffer granted by the kernel.",
};

fn family(out: &mut String, f: Family, samples: &[(Option<(&str, &str)>, f64)]) {
    let kind = match f.kind {
        Type::Counter => "counter",
        Type::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {kind}", f.name, f.help, f.name);
    for (label, v) in samples {
        match label {
            Some((k, val)) => {
                let val = perfstore::convention::prometheus::escape_label_value(val);
                let _ = writeln!(out, "{}{{{k}=\"{val}\"}} {v}", f.name);
            }
            None => {
                let _ = writeln!(out, "{} {v}", f.name);
            }
        }
    }
}

impl Telemetry {
    /// The agent's own families in the Prometheus text format.
    pub fn render(&self, db: &Path, receive_buffer_bytes: usize) -> String {
        let mut out = String::with_capacity(2048);
        let len = |p: &Path| p.metadata().map_or(0, |m| m.len()) as f64;
        fn by_reason(m: &BTreeMap<String, u64>) -> Vec<(Option<(&str, &str)>, f64)> {
            m.iter().map(|(k, v)| (Some(("reason", k.as_str())), *v as f64)).collect()
        }
        family(&mut out, LINES, &[(None, self.lines as f64)]);
        if !self.dropped.is_empty() {
            family(&mut out, DROPPED, &by_reason(&self.dropped));
        }
        family(&mut out, KERNEL_DROPS, &[(None, self.kernel_drops as f64)]);
        family(&mut out, SERIES, &[(None, self.series_in_memory as f64)]);
        family(&mut out, POINTS, &[(None, self.points_written as f64)]);
        if !self.rejected.is_empty() {
            let r: BTreeMap<String, u64> = self.rejected.iter().map(|(k, v)| (k.clone(), *v as u64)).collect();
            family(&mut out, REJECTED, &by_reason(&r));
        }
        family(&mut out, FLUSH_FAILURES, &[(None, self.failed_writes as f64)]);
        family(&mut out, PENDING, &[(None, self.pending_points as f64)]);
        if !self.lost.is_empty() {
            family(&mut out, LOST, &by_reason(&self.lost));
        }
        family(&mut out, REOPENED, &[(None, self.store_reopened as f64)]);
        family(&mut out, DB_BYTES, &[(None, len(db))]);
        family(&mut out, WAL_BYTES, &[(None, len(&perfstore::wal_path(db)))]);
        family(&mut out, RECEIVE_BUFFER, &[(None, receive_buffer_bytes as f64)]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_count_and_families_render_once_each() {
        let mut t = Telemetry::default();
        FlushWritten { points: 5 }.emit(&mut t);
        StoreRefused { reason: RejectReason::TotalLimit, points: 2 }.emit(&mut t);
        KernelDrops { total: 3 }.emit(&mut t);
        KernelDrops { total: 1 }.emit(&mut t);
        let stats = Stats { lines: 10, dropped: [("bad_value", 4)].into(), ..Stats::default() };
        Ingested { stats: &stats, series: 7 }.emit(&mut t);
        assert_eq!((t.points_written, t.kernel_drops, t.lines, t.series_in_memory), (5, 3, 10, 7));
        let text = t.render(Path::new("/nonexistent.db"), 4096);
        assert!(text.contains("perfagent_dropped_lines_total{reason=\"bad_value\"} 4\n"), "{text}");
        assert!(text.contains("perfagent_store_rejected_total{reason=\"total_limit\"} 2\n"), "{text}");
        assert_eq!(text.matches("# TYPE perfagent_points_written_total counter").count(), 1);
        assert!(text.contains("perfagent_receive_buffer_bytes 4096\n"));
    }
}
