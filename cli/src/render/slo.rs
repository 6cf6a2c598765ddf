//! `slo` as a table (one row per objective) or JSON.

use std::io::Write;

use perfanalysis::human::pct;
use perfanalysis::slo::Report;

use super::{Column, Paint, Table, cell, opt};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One row per objective.
    Table,
    /// One JSON document.
    Json,
}

/// `3d 8h`, `45m`.
fn duration(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Print the report.
pub fn render(r: &Report, format: Format, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    if format == Format::Json {
        return super::json(r, out);
    }
    if let Some(w) = &r.window {
        writeln!(out, "Objectives over {} → {} (store {})\n", w.since, w.until, r.db)?;
    }
    let mut t = Table::new(vec![
        Column::text("OPERATION").max_chars(40),
        Column::text("OBJECTIVE"),
        Column::number("SLI"),
        Column::number("CALLS"),
        Column::number("BUDGET LEFT"),
        Column::number("BURN 5m"),
        Column::number("1h"),
        Column::number("6h"),
        Column::number("3d"),
        Column::number("EXHAUSTED IN"),
        Column::text("STATUS"),
    ]);
    let rate = |v: Option<f64>| opt(v, |b| format!("{b:.1}"));
    for o in &r.objectives {
        let status = match o.status {
            "met" => o.status.to_string(),
            s => paint.red(s),
        };
        t.row(vec![
            cell(&o.op, 40),
            format!("{} {} {}", o.kind, pct(o.objective * 100.0), o.good_means),
            opt(o.sli, |v| format!("{:.3}%", v * 100.0)),
            format!("{:.0}", o.calls),
            opt(o.budget_left, |v| pct((v * 1000.0).round() / 10.0)),
            rate(o.burn["5m"]),
            rate(o.burn["1h"]),
            rate(o.burn["6h"]),
            rate(o.burn["3d"]),
            opt(o.exhausted_in_s, duration),
            status,
        ]);
    }
    t.render(paint, out)?;
    writeln!(
        out,
        "\nBurn rate: the bad share of calls in that span ÷ the share the objective allows (1 spends the budget \
         exactly over the window). Exhausted in: at the last hour's burn."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(290_304.0), "3d 8h");
        assert_eq!(duration(5_400.0), "1h 30m");
        assert_eq!(duration(120.0), "2m");
    }
}
