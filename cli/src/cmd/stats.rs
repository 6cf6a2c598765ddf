//! `perfctl stats`: calls, cached %, batched %, success, retries, latency, caches, pools, the
//! host and targets over a window.

use std::process::ExitCode;

use perfanalysis::Error;
use perfanalysis::capacity::Capacities;
use perfanalysis::stats::{self, Options};
use perfanalysis::targets::Targets;

use super::{Global, env, with_stdout};
use crate::render::stats::{Format, render};
use crate::render::{Paint, color_stdout};
use crate::window::WindowArgs;

/// Exit status when `--check` finds a violated target.
pub const VIOLATED: u8 = 3;

/// `stats` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    window: WindowArgs,
    /// Only operations matching this glob, e.g. 'vm.*'.
    #[arg(long, value_name = "GLOB")]
    op: Option<String>,
    /// Split operations by this tag, e.g. service.
    #[arg(long, value_name = "TAG")]
    by: Option<String>,
    /// Exit with status 3 when a target is violated (for scripts and CI).
    #[arg(long)]
    check: bool,
    /// Compute the same report for a fleet from what its agents remote-wrote to this
    /// Prometheus-compatible server (PromQL over its HTTP API), instead of the local store;
    /// --by host splits operations per agent.
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Gather and compute the report for `opts` (with the capacity trend target when it is set,
/// against the capacities of `[capacity]`).
pub fn report(g: &Global, opts: &Options, targets: &Targets) -> anyhow::Result<stats::Report> {
    let capacities = match targets.capacity_within_days {
        Some(_) => Capacities::from_config(g.config_file()?.as_ref())?,
        None => Capacities::default(),
    };
    let mut reader = g.reader()?;
    Ok(stats::report(&reader.snapshot()?, &g.db, opts, targets, capacities)?)
}

/// Run `stats`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let targets = Targets::load(g.config_file()?.as_ref(), &env)?;
    let opts = Options { range: a.window.range()?, op: a.op, by: a.by };
    let report = match &a.prometheus {
        Some(url) => fleet(url, &opts, &targets)?,
        None => report(g, &opts, &targets)?,
    };
    if report.ops.is_empty() && a.prometheus.is_some() {
        anyhow::bail!(
            "{}: no operation calls between {} and {} (is remote write configured in the agents' [[remote_write]], and \
             does --last reach their data?)",
            report.db,
            perfanalysis::time::rfc3339(opts.range.start_ms),
            perfanalysis::time::rfc3339(opts.range.end_ms)
        );
    }
    if report.ops.is_empty() {
        // Nothing to report on (and no target can be said to be met): say what the store
        // does hold instead.
        return Err(no_calls(g, &opts)?.into());
    }
    with_stdout(|out| Ok(render(&report, a.format, Paint(color_stdout()), out)?))?;
    Ok(if a.check && !report.violations.is_empty() { ExitCode::from(VIOLATED) } else { ExitCode::SUCCESS })
}

/// The report for a fleet: each series' change over the window, read with PromQL at the
/// window's end and start (`perfanalysis::fleet`).
fn fleet(url: &str, opts: &Options, targets: &Targets) -> anyhow::Result<stats::Report> {
    let server =
        crate::promql::Server::parse(url).map_err(|e| crate::usage_err!("invalid value for '--prometheus': {e}"))?;
    let len_s = ((opts.range.end_ms - opts.range.start_ms) / 1000).max(1);
    let end = server.query(&perfanalysis::fleet::query(&format!("{len_s}s")), opts.range.end_ms)?;
    // Before the window: the last value however old (counters hold their total).
    let start = server.query(&perfanalysis::fleet::query("400d"), opts.range.start_ms)?;
    let input = perfanalysis::fleet::input(&end, &start, opts.range, url.trim_end_matches('/'));
    Ok(stats::compute(&input, opts, targets)?)
}

/// The error for a window without operation calls.
fn no_calls(g: &Global, opts: &Options) -> anyhow::Result<Error> {
    let mut reader = g.reader()?;
    Ok(stats::no_calls(&reader.snapshot()?, &g.db, opts)?)
}
