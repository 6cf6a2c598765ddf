//! `perfctl query SELECTOR --step DUR --agg AGG`: one aggregation per step per series.

use std::process::ExitCode;

use perfanalysis::query::Merge;
use perfanalysis::{Error, NoData};
use perfstore::{Agg, Selector};

use super::{Global, with_stdout};
use crate::render::query::{Format, render};
use crate::render::{Paint, color_stdout};
use crate::window::{Step, WindowArgs, parse_step};

/// `query` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// `name{label="value",…}`; the name may be a glob (`op.*`), matchers are =, !=, =~ and
    /// !~ (globs).
    selector: String,
    /// Step length, e.g. 1m, 1h; `auto` takes a round length giving about 100 steps over the
    /// window (1m for 1h, 15m for 24h, 14d for two years).
    #[arg(long, value_name = "DUR", value_parser = parse_step, default_value = "auto")]
    step: Step,
    /// sum, rate, count, min, max, avg, last, or a percentile like p95.
    #[arg(long, value_name = "AGG", value_parser = Agg::parse, default_value = "sum")]
    agg: Agg,
    /// Merge the matching series before aggregating: `all` into one, or one per value of a
    /// label (`op`, `outcome`, `service`…). Distributions merge their sketches, so p95 is that
    /// of all the calls together, not an average of percentiles.
    #[arg(long, value_name = "all|LABEL")]
    merge: Option<String>,
    /// Ask this Prometheus-compatible server instead of the local store: the same steps over
    /// what a fleet's agents remote-wrote, for a metric of the convention (PromQL over its
    /// HTTP API; labels include each agent's `host`).
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    #[command(flatten)]
    window: WindowArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Run `query`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let range = a.window.range()?;
    let sel = Selector::parse(&a.selector).map_err(Error::Invalid)?;
    let step_ms = a.step.ms(range);
    let merge = match a.merge.as_deref() {
        None => Merge::None,
        Some("all") => Merge::All,
        Some(label) => Merge::By(label.to_owned()),
    };
    if let Some(url) = &a.prometheus {
        let server = crate::promql::Server::parse(url)
            .map_err(|e| crate::usage_err!("invalid value for '--prometheus': {e}"))?;
        let step_ms = step_ms.max(1000).div_euclid(1000) * 1000;
        let (promql, unit) = perfanalysis::fleet::range_query(&sel, a.agg, step_ms, &merge).map_err(Error::Invalid)?;
        let matrix = server.query_range(&promql, range.start_ms + step_ms, range.end_ms, step_ms)?;
        let result = perfanalysis::fleet::matrix(&sel.name, &unit, step_ms, matrix);
        if result.series.is_empty() {
            anyhow::bail!("{}: no data for {} in the window (query: {promql})", url.trim_end_matches('/'), a.selector);
        }
        return with_stdout(|out| Ok(render(&result, a.format, Paint(color_stdout()), out)?));
    }
    let mut reader = g.reader()?;
    let result = perfanalysis::query::query_merged(&reader.snapshot()?, &sel, range, step_ms, a.agg, &merge)?;
    if result.series.is_empty() {
        let subject = format!(" for {}", a.selector);
        let (matched, newest_ms) = (Some(result.matched), result.newest_ms);
        return Err(Error::NoData(NoData { subject, range, db: g.db.clone(), matched, newest_ms }).into());
    }
    if a.step == Step::Auto && a.format == Format::Table {
        eprintln!(
            "step {} (auto; --step to choose)",
            humantime::format_duration(std::time::Duration::from_millis(step_ms.unsigned_abs()))
        );
    }
    with_stdout(|out| Ok(render(&result, a.format, Paint(color_stdout()), out)?))
}
