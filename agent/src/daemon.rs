//! The collector loop behind `perfagent start --foreground`.
//!
//! ## Concurrency
//! Three threads. The receive thread owns the StatsD sockets and the [`Aggregator`]: it reads
//! datagrams, parses and aggregates them, and at each interval boundary hands the interval's
//! points to the writer thread ([`crate::writer`]) over a bounded channel. The writer thread
//! owns the store (no other thread touches SQLite). The HTTP thread serves `/metrics` and
//! takes profile uploads.
//!
//! ## Failure modes
//! Startup errors (store locked by another agent, port in use, unwritable path) end `run`
//! with a message naming the store or address. At runtime a failed store write is logged and
//! counted, never fatal. On shutdown (SIGTERM/SIGINT) the loop stops receiving, drains what
//! the socket still holds, flushes, and the writer checkpoints and closes the store: nothing
//! that was received is lost.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use perfstore::{Error as StoreError, StoreOptions, Writer};

use crate::clock::Clock;
use crate::exposition::Exposition;
use crate::health::Health;
use crate::listeners::Listeners;
use crate::shutdown::{Shutdown, wait_readable};
use crate::statsd::aggregate::{Aggregator, AggregatorConfig, Backlog, Flush, Stats};
use crate::statsd::listener::kernel_drops;
use crate::statsd::sources::Sources;
use crate::status::StatusFile;
use crate::writer::{Progress, Totals, WriterConfig, WriterThread};

/// Points the backlog keeps for a slow store before dropping the oldest (counted).
const BACKLOG_POINTS: usize = 2_000_000;
/// Datagrams read per burst before the loop checks the flush deadline again, so a flood
/// never starves flushing.
const BURST: usize = 256;

/// The pause after a burst that emptied the sockets while traffic flows, so that datagrams
/// pile up and are taken in one batch instead of a few at every wake-up.
///
/// Long enough that the datagrams of a pause outnumber the live series: a line then finds
/// its series' entry in the nearest caches, where after a short pause the core had let them
/// go. Run alone with 10 000 tagged series and 9 datagrams between pauses (1.6 M lines/s
/// with 1 ms pauses), a line cost twice what it cost with no pauses; with 900 between
/// them, the same. Short enough that a queue never comes near its limit: each pause is
/// sized from how full the fullest socket queue was after the last, aiming at a sixteenth
/// of its room (a sender would have to speed up sixteenfold within one pause to overflow
/// it), and at most doubling from one pause to the next. With a small receive buffer
/// (`net.core.rmem_max` not raised) that is the shortest pause, 1 ms. And halved whenever
/// reading what a pause let pile up took longer than the pause, and no longer while it
/// takes half: near its limit, or while many new series arrive, the agent gains little
/// from batching, and the queue grows while it reads (with pauses sized by the fill alone,
/// the queue's peaks in the first second at 6.4 M tagged lines/s were 8.5–12 MB of 16,
/// against 6–9 with 1 ms pauses).
#[derive(Debug, Clone, Copy, PartialEq)]
struct LoadNap(Duration);

impl LoadNap {
    const SHORTEST: Duration = Duration::from_millis(1);
    const LONGEST: Duration = Duration::from_millis(20);
    /// The fill a pause aims to end at, as a fraction of the queue's room.
    const AIM: f64 = 1.0 / 16.0;

    /// The next pause, after one that left the fullest queue `fill` full and reading
    /// what it held took `busy`.
    fn after(self, fill: f64, busy: Duration) -> Self {
        if busy > self.0 {
            return Self((self.0 / 2).max(Self::SHORTEST));
        }
        // Longer only while reading takes under half the pause.
        let most = if busy * 2 < self.0 { 2.0 } else { 1.0 };
        let scale = if fill > 0.0 { (Self::AIM / fill).min(most) } else { most };
        Self(self.0.mul_f64(scale).clamp(Self::SHORTEST, Self::LONGEST))
    }
}

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
    /// The clock intervals are stamped with.
    pub clock: Clock,
    /// Targets and capacities the dashboard's `stats` and `capacity` use (the config file's).
    pub dashboard: DashboardSettings,
    /// Burn-rate alerts to Alertmanager (`[alerts]`; off without a receiver).
    pub alerts: crate::alerts::AlertsConfig,
    /// Connectivity probes the agent runs (`[probes]`; off without an interval).
    pub probes: crate::probes::ProbesConfig,
    /// Endpoints to remote-write the store to (`[[remote_write]]`).
    pub remote_write: Vec<crate::remote_write::RemoteWriteConfig>,
}

/// What the dashboard at `/` reads from the config file.
#[derive(Debug, Clone, Default)]
pub struct DashboardSettings {
    /// `[targets]`.
    pub targets: perfanalysis::targets::Targets,
    /// `[capacity]`.
    pub capacities: perfanalysis::capacity::Capacities,
}

