//! The `perfagent` binary.
//!
//! Exit codes: 0 ok (also after SIGTERM/SIGINT once the final flush is written), 1 error
//! (startup failure, store problem), 2 bad usage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use perfagent::config::{Flags, Resolved, resolve};
use perfagent::daemon;

#[derive(Debug, Parser)]
#[command(name = "perfagent", version, about = "Local, always-on performance recorder")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the collector (in the background unless --foreground): StatsD/DogStatsD in,
    /// aggregated every flush interval, into the store.
    Start(StartArgs),
    /// Inspect the store file.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Is the agent running, and what is it doing. Exit 0 when running, 3 when not.
    Status {
        /// Store path (finds the agent through its lock) [default: from the config]
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Stop the agent (SIGTERM) and wait for its final flush.
    Stop {
        /// Store path (finds the agent through its lock) [default: from the config]
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        /// How long to wait for the final flush.
        #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_wait)]
        timeout: Duration,
    },
    /// The effective configuration and where each value came from.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

fn parse_wait(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|_| "expected a duration like 30s".to_string())
}

/// Exit code of `status` when the agent is not running (as LSB init scripts use).
const NOT_RUNNING: u8 = 3;

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print every setting, its value and its source (default, file:line, env, flag).
    Show {
        /// Config file [default: $XDG_CONFIG_HOME/perfagent/config.toml]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate the configuration; exit 1 with the file, line and key of the first problem.
    Check {
        /// Config file [default: $XDG_CONFIG_HOME/perfagent/config.toml]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print a commented config file with every key at its default.
    Default,
}

#[derive(Debug, clap::Args)]
struct StartArgs {
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
    #[arg(long, value_name = "DUR", value_parser = parse_interval)]
    flush_interval: Option<Duration>,
    /// `service` label for lines without a `service` tag [default: unknown]
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Log to this file (size-capped) instead of stderr; set by the background start.
    #[arg(long, value_name = "FILE", hide = true)]
    log_file: Option<PathBuf>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|_| "expected a duration like 10s or 500ms".to_string())?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err("expected a duration between 100ms and 1h".into());
    }
    Ok(d)
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Open the store read-only, run SQLite's integrity check and print a summary.
    Check {
        /// Store path [default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db]
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Read the config file (explicit, or the default one if it exists) and resolve it.
fn load_config(config: Option<PathBuf>, flags: &Flags) -> anyhow::Result<Resolved> {
    let file = match config {
        Some(p) => {
            let text = std::fs::read_to_string(&p).with_context(|| format!("reading config {}", p.display()))?;
            Some((p, text))
        }
        None => match perfagent::config::default_file(&env_var) {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(&p).with_context(|| format!("reading config {}", p.display()))?;
                Some((p, text))
            }
            _ => None,
        },
    };
    let default_db = perfstore::default_path().unwrap_or_else(|_| PathBuf::from("perf.db"));
    resolve(file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())), &env_var, flags, default_db)
        .map_err(|e| anyhow::anyhow!(e))
}

fn db_path(db: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(match db {
        Some(p) => p,
        None => perfstore::default_path()?,
    })
}

