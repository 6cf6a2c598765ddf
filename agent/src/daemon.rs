//! The collector loop behind `perfagent start --foreground`.
//!
//! ## Concurrency
//! Two threads. The receive thread owns the UDP socket and the [`Aggregator`]: it reads
//! datagrams, parses and aggregates them, and at each interval boundary hands the interval's
//! points to the writer thread over a bounded channel. The writer thread owns the store (no
//! other thread touches SQLite) and runs maintenance every minute.
//!
//! ## Failure modes
//! Startup errors (store locked by another agent, port in use, unwritable path) end `run`
//! with a message naming the store or address. At runtime a failed store write is logged and
//! counted, never fatal. On shutdown (SIGTERM/SIGINT) the loop stops receiving, drains what
//! the socket still holds, flushes, and the writer checkpoints and closes the store: nothing
//! that was received is lost.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use perfstore::{Error as StoreError, StoreOptions, Writer};

use crate::exposition::Exposition;
use crate::shutdown::{Shutdown, wait_readable};
use crate::statsd::aggregate::{Aggregator, AggregatorConfig, Flush, Stats};
use crate::statsd::listener::kernel_drops;
use crate::statsd::sources::Sources;
use crate::writer::write_flush;

/// How often the writer runs store maintenance (sealing, rollups, retention, disk cap).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// How often the calls summary line is logged.
const SUMMARY_EVERY: Duration = Duration::from_secs(300);
/// Flushes handed to the writer at once; more wait merged in the backlog.
const WRITER_QUEUE: usize = 2;
/// Points the backlog keeps for a slow store before dropping the oldest (counted).
const BACKLOG_POINTS: usize = 2_000_000;
/// Datagrams read per burst before the loop checks the flush deadline again, so a flood
/// never starves flushing.
const BURST: usize = 256;
/// Pause after a burst that emptied the socket while traffic flows (see the receive loop).
const LOAD_NAP: Duration = Duration::from_millis(1);

/// What the daemon needs to start.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Store path.
    pub db: PathBuf,
    /// StatsD UDP address (port 0 picks one).
    pub statsd_udp: SocketAddr,
    /// Optional Unix datagram socket path.
    pub statsd_unix: Option<PathBuf>,
    /// Optional TCP address (newline-delimited lines).
    pub statsd_tcp: Option<SocketAddr>,
    /// HTTP address for `/metrics`, `/healthz`, `/readyz` (None: off).
    pub http: Option<SocketAddr>,
    /// Aggregation interval.
    pub flush_interval: Duration,
    /// Aggregation settings (default service, cardinality, expiry).
    pub aggregator: AggregatorConfig,
    /// Store settings.
    pub store: StoreOptions,
}

/// Printed once everything is bound and open.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Our pid.
    pub pid: u32,
    /// Bound StatsD UDP address.
    pub statsd_udp: SocketAddr,
    /// Unix datagram socket, if any.
    pub statsd_unix: Option<PathBuf>,
    /// Bound TCP address, if any.
    pub statsd_tcp: Option<SocketAddr>,
    /// Bound HTTP address, if any.
    pub http: Option<SocketAddr>,
    /// Store path.
    pub db: PathBuf,
    /// Receive buffer the kernel granted.
    pub receive_buffer_bytes: usize,
}

impl Ready {
    /// The machine-readable ready line (one JSON object).
    pub fn line(&self) -> String {
        serde_json::json!({
            "event": "ready",
            "pid": self.pid,
            "statsd_udp": self.statsd_udp.to_string(),
            "statsd_unix": self.statsd_unix.as_ref().map(|p| p.display().to_string()),
            "statsd_tcp": self.statsd_tcp.map(|a| a.to_string()),
            "http": self.http.map(|a| a.to_string()),
            "db": self.db.display().to_string(),
            "receive_buffer_bytes": self.receive_buffer_bytes,
        })
        .to_string()
    }

    /// Every listener, for people: `udp://…, tcp://…, unix:…; HTTP http://…`.
    pub fn listeners(&self) -> String {
        listeners(
            &self.statsd_udp.to_string(),
            self.statsd_tcp.map(|a| a.to_string()).as_deref(),
            self.statsd_unix.as_ref().map(|p| p.display().to_string()).as_deref(),
            self.http.map(|a| a.to_string()).as_deref(),
        )
    }
}

/// `StatsD on udp://A, tcp://B, unix:C; HTTP on http://D` (what is on).
pub fn listeners(udp: &str, tcp: Option<&str>, unix: Option<&str>, http: Option<&str>) -> String {
    let mut s = format!("StatsD on udp://{udp}");
    if let Some(t) = tcp {
        s.push_str(&format!(", tcp://{t}"));
    }
    if let Some(u) = unix {
        s.push_str(&format!(", unix:{u}"));
    }
    match http {
        Some(h) => s.push_str(&format!("; HTTP on http://{h}")),
        None => s.push_str("; HTTP off"),
    }
    s
}

