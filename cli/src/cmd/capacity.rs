//! `perfctl capacity --growth 0.3 --months 12`: what each resource will need at the horizon,
//! and when it runs out. See [`crate::capacity`] for the projection itself.
//!
//! Resources, from hourly means in the store: `cpu` (cores: `system.cpu.utilization` × the
//! cgroup's limit or the core count), `memory` (bytes, against `system.memory.limit`), `disk:<mount>`
//! (bytes, against the filesystem's size), `network` (bytes/s, the busier direction, loopback
//! excluded) and `requests` (calls/s of `op.duration`). Network and requests have no natural
//! 100 %: they take a capacity from `--capacity net=1Gbit,rps=500` or `[capacity]` in the config
//! file, else only their projection is shown.
//!
//! JSON: `{now, horizon_months, target, redundancy, resources: [{resource, unit, capacity, peak,
//! peak_at, peak_window, utilization_now, growth {rate, low, high, source}, months_to_target,
//! months_to_full, projected_peak_at_horizon, required_capacity, instances, projection: [{month,
//! peak, utilization}], note}], assumptions: [..], warnings: [..]}`. `months_to_*` are a number
//! of months, `"already crossed"`, or null when not within the horizon.

use std::io::Write;
use std::path::Path;

use perfstore::{Point, Reader, Selector, SeriesInfo, TimeRange};
use serde::Serialize;
use serde_json::Value;

use crate::capacity::{Crossing, NoFit, crossing, fit_growth, grow, instances, peak};
use crate::style::{bytes, pct};
use crate::window::rfc3339;

const HOUR_MS: i64 = 3_600_000;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table per resource and the assumptions.
    Table,
    /// One JSON document (see the module docs).
    Json,
}

/// `--growth`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Growth {
    /// A given annual rate.
    Given(f64),
    /// Fitted from history.
    Auto,
}

/// Parse `--growth`: `0.3`, `30%` or `auto`.
pub fn parse_growth(s: &str) -> Result<Growth, String> {
    if s == "auto" {
        return Ok(Growth::Auto);
    }
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.parse::<f64>(),
    };
    match v {
        Ok(g) if g > -1.0 && g.is_finite() => Ok(Growth::Given(g)),
        _ => Err("expected an annual growth rate like 0.3 (or 30%), or auto".into()),
    }
}

/// Capacities of resources with no natural 100 %.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacities {
    /// Calls per second.
    pub rps: Option<f64>,
    /// Network bytes per second.
    pub net_bytes_per_s: Option<f64>,
}

fn parse_rate(v: &str) -> Option<f64> {
    let v = v.trim();
    let units: [(&str, f64); 8] = [
        ("Gbit", 1e9 / 8.0),
        ("Mbit", 1e6 / 8.0),
        ("Kbit", 1e3 / 8.0),
        ("bit", 1.0 / 8.0),
        ("GB", 1e9),
        ("MB", 1e6),
        ("KB", 1e3),
        ("B", 1.0),
    ];
    for (u, f) in units {
        if let Some(n) = v.strip_suffix(u) {
            return n.trim().parse::<f64>().ok().filter(|x| *x > 0.0).map(|x| x * f);
        }
    }
    None
}

/// Parse `--capacity rps=500,net=1Gbit`.
pub fn parse_capacities(s: &str) -> Result<Capacities, String> {
    let mut c = Capacities::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            format!(
                "invalid '{part}': expected rps=500 or net=1Gbit (bit, Kbit, Mbit, Gbit, or B, KB, MB, GB per second)"
            )
        };
        let (k, v) = part.split_once('=').ok_or_else(bad)?;
        match k.trim() {
            "rps" => c.rps = Some(v.trim().parse::<f64>().ok().filter(|x| *x > 0.0).ok_or_else(bad)?),
            "net" => c.net_bytes_per_s = Some(parse_rate(v).ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }
    Ok(c)
}

