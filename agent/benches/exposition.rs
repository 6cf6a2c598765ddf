//! `/metrics` render cost: the page of the peers harness' tagged load (100 names of each of
//! four StatsD types, 25 tag values each: 10 000 series, 5 000 of them histograms, about 5 MB
//! of text), which a scrape renders whole.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks fail loudly

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use perfagent::exposition::Exposition;
use perfstore::{Distribution, Kind, Sample, SeriesKey};

fn page_of_10k_series() -> Exposition {
    let mut points = Vec::new();
    for (ty, kind, unit) in [
        ("c", Kind::Counter, ""),
        ("g", Kind::Gauge, ""),
        ("ms", Kind::Distribution, "s"),
        ("h", Kind::Distribution, ""),
    ] {
        for name in 0..100 {
            for tag in 0..25 {
                let key = SeriesKey::new("unknown", &format!("bench.app.{ty}.{name}"), kind)
                    .unit(unit)
                    .label("t", &format!("v{tag}"));
                let x = f64::from(name * 25 + tag);
                let sample = match kind {
                    Kind::Counter => Sample::Counter(x * 3.0),
                    Kind::Gauge => Sample::Gauge { last: x, min: x, max: x },
                    _ => {
                        let scale = if unit == "s" { 0.001 } else { 1.0 };
                        let values: Vec<f64> = (1..=40).map(|v| f64::from(v) * x.max(1.0) * scale).collect();
                        Sample::Distribution(Box::new(Distribution::from_values(&values)))
                    }
                };
                points.push((Arc::new(key), 0, sample));
            }
        }
    }
    let mut e = Exposition::default();
    e.add(&points);
    e
}

fn render(c: &mut Criterion) {
    let e = page_of_10k_series();
    let bytes: usize = e.page().map(|p| p.len()).sum();
    assert!(bytes > 4_000_000, "the page is about 5 MB: {bytes}");
    let mut g = c.benchmark_group("metrics_page");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("10k_series_5k_histograms", |b| b.iter(|| e.page().map(|p| p.len()).sum::<usize>()));
    g.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
