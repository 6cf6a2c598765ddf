//! `perfctl export [SELECTOR]`: series over a window, one point per step, as OpenMetrics, CSV
//! or JSON (see [`crate::render::openmetrics`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use perfanalysis::{Error, NoData};
use perfstore::Selector;

use super::Global;
use crate::render::openmetrics::{Format, write_csv, write_json, write_openmetrics};
use crate::window::{WindowArgs, parse_duration};

/// `export` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Which series: `name{label="value",…}` (globs allowed); all when empty.
    #[arg(default_value = "")]
    selector: String,
    #[command(flatten)]
    window: WindowArgs,
    /// Step length.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "1m")]
    step: std::time::Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Openmetrics)]
    format: Format,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Run `export`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let range = a.window.range()?;
    let sel = Selector::parse(&a.selector).map_err(Error::Invalid)?;
    let mut reader = g.reader()?;
    let steps = perfanalysis::query::steps(&reader.snapshot()?, &sel, range, a.step.as_millis().max(1) as i64)?;
    if steps.series.is_empty() {
        let subject = if a.selector.is_empty() { String::new() } else { format!(" for {}", a.selector) };
        let (matched, newest_ms) = (Some(steps.matched), steps.newest_ms);
        return Err(Error::NoData(NoData { subject, range, db: g.db.clone(), matched, newest_ms }).into());
    }
    let mut sink: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match a.format {
        Format::Openmetrics => write_openmetrics(&steps, &mut sink)?,
        Format::Csv => write_csv(&steps, &mut sink)?,
        Format::Json => write_json(&steps, &mut sink)?,
    }
    sink.flush()?;
    if let Some(p) = a.output {
        let points: usize = steps.series.iter().map(|s| s.steps.len()).sum();
        eprintln!("wrote {} series, {points} points to {}", steps.series.len(), p.display());
    }
    Ok(ExitCode::SUCCESS)
}
