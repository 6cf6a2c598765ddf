//! `perfctl capacity --growth 0.3 --months 12`: what each resource will need at the horizon,
//! and when it crosses its target (see `perfanalysis::capacity`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use perfanalysis::capacity::{self, Capacities, Growth, Options, parse_capacities, parse_growth};

use super::{Global, with_stdout};
use crate::render::capacity::{Format, render};
use crate::window::{WindowArgs, parse_duration};

/// `capacity` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Annual growth rate, compounded monthly (0.3 or 30%), or `auto` to fit it to history.
    #[arg(long, value_name = "RATE", value_parser = parse_growth)]
    growth: Growth,
    /// Horizon in months.
    #[arg(long, value_name = "N", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=120))]
    months: u32,
    /// Target utilization, 0–1.
    #[arg(long, value_name = "RATIO", default_value_t = 0.7)]
    target: f64,
    /// Spare instances on top of what the load needs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    redundancy: u32,
    /// The base is the highest hourly mean within this window [default: the last 365 days
    /// with a year of history or more, else the whole history]
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    peak_window: Option<std::time::Duration>,
    /// Capacity of resources with no natural 100 %: rps=500,net=1Gbit [default: [capacity] in
    /// the config file]
    #[arg(long, value_name = "LIST", value_parser = parse_capacities)]
    capacity: Option<Capacities>,
    /// Also draw the chart to this SVG file: daily peaks, the projected peak with its range,
    /// target and capacity lines, with dated axes and a legend (the dashboard's chart).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Pretend it is this time (RFC 3339); for reproducible output.
    #[arg(long, value_name = "TIME", hide = true)]
    now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Gather and project.
pub fn report(g: &Global, o: &Options) -> anyhow::Result<capacity::Report> {
    let mut reader = g.reader()?;
    let input = capacity::gather(&reader.snapshot()?, &g.db, o)?;
    Ok(capacity::compute(&input, o)?)
}

/// Run `capacity`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    if !(a.target > 0.0 && a.target <= 1.0) {
        crate::usage!("invalid value '{}' for '--target': expected a utilization between 0 and 1 like 0.7", a.target);
    }
    let capacities = match a.capacity {
        Some(c) => c,
        None => Capacities::from_config(g.config_file()?.as_ref())?,
    };
    let o = Options {
        now_ms: WindowArgs { now: a.now, ..WindowArgs::default() }.now_ms()?,
        growth: a.growth,
        months: a.months,
        target: a.target,
        redundancy: a.redundancy,
        peak_window_ms: a.peak_window.map(|d| d.as_millis() as i64),
        history_ms: capacity::HISTORY_MS,
        capacities,
    };
    let report = report(g, &o)?;
    if let Some(p) = &a.plot {
        std::fs::write(p, perfdash::chart::capacity(&report)).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("plot: {}", p.display());
    }
    with_stdout(|out| Ok(render(&report, a.format, out)?))
}
