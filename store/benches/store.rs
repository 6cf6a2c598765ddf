//! Criterion benchmarks: flush write throughput, the 24 h whole-range aggregate that
//! `perfctl stats --last 24h` runs (1000 series, 100 of them timers with p95), and the
//! histogram buckets `/metrics` takes from every distribution of a flush.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

mod common;

use std::time::{Duration, Instant};

use common::{Class, DAY_STEPS, STEP, T0, fill, flush, register};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use perfstore::{BucketBounds, Kind, Reader, Selector, Sketch, StoreOptions, TimeRange, Writer};
use rand::{Rng as _, SeedableRng};

const MIX_1000: &[(Class, usize)] =
    &[(Class::IntCounter, 400), (Class::FloatGauge, 250), (Class::IntGauge, 250), (Class::Timer, 100)];

fn write_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    for (label, classes) in [
        ("flush_1000_series", MIX_1000),
        ("flush_200_scalars", &[(Class::IntCounter, 80), (Class::FloatGauge, 60), (Class::IntGauge, 60)][..]),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Writer::open(dir.path().join("perf.db"), StoreOptions::default()).expect("open");
        let mut gens = register(&mut w, classes);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        // Warm the heads up to a typical fill (half an hour of points).
        fill(&mut w, &mut gens, 180);
        let mut i = 180;
        g.throughput(Throughput::Elements(gens.len() as u64));
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let batch = flush(&mut gens, &mut rng, T0 + i * STEP);
                    i += 1;
                    let t = Instant::now();
                    w.write(&batch).expect("write");
                    spent += t.elapsed();
                }
                spent
            })
        });
    }
    g.finish();
}

fn query_24h(c: &mut Criterion) {
    // Filling takes minutes: keep the store between runs (rebuilt when the format changes).
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "perfstore-bench-24h-v{}-{}.db",
        perfstore::SCHEMA_VERSION,
        include_str!("../src/migrations/0001_init.sql").len()
    ));
    let reusable = Reader::open(&path)
        .and_then(|mut r| Ok(r.snapshot()?.series(&Selector::default())?.len() == 1000))
        .unwrap_or(false);
    if !reusable {
        let _ = std::fs::remove_file(&path);
        let mut w = Writer::open(&path, StoreOptions::default()).expect("open");
        let mut gens = register(&mut w, MIX_1000);
        eprintln!("filling 1000 series x 24 h at 10 s ...");
        fill(&mut w, &mut gens, DAY_STEPS);
        w.maintain(T0 + DAY_STEPS * STEP).expect("maintain");
        w.close().expect("close");
    }
    if std::env::var_os("PERFSTORE_BENCH_PROFILE").is_some() {
        // For `perf record`: run the query in a loop without criterion.
        let range = TimeRange::new(T0 + 1_234_000, T0 + DAY_STEPS * STEP);
        for _ in 0..50 {
            let mut reader = Reader::open(&path).expect("reader");
            let snap = reader.snapshot().expect("snapshot");
            let series = snap.series(&Selector::default()).expect("series");
            std::hint::black_box(snap.aggregate_many(&series, range).expect("aggregate"));
        }
        return;
    }
    // Unaligned to the hour, as `--last 24h` is: edges come from decoded chunks.
    let range = TimeRange::new(T0 + 1_234_000, T0 + DAY_STEPS * STEP);
    let mut g = c.benchmark_group("query");
    g.sample_size(20);
    g.bench_function("aggregate_24h_1000_series_p95", |b| {
        b.iter(|| {
            let mut reader = Reader::open(&path).expect("reader");
            let snap = reader.snapshot().expect("snapshot");
            let series = snap.series(&Selector::default()).expect("series");
            let mut p95s = 0;
            let points = snap.aggregate_many(&series, range).expect("aggregate");
            for (s, p) in series.iter().zip(points) {
                let p = p.expect("data");
                if s.key.kind == Kind::Distribution {
                    p95s += usize::from(p.quantile(0.95).is_some());
                }
            }
            assert_eq!((series.len(), p95s), (1000, 100));
        })
    });
    g.finish();
}

/// 1 000 timers' sketches of an interval, 50 values each between 1 ms and 400 ms, binned or
/// deferred as a flush hands them over, counted under the agent's 13 duration bounds.
fn histogram_buckets(c: &mut Criterion) {
    const BOUNDS: [f64; 13] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0];
    let bounds = BucketBounds::new(&BOUNDS);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let values: Vec<Vec<f64>> = (0..1000).map(|_| (0..50).map(|_| rng.random_range(0.001..0.4)).collect()).collect();
    let mut g = c.benchmark_group("histogram_buckets");
    g.throughput(Throughput::Elements(values.len() as u64));
    for (label, deferred) in [("binned_1000_sketches", false), ("deferred_1000_sketches", true)] {
        let sketches: Vec<Sketch> = values
            .iter()
            .map(|v| {
                if deferred {
                    return Sketch::deferred(v.clone());
                }
                let mut s = Sketch::new();
                s.add_values(v);
                s
            })
            .collect();
        g.bench_function(label, |b| {
            b.iter(|| {
                let mut counts = [0.0; BOUNDS.len()];
                let mut total = 0.0;
                for s in &sketches {
                    s.counts_at_most(std::hint::black_box(&bounds), &mut counts);
                    total += counts[BOUNDS.len() - 1];
                }
                assert_eq!(total, 50_000.0);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, write_throughput, query_24h, histogram_buckets);
criterion_main!(benches);
