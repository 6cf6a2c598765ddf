//! One module per subcommand: compute apart from printing.

pub mod capacity;
pub mod demo;
pub mod export;
pub mod flamegraph;
pub mod import;
pub mod profile;
pub mod query;
pub mod series;
pub mod stats;
