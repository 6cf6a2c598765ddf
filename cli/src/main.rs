//! The `perfctl` binary. Exit codes: 0 ok, 1 error, 2 usage error. A closed pipe
//! (`perfctl series | head`) is not an error.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use perfctl::cmd::{query, series};
use perfctl::window::{WindowArgs, parse_duration, rfc3339};

#[derive(Debug, Parser)]
#[command(name = "perfctl", version, about = "Read what perfagent recorded")]
struct Cli {
    /// Store path [default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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

fn run(cli: Cli) -> anyhow::Result<()> {
    let db = match cli.db {
        Some(p) => p,
        None => perfstore::default_path()?,
    };
    match cli.command {
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
            Ok(())
        }
        Command::Series { top, format } => {
            let rows = series::collect(&db, top)?;
            let stdout = io::stdout();
            let mut out = stdout.lock();
            series::render(&rows, format, &mut out)?;
            out.flush()?;
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
