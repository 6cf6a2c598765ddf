//! Backtests of the capacity projection: at each origin, hold out the months after it,
//! project from the months before, and compare the projected peak of the held-out months with
//! the actual one. Used by `perfctl capacity --backtest` on a store and by
//! `examples/capacity-seasonal-backtest.rs` on public series, with two baselines:
//!
//! * **seasonal naive**: the trailing 12 months' peak × the ratio of that peak to the previous
//!   12 months' peak;
//! * **linear**: a least-squares line through the last 12 monthly peaks, its highest value over
//!   the horizon (Prometheus's `predict_linear` over the last year).

use super::seasonal::{MonthIndex, forecast};

/// The public monthly series of `fixtures/capacity/seasonal/` (file name without `.csv`) and
/// their class, as the seasonal backtest example and its test read them.
pub const SEASONAL_SERIES: [(&str, &str); 12] = [
    ("air-passengers", "transport"),
    ("uk-driver-deaths", "transport"),
    ("us-accidental-deaths", "transport"),
    ("wine-sales", "retail"),
    ("beer-production", "retail"),
    ("uk-gas", "energy"),
    ("co2", "energy"),
    ("electrical-equipment", "industry"),
    ("wool-yarn", "industry"),
    ("johnson-johnson", "payments"),
    ("uk-lung-deaths", "health"),
    ("nottingham-temperature", "climate"),
];

/// One origin of a backtest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Case {
    /// The last month of history.
    pub origin: MonthIndex,
    /// The actual peak of the held-out months.
    pub actual: f64,
    /// Ours: the projected peak and its 80 % range.
    pub ours: (f64, f64, f64),
    /// Seasonal naive.
    pub naive: Option<f64>,
    /// Linear over the last year.
    pub linear: Option<f64>,
}

impl Case {
    /// Whether our range holds the actual peak.
    pub fn covered(&self) -> bool {
        self.ours.1 <= self.actual && self.actual <= self.ours.2
    }
}

/// |projected − actual| / actual.
pub fn error(projected: f64, actual: f64) -> f64 {
    (projected - actual).abs() / actual
}

/// The trailing 12 months' peak × its ratio to the previous 12 months' peak.
pub fn seasonal_naive(history: &[(MonthIndex, f64)]) -> Option<f64> {
    let now = history.last()?.0;
    if history.first()?.0 > now - 23 {
        return None; // less than two years
    }
    let max_in = |from: MonthIndex, to: MonthIndex| {
        history
            .iter()
            .filter(|p| p.0 > from && p.0 <= to)
            .map(|p| p.1)
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
    };
    let (last, prev) = (max_in(now - 12, now)?, max_in(now - 24, now - 12)?);
    Some(last * last / prev)
}

/// A least-squares line through the last 12 monthly peaks, at its highest over `horizon`
/// months ahead.
pub fn linear(history: &[(MonthIndex, f64)], horizon: u32) -> Option<f64> {
    let now = history.last()?.0;
    let pts: Vec<(f64, f64)> = history.iter().filter(|p| p.0 > now - 12).map(|p| (f64::from(p.0 - now), p.1)).collect();
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let b = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
    let at = |x: f64| my + b * (x - mx);
    Some(at(1.0).max(at(f64::from(horizon))))
}

/// Every origin of `series` (monthly values, in order) with `history` months before it and
/// `horizon` after, `step` months apart, the last one as late as the data allows.
pub fn cases(series: &[(MonthIndex, f64)], history: usize, horizon: u32, step: usize) -> Vec<Case> {
    let h = horizon as usize;
    if series.len() < history + h {
        return Vec::new();
    }
    let last_origin = series.len() - h;
    let mut out = Vec::new();
    let mut o = last_origin;
    loop {
        let hist = &series[o - history..o];
        let future = &series[o..o + h];
        let now = hist[hist.len() - 1].0;
        let actual = future.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        if let Some(f) = forecast(hist, now, horizon, None)
            && let Some(ours) = f.peak_within(horizon)
        {
            out.push(Case { origin: now, actual, ours, naive: seasonal_naive(hist), linear: linear(hist, horizon) });
        }
        if o < history + step {
            break;
        }
        o -= step;
    }
    out.reverse();
    out
}

/// A backtest of one history: its last `held_out` months held out and projected from the
/// months before.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Holdout {
    /// Complete months of history the projection was made from.
    pub history_months: usize,
    /// Months held out.
    pub held_out: u32,
    /// The last month the projection saw, `2026-05`.
    pub origin: String,
    /// Projected peak of the held-out months.
    pub projected: f64,
    /// Its 80 % range.
    pub range: (f64, f64),
    /// What the held-out months' peak was.
    pub actual: f64,
    /// (projected − actual) / actual.
    pub error: f64,
    /// Whether the range held the actual peak.
    pub covered: bool,
    /// The seasonal-naive projection and its error (24 months before the origin needed).
    pub seasonal_naive: Option<(f64, f64)>,
    /// The linear projection and its error.
    pub linear: Option<(f64, f64)>,
}

