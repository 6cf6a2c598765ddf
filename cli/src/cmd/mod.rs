//! One module per subcommand: compute apart from printing.

pub mod query;
pub mod series;
pub mod stats;
