//! Turning one aggregator [`Flush`] into store writes: register its series (one
//! transaction), write its points (one transaction), record its events. The daemon's writer
//! thread calls this for every flush it receives.

use std::collections::BTreeMap;

use perfstore::{Registration, Write, Writer};

use crate::statsd::aggregate::Flush;

/// What one flush did to the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Points written.
    pub written: usize,
    /// Points refused by the store's registry, by reason (`per_name_limit`, `total_limit`,
    /// `kind_conflict`).
    pub rejected: BTreeMap<&'static str, usize>,
    /// Events recorded.
    pub events: usize,
}

/// Write one flush. Points of series the store refuses are counted, not errors; a store
/// error (disk full, I/O) leaves the store unchanged and is returned so the caller can keep
/// the flush and retry.
pub fn write_flush(writer: &mut Writer, flush: &Flush, now_ms: i64) -> perfstore::Result<FlushOutcome> {
    let mut out = FlushOutcome::default();
    let keys: Vec<perfstore::SeriesKey> = flush.points.iter().map(|(k, _, _)| k.clone()).collect();
    let regs = writer.register_all(&keys, now_ms)?;
    let mut writes = Vec::with_capacity(flush.points.len());
    for ((_, ts_ms, sample), reg) in flush.points.iter().zip(regs) {
        match reg {
            Registration::Registered(series) => writes.push(Write { series, ts_ms: *ts_ms, sample: sample.clone() }),
            Registration::Rejected(reason) => *out.rejected.entry(reason.as_str()).or_default() += 1,
        }
    }
    if !writes.is_empty() {
        out.written = writer.write(&writes)?.points;
    }
    if !flush.events.is_empty() {
        writer.record_events(&flush.events)?;
        out.events = flush.events.len();
    }
    if !flush.profiles.is_empty() {
        writer.write_profiles(&flush.profiles)?;
    }
    Ok(out)
}
