//! `perfagent start`: in the foreground (for systemd, containers and tests), or in the
//! background, returning once the agent is ready.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{Flags, parse_flush_interval};

/// `start` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Stay in the foreground (for systemd, containers and tests) and print one JSON ready
    /// line with the bound addresses on stdout. Without it, `start` runs the agent in the
    /// background (log next to the store) and returns once it is ready.
    #[arg(long)]
    foreground: bool,
    /// Config file [default: $XDG_CONFIG_HOME/perfagent/config.toml]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Store path [default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db]
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// StatsD UDP address; port 0 picks a free port [default: 127.0.0.1:8125]
    #[arg(long, value_name = "ADDR")]
    statsd_udp: Option<SocketAddr>,
    /// Also listen on this Unix datagram socket (mode 0660).
    #[arg(long, value_name = "PATH")]
    statsd_unix: Option<PathBuf>,
    /// Also listen for newline-delimited StatsD over TCP here; port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    statsd_tcp: Option<SocketAddr>,
    /// HTTP address for /metrics, /healthz and /readyz; port 0 picks a free port
    /// [default: 127.0.0.1:9465]
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Aggregation interval, e.g. 10s, 1s, 500ms [default: 10s]
    #[arg(long, value_name = "DUR", value_parser = parse_flush_interval)]
    flush_interval: Option<Duration>,
    /// `service` label for lines without a `service` tag [default: unknown]
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Log to this file (size-capped) instead of stderr; set by the background start.
    #[arg(long, value_name = "FILE", hide = true)]
    log_file: Option<PathBuf>,
}

/// Run `start`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let flags = Flags {
        db: args.db.clone(),
        statsd_udp: args.statsd_udp,
        statsd_unix: args.statsd_unix.clone(),
        statsd_tcp: args.statsd_tcp,
        http: args.http,
        flush_interval: args.flush_interval,
        service: args.service.clone(),
    };
    let cfg = super::load_config(args.config.clone(), &flags)?.daemon;
    if !args.foreground {
        return start_background(&cfg.db);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fix_mmap_threshold();
    match &args.log_file {
        Some(log) => crate::logging::to_file(log, crate::logging::LOG_CAP_BYTES)
            .with_context(|| format!("opening log file {}", log.display()))?,
        None => crate::logging::init(),
    }
    let shutdown = crate::shutdown::Shutdown::new().context("creating the shutdown pipe")?;
    shutdown
        .on_signals(&[signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
        .context("installing signal handlers")?;
    let summary = crate::daemon::run(cfg, &shutdown, |ready| {
        println!("{}", ready.line());
        log::info!(
            "listening: {} (receive buffer {} bytes), writing {}",
            ready.listeners,
            ready.receive_buffer_bytes,
            ready.db.display()
        );
    })?;
    log::info!(
        "stopped: {} lines, {} dropped, {} points written, {} failed writes",
        summary.stats.lines,
        summary.stats.dropped_total(),
        summary.totals.written,
        summary.totals.failed_writes
    );
    Ok(())
}

/// Have glibc map every block of 256 KiB or more on its own, whatever was freed before,
/// unless `MALLOC_MMAP_THRESHOLD_` says otherwise. glibc raises that threshold to the size of
/// each big block freed, so once the first flush had freed its points (4 MB at 100 000
/// series) every smaller vector came from the heap, and the per-series vectors, growing,
/// left holes in it. Measured at 100 000 series (1 M lines/s, 6 runs each): RSS 81–83 MiB
/// from the second second on; with the threshold fixed, 72–74 MiB (77–81 for moments). The
/// cost is a few `mmap` calls and page faults a flush.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_mmap_threshold() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: `mallopt` takes two integers and changes glibc's allocator settings under
        // its own lock; no pointer is passed and nothing is kept.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024) };
    }
}

/// `perfagent start` without `--foreground`: re-run this binary as `start --foreground` in
/// a new session (never fork a process that already runs threads), with stdout on a pipe for
/// the ready line and stderr on the log file; return once it is ready, or say why it is not.
fn start_background(db: &std::path::Path) -> anyhow::Result<()> {
    use std::io::BufRead as _;
    use std::os::unix::process::CommandExt as _;

    if let Some(pid) = perfstore::lock_holder(db)? {
        let shown = perfstore::canonical(db).unwrap_or_else(|_| db.to_owned());
        anyhow::bail!("{}", crate::daemon::already_running(pid, &shown));
    }
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating folder {}", dir.display()))?;
    let log = dir.join("perfagent.log");
    let stderr = crate::logging::open_append(&log).with_context(|| format!("opening log file {}", log.display()))?;
    let (ready_read, ready_write) = std::io::pipe().context("creating the readiness pipe")?;
    let exe = std::env::current_exe().context("finding the perfagent binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .arg("--foreground")
        .arg("--log-file")
        .arg(&log)
        .stdin(std::process::Stdio::null())
        .stdout(ready_write)
        .stderr(stderr);
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent; it runs in
    // the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the background agent")?;
    drop(cmd); // the parent's copy of the pipe's write end: EOF comes when the child closes it
    let mut line = String::new();
    std::io::BufReader::new(ready_read).read_line(&mut line).context("waiting for the agent to be ready")?;
    match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(ready) if ready["event"] == "ready" => {
            let listeners: crate::listeners::Listeners = serde_json::from_value(ready.clone()).unwrap_or_default();
            println!(
                "perfagent started (pid {}): {listeners}, store {}, log {}",
                ready["pid"],
                db.display(),
                log.display()
            );
            Ok(())
        }
        _ => {
            let status = child.wait().context("waiting for the failed agent")?;
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
            anyhow::bail!("the agent did not start ({status}); {}: {}", log.display(), tail.join(" | "))
        }
    }
}
