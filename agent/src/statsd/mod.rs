//! StatsD / DogStatsD ingest. Today: the sans-IO line [`parser`]; the aggregator and the
//! socket listeners build on it.

pub mod parser;
