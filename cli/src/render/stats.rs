//! `stats` as a table, or CSV (JSON is the report itself).

use std::io::Write;

use perfanalysis::human::{bytes, count, ms, pct, seconds};
use perfanalysis::stats::{Calls, Report};

use super::{Column, Paint, Table, cell, opt};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A summary, a table per operation, the host and the targets.
    Table,
    /// One JSON document (the report; see `perfanalysis::stats`).
    Json,
    /// One row per operation, the first (`(all)`) for every operation together.
    Csv,
}

/// Print the report.
pub fn render(r: &Report, format: Format, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => super::json(r, out),
        Format::Csv => csv(r, out),
        Format::Table => table(r, paint, out),
    }
}

fn csv(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let by = r.group_key();
    let mut w = super::csv::writer(out);
    let mut header = vec!["op"];
    header.extend(by);
    header.extend([
        "calls",
        "errors",
        "success_rate",
        "cached_pct",
        "batched_pct",
        "batch_efficiency",
        "retries",
        "total_time_s",
        "min_ms",
        "avg_ms",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "last_error",
    ]);
    super::csv::record(&mut w, header)?;
    let n = super::csv::number;
    let row = |w: &mut csv::Writer<&mut dyn Write>, op: &str, group: Option<&str>, c: &Calls, err: Option<&str>| {
        let l = c.latency_ms.as_ref();
        let mut fields = vec![op.to_owned()];
        if by.is_some() {
            fields.push(group.unwrap_or("").to_owned());
        }
        fields.extend([
            n(Some(c.calls)),
            n(Some(c.errors)),
            n(c.success_rate),
            n(c.cached_pct),
            n(c.batched_pct),
            n(c.batch_efficiency),
            n(Some(c.retries)),
            n(Some(c.total_time_s)),
            n(l.map(|l| l.min)),
            n(l.map(|l| l.avg)),
            n(l.map(|l| l.p50)),
            n(l.map(|l| l.p95)),
            n(l.map(|l| l.p99)),
            n(l.map(|l| l.max)),
            err.unwrap_or("").to_owned(),
        ]);
        super::csv::record(w, fields)
    };
    row(&mut w, "(all)", None, &r.overall.calls, None)?;
    for o in &r.ops {
        row(&mut w, &o.op, o.group_value(), &o.calls, o.last_error.as_deref())?;
    }
    w.flush()
}

fn label(paint: Paint, s: &str) -> String {
    paint.bold(&format!("{s:<9}"))
}

fn window_len(r: &Report) -> String {
    let parse = |s: &str| humantime::parse_rfc3339(s).ok();
    let Some(secs) = parse(&r.window.since)
        .zip(parse(&r.window.until))
        .and_then(|(a, b)| b.duration_since(a).ok())
        .map(|d| d.as_secs())
    else {
        return String::new();
    };
    let text = match secs {
        s if s % 86_400 == 0 && s > 3 * 86_400 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => humantime::format_duration(std::time::Duration::from_secs(s)).to_string(),
    };
    format!(" ({text})")
}

fn table(r: &Report, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    let l = |s: &str| label(paint, s);
    writeln!(
        out,
        "{} {} → {}{}   {} {}",
        l("Window"),
        r.window.since,
        r.window.until,
        window_len(r),
        // A fleet's report names its server (stats --prometheus).
        if r.db.starts_with("http://") || r.db.starts_with("https://") { "fleet" } else { "store" },
        cell(&r.db, 200)
    )?;
    writeln!(out)?;
    summary(r, paint, out)?;
    if !r.ops.is_empty() {
        writeln!(out)?;
        ops_table(r).render(paint, out)?;
    }
    for c in &r.circuits {
        writeln!(
            out,
            "{} {} open {} (opened {} times)",
            l("Circuit"),
            cell(&c.circuit, 40),
            seconds(c.open_s),
            count(c.opened)
        )?;
    }
    if r.host.is_some() {
        writeln!(out)?;
        host(r, paint, out)?;
    }
    writeln!(out)?;
    targets(r, paint, out)
}

fn summary(r: &Report, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    let l = |s: &str| label(paint, s);
    let c = &r.overall.calls;
    if c.calls > 0.0 || c.retries > 0.0 {
        writeln!(
            out,
            "{} {} (errors {}, success {}, retries {})",
            l("Calls"),
            count(c.calls),
            count(c.errors),
            opt(c.success_rate, |v| pct(v * 100.0)),
            count(c.retries)
        )?;
        let batch = c.batch_efficiency.map_or(String::new(), |v| format!(", {v:.1} requests per batch"));
        writeln!(
            out,
            "{} {} of calls; batched {} of calls{batch}",
            l("Cached"),
            opt(c.cached_pct, pct),
            opt(c.batched_pct, pct)
        )?;
        if let Some(lat) = &c.latency_ms {
            writeln!(
                out,
                "{} min {}  avg {}  p50 {}  p95 {}  p99 {}  max {}   (total {})",
                l("Latency"),
                ms(lat.min),
                ms(lat.avg),
                ms(lat.p50),
                ms(lat.p95),
                ms(lat.p99),
                ms(lat.max),
                seconds(c.total_time_s)
            )?;
        }
    } else {
        writeln!(out, "{} {}", l("Calls"), paint.dim("no operation calls in the window (no op.duration data)"))?;
    }
    if let Some(k) = &r.overall.cache {
        writeln!(
            out,
            "{} hit rate {} (hits {}, stale {}, misses {}), {} refreshes",
            l("Cache"),
            opt(k.hit_rate, |v| pct(v * 100.0)),
            count(k.hits),
            count(k.stale_hits),
            count(k.misses),
            count(k.refreshes)
        )?;
    }
    if let Some(p) = &r.overall.pool {
        writeln!(
            out,
            "{} hit rate {} ({} of {} checkouts reused a connection), {} evictions",
            l("Pool"),
            opt(p.hit_rate, |v| pct(v * 100.0)),
            count(p.hits),
            count(p.acquires),
            count(p.evictions)
        )?;
    }
    Ok(())
}

