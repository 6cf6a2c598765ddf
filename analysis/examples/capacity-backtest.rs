//! Backtest of `perfctl capacity --growth auto` on real public series
//! (`fixtures/capacity/backtest/`, see its README): hold out each series' last 12 months,
//! project the peak of that year from the rest, and compare with what happened — and with a
//! naive "last value × last year's growth" and a linear extrapolation (Prometheus's
//! `predict_linear` over the last year).
//!
//! ```sh
//! cargo run --release -p perfanalysis --example capacity-backtest
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::path::Path;

use perfanalysis::capacity::model::{fit_growth, grow, linear_extrapolation, peak};

const DAY_MS: i64 = 86_400_000;
const YEAR_MS: i64 = 365 * DAY_MS + DAY_MS / 4;

fn load(path: &Path) -> anyhow::Result<Vec<(i64, f64)>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let (d, v) =
            line.split_once(',').ok_or_else(|| anyhow::anyhow!("{}:{}: expected date,value", path.display(), i + 1))?;
        let t = humantime::parse_rfc3339_weak(&format!("{d}T00:00:00Z"))
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
        let ms = t.duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
        out.push((ms, v.trim().parse::<f64>()?));
    }
    Ok(out)
}

fn err(pred: f64, actual: f64) -> String {
    format!("{:+.1} %", (pred / actual - 1.0) * 100.0)
}

fn main() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/capacity/backtest");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    println!(
        "{:<24} {:>9} {:>5} | {:>8} {:>8} {:>17} {:>7} | {:>8} {:>8} | {:>8} {:>8}",
        "series", "actual", "base", "auto", "error", "range", "covers", "naive", "error", "linear", "error"
    );
    let (mut abs_auto, mut abs_naive, mut abs_linear, mut covered, mut n) = (0.0, 0.0, 0.0, 0, 0);
    for window_days in [30i64, 365] {
        for f in &files {
            let series = load(f)?;
            let end = series.last().map_or(0, |p| p.0);
            let cutoff = end - YEAR_MS;
            let train: Vec<(i64, f64)> = series.iter().copied().filter(|p| p.0 <= cutoff).collect();
            let Some((_, actual)) = peak(&series, cutoff + 1, end + 1) else { continue };
            let Some((_, base)) = peak(&train, cutoff - window_days * DAY_MS + 1, cutoff + 1) else { continue };
            let fit = fit_growth(&train).map_err(|e| anyhow::anyhow!("{}: {e:?}", f.display()))?;
            let ours = grow(base, fit.rate, 12.0);
            let (lo, hi) = (grow(base, fit.low, 12.0), grow(base, fit.high, 12.0));
            // Naive: the last value, grown by what the last year grew.
            let last = train.last().map_or(0.0, |p| p.1);
            let year_ago = train.iter().rev().find(|p| p.0 <= cutoff - YEAR_MS).map_or(last, |p| p.1);
            let naive = last * (last / year_ago);
            let last_year: Vec<(i64, f64)> = train.iter().copied().filter(|p| p.0 > cutoff - YEAR_MS).collect();
            let linear = linear_extrapolation(&last_year, YEAR_MS).unwrap_or(last);
            let covers = (lo..=hi).contains(&actual);
            println!(
                "{:<24} {:>9.1} {:>4}d | {:>8.1} {:>8} {:>8.1}–{:<8.1} {:>7} | {:>8.1} {:>8} | {:>8.1} {:>8}",
                f.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned()),
                actual,
                window_days,
                ours,
                err(ours, actual),
                lo,
                hi,
                if covers { "yes" } else { "no" },
                naive,
                err(naive, actual),
                linear,
                err(linear, actual)
            );
            abs_auto += (ours / actual - 1.0).abs();
            abs_naive += (naive / actual - 1.0).abs();
            abs_linear += (linear / actual - 1.0).abs();
            covered += usize::from(covers);
            n += 1;
        }
    }
    let n = n.max(1) as f64;
    println!(
        "\nmean absolute error of the projected peak: auto {:.1} %, naive {:.1} %, linear {:.1} %; auto's range covered the actual peak in {covered} of {}",
        abs_auto / n * 100.0,
        abs_naive / n * 100.0,
        abs_linear / n * 100.0,
        n as usize
    );
    Ok(())
}