/// Printed once everything is bound and open.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ready {
    /// Always `ready`.
    pub event: &'static str,
    /// Our pid.
    pub pid: u32,
    /// Where it listens.
    #[serde(flatten)]
    pub listeners: Listeners,
    /// Store path.
    pub db: PathBuf,
    /// Receive buffer the kernel granted.
    pub receive_buffer_bytes: usize,
}

impl Ready {
    /// The machine-readable ready line (one JSON object).
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Totals at exit.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Aggregator counters.
    pub stats: Stats,
    /// What the writer did.
    pub totals: Totals,
}

/// What to say when a store already has a writer.
pub fn already_running(pid: Option<u32>, db: &Path) -> String {
    let pid = pid.map_or_else(|| "pid unknown".to_string(), |p| format!("pid {p}"));
    format!(
        "perfagent is already running ({pid}) on {}: stop it with `perfagent stop --db {}`, or start this one \
         with another --db",
        db.display(),
        db.display()
    )
}

/// What to do when a listener cannot bind.
fn in_use_hint(e: &std::io::Error, flags: &str, key: &str) -> String {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        format!(
            "the address is in use (another perfagent, a StatsD server or another service): pick a free one with \
             {flags} (127.0.0.1:0 takes any free port), or set {key} in the config file"
        )
    } else {
        format!("cannot listen: check {flags} or {key} in the config file")
    }
}

/// Close `writer` and, when this start created the store (nothing was there before), remove
/// it and the files beside it, so a failed start leaves nothing behind.
fn discard_new_store(writer: Writer, db: &Path, existed: bool) {
    let _ = writer.close();
    if existed {
        return;
    }
    let _ = perfstore::remove_store(db);
}

/// Run until `shutdown` is set; `on_ready` is called once listening.
pub fn run(cfg: DaemonConfig, shutdown: &Shutdown, on_ready: impl FnOnce(&Ready)) -> anyhow::Result<Summary> {
    // A file-size limit (ulimit -f) must be a write error the writer handles, not a signal
    // that kills the agent without a word.
    // SAFETY: setting a signal's disposition to SIG_IGN touches no memory.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // A store this start creates is removed again if the start fails before it is used.
    let existed = cfg.db.exists();
    let writer = match Writer::open(&cfg.db, cfg.store.clone()) {
        Ok(w) => w,
        Err(StoreError::Locked { pid, path }) => anyhow::bail!("{}", already_running(pid, &path)),
        Err(e) => return Err(e).with_context(|| format!("opening store {}", cfg.db.display())),
    };
    // The store's real path: its status and token files sit beside the real file.
    let db = writer.path().to_owned();
    let sources = match Sources::bind(cfg.statsd_udp, cfg.statsd_unix.as_deref(), cfg.statsd_tcp) {
        Ok(s) => s,
        Err(e) => {
            let hint = in_use_hint(&e, "--statsd-udp / --statsd-tcp", "[statsd] udp / tcp");
            discard_new_store(writer, &db, existed);
            return Err(anyhow::anyhow!("{e}; {hint}"));
        }
    };
    let exposition = Arc::new(Mutex::new(Exposition::default()));
    let health = Arc::new(Health::default());
    let flush_ms = i64::try_from(cfg.flush_interval.as_millis()).unwrap_or(i64::MAX);
    let uploads = Arc::new(crate::http::Uploads::new(
        cfg.aggregator.service.clone(),
        cfg.clock.clone(),
        cfg.store.profile_retention_ms,
        flush_ms,
    ));
    let http = match cfg.http {
        Some(addr) => {
            let token =
                crate::token::ensure(&db).with_context(|| format!("creating {}", crate::token::path(&db).display()))?;
            let clock = cfg.clock.clone();
            let dashboard = perfdash::Dashboard {
                db: db.clone(),
                targets: cfg.dashboard.targets.clone(),
                capacities: cfg.dashboard.capacities,
                source: "perfagent".into(),
                now: Arc::new(move || clock.now_ms()),
            };
            let e = crate::http::Endpoint {
                metrics: exposition.clone(),
                health: health.clone(),
                uploads: uploads.clone(),
                dashboard: Some(dashboard),
            };
            let hint = crate::token::path(&db).display().to_string();
            match crate::http::serve(addr, e, Some(token), &hint) {
                Ok(a) => Some(a),
                Err(e) => {
                    let hint = in_use_hint(&e, "--http", "[http] listen");
                    drop(sources);
                    discard_new_store(writer, &db, existed);
                    return Err(anyhow::anyhow!("{e}; {hint}"));
                }
            }
        }
        None => None,
    };
    let listeners = Listeners {
        statsd_udp: Some(sources.udp.local_addr),
        statsd_tcp: sources.tcp_addr(),
        statsd_unix: sources.unix_path().map(Into::into),
        http,
    };
    let receive_buffer_bytes = sources.udp.granted_receive_buffer;
    let status = StatusFile {
        pid: std::process::id(),
        started_ms: cfg.clock.now_ms(),
        db: db.display().to_string(),
        listeners: listeners.clone(),
        flush_interval_ms: flush_ms,
        receive_buffer_bytes,
        ..StatusFile::default()
    };
    let alerts_metrics = exposition.clone();
    let alerting = cfg.alerts.alertmanager.is_some() || cfg.alerts.webhook.is_some();
    let pending_state = crate::writer::PendingState::default();
    let w = WriterConfig {
        db: db.clone(),
        status,
        exposition: Some(exposition),
        health: Some(health.clone()),
        summaries: true,
        trim_memory: true,
        yield_to_receiving: true,
        clock: cfg.clock.clone(),
        state: (alerting || !cfg.remote_write.is_empty()).then(|| pending_state.clone()),
    };
    let writer = crate::writer::spawn(writer, w).context("starting the writer thread")?;
    let local = watchers(&cfg, &db, &alerts_metrics, &pending_state, alerting)?;
    on_ready(&Ready { event: "ready", pid: std::process::id(), listeners, db, receive_buffer_bytes });
    health.set_ready();
    receive(cfg, sources, shutdown, writer, &uploads, &local)
}

