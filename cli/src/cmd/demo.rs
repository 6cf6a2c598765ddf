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
    /// Replace an earlier demo's store given with --db without asking (the default demo
    /// store is always replaced; a store holding anything else is never touched).
    #[arg(long)]
    fresh: bool,
    /// Keep the dashboard open on the demo's store afterwards (until Ctrl-C).
    #[arg(long)]
    serve: bool,
    /// Where --serve serves the dashboard.
    #[arg(long, value_name = "ADDR", default_value = super::ui::DEFAULT_LISTEN, requires = "serve")]
    listen: std::net::SocketAddr,
}

/// Run the demo and show what it recorded.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        crate::usage!("invalid value '{}' for '--seconds': expected a number of seconds between 1 and 3600", a.seconds);
    }
    let (db, started_ms) = crate::demo::run(g.db_flag.as_deref(), a.seconds, a.fresh)?;
    let g = Global { db, ..g.clone() };
    let now = WindowArgs::default().now_ms()?;
    let range = TimeRange::new(started_ms.div_euclid(1000) * 1000, now + 1);
    // Bound before anything is printed, so a port in use is said at once.
    let url = if a.serve { Some(super::ui::serve(super::ui::dashboard(&g, None)?, a.listen)?) } else { None };
    with_stdout(|out| {
        let (me, on_path) = perfctl_command();
        let base = format!("{me} --db {}", g.db.display());
        let since = rfc3339(started_ms);
        show_stats(&g, out, &base, &since, range)?;
        show_flamegraph(&g, out, &base, &since, range)?;
        show_capacity(&g, out, &base, now)?;
        writeln!(out, "\nNext, try:")?;
        if !on_path {
            writeln!(out, "  (perfctl is not on your PATH; `cargo install --path cli --locked` puts it there)")?;
        }
        for c in [
            format!("{base} stats --since {since} --op 'vm.*' --format json"),
            format!("{base} stats --last 1h --by service"),
            format!("{base} flamegraph ssm.send_command --since {since} --icicle"),
            format!("{base} query 'op.duration{{op=\"vm.list\"}}' --last 30d --step 1d --agg p95"),
            format!("{base} capacity --growth 0.5 --plot capacity.svg"),
            format!("{base} series --top 10"),
            format!("{base} export --last 30d --step 1h -o history.om"),
        ] {
            writeln!(out, "  {c}")?;
        }
        match &url {
            Some(url) => writeln!(
                out,
                "\nDashboard (overview, operations, flame graphs, host, capacity): {url}  (Ctrl-C to stop)"
            )?,
            None => writeln!(
                out,
                "\nDashboard: `{base} ui`, then open http://{}/ (or run the demo with --serve)",
                super::ui::DEFAULT_LISTEN
            )?,
        }
        Ok(())
    })?;
    if url.is_some() {
        loop {
            std::thread::park();
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How to call this perfctl: `perfctl` when that is the one on `PATH`, else this binary's
/// path (after `cargo run` it is in `target/release`), and whether it is on `PATH`.
fn perfctl_command() -> (String, bool) {
    let exe = std::env::current_exe().ok();
    let me = exe.as_deref().and_then(|e| std::fs::canonicalize(e).ok());
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let c = d.join("perfctl");
            c.is_file() && (me.is_none() || std::fs::canonicalize(&c).ok() == me)
        })
    });
    if on_path {
        return ("perfctl".into(), true);
    }
    let Some(exe) = exe else { return ("perfctl".into(), false) };
    let shown =
        std::env::current_dir().ok().and_then(|d| exe.strip_prefix(&d).ok().map(|p| p.to_owned())).unwrap_or(exe);
    (shown.display().to_string(), false)
}

fn show_stats(g: &Global, out: &mut dyn Write, base: &str, since: &str, range: TimeRange) -> anyhow::Result<()> {
    writeln!(out, "$ {base} stats --since {since}")?;
    let targets = Targets::load(g.config_file()?.as_ref(), &env)?;
    let report = super::stats::report(g, &stats::Options { range, op: None, by: None }, &targets)?;
    crate::render::stats::render(&report, crate::render::stats::Format::Table, Paint(color_stdout()), out)?;
    Ok(())
}

fn show_flamegraph(g: &Global, out: &mut dyn Write, base: &str, since: &str, range: TimeRange) -> anyhow::Result<()> {
    let svg = g.db.with_file_name("vm.list.svg");
    writeln!(out, "\n$ {base} flamegraph vm.list --since {since} -o {}", svg.display())?;
    let opts = flame::Options { op: "vm.list".into(), service: None, range, baseline: None, full_stacks: false };
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

fn show_capacity(g: &Global, out: &mut dyn Write, base: &str, now: i64) -> anyhow::Result<()> {
    writeln!(out, "\n$ {base} capacity --growth auto --months 12 --capacity rps=40")?;
    let o = perfanalysis::capacity::Options {
        now_ms: now,
        growth: Growth::Auto,
        months: 12,
        target: 0.7,
        redundancy: 1,
        peak_window_ms: None,
        history_ms: perfanalysis::capacity::HISTORY_MS,
        capacities: Capacities { rps: Some(40.0), net_bytes_per_s: None },
    };
    let report = super::capacity::report(g, &o)?;
    crate::render::capacity::render(&report, crate::render::capacity::Format::Table, out)?;
    Ok(())
}
