//! The seasonal capacity projection against baselines on twelve public monthly series with a
//! yearly season (`fixtures/capacity/seasonal/`, from PyPI packages; see its README): rolling
//! origins a year apart, 24 months of history each, the peak of the next 12 months projected.
//! Holt-Winters (statsmodels, damped additive trend, multiplicative season) is read from
//! `holt-winters.csv`, which `holt_winters.py` writes for the same origins.
//!
//!     cargo run --release -p perfanalysis --example capacity-seasonal-backtest

#![allow(clippy::unwrap_used, clippy::expect_used)] // an example: fail loudly

use std::collections::BTreeMap;
use std::path::Path;

use perfanalysis::capacity::backtest::{Case, cases, error, parse_monthly_csv};
use perfanalysis::capacity::seasonal::month_label;

use perfanalysis::capacity::backtest::SEASONAL_SERIES as SERIES;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

#[derive(Default, Clone)]
struct Score {
    ours: Vec<f64>,
    naive: Vec<f64>,
    linear: Vec<f64>,
    hw: Vec<f64>,
    covered: Vec<f64>,
    width: Vec<f64>,
}

impl Score {
    fn add(&mut self, c: &Case, hw: Option<f64>) {
        self.ours.push(error(c.ours.0, c.actual));
        self.naive.push(c.naive.map_or(f64::NAN, |n| error(n, c.actual)));
        self.linear.push(c.linear.map_or(f64::NAN, |n| error(n, c.actual)));
        self.hw.push(hw.map_or(f64::NAN, |h| error(h, c.actual)));
        self.covered.push(if c.covered() { 1.0 } else { 0.0 });
        self.width.push(c.ours.2 / c.ours.1);
    }
    fn row(&self) -> [f64; 6] {
        [
            mean(&self.ours),
            mean(&self.naive),
            mean(&self.linear),
            mean(&self.hw),
            mean(&self.covered),
            median(self.width.clone()),
        ]
    }
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/capacity/seasonal");
    let hw: BTreeMap<(String, String), f64> = std::fs::read_to_string(dir.join("holt-winters.csv"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some(((f.first()?.to_string(), f.get(1)?.to_string()), f.get(2)?.parse().ok()?))
        })
        .collect();
    println!("| series | class | origins | ours | seasonal naive | linear | Holt-Winters | coverage | median width |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut per_series: Vec<(&str, [f64; 6])> = Vec::new();
    let mut all_cases = Score::default();
    for (name, class) in SERIES {
        let text = std::fs::read_to_string(dir.join(format!("{name}.csv"))).unwrap();
        let series = parse_monthly_csv(&text).unwrap();
        let mut s = Score::default();
        let cs = cases(&series, 24, 12, 12);
        for c in &cs {
            let h = hw.get(&(name.to_string(), month_label(c.origin))).copied();
            s.add(c, h);
            all_cases.add(c, h);
        }
        let r = s.row();
        println!(
            "| {name} | {class} | {} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.0} % | ×{:.2} |",
            cs.len(),
            r[0] * 100.0,
            r[1] * 100.0,
            r[2] * 100.0,
            r[3] * 100.0,
            r[4] * 100.0,
            r[5]
        );
        per_series.push((class, r));
    }
    // Each series counts once (a long series has many more origins).
    let mut classes: BTreeMap<&str, Vec<[f64; 6]>> = BTreeMap::new();
    for (class, r) in &per_series {
        classes.entry(class).or_default().push(*r);
    }
    println!("\n| class | series | ours | seasonal naive | linear | Holt-Winters | coverage |");
    println!("|---|---|---|---|---|---|---|");
    let col = |rows: &[[f64; 6]], i: usize| mean(&rows.iter().map(|r| r[i]).collect::<Vec<_>>()) * 100.0;
    for (class, rows) in &classes {
        println!(
            "| {class} | {} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.0} % |",
            rows.len(),
            col(rows, 0),
            col(rows, 1),
            col(rows, 2),
            col(rows, 3),
            col(rows, 4)
        );
    }
    let rows: Vec<[f64; 6]> = per_series.iter().map(|r| r.1).collect();
    println!(
        "| **all (series mean)** | {} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.0} % |",
        rows.len(),
        col(&rows, 0),
        col(&rows, 1),
        col(&rows, 2),
        col(&rows, 3),
        col(&rows, 4)
    );
    let a = all_cases.row();
    println!(
        "\nAll {} origins pooled: ours {:.1} %, seasonal naive {:.1} %, linear {:.1} %, Holt-Winters {:.1} %; \
         the 80 % range covered the actual peak in {:.0} % of them, median width ×{:.2} (high/low).",
        all_cases.ours.len(),
        a[0] * 100.0,
        a[1] * 100.0,
        a[2] * 100.0,
        a[3] * 100.0,
        a[4] * 100.0,
        a[5]
    );
}
