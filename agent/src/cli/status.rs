//! `perfagent status` and `perfagent stop`: the agent found through the store's writer lock,
//! and what its status file says.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::status::StatusFile;

/// Output formats of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

/// Exit code of `status` when the agent is not running (as LSB init scripts use).
const NOT_RUNNING: u8 = 3;

/// `status` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Store path (finds the agent through its lock) [default: from the config]
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// `stop` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct StopArgs {
    /// Store path (finds the agent through its lock) [default: from the config]
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// How long to wait for the final flush.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_wait)]
    timeout: Duration,
}

fn parse_wait(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|_| "expected a duration like 30s".to_string())
}

fn file_len(p: &Path) -> u64 {
    p.metadata().map(|m| m.len()).unwrap_or(0)
}

/// Run `status`.
pub(crate) fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let db = super::store_of(a.db)?;
    let Some(pid) = perfstore::lock_holder(&db)? else {
        match a.format {
            Format::Json => println!("{}", serde_json::json!({"running": false, "db": db.display().to_string()})),
            Format::Table => println!("perfagent is not running (store {})", db.display()),
        }
        return Ok(ExitCode::from(NOT_RUNNING));
    };
    // The agent rewrites the file in place: a read that races with it is retried.
    let st = crate::status::read(&db, pid, 5, Duration::from_millis(20));
    let series = perfstore::Reader::open(&db)
        .and_then(|mut r| Ok(r.snapshot()?.series(&perfstore::Selector::default())?.len()))
        .unwrap_or(0);
    match a.format {
        Format::Json => json(&db, pid, st, series),
        Format::Table => table(&db, pid, st.as_ref(), series),
    }
    Ok(ExitCode::SUCCESS)
}

fn json(db: &Path, pid: Option<u32>, st: Option<StatusFile>, series: usize) {
    let mut v = serde_json::to_value(st.unwrap_or_default()).unwrap_or_default();
    v["running"] = true.into();
    v["pid"] = pid.into();
    v["db"] = db.display().to_string().into();
    v["db_bytes"] = file_len(db).into();
    v["wal_bytes"] = file_len(&perfstore::wal_path(db)).into();
    v["series"] = series.into();
    let alerts = crate::alerts::load(db);
    v["alerts_firing"] = alerts
        .firing()
        .map(|(k, e)| serde_json::json!({"op": k.op, "slo": k.slo, "severity": k.severity, "burn": e.burn, "since_ms": e.firing_ms, "text": e.text}))
        .collect::<Vec<_>>()
        .into();
    let now = crate::clock::now_ms();
    v["remote_write"] = crate::remote_write::kept(db)
        .into_iter()
        .map(|(name, p)| {
            serde_json::json!({
                "endpoint": name,
                "lag_s": p.next_ms.map(|n| (now - n).max(0) as f64 / 1000.0),
                "last_success_ms": p.last_success_ms,
                "samples_sent": p.samples_sent,
                "retried": p.retried,
                "dropped": p.dropped,
                "duplicates": p.duplicates,
                "skipped_s": p.skipped_ms as f64 / 1000.0,
                "last_error": p.last_error,
            })
        })
        .collect::<Vec<_>>()
        .into();
    println!("{v}");
}

