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
    /// Annual growth rate, compounded monthly (0.3 or 30%), or `auto` to measure it from
    /// history (year over year from 13 months on).
    #[arg(long, value_name = "RATE", value_parser = parse_growth, required_unless_present = "backtest")]
    growth: Option<Growth>,
    /// Instead of projecting: hold out the store's last months, project them from the months
    /// before with --growth auto, and compare with what happened (per resource).
    #[arg(long, conflicts_with_all = ["growth", "plot"])]
    backtest: bool,
    /// Months the backtest holds out [default: as many as leave 13 to project from, at most 12]
    #[arg(long, value_name = "N", requires = "backtest", value_parser = clap::value_parser!(u32).range(1..=24))]
    holdout: Option<u32>,
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
        growth: a.growth.unwrap_or(Growth::Auto),
        months: a.months,
        target: a.target,
        redundancy: a.redundancy,
        peak_window_ms: a.peak_window.map(|d| d.as_millis() as i64),
        history_ms: capacity::HISTORY_MS,
        capacities,
    };
    if a.backtest {
        return backtest(g, &o, a.holdout, a.format);
    }
    let report = report(g, &o)?;
    if let Some(p) = &a.plot {
        std::fs::write(p, perfdash::chart::capacity(&report)).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("plot: {}", p.display());
    }
    with_stdout(|out| Ok(render(&report, a.format, out)?))
}

/// One resource's backtest, or why there is none.
#[derive(Debug, serde::Serialize)]
struct BacktestRow {
    resource: String,
    unit: String,
    #[serde(flatten)]
    result: Option<capacity::backtest::Holdout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
}

/// `--backtest`: each resource's last months held out and projected from the months before.
fn backtest(g: &Global, o: &Options, held_out: Option<u32>, format: Format) -> anyhow::Result<ExitCode> {
    let mut reader = g.reader()?;
    let input = capacity::gather(&reader.snapshot()?, &g.db, o)?;
    let rows: Vec<BacktestRow> = input
        .resources
        .iter()
        .map(|r| {
            let peaks = capacity::complete_monthly_peaks(&r.history);
            let (result, skipped) = match capacity::backtest::holdout(&peaks, held_out) {
                Ok(h) => (Some(h), None),
                Err(why) => (None, Some(why)),
            };
            BacktestRow { resource: r.name.clone(), unit: r.unit.clone(), result, skipped }
        })
        .collect();
    if rows.iter().all(|r| r.result.is_none()) && format == Format::Table {
        let why = rows.first().and_then(|r| r.skipped.clone()).unwrap_or_else(|| "no resource has history".into());
        anyhow::bail!("no backtest possible on {}: {why}", g.db.display());
    }
    with_stdout(|out| {
        if format == Format::Json {
            return Ok(crate::render::json(&rows, out)?);
        }
        Ok(crate::render::capacity::render_backtest(&rows_text(&rows), out)?)
    })
}

/// The rows as text cells.
fn rows_text(rows: &[BacktestRow]) -> Vec<[String; 8]> {
    let pct = |v: f64| format!("{:+.1}%", v * 100.0);
    rows.iter()
        .map(|r| match &r.result {
            Some(h) => [
                crate::render::cell(&r.resource, 30),
                format!("{} months to {}", h.history_months, h.origin),
                format!("{}", h.held_out),
                format!("{:.3} ({:.3} to {:.3})", h.projected, h.range.0, h.range.1),
                format!("{:.3} {}", h.actual, r.unit),
                format!("{} {}", pct(h.error), if h.covered { "in range" } else { "OUT of range" }),
                h.seasonal_naive.map_or("-".into(), |n| pct(n.1)),
                h.linear.map_or("-".into(), |n| pct(n.1)),
            ],
            None => [
                crate::render::cell(&r.resource, 30),
                r.skipped.clone().unwrap_or_default(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        })
        .collect()
}
