//! Flushes on their way into the store: written in order, kept and retried when the store
//! cannot take them, counted as lost only when there is no room to keep them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use perfstore::{Error as StoreError, FileState, Registration, RejectReason, SeriesId, SeriesKey, Writer};

use crate::by_address::ByAddress;
use crate::statsd::aggregate::Flush;
use crate::telemetry::{Event as _, FlushFailed, FlushWritten, StoreRefused, Telemetry};

/// Points kept in memory for a store that cannot take them (about 100 MiB at worst); past
/// it the oldest flushes are dropped and counted as lost.
pub const MAX_QUEUED_POINTS: usize = 500_000;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one flush did to the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Points written.
    pub written: usize,
    /// Points refused by the store's registry, by reason.
    pub rejected: BTreeMap<RejectReason, usize>,
    /// Events recorded.
    pub events: usize,
}

/// Store ids of the aggregator's live series, by the address of the key it shares with each
/// flush. Valid for one store file: a reopened store starts a new one.
type Ids = ByAddress<SeriesKey, SeriesId>;

/// A flush not yet in the store, and which of its parts are (a retry must not write points
/// twice: counter deltas would add up).
#[derive(Debug)]
struct Pending {
    flush: Flush,
    points_done: bool,
    events_done: bool,
    profiles_done: bool,
    outcome: FlushOutcome,
}

impl Pending {
    fn new(flush: Flush) -> Self {
        Self { flush, points_done: false, events_done: false, profiles_done: false, outcome: FlushOutcome::default() }
    }
}

/// Write one flush: register its series (one transaction), write its points (one
/// transaction), record its events and profiles. Points of series the store refuses are
/// counted, not errors; a store error (disk full, I/O) leaves the store unchanged.
pub fn write_flush(writer: &mut Writer, flush: Flush, now_ms: i64) -> perfstore::Result<FlushOutcome> {
    let mut p = Pending::new(flush);
    write_pending(writer, &mut Ids::default(), &mut p, now_ms)?;
    Ok(p.outcome)
}

fn write_pending(writer: &mut Writer, ids: &mut Ids, p: &mut Pending, now_ms: i64) -> perfstore::Result<()> {
    let flush = &p.flush;
    if !p.points_done {
        ids.sweep();
        // Ids are looked up here and each time the store reads the points (twice: once for
        // those out of series order) rather than kept in a vector of one per point, 1.4 MB a
        // flush at 100 000 series.
        let unknown: Vec<usize> = (0..flush.points.len()).filter(|&i| ids.get(&flush.points[i].0).is_none()).collect();
        // Room for their ids in one step (see `ByAddress::reserve`).
        ids.reserve(unknown.len());
        let regs = writer.register_all(unknown.iter().map(|&i| &*flush.points[i].0), now_ms)?;
        let mut rejected = BTreeMap::new();
        for (&i, reg) in unknown.iter().zip(regs) {
            match reg {
                Registration::Registered(series) => ids.put(&flush.points[i].0, series),
                Registration::Rejected(reason) => *rejected.entry(reason).or_default() += 1,
            }
        }
        let ids = &*ids;
        let mut writes =
            flush.points.iter().filter_map(|(key, ts_ms, sample)| Some((*ids.get(key)?, *ts_ms, sample))).peekable();
        if writes.peek().is_some() {
            p.outcome.written = writer.write_samples(writes)?.points;
        }
        p.outcome.rejected = rejected;
        p.points_done = true;
    }
    if !p.events_done {
        if !flush.events.is_empty() {
            writer.record_events(&flush.events)?;
            p.outcome.events = flush.events.len();
        }
        p.events_done = true;
    }
    if !p.profiles_done {
        if !flush.profiles.is_empty() {
            writer.write_profiles(&flush.profiles)?;
        }
        p.profiles_done = true;
    }
    Ok(())
}

/// Why the store is not taking writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The disk is full.
    DiskFull,
    /// The file-size limit (`ulimit -f`) is reached.
    SizeLimit,
    /// The file or its folder is not writable.
    ReadOnly,
    /// The store file was deleted and could not be recreated.
    Deleted,
    /// Another file took the store's path and could not be opened.
    Replaced,
    /// Any other error.
    Failed,
}

