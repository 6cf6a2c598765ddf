//! The real `perfctl` and `perfagent` binaries against a real store file.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use perf_e2e::bin;
use perfstore::{Kind, Registration, Sample, SeriesKey, StoreOptions, Write, Writer};

const T0: i64 = 1_767_225_600_000;

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name)).args(args).env_remove("PERFAGENT_DB").output().expect("run binary")
}

fn store_with(path: &Path, series: usize, points: i64) {
    let mut w = Writer::open(path, StoreOptions::default()).unwrap();
    let mut ids = Vec::new();
    for i in 0..series {
        let key = SeriesKey::new("api", "op.retries", Kind::Counter)
            .label("op", &format!("operation.with.a.long.name.{i:05}"));
        match w.register(&key, T0).unwrap() {
            Registration::Registered(id) => ids.push(id),
            Registration::Rejected(r) => panic!("{r:?}"),
        }
    }
    for t in 0..points {
        let batch: Vec<Write> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| Write { series: id, ts_ms: T0 + t * 10_000, sample: Sample::Counter(i as f64) })
            .collect();
        w.write(&batch).unwrap();
    }
    w.close().unwrap();
}

#[test]
fn series_lists_what_the_store_holds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    store_with(&db, 3, 12);
    let out = run("perfctl", &["series", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("SERIES"));
    assert!(lines[1].contains(r#"op.retries{op="operation.with.a.long.name.00000",service="api"}"#), "{text}");
    assert!(lines[1].trim_end().ends_with(" 12"), "{text}");

    let out = run("perfctl", &["series", "--db", db.to_str().unwrap(), "--format", "json", "--top", "2"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["points"], 12);
    assert_eq!(rows[0]["series"]["key"]["kind"], "counter");
}

#[test]
fn the_store_path_comes_from_perfagent_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    store_with(&db, 1, 1);
    let out = Command::new(bin("perfctl")).args(["series"]).env("PERFAGENT_DB", &db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("op.retries"));
}

#[test]
fn a_missing_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nope.db");
    let out = run("perfctl", &["series", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: {}: no perfagent store here (start `perfagent start`, or pass --db PATH)\n", db.display())
    );
    assert!(!db.exists(), "perfctl never creates a store");
}

#[test]
fn a_file_that_is_not_a_store_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.txt");
    std::fs::write(&db, "shopping list: milk, eggs, more disks\n").unwrap();
    for (binary, args) in [("perfctl", vec!["series", "--db"]), ("perfagent", vec!["db", "check", "--db"])] {
        let mut args = args.clone();
        args.push(db.to_str().unwrap());
        let out = run(binary, &args);
        assert_eq!(out.status.code(), Some(1), "{binary}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not an SQLite database (wrong file header); refusing to open it"), "{binary}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&db).unwrap(), "shopping list: milk, eggs, more disks\n");
}

#[test]
fn bad_flags_name_the_flag() {
    let out = run("perfctl", &["series", "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid value 'yaml' for '--format <FORMAT>'"), "{err}");
    assert!(err.contains("[possible values: table, json]"), "{err}");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    store_with(&db, 3000, 1); // ~300 KB of table: more than a pipe holds
    let mut child = Command::new(bin("perfctl"))
        .args(["series", "--db", db.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take()); // like `| head -1`
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn perfagent_db_check_reports_a_healthy_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    store_with(&db, 2, 5);
    let out = run("perfagent", &["db", "check", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("{}: ok\n", db.display())), "{text}");
    assert!(text.contains(&format!("schema version  {}\n", perfstore::SCHEMA_VERSION)), "{text}");
    assert!(text.contains("series          2\n"), "{text}");
    assert!(text.contains(&format!("newest data     {} (Unix ms)", T0 + 40_000)), "{text}");
}
