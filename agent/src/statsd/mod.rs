//! StatsD / DogStatsD ingest: the sans-IO line [`parser`] and the per-interval
//! [`aggregate`]or; the daemon's socket listeners feed them.

pub mod aggregate;
mod backlog;
mod bounds;
pub mod fast;
mod flush;
mod index;
pub(crate) use index::prefetch;
#[cfg(feature = "daemon")]
pub mod listener;
pub mod parser;
mod series;
mod sets;
#[cfg(feature = "daemon")]
pub mod sources;
mod state;
