//! The `perfctl` binary. Exit codes: 0 ok, 1 error, 2 usage error, 3 targets violated
//! (`stats --check`). A closed pipe (`perfctl series | head`) is not an error.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use perfctl::cmd::{self, Global};

#[derive(Debug, Parser)]
#[command(name = "perfctl", version, about = "Read what perfagent recorded")]
struct Cli {
    /// Store path [default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Config file, for `[targets]` and `[capacity]` [default:
    /// $XDG_CONFIG_HOME/perfagent/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Calls, cached %, batched %, success rate, retries, latency, cache and pool hit rates,
    /// the host, and targets violated, over a window (`--last 24h`).
    Stats(cmd::stats::Args),
    /// List series with their labels and stored point counts (a cardinality report).
    Series(cmd::series::Args),
    /// Run the product end to end with no setup: an agent, a simulated instrumented cloud CLI
    /// and a StatsD app for 30 s, then stats, a flame graph and a capacity projection. Writes
    /// to --db, else $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/demo.db.
    #[cfg(feature = "demo")]
    Demo(cmd::demo::Args),
    /// What each resource (CPU, memory, disk, network, requests) will need in N months, and
    /// when it crosses the target and runs out, from its recent peak.
    Capacity(cmd::capacity::Args),
    /// Where an operation's wall time goes (phases, CPU) and what to change, with savings
    /// computed from the recorded data.
    Profile(cmd::profile::Args),
    /// A flame graph (SVG, by inferno) of one operation's CPU samples over a window.
    Flamegraph(cmd::flamegraph::Args),
    /// Load data into the store: OpenMetrics/Prometheus text with timestamps, CSV, StatsD
    /// captures (`|T` keeps times), or folded stacks for an operation. The agent must not be
    /// running on the same store.
    Import(cmd::import::Args),
    /// Each operation's objectives (availability from the error-rate target, latency from the
    /// p95 target), error budget left and burn rates over 5m/1h/6h/3d, over a rolling window.
    Slo(cmd::slo::Args),
    /// Series over a window, one point per step, as OpenMetrics (for Prometheus tooling), CSV
    /// or JSON.
    Export(cmd::export::Args),
    /// One aggregation per step per matching series, e.g.
    /// `perfctl query 'op.duration{op="vm.list"}' --last 24h --step 1h --agg p95`.
    Query(cmd::query::Args),
    /// How long reaching an endpoint takes, phase by phase (DNS, connect, TLS, first byte,
    /// total), with --count N for p50/p95, and why it fails when it does; --record sends the
    /// results to the agent.
    TestConnection(cmd::connect::Args),
    /// The dashboard in a browser, for any store, read-only and without an agent: overview,
    /// operations, flame graphs, host, capacity and a series explorer at
    /// http://127.0.0.1:9466/ (the agent serves the same at its own address, 9465).
    Ui(cmd::ui::Args),
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = Global {
        db: match &cli.db {
            Some(p) => p.clone(),
            None => perfstore::default_path()?,
        },
        db_flag: cli.db,
        config: cli.config,
    };
    match cli.command {
        Command::Stats(a) => cmd::stats::run(&g, a),
        Command::Series(a) => cmd::series::run(&g, a),
        #[cfg(feature = "demo")]
        Command::Demo(a) => cmd::demo::run(&g, a),
        Command::Capacity(a) => cmd::capacity::run(&g, a),
        Command::Profile(a) => cmd::profile::run(&g, a),
        Command::Flamegraph(a) => cmd::flamegraph::run(&g, a),
        Command::Import(a) => cmd::import::run(&g, a),
        Command::Export(a) => cmd::export::run(&g, a),
        Command::Query(a) => cmd::query::run(&g, a),
        Command::Slo(a) => cmd::slo::run(&g, a),
        Command::Ui(a) => cmd::ui::run(&g, a),
        Command::TestConnection(a) => cmd::connect::run(&g, a),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let usage = e.downcast_ref::<perfctl::Usage>().is_some()
                || matches!(e.downcast_ref::<perfanalysis::Error>(), Some(perfanalysis::Error::Invalid(_)));
            // Errors quote names and values from the store and the network: no escapes.
            eprintln!("error: {}", perfanalysis::human::clean_lines(&format!("{e:#}")));
            if usage { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}
