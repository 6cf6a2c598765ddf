//! The one thread that owns the store: it writes every flush the receive loop (or the SDK)
//! hands it, samples the host, keeps the status file and `/metrics` current, and runs store
//! maintenance. The daemon and the embedded SDK both run it.
//!
//! ## Failure modes
//! Nothing vanishes without a count. A flush the store cannot take (disk full, I/O error, a
//! read-only file) stays queued in memory ([`Retry`]) and is retried with a backoff from 1 s
//! to 30 s; meanwhile the status file and `/readyz` say "degraded: disk full since …" with
//! what waits and what was lost. Past [`MAX_QUEUED_POINTS`] the oldest flushes are dropped and
//! counted as lost, by reason. When the store takes writes again the queue drains by itself
//! and the WAL is checkpointed to give its space back. Before each write the writer checks that
//! the file at the store's path is still the one it opened: a deleted store is recreated and a
//! replaced one reopened (loudly: the history of the old file is not in the new one), so
//! recording goes on in a file a reader can see rather than into an unlinked inode.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use perfstore::{Sample, SeriesKey, Writer};

use crate::clock::Clock;
use crate::exposition::Exposition;
use crate::health::Health;
use crate::statsd::aggregate::{Flush, Stats};
use crate::status::{self, Degraded, StatusFile};
use crate::telemetry::{Event as _, Ingested, KernelDrops, OverCardinality};

mod retry;

pub use retry::{FlushOutcome, MAX_QUEUED_POINTS, Retry, write_flush};

/// How often the writer runs store maintenance (sealing, rollups, retention, disk cap).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// How often the calls summary line is logged.
const SUMMARY_EVERY: Duration = Duration::from_secs(300);
/// Flushes handed to the writer at once; more wait merged in the receive loop's backlog.
const QUEUE: usize = 2;
/// How long the writer keeps retrying at exit before counting what is left as lost.
const EXIT_RETRIES: Duration = Duration::from_secs(5);

/// The receive side's counters, sent along with each flush.
#[derive(Debug, Default)]
pub struct Progress {
    /// The aggregator's totals.
    pub stats: Stats,
    /// Series in memory.
    pub series: usize,
    /// The kernel's drop count on the UDP socket, when read this interval.
    pub kernel_drops: Option<u64>,
}

/// How the writer thread runs.
#[derive(Debug)]
pub struct WriterConfig {
    /// The store path (for the status file and `/metrics`).
    pub db: PathBuf,
    /// The status file as of start.
    pub status: StatusFile,
    /// Where `/metrics` is kept current, when served.
    pub exposition: Option<Arc<Mutex<Exposition>>>,
    /// Where `/readyz` learns that the store stopped taking writes, when served.
    pub health: Option<Arc<Health>>,
    /// Log the calls summary line every 5 minutes (the daemon does; an SDK in an app does not).
    pub summaries: bool,
    /// Give the memory a flush freed back to the system after writing it (the daemon does;
    /// an SDK leaves its app's allocator alone). See [`give_back_freed_memory`].
    pub trim_memory: bool,
    /// Run below the receive thread's priority (the daemon does; an SDK leaves its app's
    /// threads as they are). See [`yield_to_receiving`].
    pub yield_to_receiving: bool,
    /// The clock flushes are stamped with.
    pub clock: Clock,
    /// Documents other threads want kept in the store (the alert state), written by this
    /// thread, the store's only writer, at its next turn.
    pub state: Option<PendingState>,
}

/// Documents waiting to be kept in the store, by name ([`perfstore::Writer::put_state`]): the
/// newest of each replaces an older one not yet written.
pub type PendingState = Arc<Mutex<std::collections::BTreeMap<String, String>>>;

/// What the writer did, at exit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Points written to the store.
    pub written: usize,
    /// Flushes the store failed to take (each counted once per failed attempt).
    pub failed_writes: usize,
    /// Points lost because the store could not take them.
    pub lost: u64,
}

/// The writer thread and what feeds it.
#[derive(Debug)]
pub struct WriterThread {
    /// Flushes in (bounded).
    pub tx: mpsc::SyncSender<(Flush, Progress)>,
    /// Joined at exit.
    pub thread: thread::JoinHandle<perfstore::Result<Totals>>,
}

/// Start the writer thread on `writer`.
pub fn spawn(writer: Writer, cfg: WriterConfig) -> std::io::Result<WriterThread> {
    let (tx, rx) = mpsc::sync_channel::<(Flush, Progress)>(QUEUE);
    // Written now, not only after the first flush: an SDK that finds the store held reads it
    // to learn where to forward.
    let status_file = status::path(&cfg.db);
    if let Err(e) = status::write(&status_file, &cfg.status) {
        log::warn!("writing {}: {e}", status_file.display());
    }
    let thread = thread::Builder::new().name("perfagent-writer".into()).spawn(move || run(writer, rx, cfg))?;
    Ok(WriterThread { tx, thread })
}

