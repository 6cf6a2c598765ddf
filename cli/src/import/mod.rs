//! `perfctl import FILE`: OpenMetrics / Prometheus text with timestamps, CSV, or folded
//! stacks for an operation, written to the store (which takes the writer lock: stop a running
//! agent first, or send the data to it instead).
//!
//! * **OpenMetrics / Prometheus text** ([`openmetrics`]): counters are cumulative (the first
//!   sample is a baseline, each later one adds its increase, a drop is a reset); gauges keep
//!   their value; histograms become distributions; names of the convention map back through
//!   [`perfstore::convention::prometheus::from_family`].
//! * **CSV** ([`csv`]) as `perfctl export --format csv` writes it, or `time,series,value`.
//! * **StatsD / DogStatsD** ([`statsd`]): a capture of lines, aggregated by the agent's own
//!   parser and aggregator into 10-second intervals; `|T` timestamps keep their times.
//! * **Folded stacks** (`frame;frame;… COUNT`, e.g. `py-spy record --format raw`) for `--op`,
//!   filed at `--at`. A bad line refuses the whole file.
//!
//! Bad lines of the other formats are reported with their line numbers and skipped; the
//! summary says what was taken and what was not.

mod csv;
mod openmetrics;
mod sink;
mod statsd;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use perfstore::ProfileWindow;

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// OpenMetrics or Prometheus text exposition with timestamps.
    Openmetrics,
    /// CSV as `perfctl export --format csv` writes it.
    Csv,
    /// Folded stacks for `--op`.
    Folded,
    /// StatsD / DogStatsD lines (a capture); `|T` timestamps keep their times.
    Statsd,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// The file (`-` for standard input).
    pub file: PathBuf,
    /// The format, else guessed.
    pub format: Option<Format>,
    /// Operation of folded stacks.
    pub op: Option<String>,
    /// Service for data that names none.
    pub service: String,
    /// Time for folded stacks and samples without a timestamp, Unix ms.
    pub at_ms: i64,
    /// Now, Unix ms (series registration time).
    pub now_ms: i64,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The file.
    pub file: String,
    /// The store.
    pub db: String,
    /// Lines read.
    pub lines: usize,
    /// Points written.
    pub points: usize,
    /// Series written to.
    pub series: usize,
    /// Folded stacks written.
    pub stacks: usize,
    /// Events written (a StatsD capture's errors).
    pub events: usize,
    /// Profile samples written.
    pub samples: u64,
    /// Skipped lines or samples by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Bytes read so far.
    pub bytes: u64,
    /// Size of the file, when known (for progress).
    pub total_bytes: Option<u64>,
    /// Whether to show progress (standard error is a terminal).
    pub show_progress: bool,
    /// The store maintenance run after writing.
    pub maintenance: Option<perfstore::MaintenanceReport>,
}

impl Summary {
    /// Show how far the import is, on a terminal.
    pub(crate) fn progress(&self) {
        if !self.show_progress {
            return;
        }
        let of = self.total_bytes.filter(|&t| t > 0).map_or(String::new(), |t| {
            format!(" ({:.0}% of {})", self.bytes as f64 / t as f64 * 100.0, perfanalysis::human::bytes(t as f64))
        });
        eprint!("\r  imported {} points of {} series from {} lines{of}   ", self.points, self.series, self.lines);
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.stacks > 0 {
            write!(
                f,
                "imported {} stacks ({} samples) from {} into {}",
                self.stacks, self.samples, self.file, self.db
            )?;
        } else {
            write!(
                f,
                "imported {} points of {} series ({} lines) from {} into {}",
                self.points, self.series, self.lines, self.file, self.db
            )?;
            if self.events > 0 {
                write!(f, "; {} events", self.events)?;
            }
        }
        if let Some(m) = self.maintenance.as_ref().filter(|m| m.rolled_chunks > 0) {
            write!(
                f,
                "; {} chunks older than the raw retention rolled into the 1-minute and 1-hour tiers",
                m.rolled_chunks
            )?;
        }
        // (One-minute rollups past their 90 days are not a loss: the one-hour tier keeps them.)
        if let Some(m) = self.maintenance.as_ref().filter(|m| m.expired_chunks[2] > 0) {
            write!(f, "; {} one-hour chunks older than the store's retention dropped", m.expired_chunks[2])?;
        }
        let skipped: usize = self.skipped.values().sum();
        if skipped > 0 {
            let why: Vec<String> = self.skipped.iter().map(|(r, n)| format!("{n} {r}")).collect();
            write!(f, "; skipped {skipped}: {}", why.join(", "))?;
        }
        Ok(())
    }
}

