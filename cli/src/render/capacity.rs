//! `capacity` as text per resource (JSON is the report itself).

use std::io::Write;

use perfanalysis::capacity::{Crossing, Report};
use perfanalysis::human::{bytes, pct};

use super::cell;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table per resource and the assumptions.
    Table,
    /// One JSON document.
    Json,
}

fn amount(unit: &str, v: f64) -> String {
    match unit {
        "bytes" => bytes(v),
        "bytes/s" => format!("{}/s", bytes(v)),
        "cores" => format!("{v:.2} cores"),
        _ => format!("{v:.1} {unit}"),
    }
}

fn when(c: Crossing) -> String {
    match c {
        Crossing::NotWithin => "not within".into(),
        Crossing::Already => "already crossed".into(),
        Crossing::In(0) => "this month".into(),
        Crossing::In(m) => format!("month {m}"),
    }
}

/// `month 11 (2027-12, the December peak)`: the crossing with its calendar month.
fn when_dated(c: Crossing, res: &perfanalysis::capacity::Resource) -> String {
    let Crossing::In(m) = c else { return when(c) };
    let Some(month) = res.projection.iter().find(|p| p.month == m) else { return when(c) };
    let peak = res.seasonality.as_ref().filter(|s| {
        month
            .calendar
            .get(5..7)
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| s.profile[n - 1].0 == s.peak_month)
    });
    let when = if m == 0 { "this month".to_string() } else { format!("month {m}") };
    match peak {
        Some(s) => format!("{when} ({}, the {} peak)", month.calendar, s.peak_month),
        None => format!("{when} ({})", month.calendar),
    }
}

/// Print the report.
pub fn render(r: &Report, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    if format == Format::Json {
        return super::json(r, out);
    }
    writeln!(out, "Capacity over {} months from {} (store {})", r.horizon_months, r.now, r.db)?;
    for res in &r.resources {
        writeln!(out)?;
        let cap = res.capacity.map_or("no capacity".to_string(), |c| amount(&res.unit, c));
        writeln!(out, "{}  ({cap})", cell(&res.resource, 80))?;
        let seasonal = if res.seasonal_peak { " (a seasonal peak, over 10% above the last 30 days')" } else { "" };
        writeln!(out, "  peak        {} at {}{seasonal}", amount(&res.unit, res.peak), res.peak_at)?;
        if let Some(u) = res.utilization_now {
            writeln!(out, "  now         {} of capacity", pct(u * 100.0))?;
        }
        let g = &res.growth;
        match (g.rate, g.low, g.high) {
            (Some(rate), Some(lo), Some(hi)) => writeln!(
                out,
                "  growth      {} a year (range {} to {}), {}",
                pct(rate * 100.0),
                pct(lo * 100.0),
                pct(hi * 100.0),
                g.source
            )?,
            (Some(rate), _, _) => writeln!(out, "  growth      {} a year ({})", pct(rate * 100.0), g.source)?,
            _ => writeln!(out, "  growth      none ({})", g.source)?,
        }
        if !res.model.is_empty() {
            writeln!(out, "  model       {}", res.model)?;
        }
        if let Some(season) = &res.seasonality {
            writeln!(
                out,
                "  season      peaks in {}, {} above the year's mean level",
                season.peak_month,
                pct(season.amplitude * 100.0)
            )?;
        }
        if !res.projection.is_empty() {
            let step = if res.projection.len() > 6 { 3 } else { 1 };
            let cells: Vec<String> = res
                .projection
                .iter()
                .filter(|m| m.month % step == 0 || m.month as usize == res.projection.len())
                .map(|m| match m.utilization {
                    Some(u) => format!("{}m {}", m.month, pct(u * 100.0)),
                    None => format!("{}m {}", m.month, amount(&res.unit, m.peak)),
                })
                .collect();
            writeln!(out, "  projected   {}", cells.join("  "))?;
            // With a season the highest month is rarely the last: say which it is.
            if res.seasonality.is_some()
                && let Some(top) = res.projection.iter().max_by(|a, b| a.peak.total_cmp(&b.peak))
            {
                let v = top.utilization.map_or_else(|| amount(&res.unit, top.peak), |u| pct(u * 100.0));
                writeln!(out, "  highest     month {} ({}): {v}", top.month, top.calendar)?;
            }
        }
        if res.capacity.is_some() && res.growth.rate.is_some() {
            let range = res
                .months_to_target_range
                .as_ref()
                .map_or(String::new(), |(a, b)| format!(" (range: {} to {})", when(*a), when(*b)));
            writeln!(out, "  target {}  {}{range}", pct(r.target * 100.0), when_dated(res.months_to_target, res))?;
            writeln!(out, "  full        {}", when_dated(res.months_to_full, res))?;
        }
        if let (Some(need), Some(p)) = (res.required_capacity, res.projected_peak_at_horizon) {
            let inst = res.instances.map_or(String::new(), |n| format!("; {n} instances of today's size"));
            writeln!(
                out,
                "  within {} months  peak {}, needs {}{inst}",
                r.horizon_months,
                amount(&res.unit, p),
                amount(&res.unit, need)
            )?;
        }
        if let Some(n) = &res.note {
            writeln!(out, "  note        {n}")?;
        }
    }
    writeln!(out)?;
    writeln!(out, "Assumptions")?;
    for a in &r.assumptions {
        writeln!(out, "  - {a}")?;
    }
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

/// `capacity --backtest` as a table: per resource, what was projected for the held-out months
/// and what happened, with the two baselines' errors.
pub fn render_backtest(rows: &[[String; 8]], out: &mut dyn Write) -> std::io::Result<()> {
    use super::{Column, Paint, Table};
    writeln!(
        out,
        "Backtest: each resource's last months held out and projected from the months before (--growth auto), \
         against what happened"
    )?;
    let mut t = Table::new(vec![
        Column::text("RESOURCE"),
        Column::text("PROJECTED FROM"),
        Column::number("HELD OUT"),
        Column::text("PROJECTED PEAK (80% RANGE)"),
        Column::text("ACTUAL PEAK"),
        Column::text("ERROR"),
        Column::number("SEASONAL NAIVE"),
        Column::number("LINEAR"),
    ]);
    for r in rows {
        t.row(r.to_vec());
    }
    t.render(Paint(false), out)?;
    writeln!(
        out,
        "\nSeasonal naive: the last 12 months' peak × its ratio to the 12 before (needs 24 months); linear: a line \
         through the last 12 monthly peaks."
    )
}