/// What `perfagent status` reads: written next to the store (`<db>.status`, mode 0600)
/// after every flush by the writer thread.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StatusFile {
    /// Agent pid.
    pub pid: u32,
    /// Start time, Unix ms.
    pub started_ms: i64,
    /// Store path.
    pub db: String,
    /// Bound StatsD UDP address.
    pub statsd_udp: String,
    /// Bound StatsD TCP address, if on.
    #[serde(default)]
    pub statsd_tcp: Option<String>,
    /// StatsD Unix datagram socket, if on.
    #[serde(default)]
    pub statsd_unix: Option<String>,
    /// Bound HTTP address, if on.
    #[serde(default)]
    pub http: Option<String>,
    /// Flush interval, ms.
    pub flush_interval_ms: i64,
    /// Receive buffer granted by the kernel.
    pub receive_buffer_bytes: usize,
    /// When the last flush was written, Unix ms.
    pub last_flush_ms: i64,
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
}

/// `<db>.status`.
pub fn status_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".status");
    db.with_file_name(name)
}

fn write_status(path: &Path, status: &StatusFile) -> std::io::Result<()> {
    // Rewritten in place, with no fsync and no rename: the file is advisory (`perfagent status`
    // retries a torn read and tolerates a missing file), and both a sync and ext4's flush on
    // rename-over cost more CPU than the rest of an idle agent's work at a 1 s flush.
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path)?;
    let text = serde_json::to_string_pretty(status).unwrap_or_default();
    f.write_all(text.as_bytes())?;
    f.set_len(text.len() as u64)
}

/// The agent's own telemetry on `/metrics`.
fn own_metrics(e: &mut Exposition, s: &StatusFile, db: &Path) {
    e.set_own("perfagent_lines_received_total", "StatsD metric lines aggregated.", "counter", s.lines as f64);
    for (reason, n) in &s.dropped {
        e.set_own(
            &format!("perfagent_dropped_lines_total{{reason=\"{reason}\"}}"),
            "StatsD lines dropped, by reason.",
            "counter",
            *n as f64,
        );
    }
    e.set_own(
        "perfagent_kernel_drops_total",
        "Datagrams the kernel dropped (receive buffer full).",
        "counter",
        s.kernel_drops as f64,
    );
    e.set_own("perfagent_series", "Series held in memory.", "gauge", s.series_in_memory as f64);
    e.set_own("perfagent_points_written_total", "Points written to the store.", "counter", s.points_written as f64);
    for (reason, n) in &s.rejected {
        e.set_own(
            &format!("perfagent_store_rejected_total{{reason=\"{reason}\"}}"),
            "Points the store refused, by reason.",
            "counter",
            *n as f64,
        );
    }
    e.set_own("perfagent_flush_failures_total", "Flushes the store failed to take.", "counter", s.failed_writes as f64);
    let len = |p: &Path| p.metadata().map_or(0, |m| m.len()) as f64;
    e.set_own("perfagent_db_bytes", "Size of the store's database file.", "gauge", len(db));
    e.set_own("perfagent_wal_bytes", "Size of the store's write-ahead log.", "gauge", len(&perfstore::wal_path(db)));
    e.set_own(
        "perfagent_receive_buffer_bytes",
        "UDP receive buffer granted by the kernel.",
        "gauge",
        s.receive_buffer_bytes as f64,
    );
}

/// The receive thread's counters sent along with each flush.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) stats: Stats,
    pub(crate) series: usize,
    pub(crate) kernel_drops: Option<u64>,
}

/// The writer thread and what feeds it.
#[derive(Debug)]
pub(crate) struct WriterThread {
    /// Flushes in (bounded).
    pub(crate) tx: mpsc::SyncSender<(Flush, Progress)>,
    /// Joined at exit: (points written, failed writes).
    pub(crate) thread: thread::JoinHandle<anyhow::Result<(usize, usize)>>,
}

/// Start the one thread that owns the store: it samples the host, writes each flush, keeps
/// the status file and `/metrics` current, and runs maintenance. The daemon and the embedded
/// SDK both run it.
pub(crate) fn spawn_writer(
    writer: Writer,
    status: StatusFile,
    db: &Path,
    exposition: Arc<Mutex<Exposition>>,
    summaries: bool,
) -> anyhow::Result<WriterThread> {
    let (tx, rx) = mpsc::sync_channel::<(Flush, Progress)>(WRITER_QUEUE);
    // Written now, not only after the first flush: an SDK that finds the store held reads it
    // to learn where to forward.
    if let Err(e) = write_status(&status_path(db), &status) {
        crate::log!("writing {}: {e}", status_path(db).display());
    }
    let expo = exposition.clone();
    let db_path = db.to_owned();
    let status_file = status_path(db);
    let thread = thread::Builder::new()
        .name("perfagent-writer".into())
        .spawn(move || writer_loop(writer, rx, status, status_file, expo, db_path, summaries))
        .context("starting the writer thread")?;
    Ok(WriterThread { tx, thread })
}