/// Lines that could not be taken: the first few with their numbers and why, and how many in
/// all (a file of nothing but bad lines must not grow memory).
#[derive(Debug, Default)]
pub(crate) struct BadLines {
    first: Vec<(usize, String)>,
    total: usize,
}

impl BadLines {
    const KEPT: usize = 20;

    pub(crate) fn push(&mut self, line: (usize, String)) {
        if self.first.len() < Self::KEPT {
            self.first.push(line);
        }
        self.total += 1;
    }
}

/// Longest folded-stack file read (folded stacks are parsed whole: a bad line refuses the file).
const FOLDED_MAX_BYTES: u64 = 256 << 20;

fn open_input(path: &Path) -> anyhow::Result<(Box<dyn BufRead>, Option<u64>)> {
    if path == Path::new("-") {
        return Ok((Box::new(BufReader::with_capacity(1 << 16, std::io::stdin())), None));
    }
    let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let len = f.metadata().ok().map(|m| m.len());
    Ok((Box::new(BufReader::with_capacity(1 << 16, f)), len))
}

/// The format from the extension, else from the first bytes.
fn guess(path: &Path, head: &str, op: Option<&str>) -> anyhow::Result<Format> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    Ok(match ext {
        "csv" => Format::Csv,
        "folded" | "collapsed" => Format::Folded,
        "om" | "prom" | "openmetrics" => Format::Openmetrics,
        "statsd" | "dogstatsd" => Format::Statsd,
        _ if op.is_some() => Format::Folded,
        _ if head.starts_with("time,") => Format::Csv,
        _ if head.lines().any(|l| l.starts_with("# TYPE ") || l == "# EOF") => Format::Openmetrics,
        _ => anyhow::bail!(
            "cannot tell the format of {}: pass --format openmetrics|csv|statsd|folded (folded stacks also need --op)",
            path.display()
        ),
    })
}

/// Run the import, streaming: lines are parsed and written in bounded batches, so memory
/// does not grow with the file.
pub fn run(db: &Path, opts: &Options) -> anyhow::Result<Summary> {
    let (mut input, total_bytes) = open_input(&opts.file)?;
    let head = String::from_utf8_lossy(input.fill_buf().context("reading the input")?).into_owned();
    let format = match opts.format {
        Some(f) => f,
        None => guess(&opts.file, &head, opts.op.as_deref())?,
    };
    let mut summary = Summary {
        file: opts.file.display().to_string(),
        db: db.display().to_string(),
        total_bytes,
        show_progress: std::io::stderr().is_terminal(),
        ..Summary::default()
    };
    if format == Format::Folded {
        let mut text = String::new();
        input
            .take(FOLDED_MAX_BYTES)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {}", opts.file.display()))?;
        summary.lines = text.lines().count();
        return folded(db, &text, opts, summary);
    }
    let mut sink = sink::Sink::open(db, opts.now_ms)?;
    let mut bad = BadLines::default();
    match format {
        Format::Csv => csv::import(&mut input, &opts.service, &mut sink, &mut bad, &mut summary)?,
        Format::Statsd => statsd::import(&mut input, opts, &mut sink, &mut bad, &mut summary)?,
        _ => openmetrics::import(&mut input, opts, &mut sink, &mut bad, &mut summary)?,
    }
    sink.finish(&mut summary)?;
    if summary.show_progress {
        eprintln!();
    }
    for (line, reason) in &bad.first {
        eprintln!("{}:{line}: {}; skipped", opts.file.display(), crate::render::clean(reason));
    }
    if bad.total > bad.first.len() {
        eprintln!("{}: … and {} more bad lines", opts.file.display(), bad.total - bad.first.len());
    }
    if bad.total > 0 {
        summary.skipped.insert("bad lines".into(), bad.total);
    }
    if summary.points == 0 {
        anyhow::bail!("{}: no points to import ({summary}); nothing was written", opts.file.display());
    }
    Ok(summary)
}

fn folded(db: &Path, text: &str, opts: &Options, mut summary: Summary) -> anyhow::Result<Summary> {
    let op = opts.op.as_deref().context("folded stacks belong to an operation: pass --op NAME")?;
    let stacks = perfstore::parse_folded(text)
        .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was imported", opts.file.display()))?;
    anyhow::ensure!(!stacks.is_empty(), "{}: no stacks with samples; nothing was imported", opts.file.display());
    summary.stacks = stacks.len();
    summary.samples = stacks.iter().map(|s| s.samples).sum();
    let mut w = sink::open_writer(db)?;
    w.write_profiles(&[ProfileWindow {
        service: opts.service.clone(),
        op: op.to_owned(),
        start_ms: opts.at_ms,
        end_ms: opts.at_ms + 1,
        stacks,
    }])?;
    w.close()?;
    Ok(summary)
}