/// Return the free pages of the allocator's heaps to the system.
///
/// A flush of 100 000 series holds several MB for a moment (its points and distributions,
/// a fold slice's decoded points) and frees them once written. glibc keeps freed memory in its
/// heaps unless it is at a heap's top, so without this the agent's RSS sat at whatever high
/// mark the fragmentation of the first flushes left: 53 or 60 MiB of anonymous memory
/// between flushes from one run to the next, 46–47 with it. It costs 1–2 ms after a flush
/// of 100 000 series (the free lists are walked once), no receive or writer CPU that a
/// side-by-side run could tell apart, and the next flush faults its pages in again. Runs
/// after every flush handed over, written or queued for a retry; a no-op off glibc.
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks and only releases free pages;
    // it touches no memory the program holds.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Give this thread (the writer) a lower priority than the receive thread's: where the two
/// share a core, the receiving, whose backlog is the kernel's socket queue and overflows
/// silently, goes first; the writer's backlog is its own, bounded and counted. Nice 10
/// leaves the writer about a tenth of a contended core, more than it uses at 100 000 series.
///
/// As the first flush's 10 000 new series were registered, on the agent's one core at
/// 6.4 M tagged lines/s, the receive thread got half the core and the socket queue peaked
/// at 7–14 MB of its 16, with drops in some runs; with the writer at nice 10, 4.4–6.2 MB
/// and none (five alternating runs each).
fn yield_to_receiving() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take and return plain integers; the target is this
        // thread alone (on Linux a thread id is a valid PRIO_PROCESS target).
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
        if rc != 0 {
            log::debug!("lowering the writer's priority: {}", std::io::Error::last_os_error());
        }
    }
}

/// The writer thread's state between flushes.
struct Loop {
    retry: Retry,
    cfg: WriterConfig,
    status_file: PathBuf,
    calls: crate::summary::CallSummary,
    last_maintenance: Instant,
    last_summary: Instant,
    #[cfg(feature = "host-metrics")]
    sampler: Option<crate::sampler::Sampler>,
}

/// Only the lock holder samples the host, on the thread that owns the store.
#[cfg(feature = "host-metrics")]
fn sampler(now_ms: i64) -> Option<crate::sampler::Sampler> {
    let s = crate::sampler::Sampler::new(now_ms);
    if s.is_none() {
        log::warn!("host metrics are not available on this platform");
    }
    s
}

