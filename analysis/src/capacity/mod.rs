//! `capacity --growth 0.3 --months 12`: what each resource will need at the horizon, and when
//! it runs out. The projection itself is in [`model`].
//!
//! Resources, from hourly means in the store: `cpu` (cores: `system.cpu.utilization` × the
//! cgroup's limit or the core count), `memory` (bytes, against `system.memory.limit`),
//! `disk:<mount>` (bytes, against the filesystem's size), `network` (bytes/s, the busier
//! direction, loopback excluded) and `requests` (calls/s of `op.duration`). Network and
//! requests have no natural 100 %: they take a capacity from `--capacity net=1Gbit,rps=500` or
//! `[capacity]` in the config file, else only their projection is shown.
//!
//! JSON: `{now, horizon_months, target, redundancy, resources: [{resource, unit, capacity,
//! peak, peak_at, peak_window, utilization_now, growth {rate, low, high, source},
//! months_to_target, months_to_full, projected_peak_at_horizon, required_capacity, instances,
//! projection: [{month, peak, utilization}], note}], assumptions: [..], warnings: [..]}`.
//! `months_to_*` are a number of months, `"already crossed"`, or null when not within the
//! horizon.

pub mod backtest;
mod input;
pub mod model;
pub mod seasonal;

use perfstore::TimeRange;
use serde::{Serialize, Serializer};

pub use input::{Capacities, ResourceInput, gather, parse_capacities};
pub use model::{Crossing, Fit, NoFit};

use crate::error::{Error, NoData};
use crate::human::pct;
use crate::time::rfc3339;
use model::{crossing, fit_growth, grow, instances, peak};

const HOUR_MS: i64 = perfstore::HOUR_MS;

/// `--growth`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Growth {
    /// A given annual rate.
    Given(f64),
    /// Fitted from history.
    Auto,
}

/// One year and a day of hourly history: what `--growth auto` fits.
pub const HISTORY_MS: i64 = 366 * perfstore::DAY_MS;

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
        Ok(g) if g > 5.0 && g.is_finite() => Err(format!(
            "expected an annual growth rate like 0.3 (or 30%), or auto; {s} would be {:.0}% a year (0.3 means 30%; \
             above 500% is refused as a likely slip)",
            g * 100.0
        )),
        Ok(g) if g > -1.0 && g.is_finite() => Ok(Growth::Given(g)),
        _ => Err("expected an annual growth rate like 0.3 (or 30%), or auto".into()),
    }
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

impl Options {
    /// The complete hours the projection reads: `history_ms` (or the peak window, if longer)
    /// up to the last complete hour before now.
    pub fn range(&self) -> TimeRange {
        let end = self.now_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let start = (end - self.history_ms.max(self.peak_window_ms)).div_euclid(HOUR_MS) * HOUR_MS;
        TimeRange::new(start, end)
    }
}

impl Serialize for Crossing {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Crossing::Already => s.serialize_str("already crossed"),
            Crossing::In(m) => s.serialize_u32(*m),
            Crossing::NotWithin => s.serialize_none(),
        }
    }
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
    pub months_to_target: Crossing,
    /// Months until it reaches the capacity.
    pub months_to_full: Crossing,
    /// Months until the target at the high and low ends of the growth range (auto).
    pub months_to_target_range: Option<(Crossing, Crossing)>,
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
    /// Hourly history, for charts.
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

/// The resources' histories, read from a store (or built by hand).
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The store, as shown.
    pub db: String,
    /// The newest data in the store (for the "no data" message).
    pub newest_ms: Option<i64>,
    /// Each resource with its hourly history.
    pub resources: Vec<ResourceInput>,
}

