//! Capacity that knows the calendar: monthly peaks, a yearly profile, and growth measured
//! year over year, so a seasonal slope is never mistaken for growth.
//!
//! From a history of `(ms, value)` points (hourly means from the store, or monthly values in
//! the backtest):
//!
//! 1. **Monthly peaks** `M[k]` per calendar month `k` (UTC).
//! 2. **Growth**, year over year: the trimmed mean `ĝ` of `r[k] = ln(M[k] / M[k−12])` over
//!    every month present in both years (one pair with 13 months of history, twelve with 24).
//!    A given rate replaces it for the projection only: the profile is measured with `ĝ`.
//! 3. **The yearly profile**: each month's peak brought to today's level,
//!    `d[k] = M[k] · e^{ĝ·(now − k)/12}`, averaged per calendar month: `L[c]`.
//! 4. **Seasonality** is taken as real when the profile's peak month stands above the mean
//!    (amplitude ≥ 5 %) and, with two years, both years agree (correlation of their profiles
//!    ≥ 0.5); with one year only, an amplitude of 15 % is needed.
//! 5. **Projection**, month `j` ahead of calendar month `c(j)`: `L[c(j)] · e^{φĝ·j/12}` with a
//!    profile; otherwise the last 365 days' peak (brought to today's level) grown the same way.
//!    A measured growth is damped (`φ` = [`DAMPING`]); a given one is not.
//! 6. **The range** is an 80 % interval `P · e^{±z·κ·σ}`: `σ` from the scatter of the yearly
//!    ratios (the growth's own error, the profile's, and the next year's peak's own noise),
//!    `κ` and a floor calibrated on the public backtest so that the range covers the actual
//!    12-month peak in 75–90 % of cases (see `examples/capacity-seasonal-backtest.rs`).

/// A calendar month as one number: `year · 12 + month − 1` (UTC).
pub type MonthIndex = i32;

/// Two-sided 80 %: the normal distribution's 90th percentile.
const Z80: f64 = 1.2816;
/// Widening of the model's own error estimate, and the smallest log error it may claim:
/// calibrated on the public backtest (12 series, 239 rolling origins): the 80 % range covers
/// the actual 12-month peak in 80 % of cases (series mean; 85 % pooled), median width ×1.14.
/// With 1.0 and 0.03 it covered 65 %.
pub const KAPPA: f64 = 1.75;
/// See [`KAPPA`].
pub const SIGMA_FLOOR: f64 = 0.04;
/// The share of the measured growth carried into the projection (a damped trend, as
/// Holt-Winters damps): one or two years of history measure growth noisily, and on the
/// backtest half of it projected better than all of it (mean error 5.7 % against 6.3 %; 0.75:
/// 5.9 %). A given `--growth` is projected in full.
pub const DAMPING: f64 = 0.5;

/// The calendar month of a Unix-ms time.
pub fn month_of(ms: i64) -> MonthIndex {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => {
            let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
            i32::from(d.year()) * 12 + i32::from(d.month()) - 1
        }
        Err(_) => 0,
    }
}

/// The first millisecond of a calendar month.
pub fn month_start_ms(k: MonthIndex) -> i64 {
    let (y, m) = (k.div_euclid(12), k.rem_euclid(12) + 1);
    jiff::civil::date(y as i16, m as i8, 1)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_or(0, |z| z.timestamp().as_millisecond())
}

/// `2026-12`.
pub fn month_label(k: MonthIndex) -> String {
    format!("{:04}-{:02}", k.div_euclid(12), k.rem_euclid(12) + 1)
}

/// `December`.
pub fn month_name(k: MonthIndex) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    NAMES[k.rem_euclid(12) as usize]
}

/// The peak of each calendar month with data: `(month, peak)`, in order.
pub fn monthly_peaks(points: &[(i64, f64)]) -> Vec<(MonthIndex, f64)> {
    let mut out: Vec<(MonthIndex, f64)> = Vec::new();
    for &(t, v) in points {
        if !v.is_finite() {
            continue;
        }
        let k = month_of(t);
        match out.last_mut() {
            Some((m, p)) if *m == k => *p = p.max(v),
            _ => out.push((k, v)),
        }
    }
    out.retain(|p| p.1 > 0.0);
    out
}

/// Which model a projection used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Growth year over year, with the yearly profile when one is seen (13 months or more).
    YearOverYear,
}

/// One projected month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projected {
    /// Months ahead (1…).
    pub ahead: u32,
    /// Its calendar month.
    pub month: MonthIndex,
    /// The projected peak.
    pub peak: f64,
    /// Low end of the 80 % range.
    pub low: f64,
    /// High end of the 80 % range.
    pub high: f64,
}

