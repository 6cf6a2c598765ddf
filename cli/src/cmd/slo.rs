//! `perfctl slo`: each operation's objectives (from the targets), error budget and burn rates
//! over a rolling window (see `perfanalysis::slo`).

use std::process::ExitCode;

use perfanalysis::slo::{self, Options};
use perfanalysis::targets::Targets;

use super::{Global, env, with_stdout};
use crate::render::slo::{Format, render};
use crate::render::{Paint, color_stdout};
use crate::window::{WindowArgs, parse_duration};

/// `slo` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only operations matching this glob, e.g. 'vm.*'.
    #[arg(long, value_name = "GLOB")]
    op: Option<String>,
    /// The rolling window the budget is counted over.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "28d")]
    window: std::time::Duration,
    /// Pretend it is this time (RFC 3339); for reproducible output.
    #[arg(long, value_name = "TIME", hide = true)]
    now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(subcommand)]
    action: Option<Action>,
}

/// What else `slo` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Write the same objectives as Prometheus recording and alerting rules over the metric
    /// names of /metrics (the burn-rate alerts of `[alerts] page` and `ticket`), for a central
    /// Prometheus; check them with `promtool check rules FILE`.
    Rules {
        /// Write here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        /// How long a condition must hold before its alert fires.
        #[arg(long = "for", value_name = "DUR", value_parser = parse_duration, default_value = "2m")]
        for_: std::time::Duration,
    },
}

/// Run `slo`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let targets = Targets::load(g.config_file()?.as_ref(), &env)?;
    let o = Options {
        now_ms: WindowArgs { now: a.now, ..WindowArgs::default() }.now_ms()?,
        window_ms: i64::try_from(a.window.as_millis()).unwrap_or(i64::MAX),
        op: a.op,
        extra_spans_ms: Vec::new(),
    };
    if let Some(Action::Rules { output, for_ }) = a.action {
        return rules(g, &targets, &o, (a.window, for_), output);
    }
    let mut reader = g.reader()?;
    let report = slo::report(&reader.snapshot()?, &g.db, &o, &targets)?;
    with_stdout(|out| Ok(render(&report, a.format, Paint(color_stdout()), out)?))
}

/// `slo rules`: the operations of the store (when there is one) get their own thresholds,
/// every other operation the defaults.
fn rules(
    g: &Global,
    targets: &Targets,
    o: &Options,
    (window, for_): (std::time::Duration, std::time::Duration),
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let ops: Vec<String> = match perfstore::Reader::open(&g.db) {
        Ok(mut r) => {
            let o = Options { window_ms: o.window_ms.max(365 * perfstore::DAY_MS), ..o.clone() };
            slo::gather(&r.snapshot()?, &g.db, &o, targets)?.ops.into_keys().collect()
        }
        Err(perfstore::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let burn_rules = slo::burn_rules(g.config_file()?.as_ref(), &env)?;
    if burn_rules.is_empty() {
        anyhow::bail!("both alert rules are off ([alerts] page and ticket): there is nothing to write rules for");
    }
    let text = slo::rules(
        targets,
        &ops,
        &humantime::format_duration(window).to_string(),
        &format!("{}s", for_.as_secs()),
        &perfagent::exposition::DURATION_BUCKETS,
        &burn_rules,
    );
    match output {
        Some(path) => {
            std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            eprintln!("rules for {} operations and the rest: {}", ops.len(), path.display());
            Ok(ExitCode::SUCCESS)
        }
        None => with_stdout(|out| Ok(out.write_all(text.as_bytes())?)),
    }
}
