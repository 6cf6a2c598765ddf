//! `perfagent`: the collector daemon and the instrumentation SDK.
//!
//! The daemon (`perfagent start`, [`daemon::run`]) takes StatsD/DogStatsD over UDP, a Unix
//! datagram socket and TCP ([`statsd`]: a sans-IO parser, the per-interval aggregator, batched
//! receives), samples the host ([`sampler`]), writes every flush to the store on one writer
//! thread ([`writer`]), and serves `/metrics`, `/healthz`, `/readyz` and `POST /profile`
//! ([`http`], [`exposition`]). What it counts about itself is in [`telemetry`]. The SDK
//! ([`sdk`]) runs the same aggregator and writer inside a Rust app, or forwards to a daemon,
//! and profiles operations per call.
//!
//! Cargo features: `daemon` (the binary, its CLI, config, HTTP endpoint and signal handling),
//! `host-metrics` (the sysinfo host sampler), `profiler` (pprof per-operation profiles),
//! `prometheus` (the SDK's `install_recorder`). All are on by default; an app that embeds only
//! the SDK sets `default-features = false` and picks what it wants.
//!
//! Record two calls of an operation into a store and read them back:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use perfagent::sdk::{CacheResult, Perf};
//!
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("perf.db");
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
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

#[cfg(feature = "daemon")]
pub mod alerts;
mod by_address;
#[cfg(feature = "daemon")]
pub mod cli;
pub mod clock;
#[cfg(feature = "daemon")]
pub mod config;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod exposition;
pub mod health;
#[cfg(feature = "daemon")]
pub mod http;
pub mod listeners;
#[cfg(feature = "daemon")]
pub mod logging;
#[cfg(feature = "daemon")]
pub mod probes;
#[cfg(feature = "daemon")]
pub mod remote_write;
#[cfg(feature = "host-metrics")]
pub mod sampler;
pub mod sdk;
#[cfg(feature = "daemon")]
pub mod shutdown;
pub mod statsd;
pub mod status;
pub mod summary;
pub mod telemetry;
pub mod token;
pub mod writer;