fn table(db: &Path, pid: Option<u32>, st: Option<&StatusFile>, series: usize) {
    let now = crate::clock::now_ms();
    let pid = pid.map_or_else(|| "unknown".to_string(), |p| p.to_string());
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1048576.0);
    let ago = |ms: i64| humantime::format_duration(Duration::from_secs(((now - ms).max(0) / 1000) as u64)).to_string();
    match st {
        Some(s) => println!("running     pid {pid}, up {}", ago(s.started_ms)),
        None => println!("running     pid {pid} (starting)"),
    }
    let (db_bytes, wal_bytes) = (file_len(db), file_len(&perfstore::wal_path(db)));
    println!("store       {} ({}, WAL {}), {series} series", db.display(), mib(db_bytes), mib(wal_bytes));
    let Some(s) = st else { return };
    let t = &s.telemetry;
    let per_s = t.lines_last_interval as f64 * 1000.0 / s.flush_interval_ms.max(1) as f64;
    println!("listening   {}; receive buffer {} bytes", s.listeners, s.receive_buffer_bytes);
    println!(
        "ingest      {per_s:.0} lines/s in the last interval, {} lines since start, {} series in memory",
        t.lines, t.series_in_memory
    );
    if let Some(d) = &s.degraded {
        println!("DEGRADED    {}", d.describe(t));
        println!("            last error: {}", d.error.escape_debug());
    }
    let flushed = s.last_flush_ms.map_or_else(|| "no flush yet".to_string(), |ms| format!("{} ago", ago(ms)));
    println!(
        "last flush  {flushed}, {} points written since start, {} failed writes",
        t.points_written, t.failed_writes
    );
    let drops: Vec<String> = t
        .dropped
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(t.rejected.iter().map(|(k, v)| format!("store_{k}={v}")))
        .chain(t.lost.iter().map(|(k, v)| format!("lost_{k}={v}")))
        .collect();
    println!("dropped     {}", if drops.is_empty() { "none".to_string() } else { drops.join(", ") });
    println!("kernel      {} datagrams dropped (receive buffer full)", t.kernel_drops);
    let alerts = crate::alerts::load(db);
    let firing: Vec<String> = alerts
        .firing()
        .map(|(k, e)| {
            let since = perfanalysis::time::rfc3339(e.firing_ms.unwrap_or(e.since_ms));
            match k.target() {
                Some(target) => format!("{} {target}: {} (since {since})", k.severity, e.text),
                None => format!("{} {} {} (burn {:.1}x, since {since})", k.severity, k.op, k.slo, e.burn),
            }
        })
        .collect();
    for (name, p) in crate::remote_write::kept(db) {
        let lag = p.next_ms.map_or_else(|| "not started".to_owned(), |n| format!("{} behind", ago(n)));
        let ok = p.last_success_ms.map_or_else(|| "never".to_owned(), |t| format!("{} ago", ago(t)));
        println!(
            "remote write {}: {lag}; last success {ok}; {} samples sent, {} retries, {} dropped, {} already held{}",
            perfanalysis::human::clean(&name),
            p.samples_sent,
            p.retried,
            p.dropped,
            p.duplicates,
            p.last_error
                .as_deref()
                .map_or(String::new(), |e| format!("; last error: {}", perfanalysis::human::clean(e)))
        );
    }
    if !firing.is_empty() {
        println!("ALERTS      {} firing", firing.len());
        for f in firing {
            println!("            {}", perfanalysis::human::clean(&f));
        }
    }
}

/// Run `stop`.
pub(crate) fn stop(a: StopArgs) -> anyhow::Result<()> {
    let db = super::store_of(a.db)?;
    let Some(pid) = perfstore::lock_holder(&db)? else {
        println!("perfagent is not running (store {})", db.display());
        return Ok(());
    };
    // A pid of 0 would signal our own process group, and one past i32::MAX every process.
    let Some(target) = pid.and_then(|p| i32::try_from(p).ok()).filter(|&p| p > 0) else {
        anyhow::bail!(
            "{} is held by a writer but {} names no valid pid; stop the agent by its process instead",
            db.display(),
            perfstore::lock_path(&db).display()
        );
    };
    let pid = target;
    // SAFETY: kill(2) with a validated positive pid; no memory is involved.
    if unsafe { libc::kill(target, libc::SIGTERM) } != 0 {
        anyhow::bail!("signalling pid {pid}: {}", std::io::Error::last_os_error());
    }
    let start = std::time::Instant::now();
    while perfstore::lock_holder(&db)?.is_some() {
        if start.elapsed() > a.timeout {
            anyhow::bail!("pid {pid} did not stop within {}", humantime::format_duration(a.timeout));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("perfagent stopped (pid {pid}); its final flush is in {}", db.display());
    Ok(())
}