/// The threads that watch and send rather than receive: the alerts (when a receiver is
/// configured), remote write, and the probes. `metrics` is where their `/metrics` families
/// go, `pending` where their state goes to be kept in the store. Returns where the probes
/// leave their lines.
fn watchers(
    cfg: &DaemonConfig,
    db: &Path,
    metrics: &Arc<Mutex<Exposition>>,
    pending: &crate::writer::PendingState,
    alerting: bool,
) -> anyhow::Result<crate::probes::LocalLines> {
    if alerting {
        let cx = crate::alerts::Context::new(
            cfg.dashboard.targets.clone(),
            cfg.dashboard.capacities,
            cfg.aggregator.service.clone(),
        );
        crate::alerts::spawn(
            db.to_owned(),
            cfg.alerts.clone(),
            cx,
            cfg.clock.clone(),
            metrics.clone(),
            pending.clone(),
        )
        .context("starting the alerts thread")?;
    }
    if !cfg.remote_write.is_empty() {
        let env = crate::remote_write::Env {
            db: db.to_owned(),
            clock: cfg.clock.clone(),
            flush_ms: i64::try_from(cfg.flush_interval.as_millis()).unwrap_or(10_000),
            pending: pending.clone(),
            shared: crate::remote_write::Shared::default(),
            metrics: Some(metrics.clone()),
        };
        crate::remote_write::spawn(cfg.remote_write.clone(), &env).context("starting remote write")?;
    }
    let local = crate::probes::LocalLines::default();
    if crate::probes::spawn(cfg.probes.clone(), local.clone()).context("starting the probes")? {
        log::info!(
            "probing {} targets every {}",
            cfg.probes.targets.len(),
            humantime::format_duration(cfg.probes.interval.unwrap_or_default())
        );
    }
    Ok(local)
}

