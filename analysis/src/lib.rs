//! `perfanalysis`: what perfagent's store means.
//!
//! Each analysis reads what it needs from a store snapshot (`gather`) into a plain input, and
//! turns that input into a report struct (`compute`) without touching a database, so it can be
//! unit-tested on hand-built inputs and fed from other sources. `perfctl` prints the reports as
//! tables, JSON and CSV; the agent's dashboard serves the same reports as JSON: one analysis
//! code path for both.
//!
//! * [`stats`]: calls, cached %, batched %, success, retries, latency, caches, pools, the host,
//!   open circuits and violated [`targets`].
//! * [`profile`]: where an operation's time goes, and suggestions with their savings.
//! * [`capacity`]: projections of each resource's peak, and when it crosses its target.
//! * [`slo`]: objectives from the targets, error budgets and burn rates; [`alerts`]: the
//!   burn-rate alerts the agent evaluates over them.
//! * [`query`] and [`flame`]: series per step, and merged CPU profiles.
//! * [`config`]: the one config file reader both binaries use.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use perfanalysis::{stats, targets::Targets};
//! use perfstore::convention::{OP_DURATION, tag};
//! use perfstore::{Distribution, Reader, Registration, Sample, StoreOptions, TimeRange, Write, Writer};
//!
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("perf.db");
//! let mut w = Writer::open(&db, StoreOptions::default())?;
//! let key = OP_DURATION.key("api").label(tag::OP, "vm.list").label(tag::OUTCOME, "ok");
//! let Registration::Registered(id) = w.register(&key, 0)? else { panic!("refused") };
//! let calls = Distribution::from_values(&[0.120, 0.080]);
//! w.write(&[Write { series: id, ts_ms: 0, sample: Sample::Distribution(Box::new(calls)) }])?;
//! w.close()?;
//!
//! let mut r = Reader::open(&db)?;
//! let range = TimeRange::new(0, 60_000);
//! let input = stats::gather(&r.snapshot()?, &db, range)?;
//! let opts = stats::Options { range, op: None, by: None };
//! let report = stats::compute(&input, &opts, &Targets::default())?;
//! assert_eq!(report.overall.calls.calls, 2.0);
//! assert_eq!(report.ops[0].op, "vm.list");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod alerts;
pub mod capacity;
pub mod config;
mod error;
pub mod flame;
pub mod fleet;
pub mod human;
pub mod profile;
pub mod query;
pub mod slo;
pub mod stats;
pub mod targets;
pub mod time;

pub use error::{Error, NoData, NoProfile, Result, UnknownOp};
