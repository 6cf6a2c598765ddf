//! The projection itself, pure: from a usage history to a peak, a growth rate (given or fitted)
//! and the months until the target and the capacity are crossed. [`super::compute`] feeds it
//! hourly means from the store; the backtest example feeds it public monthly and daily series.
//!
//! * Growth `g` is annual, compounded monthly: after `m` months usage is `peak · (1+g)^(m/12)`.
//! * The base is the recent **peak** (by default the highest hourly mean of the last 30 days),
//!   never the last value or the mean: seasonal workloads make the peak the only safe base.
//! * `--growth auto` fits `ln(daily peak)` against time by least squares weighted towards recent
//!   days (half-life: a third of the history, at least 7 days); from two weeks of history on,
//!   each day's trailing 7-day peak, so quiet weekends do not tilt the fit. The range is two
//!   standard errors of that slope (and, with 180 days or more, the slopes of the last third
//!   and two thirds), widened by the history's scatter around its trend (two standard
//!   deviations of the log residuals, as a factor on the year). It needs 7 days of
//!   history; a few weeks cannot show yearly seasonality, and the output says so.

const DAY_MS: i64 = 86_400_000;
const YEAR_DAYS: f64 = 365.25;

/// A fitted growth rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Annual growth (0.3 = +30 %/year).
    pub rate: f64,
    /// Low end of the range.
    pub low: f64,
    /// High end of the range.
    pub high: f64,
    /// Days of history used.
    pub days: f64,
}

/// Why no growth could be fitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoFit {
    /// Less than 7 days of history.
    TooShort {
        /// Days there were.
        days: u32,
    },
    /// Usage is zero (or missing) on most days.
    NoUsage,
}

/// Daily peaks `(day start ms, max value)` of a series, days with no positive value dropped.
pub fn daily_peaks(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    for &(t, v) in points {
        let day = t.div_euclid(DAY_MS) * DAY_MS;
        match out.last_mut() {
            Some((d, m)) if *d == day => *m = m.max(v),
            _ => out.push((day, v)),
        }
    }
    out.retain(|p| p.1 > 0.0 && p.1.is_finite());
    out
}

