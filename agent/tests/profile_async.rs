//! Per-operation attribution for async operations that hop between tokio worker threads.
//! (Its own test binary: pprof allows one profiler per process.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::time::{Duration, Instant};

use perfagent::sdk::Perf;
mod common;

burner!(list_vms_cpu, 1, 200_000u64);
burner!(start_vms_cpu, 2, 200_000u64);
burner!(read_blob_cpu, 3, 200_000u64);

#[test]
fn concurrent_async_operations_get_their_own_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let perf =
        Perf::builder().service("app").db(&db).flush_interval(Duration::from_secs(1)).profiler_hz(99).start().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
    let ops = [("vm.list", list_vms_cpu as fn() -> u64), ("vm.start", start_vms_cpu), ("blob.read", read_blob_cpu)];
    rt.block_on(async {
        let until = Instant::now() + Duration::from_secs(4);
        let mut tasks = Vec::new();
        for (name, burn) in ops {
            let op = perf.operation(name);
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    // One call: several polls, each burning CPU, with yields in between so the
                    // task moves between worker threads.
                    op.instrument(|_| async move {
                        for _ in 0..4 {
                            burn();
                            tokio::task::yield_now().await;
                        }
                    })
                    .await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    perf.shutdown();

    common::assert_attribution(
        &db,
        &[("vm.list", "list_vms_cpu"), ("vm.start", "start_vms_cpu"), ("blob.read", "read_blob_cpu")],
    );
}