/// `[capacity]` in the shared config file: `rps = 500`, `net = "1Gbit"`.
pub fn capacities_from_config(path: Option<&Path>) -> anyhow::Result<Capacities> {
    let path = match path {
        Some(p) => Some(p.to_owned()),
        None => crate::targets::default_file().filter(|p| p.exists()),
    };
    let Some(path) = path else { return Ok(Capacities::default()) };
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
    let Some(section) = table.get("capacity").and_then(|v| v.as_table()) else { return Ok(Capacities::default()) };
    let mut spec = Vec::new();
    for (k, v) in section {
        let v = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            _ => anyhow::bail!("{}: capacity.{k}: expected a number or a string like \"1Gbit\"", path.display()),
        };
        spec.push(format!("{k}={v}"));
    }
    parse_capacities(&spec.join(",")).map_err(|e| anyhow::anyhow!("{}: [capacity]: {e}", path.display()))
}

/// What to project.
#[derive(Debug, Clone)]
pub struct Options {
    /// Now, Unix ms.
    pub now_ms: i64,
    /// Growth.
    pub growth: Growth,
    /// Horizon in months.
    pub months: u32,
    /// Target utilization (0.7).
    pub target: f64,
    /// Spare instances (1).
    pub redundancy: u32,
    /// The peak is the highest hourly mean over this window (30 days).
    pub peak_window_ms: i64,
    /// How much history `auto` fits (a year).
    pub history_ms: i64,
    /// Capacities for network and requests.
    pub capacities: Capacities,
}

/// One month of the projection.
#[derive(Debug, Clone, Serialize)]
pub struct Month {
    /// Months from now.
    pub month: u32,
    /// Projected peak.
    pub peak: f64,
    /// Projected peak / capacity.
    pub utilization: Option<f64>,
}

/// The growth used.
#[derive(Debug, Clone, Serialize)]
pub struct GrowthOut {
    /// Annual rate (null: could not be fitted).
    pub rate: Option<f64>,
    /// Low end of the range (auto).
    pub low: Option<f64>,
    /// High end of the range (auto).
    pub high: Option<f64>,
    /// `given` or `auto (N days of history)`.
    pub source: String,
}

/// One resource.
#[derive(Debug, Clone, Serialize)]
pub struct Resource {
    /// `cpu`, `memory`, `disk:/`, `network`, `requests`.
    pub resource: String,
    /// `cores`, `bytes`, `bytes/s`, `calls/s`.
    pub unit: String,
    /// 100 %, when known.
    pub capacity: Option<f64>,
    /// The base: highest hourly mean in the peak window.
    pub peak: f64,
    /// When, RFC 3339.
    pub peak_at: String,
    /// Which window the peak is from.
    pub peak_window: String,
    /// The last complete hour's mean / capacity.
    pub utilization_now: Option<f64>,
    /// Growth.
    pub growth: GrowthOut,
    /// Months until the projected peak reaches the target utilization.
    pub months_to_target: Value,
    /// Months until it reaches the capacity.
    pub months_to_full: Value,
    /// Months until the target at the low and high ends of the growth range (auto).
    pub months_to_target_range: Option<(Value, Value)>,
    /// The projected peak at the horizon.
    pub projected_peak_at_horizon: Option<f64>,
    /// Capacity that keeps that peak at the target.
    pub required_capacity: Option<f64>,
    /// Instances of today's size: max(2, ⌈peak / (capacity · target)⌉ + redundancy).
    pub instances: Option<u32>,
    /// Month by month.
    pub projection: Vec<Month>,
    /// Anything to know about this resource.
    pub note: Option<String>,
    /// Hourly history, for `--plot`.
    #[serde(skip)]
    pub history: Vec<(i64, f64)>,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The store.
    pub db: String,
    /// Now, RFC 3339.
    pub now: String,
    /// Months projected.
    pub horizon_months: u32,
    /// Target utilization.
    pub target: f64,
    /// Spare instances.
    pub redundancy: u32,
    /// Resources.
    pub resources: Vec<Resource>,
    /// What the numbers rest on.
    pub assumptions: Vec<String>,
    /// What could not be done.
    pub warnings: Vec<String>,
}

fn crossing_value(c: Crossing) -> Value {
    match c {
        Crossing::Already => Value::from("already crossed"),
        Crossing::In(m) => Value::from(m),
        Crossing::NotWithin => Value::Null,
    }
}

