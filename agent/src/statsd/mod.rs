//! StatsD / DogStatsD ingest: the sans-IO line [`parser`] and the per-interval
//! [`aggregate`]or; the socket listeners feed them.

pub mod aggregate;
pub mod listener;
pub mod parser;
pub mod sources;
