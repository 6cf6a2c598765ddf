//! `perfstore`: the embedded SQLite time-series store behind perfagent and perfctl.
//!
//! One writer process (the agent, holding `<db>.lock`) and any number of read-only readers
//! (`perfctl`) share one SQLite file in WAL mode. The store keeps:
//!
//! * a **series registry**: name, kind, unit and a sorted, interned label set (with
//!   `service`), with per-name and total cardinality limits;
//! * **points** in compressed chunks ([`chunk`]): raw flush-interval points for 7 days, then
//!   one-minute rollups for 90 days and one-hour rollups for 2 years, each with count, sum,
//!   min, max, last and, for distributions, a mergeable quantile [`Sketch`];
//! * **profiles** (folded stacks per operation per window) and a small **event** log.
//!
//! ```
//! use perfstore::{Kind, Reader, Registration, Sample, SeriesKey, Selector, StoreOptions, TimeRange, Write, Writer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("perf.db");
//! let mut writer = Writer::open(&path, StoreOptions::default())?;
//! let key = SeriesKey::new("api", "op.retries", Kind::Counter).label("op", "vm.list");
//! let Registration::Registered(id) = writer.register(&key, 0)? else { panic!("over a limit") };
//! writer.write(&[
//!     Write { series: id, ts_ms: 0, sample: Sample::Counter(2.0) },
//!     Write { series: id, ts_ms: 10_000, sample: Sample::Counter(3.0) },
//! ])?;
//!
//! let mut reader = Reader::open(&path)?;
//! let snap = reader.snapshot()?;
//! let series = snap.series(&Selector::parse(r#"op.retries{op="vm.list"}"#)?)?;
//! let total = snap.aggregate(&series[0], TimeRange::new(0, 60_000))?.ok_or("no data")?;
//! assert_eq!(total.sum, 5.0);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod cap;
pub mod chunk;
mod codec;
mod column;
pub mod convention;
mod entry;
mod error;
mod event;
pub mod grow;
mod labels;
mod migrate;
mod model;
mod open;
mod profile;
mod query;
mod recent;
mod registry;
mod rollup;
mod rows;
mod select;
mod shared_str;
pub mod sketch;
mod tier;
mod write;

pub use codec::Truncated;
pub use error::{Error, Result};
pub use migrate::{APPLICATION_ID, SCHEMA_VERSION};
pub use model::{
    Distribution, EVENT_MESSAGE_MAX_CHARS, Event, EventKind, Kind, LabelIter, LabelSets, Point, ProfileWindow,
    Registration, RejectReason, SERVICE_LABEL, Sample, SeriesId, SeriesInfo, SeriesKey, SharedStr, Stack, Write,
    merge_into,
};
pub use open::{
    StoreOptions, canonical, default_path, default_path_from, lock_holder, lock_path, open_private, remove_store,
};
pub use profile::{FoldedError, ProfiledOp, parse_folded};
pub use query::{Agg, Reader, SeriesRange, SeriesUsage, Snapshot, TimeRange};
pub use rollup::MaintenanceReport;
pub use rows::CHUNK_MAX_BYTES;
pub use select::{MatchOp, Matcher, Selector, glob_match};
pub use sketch::{BucketBounds, Sketch};
pub use tier::{DAY_MS, HOUR_MS, MINUTE_MS, TIME_RANGE_MS, Tier};
pub use write::{FileState, WriteReport, Writer, wal_path};
