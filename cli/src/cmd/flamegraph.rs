//! `perfctl flamegraph <op>`: the operation's stored folded stacks over a window, merged and
//! drawn by inferno (or printed as folded text, or diffed against a baseline window).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use perfanalysis::flame::{self, Options};
use perfanalysis::time::rfc3339;
use perfstore::TimeRange;

use super::{Global, with_stdout};
use crate::render::flamegraph::{Style, default_output, write_folded, write_svg};
use crate::window::{WindowArgs, parse_time};

/// `flamegraph` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The operation, e.g. vm.list.
    op: String,
    #[command(flatten)]
    window: WindowArgs,
    /// Only this service's samples.
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Write here instead of <op>.svg ("-" for standard output).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the merged folded stacks instead of drawing.
    #[arg(long, conflicts_with_all = ["icicle", "diff"])]
    folded: bool,
    /// Print the merged stacks (and the baseline's, with --diff) as JSON, as the dashboard's
    /// /api/v1/flamegraph returns them.
    #[arg(long, conflicts_with_all = ["folded", "icicle", "output"])]
    json: bool,
    /// Draw an icicle graph (root at the top).
    #[arg(long)]
    icicle: bool,
    /// Reverse stack order: leaf functions at the root, their callers above.
    #[arg(long)]
    reverse: bool,
    /// Keep every frame: the runtime's below the operation and the `[operation]` frame where
    /// it begins (by default stacks start at the operation).
    #[arg(long)]
    full_stacks: bool,
    /// Differential flame graph against --baseline-since/--baseline-until (normalized to the
    /// same sample total; red grew, blue shrank).
    #[arg(long, requires = "baseline_since")]
    diff: bool,
    /// Baseline window start: RFC 3339 or a duration ago.
    #[arg(long, value_name = "TIME", requires = "diff")]
    baseline_since: Option<String>,
    /// Baseline window end [default: the window's start].
    #[arg(long, value_name = "TIME", requires = "diff")]
    baseline_until: Option<String>,
}

impl Args {
    fn baseline(&self, range: TimeRange) -> anyhow::Result<Option<TimeRange>> {
        let Some(since) = &self.baseline_since else { return Ok(None) };
        let now = self.window.now_ms()?;
        let start = parse_time("--baseline-since", since, now)?;
        let end = match &self.baseline_until {
            Some(u) => parse_time("--baseline-until", u, now)?,
            None => range.start_ms,
        };
        if start >= end {
            crate::usage!("the baseline window is empty: --baseline-since must be before --baseline-until");
        }
        Ok(Some(TimeRange::new(start, end)))
    }
}

/// Run `flamegraph`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let range = a.window.range()?;
    let opts = Options {
        op: a.op.clone(),
        service: a.service.clone(),
        range,
        baseline: a.baseline(range)?,
        full_stacks: a.full_stacks,
    };
    let style = Style { icicle: a.icicle, reverse: a.reverse };
    let mut reader = g.reader()?;
    let stacks = flame::gather(&reader.snapshot()?, &g.db, &opts)?;
    if a.json {
        return with_stdout(|out| Ok(crate::render::json(&flame::Document::new(&opts, &stacks), out)?));
    }
    let to_stdout = a.output.as_deref() == Some(std::path::Path::new("-"));
    if a.folded && (a.output.is_none() || to_stdout) {
        return with_stdout(|out| Ok(write_folded(&stacks, out)?));
    }
    if to_stdout {
        return with_stdout(|out| write_svg(&stacks, &opts, style, out));
    }
    let path = a.output.unwrap_or_else(|| default_output(&opts.op));
    let mut buf = Vec::new();
    if a.folded {
        write_folded(&stacks, &mut buf)?;
    } else {
        write_svg(&stacks, &opts, style, &mut buf)?;
    }
    std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", path.display());
    eprintln!(
        "{} of {}: {} samples, {} stacks, {} → {}",
        if a.folded { "folded stacks" } else { "flame graph" },
        crate::render::cell(&opts.op, 100),
        stacks.samples(),
        stacks.stacks.len(),
        rfc3339(range.start_ms),
        rfc3339(range.end_ms)
    );
    Ok(ExitCode::SUCCESS)
}
