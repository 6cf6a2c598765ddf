//! `perfctl stats --last 24h` over 1000 series × 24 h at 10 s (the benchmark): in
//! process (open, snapshot, read, compute) and as a fresh `perfctl` process, as a user runs it.
//!
//! The store is filled once (a few minutes) and kept in the target folder between runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use perfanalysis::stats;
use perfstore::{Distribution, Kind, Registration, Sample, SeriesKey, StoreOptions, TimeRange, Write, Writer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const STEP: i64 = 10_000;
const STEPS: i64 = 8_640;

/// 50 operations: op.duration ok/error (100 timers), op.retries (50), cache.requests (350
/// counters), pool.size (500 gauges): 1000 series.
fn keys() -> Vec<SeriesKey> {
    let mut k = Vec::new();
    for op in 0..50 {
        let op = format!("cloud.op{op:02}");
        for outcome in ["ok", "error"] {
            k.push(
                SeriesKey::new("bench", "op.duration", Kind::Distribution)
                    .unit("s")
                    .label("op", &op)
                    .label("outcome", outcome),
            );
        }
        k.push(SeriesKey::new("bench", "op.retries", Kind::Counter).label("op", &op));
    }
    for i in 0..350 {
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

fn store() -> PathBuf {
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("perfctl-stats-bench-v{}.db", perfstore::SCHEMA_VERSION));
    if path.exists() {
        return path;
    }
    let tmp = path.with_extension("filling");
    let _ = std::fs::remove_file(&tmp);
    let mut w =
        Writer::open(&tmp, StoreOptions { raw_retention_ms: i64::MAX / 4, ..StoreOptions::default() }).expect("open");
    let keys = keys();
    let ids: Vec<_> = w
        .register_all(&keys, T0)
        .expect("register")
        .into_iter()
        .map(|r| match r {
            Registration::Registered(id) => id,
            Registration::Rejected(r) => panic!("{r:?}"),
        })
        .collect();
    eprintln!("filling 1000 series x 24 h at 10 s (once; kept at {}) ...", path.display());
    let mut rng = StdRng::seed_from_u64(11);
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
                            let z: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() - 2.0;
                            d.record(0.120 * (z * 0.8).exp(), 1.0);
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
        w.write(&batch).expect("write");
    }
    w.close().expect("close");
    std::fs::rename(&tmp, &path).expect("rename");
    let _ = std::fs::remove_file(perfstore::lock_path(&tmp));
    path
}

fn bench(c: &mut Criterion) {
    let db = store();
    // Unaligned to the hour, as `--last 24h` is.
    let until = T0 + STEPS * STEP - 1_234_000;
    let range = TimeRange::new(until - 86_400_000, until);
    let targets = perfanalysis::targets::Targets::default();
    let mut g = c.benchmark_group("stats");
    g.sample_size(20);
    g.bench_function("collect_24h_1000_series", |b| {
        b.iter(|| {
            let opts = stats::Options { range, op: None, by: None };
            let mut reader = perfstore::Reader::open(&db).expect("open");
            let input = stats::gather(&reader.snapshot().expect("snapshot"), &db, range).expect("gather");
            let r = stats::compute(&input, &opts, &targets).expect("stats");
            assert_eq!(r.ops.len(), 50);
        });
    });
    let now = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(until as u64))
        .to_string();
    g.bench_function("perfctl_process_24h_1000_series", |b| {
        b.iter(|| {
            let out = Command::new(env!("CARGO_BIN_EXE_perfctl"))
                .args([
                    "--db",
                    db.to_str().expect("utf-8 path"),
                    "stats",
                    "--last",
                    "24h",
                    "--now",
                    &now,
                    "--format",
                    "json",
                ])
                .env("XDG_CONFIG_HOME", "/nonexistent")
                .output()
                .expect("run perfctl");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