/// A seasonal projection.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// The model.
    pub model: Model,
    /// Annual growth measured year over year (or given).
    pub growth: f64,
    /// Annual growth carried into the projection ([`DAMPING`] of a measured one).
    pub projected_growth: f64,
    /// The yearly profile, January first, as factors on the year's mean level (None: no
    /// seasonality seen).
    pub profile: Option<[f64; 12]>,
    /// Month pairs a year apart the growth was measured on.
    pub pairs: usize,
    /// Month by month.
    pub months: Vec<Projected>,
    /// Log standard error of a projected peak a year out (before the 80 % factor).
    pub sigma: f64,
}

impl Forecast {
    /// The highest projected month within the first `n` months: `(peak, low, high)`.
    pub fn peak_within(&self, n: u32) -> Option<(f64, f64, f64)> {
        let best = self.months.iter().filter(|m| m.ahead <= n).max_by(|a, b| a.peak.total_cmp(&b.peak))?;
        let low = self.months.iter().filter(|m| m.ahead <= n).map(|m| m.low).fold(f64::NEG_INFINITY, f64::max);
        let high = self.months.iter().filter(|m| m.ahead <= n).map(|m| m.high).fold(f64::NEG_INFINITY, f64::max);
        Some((best.peak, low, high))
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

fn corr(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va <= 0.0 || vb <= 0.0 { 0.0 } else { cov / (va * vb).sqrt() }
}

/// Project `horizon` months after month `now` from monthly peaks (at most the last 24 are
/// used), with growth fitted year over year or `given` (annual rate). None with fewer than 13
/// months, or no month a year apart.
pub fn forecast(peaks: &[(MonthIndex, f64)], now: MonthIndex, horizon: u32, given: Option<f64>) -> Option<Forecast> {
    let recent: Vec<(MonthIndex, f64)> = peaks.iter().copied().filter(|p| p.0 > now - 24 && p.0 <= now).collect();
    let at = |k: MonthIndex| recent.iter().find(|p| p.0 == k).map(|p| p.1);
    let mut ratios: Vec<f64> = recent.iter().filter_map(|&(k, v)| at(k - 12).map(|old| (v / old).ln())).collect();
    if ratios.is_empty() {
        return None;
    }
    let pairs = ratios.len();
    ratios.sort_by(f64::total_cmp);
    // Trimmed mean: one month at each end once there are ten pairs or more.
    let trim = if pairs >= 10 { 1 } else { 0 };
    let fitted = mean(&ratios[trim..pairs - trim]);
    // The profile is measured with the growth the data show; a given rate only projects.
    let g = fitted;
    let g_ahead = match given {
        Some(r) => (1.0 + r).ln(),
        None => DAMPING * fitted,
    };
    // Each month brought to today's level, then averaged per calendar month.
    let level = |k: MonthIndex, v: f64| v * (g * f64::from(now - k) / 12.0).exp();
    let mut by_month: [Vec<f64>; 12] = Default::default();
    for &(k, v) in &recent {
        by_month[k.rem_euclid(12) as usize].push(level(k, v));
    }
    let all: Vec<f64> = recent.iter().map(|&(k, v)| level(k, v)).collect();
    let overall = mean(&all);
    let l: Vec<f64> = by_month.iter().map(|v| if v.is_empty() { overall } else { mean(v) }).collect();
    let amplitude = l.iter().copied().fold(0.0, f64::max) / overall - 1.0;
    // With two years, both must show the same shape.
    let year =
        |from: MonthIndex| -> Option<Vec<f64>> { (from..from + 12).map(|k| at(k).map(|v| level(k, v))).collect() };
    let (first, second) = (year(now - 23), year(now - 11));
    let seasonal = match (first, second) {
        (Some(a), Some(b)) => amplitude >= 0.05 && corr(&a, &b) >= 0.5,
        _ => amplitude >= 0.15,
    };
    let profile = seasonal.then(|| std::array::from_fn(|c| l[c] / overall));
    // The last 365 days' peak, at today's level, when there is no profile.
    let base = recent.iter().filter(|p| p.0 > now - 12).map(|&(k, v)| level(k, v)).fold(0.0, f64::max);
    let sigma_r = sd(&ratios);
    let years = (recent.len() as f64 / 12.0).max(1.0);
    // Monthly ratios a year apart are correlated: count three months as one observation.
    let n_eff = (pairs as f64 / 3.0).max(1.0);
    let months = (1..=horizon)
        .map(|j| {
            let k = now + j as i32;
            let level_now = if seasonal { l[k.rem_euclid(12) as usize] } else { base };
            let peak = level_now * (g_ahead * f64::from(j) / 12.0).exp();
            let t = f64::from(j) / 12.0;
            let growth_err = if given.is_some() { 0.0 } else { sigma_r * t / n_eff.sqrt() };
            let s2 = growth_err.powi(2) + sigma_r.powi(2) * (0.5 / years + 0.5 * t.min(1.0));
            let s = (KAPPA * s2.sqrt()).max(SIGMA_FLOOR);
            Projected { ahead: j, month: k, peak, low: peak * (-Z80 * s).exp(), high: peak * (Z80 * s).exp() }
        })
        .collect();
    Some(Forecast {
        model: Model::YearOverYear,
        growth: given.unwrap_or(g.exp() - 1.0),
        projected_growth: g_ahead.exp() - 1.0,
        profile,
        pairs,
        months,
        sigma: sigma_r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two years of monthly peaks: a December high of `dec`× the rest, growing `g` a year.
    fn december(g: f64, dec: f64, now: MonthIndex) -> Vec<(MonthIndex, f64)> {
        (now - 23..=now)
            .map(|k| {
                let season = if k.rem_euclid(12) == 11 { dec } else { 1.0 };
                (k, 100.0 * (1.0 + g).powf(f64::from(k - now) / 12.0) * season)
            })
            .collect()
    }

    #[test]
    fn calendar_months_round_trip() {
        let k = month_of(1_795_392_000_000); // 2026-11-23
        assert_eq!(month_label(k), "2026-11");
        assert_eq!(month_name(k), "November");
        assert_eq!(month_of(month_start_ms(k)), k);
        assert_eq!(month_of(month_start_ms(k) - 1), k - 1);
        let pts = [(month_start_ms(k), 1.0), (month_start_ms(k) + 5, 3.0), (month_start_ms(k + 1), 2.0)];
        assert_eq!(monthly_peaks(&pts), [(k, 3.0), (k + 1, 2.0)]);
    }

    #[test]
    fn a_december_peak_is_projected_in_december_by_hand() {
        // Now is 2026-11; December is 1.4× the other months; +20 %/year exactly.
        let now = 2026 * 12 + 10;
        let f = forecast(&december(0.2, 1.4, now), now, 12, None).unwrap();
        assert!((f.growth - 0.2).abs() < 1e-9, "{f:?}");
        assert_eq!(f.pairs, 12);
        let p = f.profile.unwrap();
        assert!((p[11] / p[0] - 1.4).abs() < 1e-9, "December stands 1.4× above January");
        // Month 1 ahead is December 2026: 100 · 1.4 · 1.2^(φ/12), the measured growth damped.
        let grown = |j: f64| 1.2f64.powf(DAMPING * j / 12.0);
        assert_eq!(month_name(f.months[0].month), "December");
        assert!((f.months[0].peak - 140.0 * grown(1.0)).abs() < 1e-9, "{:?}", f.months[0]);
        // January 2027 drops back to 100 · 1.2^(2φ/12).
        assert!((f.months[1].peak - 100.0 * grown(2.0)).abs() < 1e-9);
        // The 12-month peak is December, not month 12 (November 2027).
        let (peak, low, high) = f.peak_within(12).unwrap();
        assert_eq!(peak, f.months[0].peak);
        assert!(low < peak && peak < high);
    }

    #[test]
    fn a_given_rate_keeps_the_profile() {
        let now = 2026 * 12 + 10;
        let f = forecast(&december(0.2, 1.4, now), now, 12, Some(0.5)).unwrap();
        assert!((f.growth - 0.5).abs() < 1e-12 && (f.projected_growth - 0.5).abs() < 1e-12, "given: in full");
        assert!(f.profile.is_some());
        assert_eq!(month_name(f.months[0].month), "December");
    }

    #[test]
    fn without_a_season_the_last_years_peak_grows() {
        let now = 2026 * 12 + 10;
        // Flat with noise that differs between the years: no consistent profile.
        let peaks: Vec<(MonthIndex, f64)> =
            (now - 23..=now).map(|k| (k, 100.0 + if (k * 7) % 5 == 0 { 3.0 } else { 0.0 })).collect();
        let f = forecast(&peaks, now, 12, Some(0.0)).unwrap();
        assert_eq!(f.profile, None);
        assert!(f.months.iter().all(|m| (m.peak - 103.0).abs() < 0.1), "{:?}", f.months);
        assert!(forecast(&peaks[12..], now, 12, None).is_none(), "12 months: no month a year apart");
    }
}
