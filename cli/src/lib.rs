//! `perfctl`: the companion CLI that reads perfagent's store (read-only, one short read
//! transaction per command).
//!
//! Subcommands, one module each under [`cmd`] (computing apart from printing):
//! [`cmd::stats`] (calls, cached %, batched %, success, retries, latency, cache and pool hit
//! rates, host, targets), [`cmd::flamegraph`] (inferno SVG per operation), [`cmd::query`],
//! [`cmd::series`], [`cmd::import`] and [`cmd::export`] (OpenMetrics, CSV, JSON, folded
//! stacks). [`targets`] reads `[targets]` from the shared config file.
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! let dir = std::env::temp_dir().join(format!("perfctl-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("perf.db");
//! perfstore::Writer::open(&path, perfstore::StoreOptions::default())?;
//! let rows = perfctl::cmd::series::collect(&path, None)?;
//! assert!(rows.is_empty());
//! # Ok(()) }
//! ```

pub mod capacity;
pub mod cmd;
pub mod style;
pub mod targets;
pub mod window;
