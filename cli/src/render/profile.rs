//! `profile <op>`: the phase breakdown, CPU and suggestions.

use std::io::Write;

use perfanalysis::human::{count, ms, pct, seconds};
use perfanalysis::profile::Report;

use super::{Column, Paint, Table, cell};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Breakdown, CPU and suggestions.
    Table,
    /// One JSON document.
    Json,
}

/// Print the report.
pub fn render(r: &Report, format: Format, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    if format == Format::Json {
        return super::json(r, out);
    }
    writeln!(
        out,
        "{}: {} calls, {} in all (avg {}), {} → {}",
        cell(&r.op, 80),
        count(r.calls),
        seconds(r.total_s),
        ms(r.total_s / r.calls * 1e3),
        r.window.since,
        r.window.until
    )?;
    writeln!(out)?;
    let mut t = Table::new(vec![
        Column::text("PHASE").max_chars(40),
        Column::number("TIME").min_width(9),
        Column::number("SHARE").min_width(7),
    ]);
    for p in &r.phases {
        t.row(vec![p.phase.clone(), seconds(p.seconds), pct(p.pct)]);
    }
    t.render(paint, out)?;
    writeln!(out)?;
    match &r.cpu {
        Some(c) => {
            writeln!(
                out,
                "CPU: {} samples ≈ {} at 99 Hz ({} of the wall time); top functions by self time:",
                c.samples,
                seconds(c.seconds),
                pct(c.share_pct)
            )?;
            for f in &c.top_functions {
                writeln!(out, "  {:>6}  {}", pct(f.pct), cell(&f.function, 100))?;
            }
        }
        None => writeln!(out, "CPU: no profile samples for this operation in the window")?,
    }
    writeln!(out)?;
    if r.suggestions.is_empty() {
        writeln!(out, "Suggestions: none the data supports")?;
    } else {
        writeln!(out, "Suggestions (estimated saving over the window):")?;
        for (i, s) in r.suggestions.iter().enumerate() {
            writeln!(
                out,
                "  {}. {:<12} saves ~{} ({} of the time): {}",
                i + 1,
                s.kind.as_str(),
                seconds(s.saving_s),
                pct(s.saving_pct),
                cell(&s.evidence, 400)
            )?;
            writeln!(out, "     assumes {}", s.assumption)?;
        }
    }
    for n in &r.notes {
        writeln!(out, "note: {}", cell(n, 400))?;
    }
    Ok(())
}
