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

/// A value with its unit, for people: `23.0ms`, `1.5 GiB`, `42.0%`, `12.5/s`, `3`.
fn with_unit(v: f64, unit: &str) -> String {
    use perfanalysis::human;
    let short = |v: f64| {
        let a = v.abs();
        if v.fract() == 0.0 && a < 1e15 {
            format!("{v:.0}")
        } else if a >= 100.0 {
            format!("{v:.1}")
        } else if a >= 1.0 {
            format!("{v:.3}")
        } else {
            format!("{v:.4}")
        }
    };
    match unit {
        "s" if v.abs() < 60.0 => human::ms(v * 1000.0),
        "s" => human::seconds(v),
        "By" => human::bytes(v),
        "1" => human::pct(v * 100.0),
        "" => short(v),
        // A UCUM annotation such as {cpu}: the thing counted.
        u if u.starts_with('{') && u.ends_with('}') => format!("{} {}", short(v), &u[1..u.len() - 1]),
        u => match u.strip_suffix("/s") {
            Some("1") => format!("{}/s", short(v)),
            Some("By") => format!("{}/s", human::bytes(v)),
            Some("s") => format!("{} s/s", short(v)),
            _ => format!("{} {u}", short(v)),
        },
    }
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
                    t.row(vec![time.clone(), s.series.clone(), with_unit(*v, &s.unit)]);
                }
            }
            t.render(paint, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_unit;

    #[test]
    fn values_read_in_their_units() {
        assert_eq!(with_unit(0.023, "s"), "23.0ms");
        assert_eq!(with_unit(75.0, "s"), "1m15s");
        assert_eq!(with_unit(1536.0, "By"), "1.5 KiB");
        assert_eq!(with_unit(0.425, "1"), "42.5%");
        assert_eq!(with_unit(12.5, "1/s"), "12.500/s");
        assert_eq!(with_unit(3.0, ""), "3");
        assert_eq!(with_unit(2048.0, "By/s"), "2.0 KiB/s");
        assert_eq!(with_unit(7.25, "calls"), "7.250 calls");
        assert_eq!(with_unit(4.0, "{cpu}"), "4 cpu");
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