fn run(writer: Writer, rx: mpsc::Receiver<(Flush, Progress)>, cfg: WriterConfig) -> perfstore::Result<Totals> {
    if cfg.yield_to_receiving {
        yield_to_receiving();
    }
    let mut l = Loop {
        retry: Retry::new(writer),
        status_file: status::path(&cfg.db),
        calls: crate::summary::CallSummary::default(),
        last_maintenance: Instant::now(),
        last_summary: Instant::now(),
        #[cfg(feature = "host-metrics")]
        sampler: sampler(cfg.clock.now_ms()),
        cfg,
    };
    loop {
        let got = match l.retry.next_attempt() {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match got {
            Ok((flush, progress)) => l.flush(flush, progress),
            Err(mpsc::RecvTimeoutError::Timeout) => l.drain(),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    l.exit()
}

/// Values from which a distribution a flush hands over as values
/// ([`perfstore::Sketch::deferred`]) is binned here, once, before `/metrics` counts its
/// buckets and the store encodes it: each of them otherwise keys every value again. (At 1.6 M
/// tagged lines/s, bucket counting value by value took 14 % of this thread.) Below this, the
/// bins would take more memory than the values, held for every distribution of the flush at
/// once.
const BIN_FROM_VALUES: usize = 24;

/// Bin in place the distributions of `points` that hold [`BIN_FROM_VALUES`] values or more.
fn bin_busy_distributions(points: &mut [(Arc<SeriesKey>, i64, Sample)]) {
    for (_, _, sample) in points {
        if let Sample::Distribution(d) = sample
            && d.sketch.deferred_len() >= BIN_FROM_VALUES
        {
            d.sketch.settle();
        }
    }
}

impl Loop {
    fn flush(&mut self, mut flush: Flush, progress: Progress) {
        bin_busy_distributions(&mut flush.points);
        #[cfg(feature = "host-metrics")]
        if let Some(s) = &mut self.sampler {
            let ts = flush.interval_start_ms;
            flush.points.extend(s.sample(ts).into_iter().map(|(k, v)| (Arc::new(k), ts, v)));
        }
        self.calls.add(&flush);
        let t = &mut self.cfg.status.telemetry;
        if let Some((n, first)) = &flush.over_limit {
            OverCardinality { lines: *n, first }.emit(t);
        }
        if self.cfg.summaries && self.last_summary.elapsed() >= SUMMARY_EVERY {
            self.last_summary = Instant::now();
            if let Some(line) = std::mem::take(&mut self.calls).line() {
                log::info!("last {}: {line}", humantime::format_duration(SUMMARY_EVERY));
            }
        }
        Ingested { stats: &progress.stats, series: progress.series }.emit(t);
        if let Some(total) = progress.kernel_drops {
            KernelDrops { total }.emit(t);
        }
        if let Some(e) = &self.cfg.exposition
            && let Ok(mut e) = e.lock()
        {
            e.add(&flush.points);
        }
        self.retry.push(flush, t);
        self.drain();
        // Fold the store's recent log now, when it is full, rather than at the next write:
        // then the fold's points (some 3 MB at 100 000 series) and the next flush's (10 MB)
        // are not in memory at once. A failure here comes back at that write, which folds
        // first, and is handled there.
        if self.retry.fault().is_none()
            && let Err(e) = self.retry.writer().fold_when_full()
        {
            log::debug!("folding the recent log between flushes: {e}");
        }
        if self.cfg.trim_memory {
            give_back_freed_memory();
        }
    }

    /// Write what is queued (when a retry is due), then publish the state.
    fn drain(&mut self) {
        let now = self.cfg.clock.now_ms();
        self.retry.drain(now, &mut self.cfg.status.telemetry);
        self.put_state();
        if self.retry.fault().is_none() && self.last_maintenance.elapsed() >= MAINTENANCE_EVERY {
            self.last_maintenance = Instant::now();
            if let Err(e) = self.retry.writer().maintain_sliced(now) {
                log::error!("store maintenance: {e}");
            }
        }
        self.publish(now);
    }

    /// Status file, `/metrics` and `/readyz`.
    fn publish(&mut self, now: i64) {
        let s = &mut self.cfg.status;
        s.last_flush_ms = Some(now);
        s.degraded = self.retry.fault().map(|f| Degraded {
            reason: f.kind.as_str().to_owned(),
            since_ms: f.since_ms,
            error: f.error.clone(),
        });
        if let Some(h) = &self.cfg.health {
            h.set_degraded(s.degraded.as_ref().map(|d| d.describe(&s.telemetry)));
        }
        if let Some(e) = &self.cfg.exposition
            && let Ok(mut e) = e.lock()
        {
            e.set_own(s.telemetry.render(&self.cfg.db, s.receive_buffer_bytes));
        }
        if let Err(e) = status::write(&self.status_file, s) {
            log::warn!("writing {}: {e}", self.status_file.display());
        }
    }

    /// The channel closed: a last try at what waits, then count what is left as lost.
    /// Keep what other threads handed over, unless the store is failing (then it waits, and
    /// a newer document replaces it).
    fn put_state(&mut self) {
        let Some(pending) = &self.cfg.state else { return };
        if self.retry.fault().is_some() {
            return;
        }
        let docs = std::mem::take(&mut *pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for (name, text) in docs {
            if let Err(e) = self.retry.writer().put_state(&name, &text) {
                log::warn!("keeping the {name} state in the store: {e}; will try again");
                pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(name).or_insert(text);
            }
        }
    }

    fn exit(mut self) -> perfstore::Result<Totals> {
        let deadline = Instant::now() + EXIT_RETRIES;
        while self.retry.queued_points() > 0 && Instant::now() < deadline {
            self.retry.retry_now();
            self.retry.drain(self.cfg.clock.now_ms(), &mut self.cfg.status.telemetry);
            if self.retry.queued_points() > 0 {
                thread::sleep(Duration::from_millis(250));
            }
        }
        self.retry.give_up(&mut self.cfg.status.telemetry);
        self.put_state();
        self.publish(self.cfg.clock.now_ms());
        if let Some(line) = self.calls.line().filter(|_| self.cfg.summaries) {
            log::info!("since the last summary: {line}");
        }
        let t = &self.cfg.status.telemetry;
        let totals = Totals { written: t.points_written, failed_writes: t.failed_writes, lost: t.lost.values().sum() };
        self.retry.into_writer().close()?;
        Ok(totals)
    }
}
