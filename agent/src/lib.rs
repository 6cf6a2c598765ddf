//! `perfagent`: the collector daemon and instrumentation SDK.
//!
//! This crate is at its first steps: today it offers the store checks behind
//! `perfagent db check`, the StatsD/DogStatsD line parser ([`statsd::parser`]), the
//! per-interval aggregator ([`statsd::aggregate`]) and the flush writer ([`writer`]). The
//! socket listeners, host sampler, writer thread and `/metrics` endpoint arrive with the
//! daemon.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("perfagent-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("perf.db");
//! perfstore::Writer::open(&path, perfstore::StoreOptions::default())?;
//! let report = perfagent::check_store(&path)?;
//! assert_eq!(report.series, 0);
//! # Ok(()) }
//! ```

pub mod config;
pub mod daemon;
pub mod exposition;
pub mod http;
pub mod logging;
pub mod sampler;
pub mod sdk;
pub mod shutdown;
pub mod statsd;
pub mod summary;
pub mod writer;

use std::path::Path;

use perfstore::{Reader, Selector, wal_path};

/// What `perfagent db check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCheck {
    /// Schema version of the file.
    pub schema_version: i64,
    /// Registered series.
    pub series: usize,
    /// Database file bytes.
    pub db_bytes: u64,
    /// WAL file bytes.
    pub wal_bytes: u64,
    /// Newest data written, Unix ms.
    pub newest_ms: Option<i64>,
}

/// Open the store read-only, run `PRAGMA integrity_check`, and summarise it.
pub fn check_store(path: &Path) -> perfstore::Result<StoreCheck> {
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
