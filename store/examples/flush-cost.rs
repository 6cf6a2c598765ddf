//! What one flush costs the writer as the open heads fill: `--series` series written every
//! `--step-ms` (the agent's flush interval) for an hour, timing each `Writer::write`.
//! The mix is the peers harness's with tags (60 % counters, 15 % gauges, 25 %
//! distributions of `--values` latencies each). Maintenance runs every simulated minute, as
//! in the agent (it folds the recent log into the heads). Prints the median flush time per
//! head fill, then all the writer's work (flushes and maintenance) per flush on average and
//! as a share of one core at that flush interval. `--direct` writes every flush to the heads
//! (no recent log), for a side-by-side run.
//!
//! ```sh
//! cargo run --release -p perfstore --example flush-cost -- --series 10000 --minutes 30
//! cargo run --release -p perfstore --example flush-cost -- --series 10000 --minutes 30 --direct
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::time::Instant;

use perfstore::{Distribution, Kind, Registration, Sample, SeriesKey, StoreOptions, Write, Writer};

const T0: i64 = 1_767_225_600_000;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("invalid value for '{name}': expected a whole number")))
        .unwrap_or(default)
}

fn main() {
    let series = arg("--series", 10_000) as usize;
    let minutes = arg("--minutes", 30);
    let step = arg("--step-ms", 1000) as i64;
    let values = arg("--values", 8) as usize;
    let direct = std::env::args().any(|a| a == "--direct");
    let dir = tempfile::tempdir().unwrap();
    let log_min_series = if direct { usize::MAX } else { StoreOptions::default().log_min_series };
    let opts = StoreOptions { max_series: 1 << 20, log_min_series, ..StoreOptions::default() };
    let mut w = Writer::open(dir.path().join("perf.db"), opts).unwrap();
    let kinds: Vec<Kind> = (0..series)
        .map(|i| match i % 20 {
            0..12 => Kind::Counter,
            12..15 => Kind::Gauge,
            _ => Kind::Distribution,
        })
        .collect();
    let keys: Vec<SeriesKey> = kinds
        .iter()
        .enumerate()
        .map(|(i, &k)| SeriesKey::new("bench", &format!("m{}", i % 100), k).label("t", &format!("v{}", i / 100)))
        .collect();
    let t = Instant::now();
    let ids: Vec<_> = w
        .register_all(&keys, T0)
        .unwrap()
        .into_iter()
        .map(|r| match r {
            Registration::Registered(id) => id,
            Registration::Rejected(r) => panic!("{r:?}"),
        })
        .collect();
    let register_ms = t.elapsed().as_secs_f64() * 1000.0;
    let steps = (minutes as i64 * 60_000 / step) as usize;
    let mut times = Vec::with_capacity(steps);
    let (mut maintenance_ms, mut next_maintenance) = (0.0, T0 + 60_000);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for s in 0..steps {
        let ts = T0 + s as i64 * step;
        let batch: Vec<Write> = ids
            .iter()
            .zip(&kinds)
            .map(|(&id, &k)| {
                let sample = match k {
                    Kind::Counter => Sample::Counter((1 + rnd(100)) as f64),
                    Kind::Gauge => {
                        let v = rnd(1000) as f64;
                        Sample::Gauge { last: v, min: v, max: v }
                    }
                    _ => {
                        let v: Vec<f64> = (0..values).map(|_| rnd(1000) as f64 * 0.001).collect();
                        Sample::Distribution(Box::new(Distribution::from_values(&v)))
                    }
                };
                Write { series: id, ts_ms: ts, sample }
            })
            .collect();
        let t = Instant::now();
        w.write(&batch).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if ts >= next_maintenance {
            next_maintenance += 60_000;
            let t = Instant::now();
            w.maintain(ts).unwrap();
            maintenance_ms += t.elapsed().as_secs_f64() * 1000.0;
        }
    }
    let mode = if direct { "heads rewritten every flush" } else { "recent log" };
    println!("{series} series, one flush every {step} ms, {values} values per distribution point, {mode}");
    println!(
        "registering them: {register_ms:.1} ms ({:.2} µs a series); the first flush: {:.1} ms",
        register_ms * 1000.0 / series as f64,
        times.first().copied().unwrap_or_default()
    );
    println!("{:>12} {:>16} {:>18}", "head fill", "median ms/flush", "µs per series");
    let mut at = 1;
    while at <= steps {
        let lo = at.saturating_sub(at / 4).max(1) - 1;
        let mut win: Vec<f64> = times[lo..at].to_vec();
        win.sort_by(f64::total_cmp);
        let med = win[win.len() / 2];
        println!("{at:>12} {med:>16.1} {:>18.2}", med * 1000.0 / series as f64);
        at *= 4;
    }
    let all = times.iter().sum::<f64>() + maintenance_ms;
    println!(
        "all writer work: {:.1} ms per flush on average ({:.1} of it maintenance), {:.1} % of a core at one flush every {step} ms",
        all / steps as f64,
        maintenance_ms / steps as f64,
        all / (steps as f64 * step as f64) * 100.0
    );
}
