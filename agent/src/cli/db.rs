//! `perfagent db check`: the store opened read-only, SQLite's integrity check, and a summary.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use perfstore::{Reader, Selector, wal_path};

/// `db` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Open the store read-only, run SQLite's integrity check and print a summary.
    Check {
        /// Store path [default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db]
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
}

/// What `db check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreCheck {
    schema_version: i64,
    series: usize,
    db_bytes: u64,
    wal_bytes: u64,
    newest_ms: Option<i64>,
}

fn check(path: &Path) -> perfstore::Result<StoreCheck> {
    let mut reader = Reader::open(path)?;
    let snap = reader.snapshot()?;
    snap.integrity_check()?;
    Ok(StoreCheck {
        schema_version: snap.schema_version()?,
        series: snap.series(&Selector::default())?.len(),
        db_bytes: path.metadata().map(|m| m.len()).unwrap_or(0),
        wal_bytes: wal_path(path).metadata().map(|m| m.len()).unwrap_or(0),
        newest_ms: snap.newest_ms()?,
    })
}

/// Run a `db` subcommand.
pub(crate) fn run(command: Command) -> anyhow::Result<()> {
    let Command::Check { db } = command;
    let path = match db {
        Some(p) => p,
        None => perfstore::default_path()?,
    };
    let c = check(&path).with_context(|| format!("checking {}", path.display()))?;
    println!("{}: ok", path.display());
    println!("schema version  {}", c.schema_version);
    println!("series          {}", c.series);
    println!("database bytes  {}", c.db_bytes);
    println!("wal bytes       {}", c.wal_bytes);
    match c.newest_ms {
        Some(ms) => println!("newest data     {}", perfanalysis::time::rfc3339(ms)),
        None => println!("newest data     none yet"),
    }
    Ok(())
}