/// Hourly means of several series added together (e.g. one gauge; or the interfaces of a
/// counter, per second), complete hours only.
fn hourly(
    snap: &perfstore::Snapshot<'_>,
    series: &[&SeriesInfo],
    range: TimeRange,
    f: impl Fn(&Point) -> Option<f64>,
) -> anyhow::Result<Vec<(i64, f64)>> {
    let mut by_hour: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    for s in series {
        for (t, p) in snap.range(s, range, HOUR_MS)?.steps {
            if let Some(v) = f(&p) {
                *by_hour.entry(t).or_default() += v;
            }
        }
    }
    Ok(by_hour.into_iter().collect())
}

/// A resource before projection: (name, unit, capacity, hourly history, note).
type Input = (String, String, Option<f64>, Vec<(i64, f64)>, Option<String>);

/// Read the store and project every resource.
pub fn collect(db: &Path, o: &Options) -> anyhow::Result<Report> {
    let mut reader = Reader::open(db)?;
    let snap = reader.snapshot()?;
    let end = o.now_ms.div_euclid(HOUR_MS) * HOUR_MS; // complete hours only
    let start = (end - o.history_ms.max(o.peak_window_ms)).div_euclid(HOUR_MS) * HOUR_MS;
    let range = TimeRange::new(start, end);
    let all = snap.series(&Selector::default())?;
    let named = |name: &str| all.iter().filter(|s| s.key.name == name).collect::<Vec<_>>();
    let last_of = |name: &str| -> anyhow::Result<Option<f64>> {
        let mut best: Option<Point> = None;
        for s in named(name) {
            if let Some(p) = snap.aggregate(s, TimeRange::new(start, end))?
                && best.as_ref().is_none_or(|b| p.last_ts_ms > b.last_ts_ms)
            {
                best = Some(p);
            }
        }
        Ok(best.map(|p| p.last))
    };
    let avg = |p: &Point| p.avg();
    let mut inputs: Vec<Input> = Vec::new();

    let cores = last_of("container.cpu.limit")?.or(last_of("system.cpu.logical_cpus")?);
    let cpu = hourly(&snap, &named("system.cpu.utilization"), range, avg)?;
    if !cpu.is_empty() {
        let c = cores.unwrap_or(1.0);
        let note = cores.is_none().then(|| "core count not recorded: utilization of one core".to_string());
        inputs.push(("cpu".into(), "cores".into(), Some(c), cpu.into_iter().map(|(t, u)| (t, u * c)).collect(), note));
    }
    let mem = hourly(&snap, &named("system.memory.usage"), range, avg)?;
    if !mem.is_empty() {
        inputs.push(("memory".into(), "bytes".into(), last_of("system.memory.limit")?, mem, None));
    }
    let mut mounts: Vec<String> =
        named("system.filesystem.usage").iter().filter_map(|s| s.key.get("mountpoint").map(str::to_owned)).collect();
    mounts.sort();
    mounts.dedup();
    for m in mounts {
        let pick = |name: &str| {
            all.iter().filter(|s| s.key.name == name && s.key.get("mountpoint") == Some(m.as_str())).collect::<Vec<_>>()
        };
        let used = hourly(&snap, &pick("system.filesystem.usage"), range, avg)?;
        let util = hourly(&snap, &pick("system.filesystem.utilization"), range, avg)?;
        let size = used.last().zip(util.last()).filter(|(_, u)| u.1 > 0.0).map(|(b, u)| b.1 / u.1);
        if !used.is_empty() {
            inputs.push((format!("disk:{m}"), "bytes".into(), size, used, None));
        }
    }
    let net_series: Vec<&SeriesInfo> =
        named("system.network.io").into_iter().filter(|s| s.key.get("device") != Some("lo")).collect();
    if !net_series.is_empty() {
        let dir =
            |d: &str| net_series.iter().copied().filter(|s| s.key.get("direction") == Some(d)).collect::<Vec<_>>();
        let rx = hourly(&snap, &dir("receive"), range, |p| Some(p.sum / 3600.0))?;
        let tx = hourly(&snap, &dir("transmit"), range, |p| Some(p.sum / 3600.0))?;
        let mut busier: std::collections::BTreeMap<i64, f64> = rx.into_iter().collect();
        for (t, v) in tx {
            let e = busier.entry(t).or_default();
            *e = e.max(v);
        }
        let note = o.capacities.net_bytes_per_s.is_none().then(|| "no capacity: pass --capacity net=1Gbit".to_string());
        inputs.push((
            "network".into(),
            "bytes/s".into(),
            o.capacities.net_bytes_per_s,
            busier.into_iter().collect(),
            note,
        ));
    }
    let calls = hourly(&snap, &named("op.duration"), range, |p| Some(p.count / 3600.0))?;
    if !calls.is_empty() {
        let note = o.capacities.rps.is_none().then(|| "no capacity: pass --capacity rps=N".to_string());
        inputs.push(("requests".into(), "calls/s".into(), o.capacities.rps, calls, note));
    }
    if inputs.iter().all(|i| i.3.is_empty()) {
        let newest = snap.newest_ms()?;
        return Err(crate::window::no_data(
            " for capacity (it works from complete hours of host metrics or op.duration: record for an hour, or \
             import history)",
            range,
            db,
            None,
            newest,
        ));
    }

    let days = o.peak_window_ms as f64 / 86_400_000.0;
    let span =
        if days.fract() == 0.0 { format!("{days} days") } else { format!("{:.0} hours", o.peak_window_ms / HOUR_MS) };
    let peak_window = format!("highest hourly mean over the {span} to {}", rfc3339(end));
    let mut warnings = Vec::new();
    let mut resources = Vec::new();
    for (name, unit, capacity, history, note) in inputs {
        let Some((peak_at, peak_v)) = peak(&history, end - o.peak_window_ms, end) else {
            if !history.is_empty() {
                warnings.push(format!("{name}: no data in the peak window ({peak_window})"));
            }
            continue;
        };
        let now_v = history.last().map(|p| p.1);
        let (growth, fit) = match o.growth {
            Growth::Given(g) => (GrowthOut { rate: Some(g), low: None, high: None, source: "given".into() }, None),
            Growth::Auto => match fit_growth(&history) {
                Ok(f) => (
                    GrowthOut {
                        rate: Some(f.rate),
                        low: Some(f.low),
                        high: Some(f.high),
                        source: format!("auto ({:.0} days of history)", f.days),
                    },
                    Some(f),
                ),
                Err(NoFit::TooShort { days }) => {
                    warnings.push(format!(
                        "{name}: only {days} days of history; --growth auto needs at least 7 (pass a rate like --growth 0.3)"
                    ));
                    (GrowthOut { rate: None, low: None, high: None, source: "auto: too little history".into() }, None)
                }
                Err(NoFit::NoUsage) => {
                    warnings.push(format!("{name}: no usage to fit a growth to"));
                    (GrowthOut { rate: None, low: None, high: None, source: "auto: no usage".into() }, None)
                }
            },
        };
        let util = |v: f64| capacity.filter(|c| *c > 0.0).map(|c| v / c);
        let mut r = Resource {
            resource: name,
            unit,
            capacity,
            peak: peak_v,
            peak_at: rfc3339(peak_at),
            peak_window: peak_window.clone(),
            utilization_now: now_v.and_then(util),
            months_to_target: Value::Null,
            months_to_full: Value::Null,
            months_to_target_range: None,
            projected_peak_at_horizon: None,
            required_capacity: None,
            instances: None,
            projection: Vec::new(),
            note,
            history,
            growth,
        };
        if let Some(g) = r.growth.rate {
            r.projection = (1..=o.months)
                .map(|m| {
                    let p = grow(peak_v, g, f64::from(m));
                    Month { month: m, peak: p, utilization: util(p) }
                })
                .collect();
            let at_horizon = grow(peak_v, g, f64::from(o.months));
            r.projected_peak_at_horizon = Some(at_horizon);
            r.required_capacity = Some(at_horizon / o.target);
            if let Some(c) = capacity.filter(|c| *c > 0.0) {
                r.months_to_target = crossing_value(crossing(peak_v, g, c * o.target, o.months));
                r.months_to_full = crossing_value(crossing(peak_v, g, c, o.months));
                r.instances = Some(instances(at_horizon, c, o.target, o.redundancy));
                if let Some(f) = fit {
                    r.months_to_target_range = Some((
                        crossing_value(crossing(peak_v, f.high, c * o.target, o.months)),
                        crossing_value(crossing(peak_v, f.low, c * o.target, o.months)),
                    ));
                }
            }
            if g <= 0.0 {
                r.note = Some(format!(
                    "{}usage is flat or falling: no saturation within the horizon",
                    r.note.as_deref().map_or(String::new(), |n| format!("{n}; "))
                ));
            }
        }
        resources.push(r);
    }

    let mut assumptions = vec![
        match o.growth {
            Growth::Given(g) => format!("growth {} a year, compounded monthly: ×(1+g)^(months/12)", pct(g * 100.0)),
            Growth::Auto => "growth fitted per resource to the daily peaks (trailing 7-day peaks from two weeks of \
                             history on) of up to a year, weighting recent days (half-life a third of the history); the \
                             range is two standard errors of that fit (and, with 180 days or more, the fits over the last \
                             third and two thirds), widened by the history's scatter around its trend"
                .to_string(),
        },
        format!("base: each resource's {peak_window}, not its last value or mean"),
        format!("target utilization {}; instances are of today's size, at least 2, plus {} spare", pct(o.target * 100.0), o.redundancy),
    ];
    if o.growth == Growth::Auto {
        let days = resources
            .iter()
            .filter_map(|r| r.history.first().zip(r.history.last()))
            .map(|(a, b)| (b.0 - a.0) / 86_400_000)
            .max();
        if days.is_some_and(|d| d < 365) {
            assumptions.push(format!(
                "only {} days of history: a yearly seasonal peak (holidays, quarter ends) cannot show in it",
                days.unwrap_or(0)
            ));
        }
    }
    Ok(Report {
        db: db.display().to_string(),
        now: rfc3339(o.now_ms),
        horizon_months: o.months,
        target: o.target,
        redundancy: o.redundancy,
        resources,
        assumptions,
        warnings,
    })
}

