//! `perfctl series`: every series with its labels and stored point count.

use std::process::ExitCode;

use super::{Global, with_stdout};
use crate::render::query::{SeriesFormat, render_series};
use crate::render::{Paint, color_stdout};

/// `series` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only the N series with the most points.
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SeriesFormat::Table)]
    format: SeriesFormat,
}

/// Run `series`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let mut reader = g.reader()?;
    let rows = perfanalysis::query::series(&reader.snapshot()?, a.top)?;
    with_stdout(|out| Ok(render_series(&rows, a.format, Paint(color_stdout()), out)?))
}
