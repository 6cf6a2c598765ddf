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
//! peak, peak_at, peak_window, seasonal_peak, utilization_now, growth {rate, low, high,
//! source}, model, seasonality {peak_month, amplitude, profile}, months_to_target,
//! months_to_full, months_to_target_range, projected_peak_at_horizon, required_capacity,
//! instances, projection: [{month, calendar, peak, utilization, range}], note}], assumptions:
//! [..], warnings: [..]}`. Month 0, when present, is the month under way.
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

/// Two years and a day of hourly history (all the one-hour tier keeps): what the projection
/// reads, so growth can be measured year over year and last year's seasonal peak is seen.
pub const HISTORY_MS: i64 = 731 * perfstore::DAY_MS;
/// With at least this much history the base is the last 365 days' peak.
const YEAR_MS: i64 = 365 * perfstore::DAY_MS;
/// Under this much history (8 weeks) growth is a trend on daily peaks; from it to 13 months, a
/// trend on weekly peaks with a wider range; from 13 months on, year over year.
const WEEKS_8_MS: i64 = 56 * perfstore::DAY_MS;

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
    /// The base is the highest hourly mean over this window; None (the default): the last 365
    /// days with a year of history or more, else the whole history.
    pub peak_window_ms: Option<i64>,
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
        let start = (end - self.history_ms.max(self.peak_window_ms.unwrap_or(0))).div_euclid(HOUR_MS) * HOUR_MS;
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
    /// Its calendar month, `2027-12`.
    pub calendar: String,
    /// Projected peak.
    pub peak: f64,
    /// Projected peak / capacity.
    pub utilization: Option<f64>,
    /// The 80 % range of the projected peak (seasonal model), low and high.
    pub range: Option<(f64, f64)>,
}

