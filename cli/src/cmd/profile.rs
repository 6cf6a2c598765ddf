//! `perfctl profile <op>`: where an operation's time goes, and what to change.

use std::process::ExitCode;

use perfanalysis::profile;

use super::{Global, with_stdout};
use crate::render::profile::{Format, render};
use crate::render::{Paint, color_stdout};
use crate::window::WindowArgs;

/// `profile` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The operation, e.g. vm.start.
    op: String,
    #[command(flatten)]
    window: WindowArgs,
    /// Only this service's calls.
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Run `profile`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let range = a.window.range()?;
    let mut reader = g.reader()?;
    let input = profile::gather(&reader.snapshot()?, &g.db, &a.op, a.service.as_deref(), range)?;
    let report = profile::compute(&input, range)?;
    with_stdout(|out| Ok(render(&report, a.format, Paint(color_stdout()), out)?))
}
