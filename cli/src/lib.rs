//! `perfctl`: the companion CLI that reads perfagent's store (read-only, one short read
//! transaction per command).
//!
//! Today it lists series (`perfctl series`, a cardinality report with `--top`) and runs
//! per-step queries (`perfctl query`); `stats`, `flamegraph`, `capacity`, `import` and
//! `export` follow.
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

pub mod cmd;
pub mod style;
pub mod targets;
pub mod window;