fn start(args: StartArgs) -> anyhow::Result<()> {
    let flags = Flags {
        db: args.db.clone(),
        statsd_udp: args.statsd_udp,
        statsd_unix: args.statsd_unix.clone(),
        statsd_tcp: args.statsd_tcp,
        http: args.http,
        flush_interval: args.flush_interval,
        service: args.service.clone(),
    };
    let cfg = load_config(args.config.clone(), &flags)?.daemon;
    if !args.foreground {
        return start_background(&cfg.db);
    }
    if let Some(log) = &args.log_file {
        perfagent::logging::to_file(log, perfagent::logging::LOG_CAP_BYTES)
            .with_context(|| format!("opening log file {}", log.display()))?;
    }
    let shutdown = perfagent::shutdown::Shutdown::new().context("creating the shutdown pipe")?;
    shutdown
        .on_signals(&[signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
        .context("installing signal handlers")?;
    let summary = daemon::run(cfg, &shutdown, |ready| {
        println!("{}", ready.line());
        perfagent::log!(
            "listening: {} (receive buffer {} bytes), writing {}",
            ready.listeners(),
            ready.receive_buffer_bytes,
            ready.db.display()
        );
    })?;
    perfagent::log!(
        "stopped: {} lines, {} dropped, {} points written, {} failed writes",
        summary.stats.lines,
        summary.stats.dropped_total(),
        summary.written,
        summary.failed_writes
    );
    Ok(())
}

/// `perfagent start` without `--foreground`: re-run this binary as `start --foreground` in
/// a new session (never fork a process that already runs threads), with stdout on a pipe for
/// the ready line and stderr on the log file; return once it is ready, or say why it is not.
fn start_background(db: &std::path::Path) -> anyhow::Result<()> {
    use std::io::BufRead as _;
    use std::os::unix::process::CommandExt as _;

    if let Some(pid) = perfstore::lock_holder(db)? {
        anyhow::bail!("perfagent is already running (pid {pid}) on {}", db.display());
    }
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating folder {}", dir.display()))?;
    let log = dir.join("perfagent.log");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
        .with_context(|| format!("opening log file {}", log.display()))?;
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
            let text = |k: &str| ready[k].as_str().map(str::to_owned);
            println!(
                "perfagent started (pid {}): {}, store {}, log {}",
                ready["pid"],
                daemon::listeners(
                    &text("statsd_udp").unwrap_or_default(),
                    text("statsd_tcp").as_deref(),
                    text("statsd_unix").as_deref(),
                    text("http").as_deref()
                ),
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

fn store_of(db: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(load_config(None, &Flags { db, ..Flags::default() })?.daemon.db)
}

fn file_len(p: &std::path::Path) -> u64 {
    p.metadata().map(|m| m.len()).unwrap_or(0)
}

fn status(db: Option<PathBuf>, format: Format) -> anyhow::Result<ExitCode> {
    let db = store_of(db)?;
    let Some(pid) = perfstore::lock_holder(&db)? else {
        match format {
            Format::Json => println!("{}", serde_json::json!({"running": false, "db": db.display().to_string()})),
            Format::Table => println!("perfagent is not running (store {})", db.display()),
        }
        return Ok(ExitCode::from(NOT_RUNNING));
    };
    // The agent rewrites the file in place: a read that races with it is retried.
    let st: Option<daemon::StatusFile> = (0..5)
        .find_map(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::fs::read_to_string(daemon::status_path(&db)).ok().and_then(|t| serde_json::from_str(&t).ok())
        })
        .filter(|s: &daemon::StatusFile| s.pid == pid);
    let series = perfstore::Reader::open(&db)
        .and_then(|mut r| Ok(r.snapshot()?.series(&perfstore::Selector::default())?.len()))
        .unwrap_or(0);
    let (db_bytes, wal_bytes) = (file_len(&db), file_len(&perfstore::wal_path(&db)));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    if format == Format::Json {
        let mut v = serde_json::to_value(st.clone().unwrap_or_default())?;
        v["running"] = true.into();
        v["pid"] = pid.into();
        v["db"] = db.display().to_string().into();
        v["db_bytes"] = db_bytes.into();
        v["wal_bytes"] = wal_bytes.into();
        v["series"] = series.into();
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1048576.0);
    let ago = |ms: i64| humantime::format_duration(Duration::from_secs(((now - ms).max(0) / 1000) as u64)).to_string();
    match &st {
        Some(s) => println!("running     pid {pid}, up {}", ago(s.started_ms)),
        None => println!("running     pid {pid} (no flush yet)"),
    }
    println!("store       {} ({}, WAL {}), {series} series", db.display(), mib(db_bytes), mib(wal_bytes));
    if let Some(s) = &st {
        let per_s = s.lines_last_interval as f64 * 1000.0 / s.flush_interval_ms.max(1) as f64;
        println!(
            "listening   {}; receive buffer {} bytes",
            daemon::listeners(&s.statsd_udp, s.statsd_tcp.as_deref(), s.statsd_unix.as_deref(), s.http.as_deref()),
            s.receive_buffer_bytes
        );
        println!(
            "ingest      {per_s:.0} lines/s in the last interval, {} lines since start, {} series in memory",
            s.lines, s.series_in_memory
        );
        println!(
            "last flush  {} ago, {} points written since start, {} failed writes",
            ago(s.last_flush_ms),
            s.points_written,
            s.failed_writes
        );
        let drops: Vec<String> = s
            .dropped
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(s.rejected.iter().map(|(k, v)| format!("store_{k}={v}")))
            .collect();
        println!("dropped     {}", if drops.is_empty() { "none".to_string() } else { drops.join(", ") });
        println!("kernel      {} datagrams dropped (receive buffer full)", s.kernel_drops);
    }
    Ok(ExitCode::SUCCESS)
}

fn stop(db: Option<PathBuf>, timeout: Duration) -> anyhow::Result<()> {
    let db = store_of(db)?;
    let Some(pid) = perfstore::lock_holder(&db)? else {
        println!("perfagent is not running (store {})", db.display());
        return Ok(());
    };
    // SAFETY: kill(2) with a pid read from the lock file; no memory is involved.
    if unsafe { libc::kill(pid as i32, libc::SIGTERM) } != 0 {
        anyhow::bail!("signalling pid {pid}: {}", std::io::Error::last_os_error());
    }
    let start = std::time::Instant::now();
    while perfstore::lock_holder(&db)?.is_some() {
        if start.elapsed() > timeout {
            anyhow::bail!("pid {pid} did not stop within {}", humantime::format_duration(timeout));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("perfagent stopped (pid {pid}); its final flush is in {}", db.display());
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Status { db, format } => status(db, format),
        Command::Stop { db, timeout } => stop(db, timeout).map(|()| ExitCode::SUCCESS),
        Command::Start(args) => start(args).map(|()| ExitCode::SUCCESS),
        Command::Config { command } => config_command(command).map(|()| ExitCode::SUCCESS),
        Command::Db { command } => db_command(command).map(|()| ExitCode::SUCCESS),
    }
}

fn config_command(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Default => {
            print!("{}", perfagent::config::default_file_text());
            Ok(())
        }
        ConfigCommand::Check { config } => {
            let r = load_config(config, &Flags::default())?;
            match r.file {
                Some(f) => println!("{}: ok", f.display()),
                None => println!("no config file; the defaults and environment are valid"),
            }
            Ok(())
        }
        ConfigCommand::Show { config } => {
            let r = load_config(config, &Flags::default())?;
            match &r.file {
                Some(f) => println!("# file: {}", f.display()),
                None => println!("# file: none"),
            }
            let width = r.settings.iter().map(|s| s.key.len() + s.value.len() + 3).max().unwrap_or(0);
            for s in &r.settings {
                let kv = format!("{} = {}", s.key, s.value);
                println!("{kv:<width$}  # {}", s.source);
            }
            Ok(())
        }
    }
}

fn db_command(command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Check { db } => {
            let path = db_path(db)?;
            let c = perfagent::check_store(&path).with_context(|| format!("checking {}", path.display()))?;
            println!("{}: ok", path.display());
            println!("schema version  {}", c.schema_version);
            println!("series          {}", c.series);
            println!("database bytes  {}", c.db_bytes);
            println!("wal bytes       {}", c.wal_bytes);
            match c.newest_ms {
                Some(ms) => println!("newest data     {ms} (Unix ms)"),
                None => println!("newest data     none yet"),
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