impl FaultKind {
    /// For people and for the `reason` label: `disk full`, `read-only`, …
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::DiskFull => "disk full",
            FaultKind::SizeLimit => "file-size limit reached",
            FaultKind::ReadOnly => "store read-only",
            FaultKind::Deleted => "store file deleted",
            FaultKind::Replaced => "store file replaced",
            FaultKind::Failed => "store writes failing",
        }
    }

    /// The bounded label of points lost to it.
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::DiskFull => "disk_full",
            FaultKind::SizeLimit => "size_limit",
            FaultKind::ReadOnly => "read_only",
            FaultKind::Deleted => "deleted",
            FaultKind::Replaced => "replaced",
            FaultKind::Failed => "write_failed",
        }
    }

    fn of(e: &StoreError) -> Self {
        match e {
            StoreError::DiskFull { .. } => FaultKind::DiskFull,
            StoreError::FileTooLarge { .. } => FaultKind::SizeLimit,
            StoreError::ReadOnly { .. } => FaultKind::ReadOnly,
            _ => FaultKind::Failed,
        }
    }
}

/// The store is not taking writes: why, since when, the last error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Why.
    pub kind: FaultKind,
    /// Since when, Unix ms.
    pub since_ms: i64,
    /// The last error, as the store said it.
    pub error: String,
}

/// The queue of flushes on their way into the store, and the state of the store.
#[derive(Debug)]
pub struct Retry {
    writer: Writer,
    ids: Ids,
    queue: VecDeque<Pending>,
    queued_points: usize,
    fault: Option<Fault>,
    backoff: Duration,
    next_try: Option<Instant>,
    last_drop_log: Option<Instant>,
}

impl Retry {
    /// Nothing queued yet.
    pub fn new(writer: Writer) -> Self {
        Self {
            writer,
            ids: Ids::default(),
            queue: VecDeque::new(),
            queued_points: 0,
            fault: None,
            backoff: FIRST_BACKOFF,
            next_try: None,
            last_drop_log: None,
        }
    }

    /// The store's writer.
    pub fn writer(&mut self) -> &mut Writer {
        &mut self.writer
    }

    /// The writer, to close it.
    pub fn into_writer(self) -> Writer {
        self.writer
    }

    /// Why the store is not taking writes, if it is not.
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    /// Points waiting.
    pub fn queued_points(&self) -> usize {
        self.queued_points
    }

    /// When the next retry is due, while something waits.
    pub fn next_attempt(&self) -> Option<Instant> {
        self.next_try.filter(|_| !self.queue.is_empty())
    }

    /// Make the next [`Retry::drain`] try at once.
    pub fn retry_now(&mut self) {
        self.next_try = None;
    }

    /// Queue a flush, dropping (and counting) the oldest ones past [`MAX_QUEUED_POINTS`].
    pub fn push(&mut self, flush: Flush, t: &mut Telemetry) {
        self.queued_points += flush.points.len();
        self.queue.push_back(Pending::new(flush));
        let mut dropped = 0;
        while self.queued_points > MAX_QUEUED_POINTS && self.queue.len() > 1 {
            if let Some(old) = self.queue.pop_front() {
                self.queued_points -= old.flush.points.len();
                dropped += old.flush.points.len() as u64;
            }
        }
        if dropped > 0 {
            let reason = self.fault.as_ref().map_or(FaultKind::Failed, |f| f.kind);
            *t.lost.entry(reason.label().to_owned()).or_default() += dropped;
            if self.last_drop_log.is_none_or(|l| l.elapsed() >= Duration::from_secs(60)) {
                self.last_drop_log = Some(Instant::now());
                log::error!(
                    "dropped {dropped} points that waited for the store ({}; at most {MAX_QUEUED_POINTS} are kept)",
                    reason.as_str()
                );
            }
        }
        t.pending_points = self.queued_points;
    }