/// Project every resource of `input`.
pub fn compute(input: &Input, o: &Options) -> crate::Result<Report> {
    let range = o.range();
    if input.resources.iter().all(|r| r.history.is_empty()) {
        return Err(Error::NoData(NoData {
            subject: " for capacity (it works from complete hours of host metrics or op.duration: record for an hour, \
                      or import history)"
                .into(),
            range,
            db: input.db.clone().into(),
            matched: None,
            newest_ms: input.newest_ms,
        }));
    }
    let days = o.peak_window_ms as f64 / 86_400_000.0;
    let span =
        if days.fract() == 0.0 { format!("{days} days") } else { format!("{:.0} hours", o.peak_window_ms / HOUR_MS) };
    let peak_window = format!("highest hourly mean over the {span} to {}", rfc3339(range.end_ms));
    let mut warnings = Vec::new();
    let resources: Vec<Resource> =
        input.resources.iter().filter_map(|r| project(r, o, range.end_ms, &peak_window, &mut warnings)).collect();
    Ok(Report {
        db: input.db.clone(),
        now: rfc3339(o.now_ms),
        horizon_months: o.months,
        target: o.target,
        redundancy: o.redundancy,
        assumptions: assumptions(o, &peak_window, &resources),
        resources,
        warnings,
    })
}

/// The growth of one resource: given, or fitted with its range.
fn growth(r: &ResourceInput, o: &Options, warnings: &mut Vec<String>) -> (GrowthOut, Option<Fit>) {
    let none = |source: &str| GrowthOut { rate: None, low: None, high: None, source: source.into() };
    match o.growth {
        Growth::Given(g) => (GrowthOut { rate: Some(g), low: None, high: None, source: "given".into() }, None),
        Growth::Auto => match fit_growth(&r.history) {
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
                    "{}: only {days} days of history; --growth auto needs at least 7 (pass a rate like --growth 0.3)",
                    r.name
                ));
                (none("auto: too little history"), None)
            }
            Err(NoFit::NoUsage) => {
                warnings.push(format!("{}: no usage to fit a growth to", r.name));
                (none("auto: no usage"), None)
            }
        },
    }
}

fn project(
    r: &ResourceInput,
    o: &Options,
    end: i64,
    peak_window: &str,
    warnings: &mut Vec<String>,
) -> Option<Resource> {
    let Some((peak_at, peak_v)) = peak(&r.history, end - o.peak_window_ms, end) else {
        if !r.history.is_empty() {
            warnings.push(format!("{}: no data in the peak window ({peak_window})", r.name));
        }
        return None;
    };
    let (growth, fit) = growth(r, o, warnings);
    let capacity = r.capacity;
    let util = |v: f64| capacity.filter(|c| *c > 0.0).map(|c| v / c);
    let mut res = Resource {
        resource: r.name.clone(),
        unit: r.unit.clone(),
        capacity,
        peak: peak_v,
        peak_at: rfc3339(peak_at),
        peak_window: peak_window.to_owned(),
        utilization_now: r.history.last().and_then(|p| util(p.1)),
        months_to_target: Crossing::NotWithin,
        months_to_full: Crossing::NotWithin,
        months_to_target_range: None,
        projected_peak_at_horizon: None,
        required_capacity: None,
        instances: None,
        projection: Vec::new(),
        note: r.note.clone(),
        history: r.history.clone(),
        growth,
    };
    let Some(g) = res.growth.rate else { return Some(res) };
    res.projection = (1..=o.months)
        .map(|m| {
            let p = grow(peak_v, g, f64::from(m));
            Month { month: m, peak: p, utilization: util(p) }
        })
        .collect();
    let at_horizon = grow(peak_v, g, f64::from(o.months));
    res.projected_peak_at_horizon = Some(at_horizon);
    res.required_capacity = Some(at_horizon / o.target);
    if let Some(c) = capacity.filter(|c| *c > 0.0) {
        res.months_to_target = crossing(peak_v, g, c * o.target, o.months);
        res.months_to_full = crossing(peak_v, g, c, o.months);
        res.instances = Some(instances(at_horizon, c, o.target, o.redundancy));
        if let Some(f) = fit {
            res.months_to_target_range = Some((
                crossing(peak_v, f.high, c * o.target, o.months),
                crossing(peak_v, f.low, c * o.target, o.months),
            ));
        }
    }
    if g <= 0.0 {
        res.note = Some(format!(
            "{}usage is flat or falling: no saturation within the horizon",
            res.note.as_deref().map_or(String::new(), |n| format!("{n}; "))
        ));
    }
    Some(res)
}

