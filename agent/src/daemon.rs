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

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use perfstore::{Error as StoreError, StoreOptions, Writer};

use crate::shutdown::{Shutdown, wait_readable};
use crate::statsd::aggregate::{Aggregator, AggregatorConfig, Flush, Stats};
use crate::statsd::listener::bind_udp;
use crate::writer::write_flush;

/// How often the writer runs store maintenance (sealing, rollups, retention, disk cap).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// Flushes queued for the writer before the receive loop waits for it.
const WRITER_QUEUE: usize = 16;
/// Datagrams read per burst before the loop checks the flush deadline again, so a flood
/// never starves flushing.
const BURST: usize = 256;

/// What the daemon needs to start.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Store path.
    pub db: PathBuf,
    /// StatsD UDP address (port 0 picks one).
    pub statsd_udp: SocketAddr,
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
            "db": self.db.display().to_string(),
            "receive_buffer_bytes": self.receive_buffer_bytes,
        })
        .to_string()
    }
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

fn now_ms() -> i64 {
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
    let listener = bind_udp(cfg.statsd_udp)?;
    let interval_ms = i64::try_from(cfg.flush_interval.as_millis()).unwrap_or(i64::MAX).max(1);
    let (tx, rx) = mpsc::sync_channel::<Flush>(WRITER_QUEUE);
    let writer_thread = thread::Builder::new()
        .name("perfagent-writer".into())
        .spawn(move || writer_loop(writer, rx))
        .context("starting the writer thread")?;

    on_ready(&Ready {
        pid: std::process::id(),
        statsd_udp: listener.local_addr,
        db: cfg.db.clone(),
        receive_buffer_bytes: listener.granted_receive_buffer,
    });

    let start = now_ms().div_euclid(interval_ms) * interval_ms;
    let mut agg = Aggregator::new(cfg.aggregator, start, interval_ms);
    let mut interval_end = start + interval_ms;
    let mut buf = vec![0u8; 65_536];
    let socket = &listener.socket;
    socket.set_nonblocking(true).context("configuring the StatsD socket")?;
    let fds = [socket.as_raw_fd(), shutdown.wake_fd()];
    while !shutdown.requested() {
        let mut burst = 0;
        while burst < BURST {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    agg.ingest_datagram(&buf[..n]);
                    burst += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("perfagent: receiving StatsD: {e}");
                    break;
                }
            }
        }
        let now = now_ms();
        if now >= interval_end {
            if tx.send(agg.flush()).is_err() {
                break;
            }
            interval_end += interval_ms;
            // A long stall (suspend) would leave many empty intervals: skip to the current one.
            if now >= interval_end {
                interval_end = now.div_euclid(interval_ms) * interval_ms + interval_ms;
            }
            continue;
        }
        if burst < BURST {
            // Idle until data, a signal, or the flush deadline: no periodic wake-ups.
            wait_readable(&fds, (interval_end - now).clamp(1, i64::from(i32::MAX)) as i32);
        }
    }
    // Drain what the kernel still holds, then the final flush.
    while let Ok(n) = socket.recv(&mut buf) {
        agg.ingest_datagram(&buf[..n]);
    }
    let _ = tx.send(agg.flush());
    drop(tx);
    let (written, failed_writes) =
        writer_thread.join().map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    Ok(Summary { stats: agg.stats().clone(), written, failed_writes })
}

fn writer_loop(mut writer: Writer, rx: mpsc::Receiver<Flush>) -> anyhow::Result<(usize, usize)> {
    let (mut written, mut failed) = (0, 0);
    let mut last_maintenance = std::time::Instant::now();
    for flush in rx {
        match write_flush(&mut writer, &flush, now_ms()) {
            Ok(out) => {
                written += out.written;
                for (reason, n) in &out.rejected {
                    eprintln!("perfagent: the store refused {n} series this interval ({reason})");
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("perfagent: writing {} points to the store: {e}", flush.points.len());
            }
        }
        if last_maintenance.elapsed() >= MAINTENANCE_EVERY {
            last_maintenance = std::time::Instant::now();
            if let Err(e) = writer.maintain(now_ms()) {
                eprintln!("perfagent: store maintenance: {e}");
            }
        }
    }
    writer.close().context("closing the store")?;
    Ok((written, failed))
}
