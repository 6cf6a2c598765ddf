//! The `perfctl` binary. Exit codes: 0 ok, 1 error, 2 usage error. A closed pipe
//! (`perfctl series | head`) is not an error.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use perfctl::cmd::series;

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
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let db = match cli.db {
        Some(p) => p,
        None => perfstore::default_path()?,
    };
    match cli.command {
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
