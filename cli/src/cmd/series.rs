//! `perfctl series`: every series with its labels and stored point count.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use perfstore::{Reader, SeriesUsage};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
}

/// Series with point counts, most points first, at most `top`.
pub fn collect(db: &Path, top: Option<usize>) -> anyhow::Result<Vec<SeriesUsage>> {
    let mut reader = Reader::open(db)?;
    let snap = reader.snapshot()?;
    let mut rows = snap.series_usage().with_context(|| format!("listing series in {}", db.display()))?;
    if let Some(n) = top {
        rows.truncate(n);
    }
    Ok(rows)
}

/// Print `rows` in `format`.
pub fn render(rows: &[SeriesUsage], format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)
        }
        Format::Table => {
            let series: Vec<String> = rows.iter().map(|r| r.series.key.to_string()).collect();
            let width = series.iter().map(|s| s.chars().count()).max().unwrap_or(6).max(6);
            writeln!(out, "{:<width$}  {:<12}  {:>10}", "SERIES", "KIND", "POINTS")?;
            for (r, s) in rows.iter().zip(&series) {
                writeln!(out, "{:<width$}  {:<12}  {:>10}", s, r.series.key.kind.as_str(), r.points)?;
            }
            Ok(())
        }
    }
}
