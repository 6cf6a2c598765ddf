//! StatsD / DogStatsD ingest: the sans-IO line [`parser`] and the per-interval
//! [`aggregate`]or; the daemon's socket listeners feed them.

pub mod aggregate;
mod backlog;
mod bounds;
mod flush;
#[cfg(feature = "daemon")]
pub mod listener;
pub mod parser;
mod sets;
#[cfg(feature = "daemon")]
pub mod sources;
