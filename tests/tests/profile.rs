//! `perfctl profile <op>` on a StatsD capture with known phase timings
//! (`fixtures/statsd/profile.statsd`), every figure checked against a hand computation.
//!
//! report.build: 4 calls of 400, 300, 20 and 80 ms = 800 ms. Phases: api 250 + 200 = 450 ms,
//! network 100 + 50 + 10 + 40 = 200 ms, other 800 − 650 = 150 ms (56.25 / 25 / 18.75 %).
//! Suggestions: batching 2·350 − (2/5)·50 = 680 ms; caching 2·(350 − 50) = 600 ms; retries
//! 3·200 = 600 ms; pool warm-up 1·(400 − 133.3) = 266.7 ms; errors 80 ms.
//! plain.call: 2 calls of 100 ms with 270 ms of phases sent: scaled to 200 ms, no suggestion.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use perf_e2e::{bin, fixture, golden, load_statsd};

fn store() -> &'static Path {
    static STORE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, db) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("perf.db");
        load_statsd(&db, &fixture("statsd/profile.statsd"));
        (dir, db)
    });
    db
}

fn perfctl(args: &[&str]) -> Output {
    Command::new(bin("perfctl")).arg("--db").arg(store()).args(args).output().expect("run perfctl")
}

fn json(op: &str) -> serde_json::Value {
    let out = perfctl(&["profile", op, "--now", "2026-11-23T00:00:00Z", "--last", "24h", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(v: &serde_json::Value, expected: f64) {
    let x = v.as_f64().unwrap();
    assert!((x - expected).abs() < 1e-9, "{x} vs {expected}");
}

#[test]
fn breakdown_and_suggestions_match_hand_computations() {
    let r = json("report.build");
    close(&r["total_s"], 0.8);
    close(&r["calls"], 4.0);
    let phases: Vec<(&str, f64, f64)> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["phase"].as_str().unwrap(), p["seconds"].as_f64().unwrap(), p["pct"].as_f64().unwrap()))
        .collect();
    let expected = [("api", 0.45, 56.25), ("network", 0.2, 25.0), ("other", 0.15, 18.75)];
    assert_eq!(phases.len(), 3);
    for ((name, s, p), (en, es, ep)) in phases.iter().zip(expected) {
        assert_eq!(*name, en);
        assert!((s - es).abs() < 1e-9 && (p - ep).abs() < 1e-9, "{name}: {s} s {p} %");
    }
    assert!(r["cpu"].is_null(), "no profiler samples in a StatsD capture");
    let s: Vec<(&str, f64)> = r["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["kind"].as_str().unwrap(), s["saving_s"].as_f64().unwrap()))
        .collect();
    let expected =
        [("batching", 0.68), ("caching", 0.6), ("retries", 0.6), ("pool_warmup", 0.8 / 3.0), ("errors", 0.08)];
    assert_eq!(s.len(), expected.len(), "{s:?}");
    for ((k, v), (ek, ev)) in s.iter().zip(expected) {
        assert_eq!(*k, ek);
        assert!((v - ev).abs() < 1e-9, "{k}: {v} vs {ev}");
    }
    let caching = &r["suggestions"][1];
    close(&caching["saving_pct"], 75.0);
    assert_eq!(caching["evidence"], "2 cache misses averaging 350ms vs 50.0ms for 2 hits");
}

#[test]
fn no_suggestion_without_its_data_and_overlapping_phases_are_scaled() {
    let r = json("plain.call");
    close(&r["total_s"], 0.2);
    assert_eq!(r["suggestions"].as_array().unwrap().len(), 0, "{}", r["suggestions"]);
    let total: f64 = r["phases"].as_array().unwrap().iter().map(|p| p["pct"].as_f64().unwrap()).sum();
    assert!((total - 100.0).abs() < 1e-9, "phases add up to 100 %: {total}");
    assert!(r["notes"][0].as_str().unwrap().contains("they are scaled down to the total"), "{}", r["notes"]);
}

#[test]
fn profile_table_and_json_are_stable_and_unknown_ops_are_named() {
    let out = perfctl(&["profile", "report.build", "--now", "2026-11-23T00:00:00Z", "--last", "24h"]);
    assert!(out.status.success());
    golden("profile-report-build.txt", &String::from_utf8(out.stdout).unwrap());
    golden("profile-report-build.json", &(serde_json::to_string_pretty(&json("report.build")).unwrap() + "\n"));
    let out = perfctl(&["profile", "report.bild", "--last", "24h"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown operation 'report.bild'") && err.contains("operations: report.build, plain.call"),
        "{err}"
    );
}

#[test]
fn stats_shows_how_long_circuits_were_open() {
    let out = perfctl(&["stats", "--now", "2026-11-23T00:00:00Z", "--last", "24h", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Three 10-second intervals at state 2 (open), then closed; opened twice.
    assert_eq!(r["circuits"], serde_json::json!([{"circuit": "azure-compute", "open_s": 30, "opened": 2}]));
    let out = perfctl(&["stats", "--now", "2026-11-23T00:00:00Z", "--last", "24h"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Circuit   azure-compute open 30.00s (opened 2 times)"));
}