    fn set_fault(&mut self, kind: FaultKind, error: String, now_ms: i64) {
        match &mut self.fault {
            Some(f) if f.kind == kind => f.error = error,
            _ => {
                log::error!("{}: {error}; keeping what arrives and retrying", kind.as_str());
                self.fault = Some(Fault { kind, since_ms: now_ms, error });
            }
        }
        self.next_try = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// A new store file at the path (the old one was deleted, or another took its place).
    fn reopen(&mut self, kind: FaultKind, now_ms: i64, t: &mut Telemetry) -> bool {
        let (path, opts) = (self.writer.path().to_owned(), self.writer.options().clone());
        match Writer::open(&path, opts) {
            Ok(w) => {
                drop(std::mem::replace(&mut self.writer, w));
                self.ids = Ids::default();
                t.store_reopened += 1;
                let what = if kind == FaultKind::Deleted { "recreated it" } else { "opened the new file" };
                log::error!(
                    "{}: {} while the agent ran; {what} and goes on recording there (what the old file held is \
                     not in it)",
                    path.display(),
                    if kind == FaultKind::Deleted {
                        "the store file was deleted"
                    } else {
                        "the store file was replaced"
                    }
                );
                true
            }
            Err(e) => {
                self.set_fault(kind, e.to_string(), now_ms);
                false
            }
        }
    }

    /// Write what waits, in order, unless a retry is not due yet.
    pub fn drain(&mut self, now_ms: i64, t: &mut Telemetry) {
        if self.next_try.is_some_and(|at| Instant::now() < at) {
            return;
        }
        match self.writer.file_state() {
            FileState::Ok => {}
            FileState::Deleted => {
                if !self.reopen(FaultKind::Deleted, now_ms, t) {
                    return;
                }
            }
            FileState::Replaced => {
                if !self.reopen(FaultKind::Replaced, now_ms, t) {
                    return;
                }
            }
            FileState::ReadOnly => {
                let e = format!("{}: the file or its folder is not writable", self.writer.path().display());
                return self.set_fault(FaultKind::ReadOnly, e, now_ms);
            }
        }
        while let Some(front) = self.queue.front_mut() {
            if let Err(error) = write_pending(&mut self.writer, &mut self.ids, front, now_ms) {
                FlushFailed { points: front.flush.points.len(), error: &error }.emit(t);
                let kind = FaultKind::of(&error);
                if matches!(kind, FaultKind::DiskFull | FaultKind::SizeLimit) {
                    // Committed frames in the WAL can go to the database and the WAL shrink.
                    let _ = self.writer.checkpoint();
                }
                self.set_fault(kind, error.to_string(), now_ms);
                t.pending_points = self.queued_points;
                return;
            }
            if let Some(done) = self.queue.pop_front() {
                self.queued_points -= done.flush.points.len();
                FlushWritten { points: done.outcome.written }.emit(t);
                for (reason, points) in done.outcome.rejected {
                    StoreRefused { reason, points }.emit(t);
                }
            }
        }
        t.pending_points = self.queued_points;
        self.next_try = None;
        self.backoff = FIRST_BACKOFF;
        if let Some(f) = self.fault.take() {
            let secs = (now_ms - f.since_ms).max(0) / 1000;
            log::warn!("the store takes writes again after {secs} s ({}); what waited is written", f.kind.as_str());
            if let Err(e) = self.writer.checkpoint() {
                log::warn!("checkpointing after the store recovered: {e}");
            }
        }
    }

    /// Count what still waits as lost (at exit).
    pub fn give_up(&mut self, t: &mut Telemetry) {
        if self.queued_points == 0 {
            return;
        }
        let reason = self.fault.as_ref().map_or(FaultKind::Failed, |f| f.kind);
        log::error!(
            "{} points could not be written before exit ({}); they are lost",
            self.queued_points,
            reason.as_str()
        );
        *t.lost.entry(reason.label().to_owned()).or_default() += self.queued_points as u64;
        self.queue.clear();
        self.queued_points = 0;
        t.pending_points = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use perfstore::Kind;

    #[test]
    fn store_ids_are_found_by_the_shared_key_and_one_off_keys_do_not_pile_up() {
        let mut ids = Ids::default();
        let live = Arc::new(SeriesKey::new("api", "op.calls", Kind::Counter));
        ids.put(&live, SeriesId(7));
        for i in 0..640 {
            // A backfilled point's key, made for one flush and dropped with it.
            let once = Arc::new(SeriesKey::new("api", "op.calls", Kind::Counter));
            ids.put(&once, SeriesId(7));
            drop(once);
            ids.sweep();
            assert!(ids.len() <= 66, "after {i} flushes: {} entries", ids.len());
        }
        assert_eq!(ids.get(&live), Some(&SeriesId(7)), "a live key stays");
        let twin = Arc::new(SeriesKey::new("api", "op.calls", Kind::Counter));
        assert_eq!(ids.get(&twin), None, "an equal key at another address is looked up by its strings");
    }
}