/// The receive loop: read, aggregate, and hand each interval to the writer.
fn receive(
    cfg: DaemonConfig,
    mut sources: Sources,
    shutdown: &Shutdown,
    writer: WriterThread,
    uploads: &crate::http::Uploads,
    local: &crate::probes::LocalLines,
) -> anyhow::Result<Summary> {
    let interval_ms = i64::try_from(cfg.flush_interval.as_millis()).unwrap_or(i64::MAX).max(1);
    let start = cfg.clock.now_ms().div_euclid(interval_ms) * interval_ms;
    let mut agg = Aggregator::new(cfg.aggregator, start, interval_ms);
    let mut interval_end = start + interval_ms;
    // Unix datagrams: the largest the default socket buffers let a client send (212,992
    // bytes) fits, so none is cut; a larger one is counted as `truncated`, never parsed cut.
    let mut buf = vec![0u8; 256 * 1024];
    let mut backlog = Backlog::new(BACKLOG_POINTS);
    let mut last_seen = 0;
    let WriterThread { tx, thread } = writer;
    let mut nap = LoadNap(LoadNap::SHORTEST);
    // When the last pause ended, and how full it left the fullest queue.
    let mut woke: Option<(Instant, f64)> = None;
    while !shutdown.requested() {
        let reads = sources.read_burst(&mut agg, &mut buf, BURST, false);
        let now = cfg.clock.now_ms();
        if now >= interval_end {
            // The kernel drops only while datagrams arrive; an idle agent skips reading the
            // whole /proc/net/udp table every flush.
            let seen = agg.stats().received();
            let drops = (seen != last_seen).then(|| kernel_drops(&sources.udp.socket)).flatten();
            last_seen = seen;
            ingest_local(&mut agg, local);
            if !hand_over(&mut agg, &mut backlog, uploads, &tx, drops, false) {
                break;
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
            woke = None;
        } else if reads < BURST {
            // Under load, let datagrams pile up and take them in one batch (see `LoadNap`),
            // waking by the flush deadline.
            if let Some((at, fill)) = woke {
                nap = nap.after(fill, at.elapsed());
            }
            let until_flush = Duration::from_millis(u64::try_from(interval_end - now).unwrap_or(0));
            thread::sleep(nap.0.min(until_flush));
            woke = sources.fullest_queue().map(|fill| (Instant::now(), fill));
        }
    }
    // Drain what the kernel still holds (and unterminated TCP lines), then the final flush.
    while sources.read_burst(&mut agg, &mut buf, BURST, true) > 0 {}
    ingest_local(&mut agg, local);
    let drops = kernel_drops(&sources.udp.socket);
    hand_over(&mut agg, &mut backlog, uploads, &tx, drops, true);
    drop(tx);
    let totals = thread.join().map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    Ok(Summary { stats: agg.stats().clone(), totals })
}

/// Lines from inside the agent (probe results), into the interval closing now.
fn ingest_local(agg: &mut Aggregator, local: &crate::probes::LocalLines) {
    let lines = crate::probes::take(local);
    if !lines.is_empty() {
        agg.ingest_datagram(&lines);
    }
}

/// Close the interval and give it (with anything the backlog holds) to the writer; with
/// `last`, wait for room. Never waits otherwise: a slow store fills the backlog (bounded,
/// drops counted) instead of the kernel's receive buffer (silent). False when the writer is
/// gone.
fn hand_over(
    agg: &mut Aggregator,
    backlog: &mut Backlog,
    uploads: &crate::http::Uploads,
    tx: &mpsc::SyncSender<(Flush, Progress)>,
    kernel_drops: Option<u64>,
    last: bool,
) -> bool {
    let dropped = backlog.push(agg.flush());
    agg.count_drops("store_backlog_points", dropped as u64);
    let Some(mut flush) = backlog.take() else { return true };
    let (mut uploaded, held) = uploads.take();
    flush.profiles.append(&mut uploaded);
    flush.held.extend(held);
    let progress = Progress { stats: agg.stats().clone(), series: agg.series(), kernel_drops };
    if last {
        return tx.send((flush, progress)).is_ok();
    }
    match tx.try_send((flush, progress)) {
        Ok(()) => true,
        Err(mpsc::TrySendError::Full((flush, _))) => {
            backlog.restore(flush);
            true
        }
        Err(mpsc::TrySendError::Disconnected(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_while_queues_stay_low_and_shrink_at_once_when_they_fill() {
        let ms = |n| LoadNap(Duration::from_millis(n));
        let quick = Duration::from_micros(100);
        // An empty or nearly empty queue: at most twice as long each time, up to 20 ms.
        assert_eq!(ms(1).after(0.0, quick), ms(2));
        assert_eq!(ms(4).after(0.001, quick), ms(8));
        assert_eq!(ms(16).after(0.0, quick), ms(20));
        assert_eq!(ms(20).after(0.0, quick), ms(20));
        // On the aim (a sixteenth), the same; past it, shorter in proportion, not below 1 ms.
        assert_eq!(ms(8).after(1.0 / 16.0, quick), ms(8));
        assert_eq!(ms(20).after(0.25, quick), ms(5));
        assert_eq!(ms(8).after(1.0, quick), ms(1));
        // Reading took half the pause or more: no longer, however low the queue…
        assert_eq!(ms(8).after(0.0, Duration::from_millis(5)), ms(8));
        assert_eq!(ms(8).after(0.25, Duration::from_millis(5)), ms(2));
        // …and longer than the pause: half as long.
        assert_eq!(ms(16).after(0.0, Duration::from_millis(17)), ms(8));
        assert_eq!(ms(1).after(0.0, Duration::from_millis(5)), ms(1));
        // A steady sender settles where a pause fills a sixteenth of the room: here 1 % of
        // the room per millisecond, so 6.25 ms.
        let mut nap = LoadNap(LoadNap::SHORTEST);
        for _ in 0..20 {
            nap = nap.after(nap.0.as_secs_f64() * 1000.0 * 0.01, quick);
        }
        assert!((nap.0.as_secs_f64() * 1000.0 - 6.25).abs() < 0.01, "{:?}", nap.0);
    }
}