/// Totals at exit.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Aggregator counters.
    pub stats: Stats,
    /// Points written to the store.
    pub written: usize,
    /// Flushes the store failed to take.
    pub failed_writes: usize,
}

/// Unix ms now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Run until `shutdown` is set; `on_ready` is called once listening.
pub fn run(cfg: DaemonConfig, shutdown: &Shutdown, on_ready: impl FnOnce(&Ready)) -> anyhow::Result<Summary> {
    let writer = match Writer::open(&cfg.db, cfg.store.clone()) {
        Ok(w) => w,
        Err(StoreError::Locked { pid: Some(pid), .. }) => {
            anyhow::bail!("perfagent is already running (pid {pid}) on {}", cfg.db.display())
        }
        Err(e) => return Err(e).with_context(|| format!("opening store {}", cfg.db.display())),
    };
    let mut sources = Sources::bind(cfg.statsd_udp, cfg.statsd_unix.as_deref(), cfg.statsd_tcp)?;
    let listener = &sources.udp;
    let interval_ms = i64::try_from(cfg.flush_interval.as_millis()).unwrap_or(i64::MAX).max(1);
    let exposition = Arc::new(Mutex::new(Exposition::default()));
    let ready = Arc::new(AtomicBool::new(false));
    let uploads =
        Arc::new(crate::http::Uploads { pending: Mutex::new(Vec::new()), service: cfg.aggregator.service.clone() });
    let http = match cfg.http {
        Some(addr) => Some(crate::http::serve(addr, exposition.clone(), ready.clone(), uploads.clone())?),
        None => None,
    };
    let status = StatusFile {
        pid: std::process::id(),
        started_ms: now_ms(),
        db: cfg.db.display().to_string(),
        statsd_udp: listener.local_addr.to_string(),
        statsd_tcp: sources.tcp_addr().map(|a| a.to_string()),
        statsd_unix: sources.unix_path().map(|p| p.display().to_string()),
        http: http.map(|a| a.to_string()),
        flush_interval_ms: i64::try_from(cfg.flush_interval.as_millis()).unwrap_or(i64::MAX),
        receive_buffer_bytes: listener.granted_receive_buffer,
        ..StatusFile::default()
    };
    let WriterThread { tx, thread: writer_thread } = spawn_writer(writer, status, &cfg.db, exposition, true)?;

    on_ready(&Ready {
        pid: std::process::id(),
        statsd_udp: listener.local_addr,
        statsd_unix: sources.unix_path().map(Path::to_owned),
        statsd_tcp: sources.tcp_addr(),
        http,
        db: cfg.db.clone(),
        receive_buffer_bytes: listener.granted_receive_buffer,
    });

    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    let start = now_ms().div_euclid(interval_ms) * interval_ms;
    let mut agg = Aggregator::new(cfg.aggregator, start, interval_ms);
    let mut interval_end = start + interval_ms;
    let mut buf = vec![0u8; 65_536];
    let mut backlog = crate::statsd::aggregate::Backlog::new(BACKLOG_POINTS);
    let mut last_seen = 0;
    while !shutdown.requested() {
        let reads = sources.read_burst(&mut agg, &mut buf, BURST, false);
        let now = now_ms();
        if now >= interval_end {
            // Never wait for the store here: a slow store fills the backlog (bounded, drops
            // counted) instead of the kernel's receive buffer (silent).
            let dropped = backlog.push(agg.flush());
            agg.count_drops("store_backlog_points", dropped as u64);
            if let Some(mut flush) = backlog.take() {
                flush.profiles.append(&mut uploads.pending.lock().unwrap_or_else(|e| e.into_inner()));
                // The kernel drops only while datagrams arrive; an idle agent skips reading
                // the whole /proc/net/udp table every flush.
                let seen = agg.stats().received();
                let kernel_drops = (seen != last_seen).then(|| kernel_drops(&sources.udp.socket)).flatten();
                last_seen = seen;
                let progress = Progress { stats: agg.stats().clone(), series: agg.series(), kernel_drops };
                match tx.try_send((flush, progress)) {
                    Ok(()) => {}
                    Err(mpsc::TrySendError::Full((flush, _))) => backlog.restore(flush),
                    Err(mpsc::TrySendError::Disconnected(_)) => break,
                }
            }
            interval_end += interval_ms;
            // A long stall (suspend) would leave many empty intervals: skip to the current one.
            if now >= interval_end {
                interval_end = now.div_euclid(interval_ms) * interval_ms + interval_ms;
            }
            continue;
        }
        if reads == 0 {
            // Idle until data, a signal, or the flush deadline: no periodic wake-ups.
            let mut fds = sources.fds();
            fds.push(shutdown.wake_fd());
            wait_readable(&fds, (interval_end - now).clamp(1, i64::from(i32::MAX)) as i32);
        } else if reads < BURST {
            // Under load, let datagrams pile up for a moment and take them in one batch,
            // instead of waking for every few: the kernel buffer holds far more than this.
            thread::sleep(LOAD_NAP);
        }
    }
    // Drain what the kernel still holds (and unterminated TCP lines), then the final flush.
    while sources.read_burst(&mut agg, &mut buf, BURST, true) > 0 {}
    let socket = &sources.udp.socket;
    let dropped = backlog.push(agg.flush());
    agg.count_drops("store_backlog_points", dropped as u64);
    if let Some(mut flush) = backlog.take() {
        flush.profiles.append(&mut uploads.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tx.send((
            flush,
            Progress { stats: agg.stats().clone(), series: agg.series(), kernel_drops: kernel_drops(socket) },
        ));
    }
    drop(tx);
    let (written, failed_writes) =
        writer_thread.join().map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    Ok(Summary { stats: agg.stats().clone(), written, failed_writes })
}

fn writer_loop(
    mut writer: Writer,
    rx: mpsc::Receiver<(Flush, Progress)>,
    mut status: StatusFile,
    status_file: PathBuf,
    exposition: Arc<Mutex<Exposition>>,
    db: PathBuf,
    summaries: bool,
) -> anyhow::Result<(usize, usize)> {
    let mut last_maintenance = std::time::Instant::now();
    let mut last_summary = std::time::Instant::now();
    let mut calls = crate::summary::CallSummary::default();
    // Only the lock holder samples the host, and it does so on the thread that owns the store.
    let mut sampler = crate::sampler::Sampler::new(now_ms());
    if sampler.is_none() {
        crate::log!("host metrics are not available on this platform");
    }
    for (mut flush, progress) in rx {
        if let Some(s) = &mut sampler {
            let ts = flush.interval_start_ms;
            flush.points.extend(s.sample(ts).into_iter().map(|(k, v)| (k, ts, v)));
        }
        calls.add(&flush);
        if let Some((n, example)) = &flush.over_limit {
            crate::log!(
                "dropped {n} lines over the cardinality limits this interval (first: {example}); \
                 raise [statsd] max_series / max_series_per_name or drop the tag that varies"
            );
        }
        if summaries && last_summary.elapsed() >= SUMMARY_EVERY {
            last_summary = std::time::Instant::now();
            if let Some(line) = std::mem::take(&mut calls).line() {
                crate::log!("last {}: {line}", humantime::format_duration(SUMMARY_EVERY));
            }
        }
        match write_flush(&mut writer, &flush, now_ms()) {
            Ok(out) => {
                status.points_written += out.written;
                for (reason, n) in &out.rejected {
                    *status.rejected.entry((*reason).to_string()).or_default() += n;
                    crate::log!("the store refused {n} series this interval ({reason})");
                }
            }
            Err(e) => {
                status.failed_writes += 1;
                crate::log!("writing {} points to the store: {e}", flush.points.len());
            }
        }
        status.lines_last_interval = progress.stats.lines - status.lines;
        status.lines = progress.stats.lines;
        status.dropped = progress.stats.dropped.iter().map(|(k, v)| ((*k).to_string(), *v)).collect();
        status.series_in_memory = progress.series;
        if let Some(drops) = progress.kernel_drops.filter(|&d| d > status.kernel_drops) {
            crate::log!(
                "the kernel dropped {} StatsD datagrams (receive buffer full; {} in all): raise net.core.rmem_max \
                 or send less per burst",
                drops - status.kernel_drops,
                drops
            );
            status.kernel_drops = drops;
        }
        status.last_flush_ms = now_ms();
        if let Ok(mut e) = exposition.lock() {
            e.add(&flush.points);
            own_metrics(&mut e, &status, &db);
        }
        if let Err(e) = write_status(&status_file, &status) {
            crate::log!("writing {}: {e}", status_file.display());
        }
        if last_maintenance.elapsed() >= MAINTENANCE_EVERY {
            last_maintenance = std::time::Instant::now();
            if let Err(e) = writer.maintain(now_ms()) {
                crate::log!("store maintenance: {e}");
            }
        }
    }
    if let Some(line) = calls.line().filter(|_| summaries) {
        crate::log!("since the last summary: {line}");
    }
    writer.close().context("closing the store")?;
    Ok((status.points_written, status.failed_writes))
}
