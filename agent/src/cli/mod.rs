//! The `perfagent` command line: `start`, `stop`, `status`, `config` and `db`. Exit codes: 0
//! ok (also after SIGTERM/SIGINT once the final flush is written), 1 error (startup failure,
//! store problem), 2 bad usage, 3 `status` when the agent is not running.

mod config;
mod db;
mod start;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Flags, Resolved, resolve};

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
    Start(start::Args),
    /// Inspect the store file.
    Db {
        #[command(subcommand)]
        command: db::Command,
    },
    /// Is the agent running, and what is it doing. Exit 0 when running, 3 when not.
    Status(status::StatusArgs),
    /// Stop the agent (SIGTERM) and wait for its final flush.
    Stop(status::StopArgs),
    /// The effective configuration and where each value came from.
    Config {
        #[command(subcommand)]
        command: config::Command,
    },
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Read the config file (explicit, or the default one if it exists) and resolve it.
pub(crate) fn load_config(config: Option<PathBuf>, flags: &Flags) -> anyhow::Result<Resolved> {
    let file = perfanalysis::config::ConfigFile::load(config.as_deref(), &env_var)?;
    let default_db = perfstore::default_path().unwrap_or_else(|_| PathBuf::from("perf.db"));
    Ok(resolve(file.as_ref(), &env_var, flags, default_db)?)
}

/// The store a `--db` flag (or the config) names.
pub(crate) fn store_of(db: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(load_config(None, &Flags { db, ..Flags::default() })?.daemon.db)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Status(a) => status::status(a),
        Command::Stop(a) => status::stop(a).map(|()| ExitCode::SUCCESS),
        Command::Start(a) => start::run(a).map(|()| ExitCode::SUCCESS),
        Command::Config { command } => config::run(command).map(|()| ExitCode::SUCCESS),
        Command::Db { command } => db::run(command).map(|()| ExitCode::SUCCESS),
    }
}

/// The binary's `main`: parse, run, and print `error: …` with its causes on failure.
pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote names and values from the store and the network: no escapes.
            eprintln!("error: {}", perfanalysis::human::clean_lines(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
