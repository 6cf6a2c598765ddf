//! The `perfagent` binary.
//!
//! Exit codes: 0 ok (also after SIGTERM/SIGINT once the final flush is written), 1 error
//! (startup failure, store problem), 2 bad usage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use perfagent::daemon::{self, DaemonConfig};
use perfagent::statsd::aggregate::AggregatorConfig;

#[derive(Debug, Parser)]
#[command(name = "perfagent", version, about = "Local, always-on performance recorder")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the collector: StatsD/DogStatsD in, aggregated every flush interval, into the store.
    Start(StartArgs),
    /// Inspect the store file.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// Stay in the foreground (for systemd, containers and tests) and print one JSON ready
    /// line with the bound addresses on stdout. Required in this version.
    #[arg(long)]
    foreground: bool,
    /// Store path [default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db]
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// StatsD UDP address; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8125")]
    statsd_udp: SocketAddr,
    /// Aggregation interval, e.g. 10s, 1s, 500ms.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_interval)]
    flush_interval: Duration,
    /// `service` label for lines without a `service` tag [env: PERFAGENT_SERVICE]
    #[arg(long, value_name = "NAME", env = "PERFAGENT_SERVICE", default_value = "unknown")]
    service: String,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("expected a duration like 10s or 500ms ({e})"))?;
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

fn db_path(db: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(match db {
        Some(p) => p,
        None => perfstore::default_path()?,
    })
}

fn start(args: StartArgs) -> anyhow::Result<()> {
    if !args.foreground {
        anyhow::bail!(
            "only `perfagent start --foreground` is available in this version: run it under systemd, \
             a container runtime or `nohup … &`"
        );
    }
    let shutdown = perfagent::shutdown::Shutdown::new().context("creating the shutdown pipe")?;
    shutdown
        .on_signals(&[signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
        .context("installing signal handlers")?;
    let cfg = DaemonConfig {
        db: db_path(args.db)?,
        statsd_udp: args.statsd_udp,
        flush_interval: args.flush_interval,
        aggregator: AggregatorConfig { service: args.service, ..AggregatorConfig::default() },
        store: perfstore::StoreOptions::default(),
    };
    let summary = daemon::run(cfg, &shutdown, |ready| {
        println!("{}", ready.line());
        eprintln!(
            "perfagent: listening for StatsD on udp://{} (receive buffer {} bytes), writing {}",
            ready.statsd_udp,
            ready.receive_buffer_bytes,
            ready.db.display()
        );
    })?;
    eprintln!(
        "perfagent: stopped: {} lines, {} dropped, {} points written, {} failed writes",
        summary.stats.lines,
        summary.stats.dropped_total(),
        summary.written,
        summary.failed_writes
    );
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Start(args) => start(args),
        Command::Db { command: DbCommand::Check { db } } => {
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
