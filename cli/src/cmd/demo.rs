//! `perfctl demo`: the product end to end with no setup (see [`crate::demo`]), then what
//! `perfctl` shows of it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use perfanalysis::capacity::{Capacities, Growth};
use perfanalysis::time::rfc3339;
use perfanalysis::{flame, stats, targets::Targets};
use perfstore::TimeRange;

use super::{Global, env, with_stdout};
use crate::render::{Paint, color_stdout};
use crate::window::WindowArgs;

/// `demo` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How long the simulated apps run.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    seconds: f64,
}

/// Run the demo and show what it recorded.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        crate::usage!("invalid value '{}' for '--seconds': expected a number of seconds between 1 and 3600", a.seconds);
    }
    let (db, started_ms) = crate::demo::run(g.db_flag.as_deref(), a.seconds)?;
    let g = Global { db, ..g.clone() };
    let now = WindowArgs::default().now_ms()?;
    let range = TimeRange::new(started_ms.div_euclid(1000) * 1000, now + 1);
    with_stdout(|out| {
        let dbs = g.db.display().to_string();
        let since = rfc3339(started_ms);
        show_stats(&g, out, &dbs, &since, range)?;
        show_flamegraph(&g, out, &dbs, &since, range)?;
        show_capacity(&g, out, &dbs, now)?;
        writeln!(out, "\nNext, try:")?;
        for c in [
            format!("perfctl --db {dbs} stats --since {since} --op 'vm.*' --format json"),
            format!("perfctl --db {dbs} stats --last 1h --by service"),
            format!("perfctl --db {dbs} flamegraph ssm.send_command --since {since} --icicle"),
            format!("perfctl --db {dbs} query 'op.duration{{op=\"vm.list\"}}' --last 30d --step 1d --agg p95"),
            format!("perfctl --db {dbs} capacity --growth 0.5 --plot capacity.svg"),
            format!("perfctl --db {dbs} series --top 10"),
            format!("perfctl --db {dbs} export --last 30d --step 1h -o history.om"),
        ] {
            writeln!(out, "  {c}")?;
        }
        Ok(())
    })
}

fn show_stats(g: &Global, out: &mut dyn Write, dbs: &str, since: &str, range: TimeRange) -> anyhow::Result<()> {
    writeln!(out, "$ perfctl --db {dbs} stats --since {since}")?;
    let targets = Targets::load(g.config_file()?.as_ref(), &env)?;
    let report = super::stats::report(g, &stats::Options { range, op: None, by: None }, &targets)?;
    crate::render::stats::render(&report, crate::render::stats::Format::Table, Paint(color_stdout()), out)?;
    Ok(())
}

fn show_flamegraph(g: &Global, out: &mut dyn Write, dbs: &str, since: &str, range: TimeRange) -> anyhow::Result<()> {
    let svg = g.db.with_file_name("vm.list.svg");
    writeln!(out, "\n$ perfctl --db {dbs} flamegraph vm.list --since {since} -o {}", svg.display())?;
    let opts = flame::Options { op: "vm.list".into(), service: None, range, baseline: None };
    let mut reader = g.reader()?;
    match flame::gather(&reader.snapshot()?, &g.db, &opts) {
        Ok(stacks) => {
            let mut buf = Vec::new();
            crate::render::flamegraph::write_svg(&stacks, &opts, Default::default(), &mut buf)?;
            std::fs::write(&svg, buf).with_context(|| format!("writing {}", svg.display()))?;
            writeln!(out, "{}  ({} CPU samples of vm.list; open it in a browser)", svg.display(), stacks.samples())?;
        }
        Err(e) => writeln!(out, "no flame graph: {e:#}")?,
    }
    Ok(())
}

fn show_capacity(g: &Global, out: &mut dyn Write, dbs: &str, now: i64) -> anyhow::Result<()> {
    writeln!(out, "\n$ perfctl --db {dbs} capacity --growth auto --months 12 --capacity rps=40")?;
    let o = perfanalysis::capacity::Options {
        now_ms: now,
        growth: Growth::Auto,
        months: 12,
        target: 0.7,
        redundancy: 1,
        peak_window_ms: 30 * perfstore::DAY_MS,
        history_ms: super::capacity::HISTORY_MS,
        capacities: Capacities { rps: Some(40.0), net_bytes_per_s: None },
    };
    let report = super::capacity::report(g, &o)?;
    crate::render::capacity::render(&report, crate::render::capacity::Format::Table, out)?;
    Ok(())
}
