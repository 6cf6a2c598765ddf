//! The one thread that owns the store: it writes every flush the receive loop (or the SDK)
//! hands it, samples the host, keeps the status file and `/metrics` current, and runs store
//! maintenance. The daemon and the embedded SDK both run it.
//!
//! ## Failure modes
//! A flush the store cannot take is logged and counted ([`crate::telemetry::FlushFailed`]),
//! never fatal; the writer goes on with the next one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use perfstore::{Registration, RejectReason, Write, Writer};

use crate::clock::Clock;
use crate::exposition::Exposition;
use crate::statsd::aggregate::{Flush, Stats};
use crate::status::{self, StatusFile};
use crate::telemetry::{Event as _, FlushFailed, FlushWritten, Ingested, KernelDrops, OverCardinality, StoreRefused};

/// How often the writer runs store maintenance (sealing, rollups, retention, disk cap).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// How often the calls summary line is logged.
const SUMMARY_EVERY: Duration = Duration::from_secs(300);
/// Flushes handed to the writer at once; more wait merged in the receive loop's backlog.
const QUEUE: usize = 2;

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

/// Write one flush: register its series (one transaction), write its points (one
/// transaction), record its events and profiles. Points of series the store refuses are
/// counted, not errors; a store error (disk full, I/O) leaves the store unchanged.
pub fn write_flush(writer: &mut Writer, flush: &Flush, now_ms: i64) -> perfstore::Result<FlushOutcome> {
    let mut out = FlushOutcome::default();
    let keys: Vec<perfstore::SeriesKey> = flush.points.iter().map(|(k, _, _)| k.clone()).collect();
    let regs = writer.register_all(&keys, now_ms)?;
    let mut writes = Vec::with_capacity(flush.points.len());
    for ((_, ts_ms, sample), reg) in flush.points.iter().zip(regs) {
        match reg {
            Registration::Registered(series) => writes.push(Write { series, ts_ms: *ts_ms, sample: sample.clone() }),
            Registration::Rejected(reason) => *out.rejected.entry(reason).or_default() += 1,
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
    /// Log the calls summary line every 5 minutes (the daemon does; an SDK in an app does not).
    pub summaries: bool,
    /// The clock flushes are stamped with.
    pub clock: Clock,
}

/// What the writer did, at exit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Points written to the store.
    pub written: usize,
    /// Flushes the store failed to take.
    pub failed_writes: usize,
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

/// The writer thread's state between flushes.
struct Loop {
    writer: Writer,
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
    let mut l = Loop {
        writer,
        status_file: status::path(&cfg.db),
        calls: crate::summary::CallSummary::default(),
        last_maintenance: Instant::now(),
        last_summary: Instant::now(),
        #[cfg(feature = "host-metrics")]
        sampler: sampler(cfg.clock.now_ms()),
        cfg,
    };
    for (flush, progress) in rx {
        l.flush(flush, progress);
    }
    if let Some(line) = l.calls.line().filter(|_| l.cfg.summaries) {
        log::info!("since the last summary: {line}");
    }
    let t = &l.cfg.status.telemetry;
    let totals = Totals { written: t.points_written, failed_writes: t.failed_writes };
    l.writer.close()?;
    Ok(totals)
}

impl Loop {
    fn flush(&mut self, flush: Flush, progress: Progress) {
        #[cfg(feature = "host-metrics")]
        let mut flush = flush;
        #[cfg(feature = "host-metrics")]
        if let Some(s) = &mut self.sampler {
            let ts = flush.interval_start_ms;
            flush.points.extend(s.sample(ts).into_iter().map(|(k, v)| (k, ts, v)));
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
        let now = self.cfg.clock.now_ms();
        match write_flush(&mut self.writer, &flush, now) {
            Ok(out) => {
                FlushWritten { points: out.written }.emit(t);
                for (reason, points) in out.rejected {
                    StoreRefused { reason, points }.emit(t);
                }
            }
            Err(error) => FlushFailed { points: flush.points.len(), error: &error }.emit(t),
        }
        Ingested { stats: &progress.stats, series: progress.series }.emit(t);
        if let Some(total) = progress.kernel_drops {
            KernelDrops { total }.emit(t);
        }
        self.cfg.status.last_flush_ms = Some(now);
        if let Some(e) = &self.cfg.exposition
            && let Ok(mut e) = e.lock()
        {
            e.add(&flush.points);
            e.set_own(t.render(&self.cfg.db, self.cfg.status.receive_buffer_bytes));
        }
        if let Err(e) = status::write(&self.status_file, &self.cfg.status) {
            log::warn!("writing {}: {e}", self.status_file.display());
        }
        if self.last_maintenance.elapsed() >= MAINTENANCE_EVERY {
            self.last_maintenance = Instant::now();
            if let Err(e) = self.writer.maintain(now) {
                log::error!("store maintenance: {e}");
            }
        }
    }
}
