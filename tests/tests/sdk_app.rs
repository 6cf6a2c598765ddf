//! The SDK's example app (`agent/examples/cloud-app.rs`) run as a user would: embedded, and
//! again while a daemon holds the store (it forwards, profiles included). The store must then
//! hold the convention's series, the last error, and per-operation flame graphs naming each
//! operation's own function.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::path::Path;
use std::process::Command;

use perf_e2e::{Agent, example};
use perfstore::{Reader, Selector, TimeRange};

fn all() -> TimeRange {
    TimeRange::new(0, i64::MAX / 2)
}

fn check(db: &Path) {
    let mut r = Reader::open(db).unwrap();
    let snap = r.snapshot().unwrap();
    let ops = snap.label_values(&Selector::name("op.duration"), "op").unwrap();
    assert_eq!(ops, ["blob.read", "ssm.send_command", "vm.list", "vm.start"]);
    for name in ["op.retries", "op.batch.size", "cache.requests", "cache.refresh", "pool.acquire", "pool.size"] {
        assert!(!snap.series(&Selector::name(name)).unwrap().is_empty(), "{name} recorded");
    }
    let errors = snap.last_events(perfstore::EventKind::Error, all()).unwrap();
    assert!(
        errors.iter().any(|e| e.op == "ssm.send_command" && e.message.starts_with("InvocationDoesNotExist")),
        "{errors:?}"
    );
    // Each profiled operation's samples are in its own function; the drop-guard form
    // (blob.read) records metrics only, so its CPU shows under (none).
    for (op, function) in [
        ("vm.list", "parse_vm_page"),
        ("vm.start", "sign_start_request"),
        ("ssm.send_command", "decode_command_output"),
    ] {
        let stacks = snap.profile(op, None, all()).unwrap();
        let total: u64 = stacks.iter().map(|s| s.samples).sum();
        let own: u64 = stacks.iter().filter(|s| s.frames.contains(function)).map(|s| s.samples).sum();
        assert!(total > 0, "{op}: no samples");
        assert!(own * 10 >= total * 8, "{op}: {own} of {total} samples in {function}");
    }
    let none = snap.profile("(none)", None, all()).unwrap();
    assert!(none.iter().any(|s| s.frames.contains("checksum_blob")), "blob.read's CPU is outside any profiled scope");
    // Every stored stack of an operation marks where it began.
    let stored = snap.profile("vm.list", None, all()).unwrap();
    assert!(stored.iter().all(|s| s.frames.contains(";[operation]")), "{stored:?}");
    drop(snap);

    // perfctl draws from the operation on by default: no runtime frames (threads, the async
    // runtime) below it, closures named after their function; --full-stacks keeps them.
    let folded = |extra: &[&str]| -> String {
        let args = [&["flamegraph", "vm.list", "--since", "1970-01-01", "--folded", "-o", "-"][..], extra].concat();
        let out = perf_e2e::perfctl(db, &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let short = folded(&[]);
    assert!(short.lines().any(|l| l.contains("parse_vm_page")), "{short}");
    for noise in [
        "[operation];",
        ";[operation]",
        "start_thread",
        "clone3",
        "tokio::runtime",
        "std::thread::",
        "{closure#",
        "{{closure}}",
    ] {
        assert!(!short.contains(noise), "{noise} in the default flame graph:\n{short}");
    }
    // A sample taken in the marker itself (the scope just begun, no frame below it yet) is the
    // one stack that stays `[operation]`, on its own.
    assert!(short.lines().all(|l| !l.starts_with("[operation]") || l.starts_with("[operation] ")), "{short}");
    let full = folded(&["--full-stacks"]);
    assert!(full.lines().all(|l| l.contains(";[operation]")), "{full}");
    assert!(
        full.lines().map(|l| l.matches(';').count()).sum::<usize>()
            > short.lines().map(|l| l.matches(';').count()).sum::<usize>()
    );
}

#[test]
fn the_example_app_records_series_errors_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let app = example("perfagent", "cloud-app");
    let out = Command::new(&app).args(["--db", db.to_str().unwrap(), "--seconds", "3"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("recording to Embedded"));
    check(&db);
}

#[test]
fn the_example_app_forwards_to_a_daemon_holding_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let daemon = Agent::start(&db, &["--flush-interval", "500ms"], &[]);
    let app = example("perfagent", "cloud-app");
    let out = Command::new(&app).args(["--db", db.to_str().unwrap(), "--seconds", "3"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("is held by perfagent (pid"), "{stderr}");
    assert!(stderr.contains("recording to Forward"), "{stderr}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    daemon.stop();
    check(&db);
}
