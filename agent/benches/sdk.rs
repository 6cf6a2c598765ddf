//! The SDK's hot path against the `metrics-exporter-prometheus` recorder, in the same run:
//! a counter increment and an operation scope (clock + histogram + counter), through
//! pre-registered handles and through the `metrics` macros, on 1 and 2 threads (2 threads
//! hammer the same series; the figure is the time per operation on each thread).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use metrics::{Key, Recorder as _};
use perfagent::sdk::{CacheResult, Perf};

/// Run `f(iters)` on `threads` threads at once; the time per iteration on one thread.
fn on_threads(threads: usize, iters: u64, f: Arc<dyn Fn(u64) + Send + Sync>) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let f = f.clone();
            s.spawn(move || f(iters));
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let perf = Perf::builder()
        .service("bench")
        .db(dir.path().join("perf.db"))
        .flush_interval(Duration::from_secs(1))
        .profiler_hz(0)
        .start()
        .expect("start the SDK");
    let prom = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let meta = metrics::Metadata::new("bench", metrics::Level::INFO, None);
    let p_counter = prom.register_counter(&Key::from_name("calls"), &meta);
    let p_hist = prom.register_histogram(&Key::from_name("latency"), &meta);
    let cache = perf.cache("c");
    let op = perf.operation("vm.list");

    let mut g = c.benchmark_group("hot_path");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("sdk_counter_handle", |b| b.iter(|| cache.lookup(CacheResult::Hit)));
    g.bench_function("prometheus_counter_handle", |b| b.iter(|| p_counter.increment(1)));
    let sdk_rec = perf.recorder();
    metrics::with_local_recorder(&sdk_rec, || {
        g.bench_function("sdk_counter_macro", |b| b.iter(|| metrics::counter!("calls").increment(1)));
    });
    metrics::with_local_recorder(&prom, || {
        g.bench_function("prometheus_counter_macro", |b| b.iter(|| metrics::counter!("calls").increment(1)));
    });
    g.bench_function("sdk_op_scope_handle", |b| {
        b.iter(|| {
            let mut s = op.start();
            s.finish();
        })
    });
    g.bench_function("sdk_op_run_profiled_scope", |b| b.iter(|| op.run(|_| ())));
    g.bench_function("prometheus_op_scope_handle", |b| {
        b.iter(|| {
            let t = Instant::now();
            p_hist.record(t.elapsed().as_secs_f64());
            p_counter.increment(1);
        })
    });
    metrics::with_local_recorder(&prom, || {
        g.bench_function("prometheus_op_scope_macro", |b| {
            b.iter(|| {
                let t = Instant::now();
                metrics::histogram!("latency", "op" => "vm.list").record(t.elapsed().as_secs_f64());
                metrics::counter!("calls", "op" => "vm.list").increment(1);
            })
        });
    });

    for threads in [1usize, 2] {
        let (cache, op) = (cache.clone(), op.clone());
        let sdk_counter: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| {
            for _ in 0..n {
                cache.lookup(CacheResult::Hit);
            }
        });
        let sdk_scope: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| {
            for _ in 0..n {
                let mut s = op.start();
                s.finish();
            }
        });
        let (pc, ph) = (p_counter.clone(), p_hist.clone());
        let prom_counter: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| {
            for _ in 0..n {
                pc.increment(1);
            }
        });
        let pc = p_counter.clone();
        let prom_scope: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| {
            for _ in 0..n {
                let t = Instant::now();
                ph.record(t.elapsed().as_secs_f64());
                pc.increment(1);
            }
        });
        for (name, f) in [
            ("sdk_counter_handle", sdk_counter),
            ("sdk_op_scope_handle", sdk_scope),
            ("prometheus_counter_handle", prom_counter),
            ("prometheus_op_scope_handle", prom_scope),
        ] {
            g.bench_function(format!("{name}_{threads}_threads_same_series"), |b| {
                b.iter_custom(|iters| on_threads(threads, iters, f.clone()))
            });
        }
    }
    g.finish();
    perf.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
