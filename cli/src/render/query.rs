//! `query` results and `series` listings as tables, CSV or JSON.

use std::io::Write;

use perfanalysis::query::QueryResult;
use perfstore::SeriesUsage;

use super::{Column, Paint, Table};

/// Output formats of `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
    /// `time,series,value` rows.
    Csv,
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.6}") }
}

/// Print a query result.
pub fn render(r: &QueryResult, format: Format, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => super::json(&r.series, out),
        Format::Csv => {
            let mut w = super::csv::writer(out);
            super::csv::record(&mut w, ["time", "series", "value"])?;
            for s in &r.series {
                for (t, v) in &s.points {
                    super::csv::record(&mut w, [t.as_str(), s.series.as_str(), &number(*v)])?;
                }
            }
            w.flush()
        }
        Format::Table => {
            let mut t = Table::new(vec![
                Column::text("TIME").min_width(20),
                Column::text("SERIES").min_width(6),
                Column::number("VALUE").min_width(14),
            ]);
            for s in &r.series {
                for (time, v) in &s.points {
                    t.row(vec![time.clone(), s.series.clone(), number(*v)]);
                }
            }
            t.render(paint, out)
        }
    }
}

/// Output formats of `series`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeriesFormat {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
}

/// Print a series listing.
pub fn render_series(
    rows: &[SeriesUsage],
    format: SeriesFormat,
    paint: Paint,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        SeriesFormat::Json => super::json(rows, out),
        SeriesFormat::Table => {
            let mut t = Table::new(vec![
                Column::text("SERIES").min_width(6),
                Column::text("KIND").min_width(12),
                Column::number("POINTS").min_width(10),
            ]);
            for r in rows {
                t.row(vec![r.series.key.to_string(), r.series.key.kind.as_str().to_owned(), r.points.to_string()]);
            }
            t.render(paint, out)
        }
    }
}
