//! What one alert evaluation costs the agent: 100 operations and 1000 series (100 × op.duration
//! ok/error, 300 cache.requests, 500 pool.size) over 24 h at 1 min, evaluated as the alerts
//! thread does (SLOs over the 28-day window with the default burn rules, the other targets over
//! the last hour, the capacity trend once an hour), with no receiver (delivery is a POST).
//!
//! `cargo run --release -p perfagent --example alerts-cost` (`KEEP=/tmp/x.db` keeps the
//! filled store for the next run). Prints CPU seconds per evaluation
//! (user + system, `getrusage`) for: SLOs and targets (the steady case), the first evaluation
//! of an hour (with the capacity projection), and SLOs alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // examples fail loudly

use std::time::Duration;

use perfagent::alerts::{AlertsConfig, Context, evaluate_once};
use perfanalysis::alerts::State;
use perfstore::{Distribution, Kind, Registration, Sample, SeriesKey, StoreOptions, Write, Writer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const STEP: i64 = 60_000;
const STEPS: i64 = 1_440;

fn keys() -> Vec<SeriesKey> {
    let mut k = Vec::new();
    for op in 0..100 {
        for outcome in ["ok", "error"] {
            k.push(
                SeriesKey::new("bench", "op.duration", Kind::Distribution)
                    .unit("s")
                    .label("op", &format!("cloud.op{op:03}"))
                    .label("outcome", outcome),
            );
        }
    }
    for i in 0..300 {
        let result = ["hit", "miss", "stale"][i % 3];
        k.push(
            SeriesKey::new("bench", "cache.requests", Kind::Counter)
                .label("cache", &format!("c{}", i / 3))
                .label("result", result),
        );
    }
    for i in 0..500 {
        k.push(SeriesKey::new("bench", "pool.size", Kind::Gauge).label("pool", &format!("p{i}")));
    }
    k
}

fn cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct we own; RUSAGE_SELF is valid.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::env::var("KEEP").map(std::path::PathBuf::from).unwrap_or_else(|_| dir.path().join("perf.db"));
    if !db.exists() {
        let mut w =
            Writer::open(&db, StoreOptions { raw_retention_ms: i64::MAX / 4, ..StoreOptions::default() }).unwrap();
        let keys = keys();
        assert_eq!(keys.len(), 1000);
        let ids: Vec<_> = w
            .register_all(&keys, T0)
            .unwrap()
            .into_iter()
            .map(|r| match r {
                Registration::Registered(id) => id,
                Registration::Rejected(r) => panic!("{r:?}"),
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(7);
        for step in 0..STEPS {
            let ts = T0 + step * STEP;
            let batch: Vec<Write> = keys
                .iter()
                .zip(&ids)
                .map(|(k, &id)| {
                    let sample = match k.kind {
                        Kind::Distribution => {
                            let mut d = Distribution::from_values(&[]);
                            let n = if k.get("outcome") == Some("ok") { 20 } else { 1 };
                            for _ in 0..n {
                                d.record(0.05 + rng.random::<f64>() * 0.3, 1.0);
                            }
                            Sample::Distribution(Box::new(d))
                        }
                        Kind::Counter => Sample::Counter(f64::from(rng.random_range(0..40u32))),
                        _ => {
                            let v = f64::from(rng.random_range(0..64u32));
                            Sample::Gauge { last: v, min: v, max: v }
                        }
                    };
                    Write { series: id, ts_ms: ts, sample }
                })
                .collect();
            w.write(&batch).unwrap();
        }
        // Rollups and hour summaries, as the agent's maintenance makes them every minute.
        w.maintain(T0 + STEPS * STEP).unwrap();
        w.close().unwrap();
    }
    let now = T0 + STEPS * STEP;
    let targets = perfanalysis::targets::Targets {
        cache_hit_rate: Some(0.5),
        capacity_within_days: Some(90.0),
        ..Default::default()
    };
    let cx = Context::new(targets, perfanalysis::capacity::Capacities::default(), "bench".into());
    let runs = 20;
    let measure = |name: &str, cfg: &AlertsConfig, fresh_hour: bool| {
        let fresh = cx.clone();
        let mut cx = cx.clone();
        let mut state = State::default();
        evaluate_once(&db, &mut state, cfg, &mut cx, now).unwrap(); // warm the page cache
        let mut each = Vec::new();
        for i in 0..runs {
            // The first evaluation of an hour projects capacity (a context with nothing
            // cached); the others of the hour reuse it.
            if fresh_hour {
                cx = fresh.clone();
            }
            let c0 = cpu_s();
            let (_, report) = evaluate_once(&db, &mut state, cfg, &mut cx, now + i * 1000).unwrap();
            each.push(cpu_s() - c0);
            assert_eq!(report.objectives.len(), 200);
        }
        each.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.1} | {:.1} | {:.3} % |",
            each[runs as usize / 2] * 1e3,
            each[runs as usize - 1] * 1e3,
            each[runs as usize / 2] * 1e3 / 60_000.0 * 100.0
        );
    };
    println!("| evaluation (100 ops, 1000 series, 24 h at 1 min) | median CPU ms | max CPU ms | of a core at 1/min |");
    println!("|---|---|---|---|");
    let base = AlertsConfig::default();
    measure("SLOs + targets over 1 h (steady)", &base, false);
    measure("first of an hour (+ capacity projection)", &base, true);
    measure("SLOs alone (targets_window off)", &AlertsConfig { targets_window: Duration::ZERO, ..base.clone() }, false);
}
