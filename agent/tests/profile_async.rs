//! Per-operation attribution for async operations that hop between tokio worker threads.
//! (Its own test binary: pprof allows one profiler per process.)

use std::time::{Duration, Instant};

use perfagent::sdk::Perf;
use perfstore::{Reader, TimeRange};

macro_rules! burner {
    ($name:ident, $salt:expr) => {
        #[inline(never)]
        fn $name() -> u64 {
            let mut x: u64 = $salt;
            for i in 0..200_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i ^ $salt));
            }
            x
        }
    };
}
burner!(list_vms_cpu, 1);
burner!(start_vms_cpu, 2);
burner!(read_blob_cpu, 3);

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

    let mut reader = Reader::open(&db).unwrap();
    let snap = reader.snapshot().unwrap();
    let fns = ["list_vms_cpu", "start_vms_cpu", "read_blob_cpu"];
    for (i, (op, _)) in ops.iter().enumerate() {
        let stacks = snap.profile(op, None, TimeRange::new(0, i64::MAX / 2)).unwrap();
        let total: u64 = stacks.iter().map(|s| s.1).sum();
        let own: u64 = stacks.iter().filter(|s| s.0.contains(fns[i])).map(|s| s.1).sum();
        let others: u64 =
            stacks.iter().filter(|s| fns.iter().enumerate().any(|(j, f)| j != i && s.0.contains(f))).map(|s| s.1).sum();
        eprintln!("{op}: {total} samples, {own} in {}, {others} in the other operations' functions", fns[i]);
        assert!(total >= 20, "{op}: too few samples ({total}) to judge");
        assert!(own as f64 >= 0.95 * total as f64, "{op}: only {own} of {total} samples contain {}", fns[i]);
        assert_eq!(others, 0, "{op}: samples of other operations' functions");
    }
}
