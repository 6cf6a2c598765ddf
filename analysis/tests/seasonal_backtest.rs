//! The seasonal projection's targets on the public backtest (`fixtures/capacity/seasonal/`),
//! so a change that makes it worse fails here: better than the seasonal-naive baseline on
//! average and in every class, within 10 % of Holt-Winters or better, and an 80 % range that
//! holds the actual 12-month peak in 75–90 % of cases. The full table is
//! `examples/capacity-seasonal-backtest.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::collections::BTreeMap;
use std::path::Path;

use perfanalysis::capacity::backtest::{cases, error, parse_monthly_csv};
use perfanalysis::capacity::seasonal::month_label;

use perfanalysis::capacity::backtest::SEASONAL_SERIES as SERIES;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn the_seasonal_projection_meets_its_backtest_targets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/capacity/seasonal");
    let hw: BTreeMap<(String, String), f64> = std::fs::read_to_string(dir.join("holt-winters.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ((f[0].to_string(), f[1].to_string()), f[2].parse().unwrap())
        })
        .collect();
    // Per series: (class, ours, naive, Holt-Winters, coverage).
    let mut rows = Vec::new();
    for (name, class) in SERIES {
        let series = parse_monthly_csv(&std::fs::read_to_string(dir.join(format!("{name}.csv"))).unwrap()).unwrap();
        let cs = cases(&series, 24, 12, 12);
        assert!(cs.len() >= 3, "{name}: {} origins", cs.len());
        let ours: Vec<f64> = cs.iter().map(|c| error(c.ours.0, c.actual)).collect();
        let naive: Vec<f64> = cs.iter().map(|c| error(c.naive.unwrap(), c.actual)).collect();
        let holt: Vec<f64> =
            cs.iter().map(|c| error(hw[&(name.to_string(), month_label(c.origin))], c.actual)).collect();
        let covered: Vec<f64> = cs.iter().map(|c| if c.covered() { 1.0 } else { 0.0 }).collect();
        rows.push((class, mean(&ours), mean(&naive), mean(&holt), mean(&covered)));
    }
    let col = |rows: &[&(&str, f64, f64, f64, f64)], f: fn(&(&str, f64, f64, f64, f64)) -> f64| {
        mean(&rows.iter().map(|r| f(r)).collect::<Vec<_>>())
    };
    let all: Vec<_> = rows.iter().collect();
    let (ours, naive, holt, coverage) =
        (col(&all, |r| r.1), col(&all, |r| r.2), col(&all, |r| r.3), col(&all, |r| r.4));
    assert!(ours < naive, "mean error {ours} vs seasonal naive {naive}");
    assert!(ours <= holt * 1.1, "mean error {ours} vs Holt-Winters {holt}");
    assert!((0.75..=0.90).contains(&coverage), "coverage {coverage}");
    for (_, class) in SERIES {
        let these: Vec<_> = rows.iter().filter(|r| r.0 == class).collect();
        let (o, n) = (col(&these, |r| r.1), col(&these, |r| r.2));
        assert!(o < n, "{class}: {o} vs seasonal naive {n}");
    }
}
