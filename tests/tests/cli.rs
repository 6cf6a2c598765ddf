//! The real `perfctl` and `perfagent` binaries against a real store file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use perf_e2e::bin;
use perfstore::{Kind, Registration, Sample, SeriesKey, StoreOptions, Write, Writer};

const T0: i64 = 1_767_225_600_000;

/// Run a binary as a user with no stores of their own: no `PERFAGENT_DB`, and data and config
/// folders that do not exist (a demo store of the person running the tests must not show).
fn run(name: &str, args: &[&str]) -> Output {
    let nowhere = std::env::temp_dir().join("perf-e2e-no-such-home");
    Command::new(bin(name))
        .args(args)
        .env_remove("PERFAGENT_DB")
        .env("XDG_DATA_HOME", nowhere.join("data"))
        .env("XDG_CONFIG_HOME", nowhere.join("config"))
        .output()
        .expect("run binary")
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
        format!(
            "error: {}: no perfagent store here (--db); record into it with `perfagent start --db {}`, or read another \
             with --db PATH or PERFAGENT_DB\n",
            db.display(),
            db.display()
        )
    );
    // With a demo store about, the message points at it.
    let data = dir.path().join("data");
    let demo = data.join("perfagent/demo.db");
    std::fs::create_dir_all(demo.parent().unwrap()).unwrap();
    store_with(&demo, 1, 1);
    let out = Command::new(bin("perfctl"))
        .args(["series"])
        .env_remove("PERFAGENT_DB")
        .env("XDG_DATA_HOME", &data)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("perf.db: no perfagent store here (the default store)"), "{said}");
    assert!(
        said.contains(&format!("; the demo's store is {}: perfctl --db {} stats", demo.display(), demo.display())),
        "{said}"
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
    assert!(text.contains("newest data     2026-01-01T00:00:40Z\n"), "the newest data as RFC 3339: {text}");
}