fn assumptions(o: &Options, peak_window: &str, resources: &[Resource]) -> Vec<String> {
    let mut out = vec![
        match o.growth {
            Growth::Given(g) => format!("growth {} a year, compounded monthly: ×(1+g)^(months/12)", pct(g * 100.0)),
            Growth::Auto => "growth fitted per resource to the daily peaks (trailing 7-day peaks from two weeks of \
                             history on) of up to a year, weighting recent days (half-life a third of the history); the \
                             range is two standard errors of that fit (and, with 180 days or more, the fits over the last \
                             third and two thirds), widened by the history's scatter around its trend"
                .to_string(),
        },
        format!("base: each resource's {peak_window}, not its last value or mean"),
        format!(
            "target utilization {}; instances are of today's size, at least 2, plus {} spare",
            pct(o.target * 100.0),
            o.redundancy
        ),
    ];
    if o.growth == Growth::Auto {
        let days = resources
            .iter()
            .filter_map(|r| r.history.first().zip(r.history.last()))
            .map(|(a, b)| (b.0 - a.0) / 86_400_000)
            .max();
        if let Some(d) = days.filter(|&d| d < 365) {
            out.push(format!(
                "only {d} days of history: a yearly seasonal peak (holidays, quarter ends) cannot show in it"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    fn hourly(days: i64, f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
        (0..days * 24).map(|h| (NOW - (days * 24 - h) * HOUR_MS, f(h))).collect()
    }

    fn opts(growth: Growth) -> Options {
        Options {
            now_ms: NOW,
            growth,
            months: 12,
            target: 0.7,
            redundancy: 1,
            peak_window_ms: 30 * 86_400_000,
            history_ms: 366 * 86_400_000,
            capacities: Capacities::default(),
        }
    }

    fn cpu(history: Vec<(i64, f64)>) -> Input {
        let r = ResourceInput { name: "cpu".into(), unit: "cores".into(), capacity: Some(4.0), history, note: None };
        Input { db: "/x.db".into(), newest_ms: None, resources: vec![r] }
    }

    #[test]
    fn a_given_rate_projects_the_peak_by_hand() {
        // Flat 2 cores with one 2.4-core hour: +30 %/year crosses 70 % (2.8) at
        // 12·ln(2.8/2.4)/ln(1.3) = 7.05 → month 8.
        let i = cpu(hourly(40, |h| if h == 500 { 2.4 } else { 2.0 }));
        let r = compute(&i, &opts(Growth::Given(0.3))).unwrap();
        let c = &r.resources[0];
        assert_eq!((c.peak, c.months_to_target, c.months_to_full), (2.4, Crossing::In(8), Crossing::NotWithin));
        assert!((c.projected_peak_at_horizon.unwrap() - 3.12).abs() < 1e-12);
        assert_eq!(c.instances, Some(3), "⌈3.12 / 2.8⌉ + 1");
        assert_eq!(c.utilization_now, Some(0.5));
        assert_eq!(serde_json::to_value(c.months_to_target).unwrap(), serde_json::json!(8));
    }

    #[test]
    fn auto_with_too_little_history_warns_and_invents_nothing() {
        let r = compute(&cpu(hourly(3, |_| 1.0)), &opts(Growth::Auto)).unwrap();
        assert_eq!(r.resources[0].growth.rate, None);
        assert!(r.resources[0].projection.is_empty());
        assert!(r.warnings[0].starts_with("cpu: only 2 days of history"), "{:?}", r.warnings);
        let e = compute(&cpu(vec![]), &opts(Growth::Auto)).unwrap_err().to_string();
        assert!(e.starts_with("no data for capacity"), "{e}");
    }

    #[test]
    fn growth_flags_parse() {
        assert_eq!(parse_growth("0.3"), Ok(Growth::Given(0.3)));
        assert_eq!(parse_growth("30%"), Ok(Growth::Given(0.3)));
        assert_eq!(parse_growth("auto"), Ok(Growth::Auto));
        assert!(parse_growth("fast").unwrap_err().starts_with("expected an annual growth rate"));
    }
}
