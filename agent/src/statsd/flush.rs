//! What one aggregation interval hands to the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use perfstore::{Event, Sample, SeriesKey};

/// One flush: points stamped with their interval start, and events.
#[derive(Debug, Clone, Default)]
pub struct Flush {
    /// Start of the interval this flush closes, Unix ms.
    pub interval_start_ms: i64,
    /// `(series, interval start in Unix ms, sample)`. Keys are shared with the aggregator,
    /// which keeps each live series' key: a flush of 100 000 series copies no key.
    pub points: Vec<(Arc<SeriesKey>, i64, Sample)>,
    /// Last-error events.
    pub events: Vec<Event>,
    /// Lines refused by the cardinality limits this interval, and the first series refused.
    pub over_limit: Option<(u64, String)>,
    /// CPU profiles sampled in-process (the SDK's profiler) or uploaded over HTTP.
    pub profiles: Vec<perfstore::ProfileWindow>,
    /// Budget bytes the profiles hold until this flush is written or given up.
    pub held: Vec<Arc<HeldBytes>>,
}

/// Bytes of a budget (profile uploads waiting) held by a flush; dropping the last clone
/// returns them.
#[derive(Debug)]
pub struct HeldBytes {
    budget: Arc<AtomicUsize>,
    bytes: usize,
}

impl HeldBytes {
    /// Hold `bytes` already counted in `budget`.
    pub fn new(budget: Arc<AtomicUsize>, bytes: usize) -> Self {
        Self { budget, bytes }
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        let n = self.bytes;
        let _ = self.budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| Some(b.saturating_sub(n)));
    }
}
