//! The `metrics` facade through the SDK: one global recorder (SDK + Prometheus), any crate's
//! macros land in the store, a second install is a typed error. (Its own test binary: the
//! global recorder is per process.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::time::Duration;

use perfagent::sdk::{InstallError, Perf};
use perfstore::{Reader, Selector, TimeRange};

#[test]
fn metrics_macros_are_recorded_and_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let perf = Perf::builder()
        .service("app")
        .db(&db)
        .flush_interval(Duration::from_millis(200))
        .profiler_hz(0)
        .start()
        .unwrap();
    let prom = perf.install_recorder().unwrap();
    assert_eq!(perf.install_recorder().unwrap_err(), InstallError::AlreadyInstalled);

    // Labels in any order are one series.
    metrics::counter!("queue.jobs", "queue" => "vm", "kind" => "start").increment(3);
    metrics::counter!("queue.jobs", "kind" => "start", "queue" => "vm").increment(2);
    metrics::gauge!("queue.depth", "queue" => "vm").set(17.0);
    for v in [1.0, 2.0, 3.0, 10.0] {
        metrics::histogram!("queue.wait", "queue" => "vm").record(v);
    }
    let text = prom.render();
    assert!(
        text.contains("queue_jobs{kind=\"start\",queue=\"vm\"} 5")
            || text.contains("queue_jobs{queue=\"vm\",kind=\"start\"} 5"),
        "{text}"
    );
    perf.shutdown();

    let mut r = Reader::open(&db).unwrap();
    let snap = r.snapshot().unwrap();
    let one = |sel: &str| {
        let s = snap.series(&Selector::parse(sel).unwrap()).unwrap();
        assert_eq!(s.len(), 1, "{sel}: {s:?}");
        snap.aggregate(&s[0], TimeRange::new(0, i64::MAX / 2)).unwrap().unwrap()
    };
    assert_eq!(one(r#"queue.jobs{kind="start",queue="vm",service="app"}"#).sum, 5.0);
    assert_eq!(one(r#"queue.depth{queue="vm"}"#).last, 17.0);
    let wait = one(r#"queue.wait{queue="vm"}"#);
    assert_eq!((wait.count, wait.sum, wait.max), (4.0, 16.0, 10.0));
}