fn ops_table(r: &Report) -> Table {
    let by = r.group_key();
    let mut columns = vec![Column::text("OPERATION").max_chars(40)];
    if let Some(by) = by {
        columns.push(Column::text(&by.to_uppercase()).max_chars(24));
    }
    columns.extend(
        ["CALLS", "ERR%", "CACHED", "BATCHED", "RETRIES", "TOTAL", "AVG", "P50", "P95", "P99", "MAX"]
            .map(Column::number),
    );
    columns.push(Column::text("LAST ERROR").max_chars(60));
    let mut t = Table::new(columns);
    for o in &r.ops {
        let c = &o.calls;
        let l = c.latency_ms.as_ref();
        let mut row = vec![o.op.clone()];
        if by.is_some() {
            row.push(o.group_value().unwrap_or("").to_owned());
        }
        row.extend([
            count(c.calls),
            opt(c.error_rate, |v| pct(v * 100.0)),
            opt(c.cached_pct, pct),
            opt(c.batched_pct, pct),
            count(c.retries),
            seconds(c.total_time_s),
            opt(l, |l| ms(l.avg)),
            opt(l, |l| ms(l.p50)),
            opt(l, |l| ms(l.p95)),
            opt(l, |l| ms(l.p99)),
            opt(l, |l| ms(l.max)),
            o.last_error.clone().unwrap_or_default(),
        ]);
        t.row(row);
    }
    t
}

fn host(r: &Report, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(h) = &r.host else { return Ok(()) };
    let l = |s: &str| label(paint, s);
    let cores = h.cpu_cores.map_or(String::new(), |c| format!(" of {} cores", count(c)));
    writeln!(
        out,
        "{} CPU avg {}, peak {}{cores}; memory avg {}, peak {}{}",
        l("Host"),
        opt(h.cpu_avg_pct, pct),
        opt(h.cpu_peak_pct, pct),
        opt(h.mem_avg_pct, pct),
        opt(h.mem_peak_pct, pct),
        h.mem_limit_bytes.map_or(String::new(), |b| format!(" of {}", bytes(b)))
    )?;
    let disks: Vec<String> =
        h.disks.iter().take(3).map(|d| format!("{} {} used", cell(&d.mountpoint, 40), pct(d.used_pct))).collect();
    let mut io = Vec::new();
    if let (Some(r), Some(w)) = (h.disk_read_bytes, h.disk_write_bytes) {
        io.push(format!("disk read {}, written {}", bytes(r), bytes(w)));
    }
    if let (Some(r), Some(t)) = (h.net_receive_bytes, h.net_transmit_bytes) {
        io.push(format!("network in {}, out {}", bytes(r), bytes(t)));
    }
    if !disks.is_empty() {
        writeln!(out, "{} {}", l(""), disks.join(", "))?;
    }
    if !io.is_empty() {
        writeln!(out, "{} {}", l(""), io.join("; "))?;
    }
    Ok(())
}

fn targets(r: &Report, paint: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    let l = |s: &str| label(paint, s);
    let t = &r.targets.ops;
    let mut checked = Vec::new();
    if let Some(v) = t.p95_ms {
        checked.push(format!("p95 ≤ {}", ms(v)));
    }
    if let Some(v) = t.p99_ms {
        checked.push(format!("p99 ≤ {}", ms(v)));
    }
    if let Some(v) = t.error_rate {
        checked.push(format!("error rate ≤ {}", pct(v * 100.0)));
    }
    if let Some(v) = r.targets.cpu_pct {
        checked.push(format!("mean CPU ≤ {}", pct(v)));
    }
    if let Some(v) = r.targets.memory_pct {
        checked.push(format!("peak memory ≤ {}", pct(v)));
    }
    if let Some(v) = r.targets.retry_rate {
        checked.push(format!("retries per call ≤ {v}"));
    }
    if let Some(v) = r.targets.cache_hit_rate {
        checked.push(format!("each cache's hit rate ≥ {}", pct(v * 100.0)));
    }
    if let Some(v) = r.targets.circuit_open_s {
        checked.push(format!("circuits open ≤ {}", seconds(v)));
    }
    if let Some(d) = r.targets.capacity_within_days {
        checked
            .push(format!("no resource at {} of capacity within {d:.0} days", pct(r.targets.capacity_target * 100.0)));
    }
    if !r.targets.overrides.is_empty() {
        checked.push(format!("{} per-operation overrides", r.targets.overrides.len()));
    }
    if r.violations.is_empty() {
        writeln!(out, "{} all met ({})", l("Targets"), checked.join(", "))
    } else {
        writeln!(out, "{} {}", l("Targets"), paint.red(&format!("{} violated", r.violations.len())))?;
        for v in &r.violations {
            writeln!(out, "{} {}", l(""), paint.red(&v.describe(&r.targets)))?;
        }
        Ok(())
    }
}