/// Hold out the last `held_out` months of `peaks` (monthly peaks, in order; None: as many as
/// leave 13 months to project from, at most 12) and project them from the rest.
pub fn holdout(peaks: &[(MonthIndex, f64)], held_out: Option<u32>) -> Result<Holdout, String> {
    let n = peaks.len();
    let h = match held_out {
        Some(h) => h as usize,
        None => n.saturating_sub(13).min(12),
    };
    if h == 0 || n < h + 13 {
        return Err(format!(
            "{n} complete months of history: a backtest needs 13 months to project from plus the months held out \
             (14 at least)"
        ));
    }
    let (past, future) = peaks.split_at(n - h);
    let now = past[past.len() - 1].0;
    let f = forecast(past, now, h as u32, None).ok_or("no month a year apart to measure growth on")?;
    let (projected, low, high) = f.peak_within(h as u32).ok_or("nothing projected")?;
    let actual = future.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let rel = |p: f64| (p - actual) / actual;
    Ok(Holdout {
        history_months: past.len(),
        held_out: h as u32,
        origin: super::seasonal::month_label(now),
        projected,
        range: (low, high),
        actual,
        error: rel(projected),
        covered: low <= actual && actual <= high,
        seasonal_naive: seasonal_naive(past).map(|p| (p, rel(p))),
        linear: linear(past, h as u32).map(|p| (p, rel(p))),
    })
}

/// `YYYY-MM,value` lines (a header line is skipped) as monthly values.
pub fn parse_monthly_csv(text: &str) -> Result<Vec<(MonthIndex, f64)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some((m, v)) = line.split_once(',') else { continue };
        let parsed = (|| {
            let (y, mo) = m.trim().split_once('-')?;
            let (y, mo): (i32, i32) = (y.parse().ok()?, mo.parse().ok()?);
            Some(((y * 12 + mo - 1), v.trim().parse::<f64>().ok()?))
        })();
        match parsed {
            Some(p) => out.push(p),
            None if i == 0 => {} // header
            None => return Err(format!("line {}: expected YYYY-MM,value, got '{line}'", i + 1)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_by_hand() {
        // 24 months: the first year peaks at 10, the second at 12; a line 1, 2, … 12 over the
        // last year.
        let h: Vec<(MonthIndex, f64)> =
            (0..24).map(|k| (k, if k < 12 { if k == 5 { 10.0 } else { 5.0 } } else { f64::from(k - 11) })).collect();
        assert_eq!(seasonal_naive(&h), Some(12.0 * 12.0 / 10.0));
        assert!((linear(&h, 12).unwrap() - 24.0).abs() < 1e-9, "the line 1…12 continues to 24");
        let csv = "month,value\n2020-01,1.5\n2020-02,2\n";
        assert_eq!(parse_monthly_csv(csv).unwrap(), [(2020 * 12, 1.5), (2020 * 12 + 1, 2.0)]);
        assert!(parse_monthly_csv("month,value\n2020-1x,2\n").unwrap_err().starts_with("line 2"));
    }

    #[test]
    fn a_holdout_projects_the_held_out_months() {
        // 30 months with a December peak (150 against 100), flat: holding out the last 12 leaves
        // 18 to project from, and the held-out year's December is its peak.
        let s: Vec<(MonthIndex, f64)> = (0..30).map(|k| (k, if k % 12 == 11 { 150.0 } else { 100.0 })).collect();
        let h = holdout(&s, Some(12)).unwrap();
        assert_eq!((h.history_months, h.held_out, h.actual), (18, 12, 150.0));
        assert!((h.projected - 150.0).abs() < 1e-9 && h.covered && h.error.abs() < 1e-9, "{h:?}");
        let auto = holdout(&s, None).unwrap();
        assert_eq!((auto.history_months, auto.held_out), (18, 12));
        assert!(holdout(&s[..13], None).unwrap_err().contains("13 complete months"));
    }

    #[test]
    fn origins_step_back_from_the_end() {
        let s: Vec<(MonthIndex, f64)> = (0..60).map(|k| (k, 10.0 + f64::from(k))).collect();
        let c = cases(&s, 24, 12, 12);
        assert_eq!(c.iter().map(|c| c.origin).collect::<Vec<_>>(), [23, 35, 47]);
        assert_eq!(c[2].actual, 69.0);
    }
}
