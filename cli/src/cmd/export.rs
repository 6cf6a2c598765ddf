//! `perfctl export [SELECTOR]`: series over a window, one point per step, as OpenMetrics, CSV
//! or JSON (see [`crate::render::openmetrics`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use perfanalysis::{Error, NoData};
use perfstore::Selector;

use super::Global;
use crate::render::openmetrics::{Buckets, Export, Format};
use crate::window::{WindowArgs, parse_duration};

/// `export` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Which series: `name{label="value",…}` (globs allowed) [default: every series]
    #[arg(default_value = "", hide_default_value = true)]
    selector: String,
    #[command(flatten)]
    window: WindowArgs,
    /// Step length.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "1m")]
    step: std::time::Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Openmetrics)]
    format: Format,
    /// Histogram buckets of distributions in OpenMetrics: `compact` (1-2-5 per decade) or
    /// `exact` (every sketch bin: `perfctl import` rebuilds the same quantiles).
    #[arg(long, value_enum, default_value_t = Buckets::Compact)]
    buckets: Buckets,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Run `export`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let range = a.window.range()?;
    let sel = Selector::parse(&a.selector).map_err(Error::Invalid)?;
    let mut reader = g.reader()?;
    let snap = reader.snapshot()?;
    let series = snap.series(&sel)?;
    let step_ms = a.step.as_millis().max(1) as i64;
    let export = Export { snap: &snap, series: &series, range, step_ms, buckets: a.buckets };
    let no_data = |written: &crate::render::openmetrics::Written| -> Option<anyhow::Error> {
        (written.series == 0).then(|| {
            let subject = if a.selector.is_empty() { String::new() } else { format!(" for {}", a.selector) };
            let (matched, newest_ms) = (Some(series.len()), snap.newest_ms().ok().flatten());
            Error::NoData(NoData { subject, range, db: g.db.clone(), matched, newest_ms }).into()
        })
    };
    let Some(path) = &a.output else {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written = export.write(a.format, &mut out)?;
        return no_data(&written).map_or(Ok(ExitCode::SUCCESS), Err);
    };
    // Into a temporary file beside the target, renamed when complete: an interrupted or
    // empty export never leaves a truncated file under the name asked for.
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a file in {}", dir.display()))?;
    let written = {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        let w = export.write(a.format, &mut out)?;
        out.flush().with_context(|| format!("writing {}", path.display()))?;
        w
    };
    if let Some(e) = no_data(&written) {
        return Err(e);
    }
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "wrote {} series, {} points ({} lines, {}{}) to {}",
        written.series,
        written.points,
        written.lines,
        perfanalysis::human::bytes(written.bytes as f64),
        if written.buckets > 0 { format!(", {} histogram bucket samples", written.buckets) } else { String::new() },
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
