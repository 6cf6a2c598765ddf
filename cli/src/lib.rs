//! `perfctl`: the companion CLI that reads perfagent's store (read-only, one short read
//! transaction per command).
//!
//! Each subcommand is a module of [`cmd`]: its arguments and `run`, which gathers from the
//! store and computes through `perfanalysis` (the same analysis the agent's dashboard serves),
//! then prints through [`render`] (one table helper, JSON, CSV, charts, flame graphs).
//! [`import`] streams OpenMetrics, CSV and folded stacks into a store; with the `demo`
//! feature (on by default), [`demo`] runs the agent and an instrumented app in this process.
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use perfctl::render::query::{SeriesFormat, render_series};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("perf.db");
//! perfstore::Writer::open(&path, perfstore::StoreOptions::default())?;
//! let mut reader = perfstore::Reader::open(&path)?;
//! let rows = perfanalysis::query::series(&reader.snapshot()?, None)?;
//! let mut out = Vec::new();
//! render_series(&rows, SeriesFormat::Table, perfctl::render::Paint(false), &mut out)?;
//! assert_eq!(String::from_utf8(out)?, "SERIES  KIND              POINTS\n");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod cmd;
#[cfg(feature = "demo")]
pub mod demo;
pub mod import;
pub mod promql;
pub mod render;
pub mod window;

/// A usage error: a flag's value or a combination of flags is wrong (exit code 2, like the
/// errors clap reports itself).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Return early with a [`Usage`] error, `format!`-style.
#[macro_export]
macro_rules! usage {
    ($($t:tt)*) => {
        return Err(anyhow::Error::new($crate::Usage(format!($($t)*))))
    };
}

/// A [`Usage`] error as an `anyhow::Error`, `format!`-style.
#[macro_export]
macro_rules! usage_err {
    ($($t:tt)*) => {
        anyhow::Error::new($crate::Usage(format!($($t)*)))
    };
}
