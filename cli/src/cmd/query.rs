//! `perfctl query SELECTOR --step DUR --agg AGG`: one aggregation per step per series.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use perfstore::{Agg, Reader, Selector, TimeRange};
use serde::Serialize;

use crate::window::rfc3339;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
    /// `time,series,value` rows.
    Csv,
}

/// One series' values.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesValues {
    /// The series, as `name{k="v",…}`.
    pub series: String,
    /// `(step start as RFC 3339, value)`; steps without data are left out.
    pub points: Vec<(String, f64)>,
}

/// The result, and what to say when it is empty.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    /// Matching series with data.
    pub series: Vec<SeriesValues>,
    /// Series matching the selector (with or without data in the window).
    #[serde(skip)]
    pub matched: usize,
    /// Newest data in the store, Unix ms.
    #[serde(skip)]
    pub newest_ms: Option<i64>,
}

/// Run the query.
pub fn run(db: &Path, selector: &str, range: TimeRange, step_ms: i64, agg: Agg) -> anyhow::Result<QueryResult> {
    let sel = Selector::parse(selector).map_err(|e| anyhow::anyhow!(e))?;
    let mut reader = Reader::open(db)?;
    let snap = reader.snapshot()?;
    let found = snap.series(&sel).with_context(|| format!("finding series in {}", db.display()))?;
    let mut out = Vec::new();
    for s in &found {
        let r = snap.range(s, range, step_ms)?;
        let points: Vec<(String, f64)> = r
            .steps
            .iter()
            .filter_map(|(ts, p)| agg.apply(p, step_ms as f64 / 1000.0).map(|v| (rfc3339(*ts), v)))
            .collect();
        if !points.is_empty() {
            out.push(SeriesValues { series: s.key.to_string(), points });
        }
    }
    Ok(QueryResult { series: out, matched: found.len(), newest_ms: snap.newest_ms()? })
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.6}") }
}

/// Print the result.
pub fn render(r: &QueryResult, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &r.series)?;
            writeln!(out)
        }
        Format::Csv => {
            writeln!(out, "time,series,value")?;
            for s in &r.series {
                let quoted = crate::style::csv_field(&s.series);
                for (t, v) in &s.points {
                    writeln!(out, "{t},{quoted},{}", number(*v))?;
                }
            }
            Ok(())
        }
        Format::Table => {
            let width = r.series.iter().map(|s| s.series.chars().count()).max().unwrap_or(6).max(6);
            writeln!(out, "{:<20}  {:<width$}  {:>14}", "TIME", "SERIES", "VALUE")?;
            for s in &r.series {
                for (t, v) in &s.points {
                    writeln!(out, "{t:<20}  {:<width$}  {:>14}", s.series, number(*v))?;
                }
            }
            Ok(())
        }
    }
}
