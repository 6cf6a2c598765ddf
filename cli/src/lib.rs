//! `perfctl`: the companion CLI that reads perfagent's store (read-only, one short read
//! transaction per command).
//!
//! Today it lists series (`perfctl series`, a cardinality report with `--top`) and runs
//! per-step queries (`perfctl query`); `stats`, `flamegraph`, `capacity`, `import` and
//! `export` follow.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("perfctl-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("perf.db");
//! perfstore::Writer::open(&path, perfstore::StoreOptions::default()).unwrap();
//! let rows = perfctl::cmd::series::collect(&path, None).unwrap();
//! assert!(rows.is_empty());
//! ```

pub mod cmd;
pub mod window;
