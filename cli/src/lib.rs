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
pub mod render;
pub mod window;