fn amount(unit: &str, v: f64) -> String {
    match unit {
        "bytes" => bytes(v),
        "bytes/s" => format!("{}/s", bytes(v)),
        "cores" => format!("{v:.2} cores"),
        _ => format!("{v:.1} {unit}"),
    }
}

fn when(v: &Value) -> String {
    match v {
        Value::Null => "not within".into(),
        Value::String(s) => s.clone(),
        v => format!("month {v}"),
    }
}

/// Print the report.
pub fn render(r: &Report, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut *out, r)?;
        return writeln!(out);
    }
    writeln!(out, "Capacity over {} months from {} (store {})", r.horizon_months, r.now, r.db)?;
    for res in &r.resources {
        writeln!(out)?;
        let cap = res.capacity.map_or("no capacity".to_string(), |c| amount(&res.unit, c));
        writeln!(out, "{}  ({cap})", res.resource)?;
        writeln!(out, "  peak        {} at {}", amount(&res.unit, res.peak), res.peak_at)?;
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
        }
        if res.capacity.is_some() && res.growth.rate.is_some() {
            let range = res
                .months_to_target_range
                .as_ref()
                .map_or(String::new(), |(a, b)| format!(" (range: {} to {})", when(a), when(b)));
            writeln!(out, "  target {}  {}{range}", pct(r.target * 100.0), when(&res.months_to_target))?;
            writeln!(out, "  full        {}", when(&res.months_to_full))?;
        }
        if let (Some(need), Some(p)) = (res.required_capacity, res.projected_peak_at_horizon) {
            let inst = res.instances.map_or(String::new(), |n| format!("; {n} instances of today's size"));
            writeln!(
                out,
                "  at {} months  peak {}, needs {}{inst}",
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

/// Draw history and projection per resource: daily peaks, the projected peak month by month
/// (with the auto range as a band), the target line and the capacity line.
pub fn plot(r: &Report) -> String {
    let (w, h, pad) = (760.0, 220.0, 50.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        h * r.resources.len().max(1) as f64
    );
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    for (i, res) in r.resources.iter().enumerate() {
        let y0 = i as f64 * h;
        let days = crate::capacity::daily_peaks(&res.history);
        let now = days.last().map_or(0, |d| d.0);
        let t0 = days.first().map_or(now, |d| d.0);
        let month_ms = 30.44 * 86_400_000.0;
        let t1 = now as f64 + f64::from(r.horizon_months) * month_ms;
        let hi_band = |m: u32| res.growth.high.map(|g| grow(res.peak, g, f64::from(m)));
        let mut ymax = days.iter().map(|d| d.1).fold(res.peak, f64::max);
        for m in &res.projection {
            ymax = ymax.max(m.peak).max(hi_band(m.month).unwrap_or(0.0));
        }
        if let Some(c) = res.capacity {
            ymax = ymax.max(c * 1.05);
        }
        let x = |t: f64| pad + (t - t0 as f64) / (t1 - t0 as f64).max(1.0) * (w - 2.0 * pad);
        let y = |v: f64| y0 + h - pad + -(v / ymax.max(1e-12)) * (h - 2.0 * pad);
        svg.push_str(&format!(
            "<text x=\"{pad}\" y=\"{}\" font-weight=\"bold\">{} ({})</text>\n",
            y0 + 20.0,
            esc(&res.resource),
            esc(&res.unit)
        ));
        let pts: Vec<String> = days.iter().map(|d| format!("{:.1},{:.1}", x(d.0 as f64), y(d.1))).collect();
        svg.push_str(&format!("<polyline fill=\"none\" stroke=\"#1f77b4\" points=\"{}\"/>\n", pts.join(" ")));
        if let (Some(lo), Some(hi)) = (res.growth.low, res.growth.high) {
            let upper: Vec<String> = (0..=r.horizon_months)
                .map(|m| {
                    format!("{:.1},{:.1}", x(now as f64 + f64::from(m) * month_ms), y(grow(res.peak, hi, f64::from(m))))
                })
                .collect();
            let lower: Vec<String> = (0..=r.horizon_months)
                .rev()
                .map(|m| {
                    format!("{:.1},{:.1}", x(now as f64 + f64::from(m) * month_ms), y(grow(res.peak, lo, f64::from(m))))
                })
                .collect();
            svg.push_str(&format!(
                "<polygon fill=\"#ff7f0e\" fill-opacity=\"0.2\" points=\"{} {}\"/>\n",
                upper.join(" "),
                lower.join(" ")
            ));
        }
        if !res.projection.is_empty() {
            let mut pts = vec![format!("{:.1},{:.1}", x(now as f64), y(res.peak))];
            pts.extend(
                res.projection
                    .iter()
                    .map(|m| format!("{:.1},{:.1}", x(now as f64 + f64::from(m.month) * month_ms), y(m.peak))),
            );
            svg.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-dasharray=\"5,3\" points=\"{}\"/>\n",
                pts.join(" ")
            ));
        }
        if let Some(c) = res.capacity {
            for (v, label, color) in [(c * r.target, "target", "#d62728"), (c, "capacity", "#444")] {
                let (x2, yv) = (w - pad, y(v));
                svg.push_str(&format!(
                    "<line x1=\"{pad}\" x2=\"{x2}\" y1=\"{yv:.1}\" y2=\"{yv:.1}\" stroke=\"{color}\" stroke-dasharray=\"2,2\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{label}</text>\n",
                    x2 + 2.0,
                    yv + 4.0
                ));
            }
        }
        svg.push_str(&format!(
            "<text x=\"{pad}\" y=\"{}\">history (daily peaks) → now → +{} months (dashed: projected peak)</text>\n",
            y0 + h - 15.0,
            r.horizon_months
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        assert_eq!(parse_growth("0.3"), Ok(Growth::Given(0.3)));
        assert_eq!(parse_growth("30%"), Ok(Growth::Given(0.3)));
        assert_eq!(parse_growth("auto"), Ok(Growth::Auto));
        assert!(parse_growth("fast").unwrap_err().starts_with("expected an annual growth rate"));
        let c = parse_capacities("rps=500, net=1Gbit").unwrap();
        assert_eq!(c, Capacities { rps: Some(500.0), net_bytes_per_s: Some(125_000_000.0) });
        assert_eq!(parse_capacities("net=100MB").unwrap().net_bytes_per_s, Some(1e8));
        assert!(parse_capacities("cpu=4").unwrap_err().starts_with("invalid 'cpu=4': expected rps=500 or net=1Gbit"));
    }
}