#[test]
fn query_aggregates_per_step_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    {
        let mut w = Writer::open(&db, StoreOptions::default()).unwrap();
        let Registration::Registered(c) =
            w.register(&SeriesKey::new("api", "op.retries", Kind::Counter).label("op", "vm.list"), T0).unwrap()
        else {
            panic!()
        };
        let Registration::Registered(d) =
            w.register(&SeriesKey::new("api", "op.duration", Kind::Distribution).label("op", "vm.list"), T0).unwrap()
        else {
            panic!()
        };
        for i in 0..180 {
            let lat: Vec<f64> = (1..=10).map(|k| k as f64 / 100.0).collect(); // 10 ms .. 100 ms
            w.write(&[
                Write { series: c, ts_ms: T0 + i * 10_000, sample: Sample::Counter(i as f64) },
                Write {
                    series: d,
                    ts_ms: T0 + i * 10_000,
                    sample: Sample::Distribution(Box::new(perfstore::Distribution::from_values(&lat))),
                },
            ])
            .unwrap();
        }
        w.close().unwrap();
    }
    let dbs = db.to_str().unwrap();
    let window =
        ["--since", "2026-01-01T00:00:00Z", "--until", "2026-01-01T00:30:00Z", "--now", "2026-01-01T01:00:00Z"];
    let q = |extra: &[&str]| {
        let mut args = vec!["--db", dbs, "query"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&window);
        run("perfctl", &args)
    };
    // 10-minute steps of 60 intervals each: sums of 0..59, 60..119, 120..179.
    let out = q(&["op.retries", "--step", "10m", "--agg", "sum"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[0].starts_with("2026-01-01T00:00:00Z") && rows[0].trim_end().ends_with(" 1770"), "{text}");
    assert!(rows[2].starts_with("2026-01-01T00:20:00Z") && rows[2].trim_end().ends_with(" 8970"), "{text}");

    let out = q(&["op.duration{op=\"vm.list\"}", "--step", "30m", "--agg", "p95", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["series"], r#"op.duration{op="vm.list",service="api"}"#);
    let p95 = json[0]["points"][0][1].as_f64().unwrap();
    assert!((p95 - 0.10).abs() <= 0.001, "nearest-rank p95 of 10..100 ms is 100 ms: {p95}");
    // Tables show the unit (JSON keeps SI numbers).
    let out = q(&["op.duration{op=\"vm.list\"}", "--step", "30m", "--agg", "p95"]);
    let table = String::from_utf8(out.stdout).unwrap();
    let shown = table.lines().nth(1).and_then(|l| l.split_whitespace().last()).unwrap();
    let ms: f64 = shown.strip_suffix("ms").unwrap_or_else(|| panic!("{table}")).parse().unwrap();
    assert!((ms - 100.0).abs() <= 1.0, "{table}");

    let out = q(&["op.retries", "--step", "30m", "--agg", "rate", "--format", "csv"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "time,series,value\n2026-01-01T00:00:00Z,\"op.retries{op=\"\"vm.list\"\",service=\"\"api\"\"}\",8.950000\n"
    );

    // No data names the window, the store and its newest data.
    let out = run(
        "perfctl",
        &["--db", dbs, "query", "op.retries", "--since", "2026-02-01T00:00:00Z", "--until", "2026-02-02T00:00:00Z"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: no data for op.retries between 2026-02-01T00:00:00Z and 2026-02-02T00:00:00Z in {dbs} (1 matching series; its newest data is from 2026-01-01T00:29:50Z)\n"
        )
    );
    // A plain date is midnight UTC; a malformed one is a usage error (2) naming the flag.
    let out =
        run("perfctl", &["--db", dbs, "query", "op.retries", "--since", "2026-01-01", "--now", "2026-01-01T01:00:00Z"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run("perfctl", &["--db", dbs, "query", "op.retries", "--since", "2026-13-01"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value '2026-13-01' for '--since'"));
    let out = run("perfctl", &["--db", dbs, "query", "op.retries", "--agg", "median"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid value 'median' for '--agg <AGG>': invalid aggregation 'median'")
    );
    let out = run("perfctl", &["--db", dbs, "query", "op.retries{op=vm}"]);
    assert_eq!(out.status.code(), Some(2), "a malformed selector is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be in double quotes"));
}

/// Run a binary that must exit by itself (an agent that wrongly starts is killed after 20 s).
fn run_for(name: &str, args: &[&str]) -> Output {
    let mut child = Command::new(bin(name))
        .args(args)
        .env_remove("PERFAGENT_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run binary");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("{name} {args:?} did not exit: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("wait")
}

#[test]
fn a_too_new_or_corrupt_store_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    store_with(&db, 2, 30);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", perfstore::SCHEMA_VERSION + 1).unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(conn);
    let before = std::fs::read(&db).unwrap();
    let dbs = db.to_str().unwrap();
    for (binary, args) in [
        ("perfctl", vec!["stats", "--db", dbs, "--last", "1h"]),
        ("perfctl", vec!["export", "--db", dbs]),
        (
            "perfagent",
            vec!["start", "--foreground", "--db", dbs, "--statsd-udp", "127.0.0.1:0", "--http", "127.0.0.1:0"],
        ),
    ] {
        let out = run_for(binary, &args);
        assert_eq!(out.status.code(), Some(1), "{binary} {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "store schema version {} is newer than this binary supports (version {}); upgrade perfagent/perfctl; the file was left untouched",
                perfstore::SCHEMA_VERSION + 1,
                perfstore::SCHEMA_VERSION
            )),
            "{binary}: {err}"
        );
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "not one byte changed");

    // Corrupt pages: the agent refuses to write into it, db check says so, nothing is rewritten.
    let db2 = dir.path().join("corrupt.db");
    store_with(&db2, 50, 200);
    let conn = rusqlite::Connection::open(&db2).unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(conn);
    let mut bytes = std::fs::read(&db2).unwrap();
    let page = 16_384;
    assert!(bytes.len() > 3 * page);
    // Page 2's b-tree header and cell pointers: structural damage quick_check must see.
    for b in &mut bytes[page..page + 200] {
        *b = 0xA5;
    }
    std::fs::write(&db2, &bytes).unwrap();
    let d2 = db2.to_str().unwrap();
    let out = run(
        "perfagent",
        &["start", "--foreground", "--db", d2, "--statsd-udp", "127.0.0.1:0", "--http", "127.0.0.1:0"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt") || err.contains("malformed"), "{err}");
    let out = run("perfagent", &["db", "check", "--db", d2]);
    assert_ne!(out.status.code(), Some(0), "db check fails on a corrupt store");
    assert_eq!(std::fs::read(&db2).unwrap(), bytes, "the corrupt file is left as it was");
}
