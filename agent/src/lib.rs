//! `perfagent`: the collector daemon and the instrumentation SDK.
//!
//! The daemon (`perfagent start`, [`daemon::run`]) takes StatsD/DogStatsD over UDP, a Unix
//! datagram socket and TCP ([`statsd`]: a sans-IO parser, the per-interval aggregator, batched
//! receives), samples the host ([`sampler`]), writes every flush to the store on one writer
//! thread ([`writer`]), and serves `/metrics`, `/healthz`, `/readyz` and `POST /profile`
//! ([`http`], [`exposition`]). The SDK ([`sdk`]) runs the same aggregator and writer inside a
//! Rust app, or forwards to a daemon, and profiles operations per call.
//!
//! Record two calls of an operation into a store and read them back:
//!
//! ```
//! # fn main() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use perfagent::sdk::{CacheResult, Perf};
//!
//! let dir = std::env::temp_dir().join(format!("perfagent-doc-{}", std::process::id()));
//! let db = dir.join("perf.db");
//! let perf = Perf::builder().service("doc").db(&db).profiler_hz(0).start()?;
//! let list = perf.operation("vm.list");
//! list.record(Duration::from_millis(80), |op| op.cache(CacheResult::Miss));
//! list.run(|op| op.cache(CacheResult::Hit));
//! perf.shutdown(); // the final flush is in the store
//!
//! let mut reader = perfstore::Reader::open(&db)?;
//! let snap = reader.snapshot()?;
//! let calls = snap.series(&perfstore::Selector::name("op.duration"))?;
//! assert_eq!(calls.len(), 2); // cache="miss" and cache="hit"
//! # drop(snap); drop(reader); std::fs::remove_dir_all(&dir)?;
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
