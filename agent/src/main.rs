//! The `perfagent` binary. Exit codes: 0 ok, 1 error, 2 usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "perfagent", version, about = "Local, always-on performance recorder")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect the store file.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Db { command: DbCommand::Check { db } } => {
            let path = match db {
                Some(p) => p,
                None => perfstore::default_path()?,
            };
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
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
