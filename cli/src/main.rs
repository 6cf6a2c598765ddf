//! The `perfctl` binary. Exit codes: 0 ok, 1 error, 2 usage error, 3 targets violated
//! (`stats --check`). A closed pipe (`perfctl series | head`) is not an error.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use perfctl::cmd::{query, series, stats};
use perfctl::style::{Paint, color_stdout};
use perfctl::window::{WindowArgs, parse_duration, rfc3339};

#[derive(Debug, Parser)]
#[command(name = "perfctl", version, about = "Read what perfagent recorded")]
struct Cli {
    /// Store path [default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Config file, for `[targets]` [default: $XDG_CONFIG_HOME/perfagent/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Calls, cached %, batched %, success rate, retries, latency, cache and pool hit rates,
    /// the host, and targets violated, over a window (`--last 24h`).
    Stats {
        #[command(flatten)]
        window: WindowArgs,
        /// Only operations matching this glob, e.g. 'vm.*'.
        #[arg(long, value_name = "GLOB")]
        op: Option<String>,
        /// Split operations by this tag, e.g. service.
        #[arg(long, value_name = "TAG")]
        by: Option<String>,
        /// Exit with status 3 when a target is violated (for scripts and CI).
        #[arg(long)]
        check: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = stats::Format::Table)]
        format: stats::Format,
    },
    /// List series with their labels and stored point counts (a cardinality report).
    Series {
        /// Only the N series with the most points.
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = series::Format::Table)]
        format: series::Format,
    },
    /// One aggregation per step per matching series, e.g.
    /// `perfctl query 'op.duration{op="vm.list"}' --last 24h --step 1h --agg p95`.
    Query {
        /// `name{label="value",…}`; the name may be a glob (`op.*`), matchers are =, !=, =~ and
        /// !~ (globs).
        selector: String,
        /// Step length, e.g. 1m, 1h [default: 5m]
        #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "5m")]
        step: std::time::Duration,
        /// sum, rate, count, min, max, avg, last, or a percentile like p95.
        #[arg(long, value_name = "AGG", value_parser = perfstore::Agg::parse, default_value = "sum")]
        agg: perfstore::Agg,
        #[command(flatten)]
        window: WindowArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = query::Format::Table)]
        format: query::Format,
    },
}

/// Exit status when `stats --check` finds a violated target.
const VIOLATED: u8 = 3;

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let db = match cli.db {
        Some(p) => p,
        None => perfstore::default_path()?,
    };
    match cli.command {
        Command::Stats { window, op, by, check, format } => {
            let targets = perfctl::targets::load(cli.config.as_deref(), &|k| std::env::var(k).ok())?;
            let opts = stats::Options { range: window.range()?, op, by };
            let report = stats::collect(&db, &opts, &targets)?;
            let stdout = io::stdout();
            let mut out = stdout.lock();
            stats::render(&report, format, Paint(color_stdout()), &mut out)?;
            out.flush()?;
            Ok(if check && !report.violations.is_empty() { ExitCode::from(VIOLATED) } else { ExitCode::SUCCESS })
        }
        Command::Query { selector, step, agg, window, format } => {
            let range = window.range()?;
            let result = query::run(&db, &selector, range, step.as_millis().max(1) as i64, agg)?;
            if result.series.is_empty() {
                let newest = result.newest_ms.map_or_else(
                    || "the store holds no data yet".to_string(),
                    |t| format!("its newest data is from {}", rfc3339(t)),
                );
                anyhow::bail!(
                    "no data for {selector} between {} and {} in {} ({} matching series; {newest})",
                    rfc3339(range.start_ms),
                    rfc3339(range.end_ms),
                    db.display(),
                    result.matched
                );
            }
            let stdout = io::stdout();
            let mut out = stdout.lock();
            query::render(&result, format, &mut out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Series { top, format } => {
            let rows = series::collect(&db, top)?;
            let stdout = io::stdout();
            let mut out = stdout.lock();
            series::render(&rows, format, &mut out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
