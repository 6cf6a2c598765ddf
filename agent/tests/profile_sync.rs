//! Per-operation attribution for synchronous `run` scopes on several threads, nested scopes
//! going to the innermost. (Its own test binary: pprof allows one profiler per process.)

use std::time::{Duration, Instant};

use perfagent::sdk::Perf;
use perfstore::{Reader, TimeRange};

macro_rules! burner {
    ($name:ident, $salt:expr) => {
        #[inline(never)]
        fn $name() -> u64 {
            let mut x: u64 = $salt;
            for i in 0..300_000u64 {
                x = std::hint::black_box(x.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(i ^ $salt));
            }
            x
        }
    };
}
burner!(render_report_cpu, 11);
burner!(hash_chunks_cpu, 12);
burner!(inner_sign_cpu, 13);

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

    let mut reader = Reader::open(&db).unwrap();
    let snap = reader.snapshot().unwrap();
    let fns = ["render_report_cpu", "hash_chunks_cpu", "inner_sign_cpu"];
    for (i, op) in ["report.render", "blob.upload", "req.sign"].iter().enumerate() {
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