/// Weighted least squares of `y` on `x`: (slope, standard error of the slope, weighted
/// standard deviation of the residuals).
fn wls(xs: &[f64], ys: &[f64], ws: &[f64]) -> Option<(f64, f64, f64)> {
    let sw: f64 = ws.iter().sum();
    if xs.len() < 3 || sw <= 0.0 {
        return None;
    }
    let mx = xs.iter().zip(ws).map(|(x, w)| x * w).sum::<f64>() / sw;
    let my = ys.iter().zip(ws).map(|(y, w)| y * w).sum::<f64>() / sw;
    let sxx: f64 = xs.iter().zip(ws).map(|(x, w)| w * (x - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = xs.iter().zip(ys).zip(ws).map(|((x, y), w)| w * (x - mx) * (y - my)).sum();
    let b = sxy / sxx;
    let a = my - b * mx;
    let rss: f64 = xs.iter().zip(ys).zip(ws).map(|((x, y), w)| w * (y - a - b * x).powi(2)).sum();
    // Effective number of observations under the weights.
    let n_eff = sw.powi(2) / ws.iter().map(|w| w * w).sum::<f64>();
    let se = if n_eff > 2.0 { (rss / sw * n_eff / (n_eff - 2.0) / sxx * sw / n_eff).sqrt() } else { f64::INFINITY };
    Some((b, se, (rss / sw).sqrt()))
}

/// Fit annual growth to a history of `(ms, value)` points (any spacing; daily peaks are used).
pub fn fit_growth(points: &[(i64, f64)]) -> Result<Fit, NoFit> {
    let mut peaks = daily_peaks(points);
    let (Some(first), Some(last)) = (points.first(), points.last()) else { return Err(NoFit::TooShort { days: 0 }) };
    let span_days = (last.0 - first.0) as f64 / DAY_MS as f64;
    if span_days < 7.0 {
        return Err(NoFit::TooShort { days: span_days.max(0.0) as u32 });
    }
    // Weekly cycles (quiet weekends) would make the fit depend on the weekday the history ends
    // on: with two weeks or more, fit each day's trailing 7-day peak instead.
    let weekly = span_days >= 14.0;
    if weekly {
        let raw = peaks.clone();
        peaks = raw
            .iter()
            .filter(|p| p.0 - raw[0].0 >= 6 * DAY_MS)
            .map(|&(t, _)| {
                (t, raw.iter().filter(|q| q.0 <= t && q.0 > t - 7 * DAY_MS).map(|q| q.1).fold(0.0, f64::max))
            })
            .collect();
    }
    if peaks.len() < 4 {
        return Err(NoFit::NoUsage);
    }
    let t_end = peaks.last().map_or(0, |p| p.0);
    let xs: Vec<f64> = peaks.iter().map(|p| (p.0 - t_end) as f64 / DAY_MS as f64).collect();
    let ys: Vec<f64> = peaks.iter().map(|p| p.1.ln()).collect();
    let half_life = (span_days / 3.0).max(7.0);
    let ws: Vec<f64> = xs.iter().map(|x| 0.5f64.powf(-x / half_life)).collect();
    let (b, se, sd) = wls(&xs, &ys, &ws).ok_or(NoFit::NoUsage)?;
    // Trailing 7-day peaks are correlated over a week: count a week as one observation.
    let se = if weekly { se * 7f64.sqrt() } else { se };
    let annual = |slope: f64| (slope * YEAR_DAYS).exp() - 1.0;
    let mut slopes = vec![b - 2.0 * se, b + 2.0 * se];
    // Slopes over shorter spans, annualized, only when those spans are long enough (60 days)
    // not to turn one bad week into an absurd yearly rate.
    let spans: &[f64] = if span_days >= 180.0 { &[1.0 / 3.0, 2.0 / 3.0, 1.0] } else { &[1.0] };
    for &frac in spans {
        let from = xs.len() - ((xs.len() as f64 * frac).ceil() as usize).clamp(3.min(xs.len()), xs.len());
        let ones = vec![1.0; xs.len() - from];
        if let Some((s, _, _)) = wls(&xs[from..], &ys[from..], &ones) {
            slopes.push(s);
        }
    }
    let lo = slopes.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = slopes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // A year out, the peak also scatters around the trend as the history did: widen the range
    // by two standard deviations of the log residuals.
    let scatter = (2.0 * sd).exp();
    Ok(Fit {
        rate: annual(b),
        low: (1.0 + annual(lo)) / scatter - 1.0,
        high: (1.0 + annual(hi)) * scatter - 1.0,
        days: span_days,
    })
}

/// `peak · (1+g)^(m/12)`.
pub fn grow(peak: f64, g: f64, months: f64) -> f64 {
    peak * (1.0 + g).powf(months / 12.0)
}

/// When a threshold is crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// The peak is already at or past it.
    Already,
    /// In this many months (the first whole month at or past it).
    In(u32),
    /// Not within the horizon (or never: flat or falling usage).
    NotWithin,
}

/// The first whole month `m` (1..=horizon) at which `peak · (1+g)^(m/12) ≥ threshold`.
pub fn crossing(peak: f64, g: f64, threshold: f64, horizon: u32) -> Crossing {
    if peak >= threshold {
        return Crossing::Already;
    }
    if g <= 0.0 || peak <= 0.0 {
        return Crossing::NotWithin;
    }
    let m = (12.0 * (threshold / peak).ln() / (1.0 + g).ln()).ceil().max(1.0);
    // Guard against rounding just below the threshold.
    let m = if grow(peak, g, m) + 1e-12 * threshold < threshold { m + 1.0 } else { m };
    if m <= f64::from(horizon) { Crossing::In(m as u32) } else { Crossing::NotWithin }
}

/// Instances of `per_instance` capacity needed to carry `load` at `target` utilization, plus
/// `redundancy`, and never fewer than 2.
pub fn instances(load: f64, per_instance: f64, target: f64, redundancy: u32) -> u32 {
    if per_instance <= 0.0 || target <= 0.0 {
        return 2;
    }
    let n = (load / (per_instance * target) - 1e-9).ceil().max(0.0) as u32;
    n.saturating_add(redundancy).max(2)
}

/// The highest value in `(from, to]` and its time.
pub fn peak(points: &[(i64, f64)], from_ms: i64, to_ms: i64) -> Option<(i64, f64)> {
    points.iter().filter(|p| p.0 >= from_ms && p.0 < to_ms && p.1.is_finite()).copied().fold(None, |acc, p| match acc {
        Some((_, v)) if v >= p.1 => acc,
        _ => Some(p),
    })
}

/// Least-squares line through the points, evaluated `ahead_ms` after the last one (what
/// Prometheus's `predict_linear` does), for comparison in the backtest.
pub fn linear_extrapolation(points: &[(i64, f64)], ahead_ms: i64) -> Option<f64> {
    let last = points.last()?.0;
    let xs: Vec<f64> = points.iter().map(|p| (p.0 - last) as f64).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let ones = vec![1.0; xs.len()];
    let (b, _, _) = wls(&xs, &ys, &ones)?;
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    Some(my + b * (ahead_ms as f64 - mx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(n: i64, f: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
        (0..n).map(|d| (d * DAY_MS, f(d))).collect()
    }

    #[test]
    fn compound_growth_is_recovered() {
        // +30 %/year, compounded daily-smooth: ln grows by ln(1.3)/365.25 a day.
        let h = daily(120, |d| 10.0 * 1.3f64.powf(d as f64 / YEAR_DAYS));
        let f = fit_growth(&h).unwrap();
        assert!((f.rate - 0.3).abs() < 1e-9, "{f:?}");
        assert!(f.low <= f.rate && f.rate <= f.high);
        assert!((f.high - f.low) < 1e-6, "a perfect history has a tight range: {f:?}");
    }

    #[test]
    fn flat_and_short_histories() {
        let f = fit_growth(&daily(60, |_| 5.0)).unwrap();
        assert!(f.rate.abs() < 1e-12);
        assert_eq!(crossing(5.0, f.rate, 7.0, 12), Crossing::NotWithin);
        assert_eq!(fit_growth(&daily(5, |d| d as f64 + 1.0)), Err(NoFit::TooShort { days: 4 }));
        assert_eq!(fit_growth(&daily(30, |_| 0.0)), Err(NoFit::NoUsage));
    }

    #[test]
    fn crossings_and_instances_by_hand() {
        // 2 cores at peak, 4 available, +30 %/year: 70 % (2.8) after 12·ln(1.4)/ln(1.3) = 15.4
        // months → month 16; 100 % after 12·ln(2)/ln(1.3) = 31.7 → month 32.
        assert_eq!(crossing(2.0, 0.3, 2.8, 24), Crossing::In(16));
        assert_eq!(crossing(2.0, 0.3, 2.8, 12), Crossing::NotWithin);
        assert_eq!(crossing(2.0, 0.3, 4.0, 36), Crossing::In(32));
        assert_eq!(crossing(3.0, 0.3, 2.8, 12), Crossing::Already);
        assert!((grow(2.0, 0.3, 12.0) - 2.6).abs() < 1e-12);
        // 2.6 cores at 70 % of 4-core instances: ⌈0.93⌉ = 1, +1 redundancy = 2.
        assert_eq!(instances(2.6, 4.0, 0.7, 1), 2);
        assert_eq!(instances(20.0, 4.0, 0.7, 1), 9); // ⌈7.14⌉ + 1
        assert_eq!(instances(0.0, 4.0, 0.7, 0), 2);
    }

    #[test]
    fn peaks_and_lines() {
        let h = vec![(0, 1.0), (10, 5.0), (20, 3.0), (30, 5.0)];
        assert_eq!(peak(&h, 0, 40), Some((10, 5.0)));
        assert_eq!(peak(&h, 15, 40), Some((30, 5.0)));
        assert_eq!(linear_extrapolation(&[(0, 1.0), (10, 2.0), (20, 3.0)], 10), Some(4.0));
        assert_eq!(daily_peaks(&[(0, 1.0), (3_600_000, 4.0), (DAY_MS, 2.0)]), vec![(0, 4.0), (DAY_MS, 2.0)]);
    }
}
