//! Shared data generators for the store benchmarks.

#![allow(dead_code)]

use perfstore::{Distribution, Kind, Registration, Sample, SeriesId, SeriesKey, Write, Writer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const T0: i64 = 1_767_225_600_000;
pub const STEP: i64 = 10_000;
pub const DAY_STEPS: i64 = 8_640;

/// What a series of the benchmark mix holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Class {
    /// Requests per interval: integers around a per-series rate.
    IntCounter,
    /// A random walk at full f64 precision.
    FloatGauge,
    /// An integer level moving by small steps.
    IntGauge,
    /// Latencies: ~50 events per interval, log-normal around 120 ms.
    Timer,
}

pub struct Gen {
    pub id: SeriesId,
    pub class: Class,
    rate: f64,
    level: f64,
}

pub fn register(w: &mut Writer, classes: &[(Class, usize)]) -> Vec<Gen> {
    let mut rng = StdRng::seed_from_u64(42);
    let mut out = Vec::new();
    for &(class, n) in classes {
        for i in 0..n {
            let (name, kind) = match class {
                Class::IntCounter => ("op.calls", Kind::Counter),
                Class::FloatGauge => ("temperature", Kind::Gauge),
                Class::IntGauge => ("pool.size", Kind::Gauge),
                Class::Timer => ("op.duration", Kind::Distribution),
            };
            let key = SeriesKey::new("bench", name, kind).label("i", &i.to_string());
            let Ok(Registration::Registered(id)) = w.register(&key, T0) else { panic!("register {key}") };
            out.push(Gen { id, class, rate: rng.random_range(1.0..500.0), level: rng.random_range(0.0..100.0) });
        }
    }
    out
}

pub fn flush(gens: &mut [Gen], rng: &mut StdRng, ts: i64) -> Vec<Write> {
    gens.iter_mut()
        .map(|g| {
            let sample = match g.class {
                Class::IntCounter => Sample::Counter((g.rate * (0.8 + 0.4 * rng.random::<f64>())).round()),
                Class::FloatGauge => {
                    g.level += rng.random::<f64>() - 0.5;
                    Sample::Gauge { last: g.level, min: g.level, max: g.level }
                }
                Class::IntGauge => {
                    g.level = (g.level.round() + f64::from(rng.random_range(-3i32..=3))).max(0.0);
                    Sample::Gauge { last: g.level, min: g.level, max: g.level }
                }
                Class::Timer => {
                    let mut d = Distribution::from_values(&[]);
                    for _ in 0..50 {
                        let z: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
                        d.record(0.120 * (z * 0.8).exp(), 1.0);
                    }
                    Sample::Distribution(Box::new(d))
                }
            };
            Write { series: g.id, ts_ms: ts, sample }
        })
        .collect()
}

pub fn fill(w: &mut Writer, gens: &mut [Gen], steps: i64) {
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..steps {
        let batch = flush(gens, &mut rng, T0 + i * STEP);
        w.write(&batch).expect("write");
    }
}