/// The yearly profile, when one is seen.
#[derive(Debug, Clone, Serialize)]
pub struct Seasonality {
    /// The calendar month that peaks, `December`.
    pub peak_month: &'static str,
    /// How far that month stands above the year's mean level (0.35 = +35 %).
    pub amplitude: f64,
    /// Each calendar month's level as a factor on the year's mean, January first.
    pub profile: Vec<(&'static str, f64)>,
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
    /// Whether the base is a seasonal peak: older than 30 days and over 10 % above the last
    /// 30 days' peak.
    pub seasonal_peak: bool,
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
    /// The highest projected month within the horizon (with a season, not always the last).
    pub projected_peak_at_horizon: Option<f64>,
    /// Capacity that keeps that peak at the target.
    pub required_capacity: Option<f64>,
    /// Instances of today's size: max(2, ⌈peak / (capacity · target)⌉ + redundancy).
    pub instances: Option<u32>,
    /// Which model projected, and why that one: `year over year (24 months of history)`, `trend
    /// on weekly peaks (5 months: too short to see a yearly season)`, `trend on daily peaks`.
    pub model: String,
    /// The yearly profile (year-over-year model, when both years agree).
    pub seasonality: Option<Seasonality>,
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
    let mut warnings = Vec::new();
    let resources: Vec<Resource> =
        input.resources.iter().filter_map(|r| project(r, o, range.end_ms, &mut warnings)).collect();
    Ok(Report {
        db: input.db.clone(),
        now: rfc3339(o.now_ms),
        horizon_months: o.months,
        target: o.target,
        redundancy: o.redundancy,
        assumptions: assumptions(o),
        resources,
        warnings,
    })
}

/// A span in days, rounded (as the fit reports it).
fn whole_days(ms: i64) -> i64 {
    (ms + perfstore::DAY_MS / 2) / perfstore::DAY_MS
}

/// `highest hourly mean over the 365 days to …`.
fn window_text(ms: i64, end: i64) -> String {
    let days = ms as f64 / 86_400_000.0;
    let span = if days.fract() == 0.0 { format!("{days} days") } else { format!("{:.0} hours", ms / HOUR_MS) };
    format!("highest hourly mean over the {span} to {}", rfc3339(end))
}

/// The base of one resource: `(from, description)` of the window its peak is taken in.
fn base_window(r: &ResourceInput, o: &Options, end: i64, span_ms: i64, warnings: &mut Vec<String>) -> (i64, String) {
    match o.peak_window_ms {
        Some(w) => (end - w, window_text(w, end)),
        None if span_ms >= YEAR_MS => (end - YEAR_MS, window_text(YEAR_MS, end)),
        None => {
            let days = whole_days(span_ms);
            warnings.push(format!(
                "{}: only {days} days of history, so the base is its highest hour; a yearly peak (holidays, quarter \
                 ends) cannot show in less than a year",
                r.name
            ));
            (i64::MIN, format!("highest hourly mean over the whole history ({days} days) to {}", rfc3339(end)))
        }
    }
}

/// The growth of one resource from a trend fit (under 13 months of history).
fn trend_growth(r: &ResourceInput, span_ms: i64, warnings: &mut Vec<String>) -> (GrowthOut, Option<Fit>, String) {
    let none = |source: &str| GrowthOut { rate: None, low: None, high: None, source: source.into() };
    let weekly = span_ms >= WEEKS_8_MS;
    let model = if weekly {
        format!(
            "trend on weekly peaks ({} days of history: too short to measure growth year over year; the range is wider)",
            whole_days(span_ms)
        )
    } else {
        format!("trend on daily peaks ({} days of history)", whole_days(span_ms))
    };
    match fit_growth(&r.history) {
        Ok(mut f) => {
            if weekly {
                // A part of a year: the season shows as growth. Widen the range by half.
                f.low = (1.0 + f.low).powf(1.5) - 1.0;
                f.high = (1.0 + f.high).powf(1.5) - 1.0;
            }
            let g = GrowthOut {
                rate: Some(f.rate),
                low: Some(f.low),
                high: Some(f.high),
                source: format!("auto ({:.0} days of history)", f.days),
            };
            (g, Some(f), model)
        }
        Err(NoFit::TooShort { days }) => {
            warnings.push(format!(
                "{}: only {days} days of history; --growth auto needs at least 7 (pass a rate like --growth 0.3)",
                r.name
            ));
            (none("auto: too little history"), None, model)
        }
        Err(NoFit::NoUsage) => {
            warnings.push(format!("{}: no usage to fit a growth to", r.name));
            (none("auto: no usage"), None, model)
        }
    }
}

/// Monthly peaks of the months the history covers well: the month still under way is dropped
/// when less than 20 days of it are in, and the first month when the history starts more than
/// 3 days into it (a few days' peak compared with a whole month's would read as growth).
pub fn complete_monthly_peaks(history: &[(i64, f64)]) -> Vec<(seasonal::MonthIndex, f64)> {
    let mut peaks = seasonal::monthly_peaks(history);
    if let (Some(last), Some(&(t, _))) = (peaks.last(), history.last())
        && t - seasonal::month_start_ms(last.0) < 20 * perfstore::DAY_MS
    {
        peaks.pop();
    }
    if let (Some(first), Some(&(t, _))) = (peaks.first(), history.first())
        && t - seasonal::month_start_ms(first.0) > 3 * perfstore::DAY_MS
    {
        peaks.remove(0);
    }
    peaks
}

fn first_crossing(base: f64, months: &[(u32, f64)], threshold: f64) -> Crossing {
    if base >= threshold {
        return Crossing::Already;
    }
    months.iter().find(|m| m.1 >= threshold).map_or(Crossing::NotWithin, |m| Crossing::In(m.0))
}

/// One projected month: months ahead, the peak, and its 80 % range when the model gives one.
#[derive(Debug, Clone, Copy)]
struct Ahead {
    month: u32,
    peak: f64,
    range: Option<(f64, f64)>,
}

/// The year-over-year projection: model, profile and growth into `res`, the months out.
fn seasonal_months(res: &mut Resource, f: &seasonal::Forecast, given: Option<f64>, months: usize) -> Vec<Ahead> {
    res.model = format!(
        "year over year ({months} months of history, {} months a year apart){}",
        f.pairs,
        if f.profile.is_some() { ", with the yearly profile" } else { "; no yearly season seen" }
    );
    res.seasonality = f.profile.map(|p| {
        let mean = p.iter().sum::<f64>() / 12.0;
        let top = (0..12).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap_or(0);
        Seasonality {
            peak_month: seasonal::month_name(top as i32),
            amplitude: p[top] / mean - 1.0,
            profile: (0..12).map(|c| (seasonal::month_name(c as i32), p[c] / mean)).collect(),
        }
    });
    if given.is_none() {
        res.growth = GrowthOut {
            rate: Some(f.projected_growth),
            low: None,
            high: None,
            source: format!(
                "auto: year over year, measured {} a year over {} months, half carried forward",
                pct(f.growth * 100.0),
                f.pairs
            ),
        };
    }
    f.months.iter().map(|m| Ahead { month: m.ahead, peak: m.peak, range: Some((m.low, m.high)) }).collect()
}

/// A base grown at one rate: given, measured year over year (with an explicit peak window),
/// or a trend fit (under 13 months of history).
fn rate_months(
    res: &mut Resource,
    r: &ResourceInput,
    o: &Options,
    forecast: Option<&seasonal::Forecast>,
    given: Option<f64>,
    span_ms: i64,
    warnings: &mut Vec<String>,
) -> Vec<Ahead> {
    let rate = match (given, forecast) {
        (Some(g), _) => {
            res.model = "a given rate on the base".into();
            Some(g)
        }
        (None, Some(f)) => {
            res.model = format!("year over year ({} months a year apart) on the base", f.pairs);
            res.growth = GrowthOut {
                rate: Some(f.projected_growth),
                low: None,
                high: None,
                source: format!("auto: year over year, measured {} a year", pct(f.growth * 100.0)),
            };
            Some(f.projected_growth)
        }
        (None, None) => {
            let (g, fit, model) = trend_growth(r, span_ms, warnings);
            res.model = model;
            res.growth = g;
            if let (Some(f), Some(c)) = (fit, res.capacity.filter(|c| *c > 0.0)) {
                res.months_to_target_range = Some((
                    crossing(res.peak, f.high, c * o.target, o.months),
                    crossing(res.peak, f.low, c * o.target, o.months),
                ));
            }
            fit.map(|f| f.rate)
        }
    };
    match rate {
        Some(g) => {
            (1..=o.months).map(|m| Ahead { month: m, peak: grow(res.peak, g, f64::from(m)), range: None }).collect()
        }
        None => Vec::new(),
    }
}

fn project(r: &ResourceInput, o: &Options, end: i64, warnings: &mut Vec<String>) -> Option<Resource> {
    let span_ms = match (r.history.first(), r.history.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0,
    };
    let (from, peak_window) = base_window(r, o, end, span_ms, warnings);
    let Some((peak_at, peak_v)) = peak(&r.history, from, end) else {
        if !r.history.is_empty() {
            warnings.push(format!("{}: no data in the peak window ({peak_window})", r.name));
        }
        return None;
    };
    let recent = peak(&r.history, end - 30 * perfstore::DAY_MS, end).map_or(0.0, |p| p.1);
    let seasonal_peak = peak_at < end - 30 * perfstore::DAY_MS && peak_v > 1.1 * recent;
    let capacity = r.capacity;
    let util = |v: f64| capacity.filter(|c| *c > 0.0).map(|c| v / c);
    let given = match o.growth {
        Growth::Given(g) => Some(g),
        Growth::Auto => None,
    };
    // The projection starts from the last complete month; the month under way (when it is not
    // complete yet) is month 0, so a peak due this month is not missed.
    let current = seasonal::month_of(end - 1);
    let peaks = complete_monthly_peaks(&r.history);
    let last_complete = peaks.last().map_or(current, |p| p.0).min(current);
    let lag = u32::try_from(current - last_complete).unwrap_or(0);
    let forecast = seasonal::forecast(&peaks, last_complete, o.months + lag, given).map(|mut f| {
        f.months.retain(|m| m.month >= current);
        for m in &mut f.months {
            m.ahead = u32::try_from(m.month - current).unwrap_or(0);
        }
        f
    });
    let mut res = Resource {
        resource: r.name.clone(),
        unit: r.unit.clone(),
        capacity,
        peak: peak_v,
        peak_at: rfc3339(peak_at),
        peak_window,
        seasonal_peak,
        utilization_now: r.history.last().and_then(|p| util(p.1)),
        growth: GrowthOut { rate: given, low: None, high: None, source: "given".into() },
        model: String::new(),
        seasonality: None,
        months_to_target: Crossing::NotWithin,
        months_to_full: Crossing::NotWithin,
        months_to_target_range: None,
        projected_peak_at_horizon: None,
        required_capacity: None,
        instances: None,
        projection: Vec::new(),
        note: r.note.clone(),
        history: r.history.clone(),
    };
    let months = match (&forecast, o.peak_window_ms) {
        // Year over year, the profile carrying the base (unless a peak window was asked for).
        (Some(f), None) => seasonal_months(&mut res, f, given, peaks.len()),
        // A base and a rate: given, measured year over year with an explicit peak window, or a
        // trend fit with less than 13 months.
        _ => rate_months(&mut res, r, o, forecast.as_ref(), given, span_ms, warnings),
    };
    if months.is_empty() {
        return Some(res);
    }
    let start = seasonal::month_of(end - 1);
    res.projection = months
        .iter()
        .map(|a| Month {
            month: a.month,
            calendar: seasonal::month_label(start + a.month as i32),
            peak: a.peak,
            utilization: util(a.peak),
            range: a.range,
        })
        .collect();
    let highest = months.iter().map(|m| m.peak).fold(f64::NEG_INFINITY, f64::max);
    res.projected_peak_at_horizon = Some(highest);
    res.required_capacity = Some(highest / o.target);
    // With the yearly profile, "already" means the last 30 days were over it (last December's
    // peak over the target is what the profile projects for next December).
    let already = if res.seasonality.is_some() { recent } else { peak_v };
    if let Some(c) = capacity.filter(|c| *c > 0.0) {
        let at = |i: usize| {
            months
                .iter()
                .map(|a| (a.month, [a.peak, a.range.map_or(a.peak, |r| r.0), a.range.map_or(a.peak, |r| r.1)][i]))
                .collect::<Vec<_>>()
        };
        res.months_to_target = first_crossing(already, &at(0), c * o.target);
        res.months_to_full = first_crossing(already, &at(0), c);
        if months.iter().any(|m| m.range.is_some()) {
            res.months_to_target_range =
                Some((first_crossing(already, &at(2), c * o.target), first_crossing(already, &at(1), c * o.target)));
        }
        res.instances = Some(instances(highest, c, o.target, o.redundancy));
    }
    if res.growth.rate.is_some_and(|g| g <= 0.0) && res.seasonality.is_none() {
        res.note = Some(format!(
            "{}usage is flat or falling: no saturation within the horizon",
            res.note.as_deref().map_or(String::new(), |n| format!("{n}; "))
        ));
    }
    Some(res)
}

fn assumptions(o: &Options) -> Vec<String> {
    vec![
        match o.growth {
            Growth::Given(g) => format!(
                "growth {} a year, compounded monthly: ×(1+g)^(months/12); with 13 months of history or more, on \
                 each calendar month's level (the yearly profile) when the years agree",
                pct(g * 100.0)
            ),
            Growth::Auto => "growth per resource: with 13 months of history or more, year over year (each month \
                             against the same month a year before, half of it carried forward) on the yearly profile; \
                             from 8 weeks, a trend on weekly peaks with a wider range; below, a trend on daily peaks"
                .to_string(),
        },
        "base: each resource's highest hourly mean over the last 365 days (a year of history or more), else its \
         whole history, unless --peak-window is given; never its last value or mean"
            .to_string(),
        "ranges: 80 % intervals, calibrated on a backtest of 12 public seasonal series (they held the actual peak in \
         80 % of cases)"
            .to_string(),
        format!(
            "target utilization {}; instances are of today's size, at least 2, plus {} spare",
            pct(o.target * 100.0),
            o.redundancy
        ),
    ]
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
            peak_window_ms: Some(30 * 86_400_000),
            history_ms: HISTORY_MS,
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

    /// Hourly history of `days` days up to `now`.
    fn hourly_to(now: i64, days: i64, f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
        (0..days * 24).map(|h| now - (days * 24 - h) * HOUR_MS).map(|t| (t, f(t))).collect()
    }

    #[test]
    fn a_december_peak_crosses_the_target_in_december_by_hand() {
        // Two years to 2026-02-15: 2 cores, with an hour at 3 cores every December day. No
        // growth year over year; 70 % of 4 cores is 2.8, so only December crosses it: month 10.
        let now = crate::time::parse_time("2026-02-15").unwrap();
        let dec = |t: i64| seasonal::month_of(t).rem_euclid(12) == 11;
        let h = hourly_to(now, 730, |t| if dec(t) && t % perfstore::DAY_MS == 12 * HOUR_MS { 3.0 } else { 2.0 });
        let o = Options { now_ms: now, peak_window_ms: None, ..opts(Growth::Auto) };
        let r = compute(&cpu(h), &o).unwrap();
        let c = &r.resources[0];
        assert_eq!(c.peak, 3.0, "the base is the last 365 days' peak");
        assert!(c.peak_at.starts_with("2025-12-"), "{}", c.peak_at);
        assert!(c.seasonal_peak);
        // The first month (from the 16th) and the month under way (15 days) are not complete.
        assert!(c.model.starts_with("year over year (23 months of history, 11 months a year apart)"), "{}", c.model);
        let s = c.seasonality.as_ref().unwrap();
        assert_eq!(s.peak_month, "December");
        assert_eq!(c.growth.rate, Some(0.0));
        assert_eq!(c.months_to_target, Crossing::In(10));
        // Month 0 is February, the month under way; month 10 is December.
        let month = |m: u32| c.projection.iter().find(|p| p.month == m).unwrap();
        assert_eq!((month(0).calendar.as_str(), month(10).calendar.as_str()), ("2026-02", "2026-12"));
        assert!((month(10).peak - 3.0).abs() < 1e-9 && (month(9).peak - 2.0).abs() < 1e-9);
        assert_eq!(c.months_to_full, Crossing::NotWithin);
        assert_eq!(c.projected_peak_at_horizon, Some(3.0));
        let (lo, hi) = month(10).range.unwrap();
        assert!(lo < 3.0 && 3.0 < hi);
        // The same history with a given rate keeps the profile, grown from the last complete
        // month (January): +40 % leaves November at 2.0 · 1.4^(10/12) = 2.65, under 2.8, and
        // takes December to 3.0 · 1.4^(11/12).
        let r = compute(
            &cpu(hourly_to(now, 730, |t| if dec(t) && t % perfstore::DAY_MS == 12 * HOUR_MS { 3.0 } else { 2.0 })),
            &Options { growth: Growth::Given(0.4), ..o },
        )
        .unwrap();
        assert_eq!(r.resources[0].months_to_target, Crossing::In(10));
    }

    #[test]
    fn the_model_follows_the_history_length() {
        let now = NOW;
        let o = Options { peak_window_ms: None, ..opts(Growth::Auto) };
        let model = |days: i64| {
            let r = compute(&cpu(hourly_to(now, days, |t| 1.0 + (t / HOUR_MS % 24) as f64 / 24.0)), &o).unwrap();
            (r.resources[0].model.clone(), r.warnings.clone())
        };
        let (m, w) = model(21);
        assert!(m.starts_with("trend on daily peaks (21 days"), "{m}");
        assert!(w.iter().any(|w| w.contains("only 21 days of history, so the base is its highest hour")), "{w:?}");
        assert!(model(150).0.starts_with("trend on weekly peaks (150 days of history: too short"));
        assert!(model(500).0.starts_with("year over year ("), "{}", model(500).0);
    }

    #[test]
    fn growth_flags_parse() {
        assert_eq!(parse_growth("0.3"), Ok(Growth::Given(0.3)));
        assert_eq!(parse_growth("30%"), Ok(Growth::Given(0.3)));
        assert_eq!(parse_growth("auto"), Ok(Growth::Auto));
        assert!(parse_growth("fast").unwrap_err().starts_with("expected an annual growth rate"));
    }
}
