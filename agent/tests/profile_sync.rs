//! Per-operation attribution for synchronous `run` scopes on several threads, nested scopes
//! going to the innermost. (Its own test binary: pprof allows one profiler per process.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::time::{Duration, Instant};

use perfagent::sdk::Perf;
mod common;

burner!(render_report_cpu, 11, 300_000u64);
burner!(hash_chunks_cpu, 12, 300_000u64);
burner!(inner_sign_cpu, 13, 300_000u64);

#[test]
fn sync_scopes_on_threads_get_their_own_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let perf =
        Perf::builder().service("app").db(&db).flush_interval(Duration::from_secs(1)).profiler_hz(99).start().unwrap();
    let until = Instant::now() + Duration::from_secs(4);
    std::thread::scope(|s| {
        let (report, upload, sign) =
            (perf.operation("report.render"), perf.operation("blob.upload"), perf.operation("req.sign"));
        s.spawn(move || {
            while Instant::now() < until {
                report.run(|_| render_report_cpu());
            }
        });
        s.spawn(move || {
            while Instant::now() < until {
                // blob.upload signs each request in a nested scope: those samples belong to
                // the inner operation.
                upload.run(|_| {
                    hash_chunks_cpu();
                    sign.run(|_| inner_sign_cpu());
                });
            }
        });
    });
    perf.shutdown();

    common::assert_attribution(
        &db,
        &[("report.render", "render_report_cpu"), ("blob.upload", "hash_chunks_cpu"), ("req.sign", "inner_sign_cpu")],
    );
}
