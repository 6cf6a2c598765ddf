//! `perfctl import`, `export` and `flamegraph` through the real binaries: folded stacks with
//! known contents, an OpenMetrics round trip (and `promtool` reading the export), and the
//! messages for unknown or unprofiled operations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::path::Path;
use std::process::{Command, Output};

use perf_e2e::{bin, fixture, golden, load_statsd, perfctl};

const NOW: &str = "2026-11-23T00:00:00Z";

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn err(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn import_profiles(db: &Path) {
    let before = fixture("profiles/vm-list-before.folded");
    let after = fixture("profiles/vm-list.folded");
    let out = perfctl(db, &["import", before.to_str().unwrap(), "--op", "vm.list", "--at", "2026-11-21T12:00:00Z"]);
    assert_eq!(ok(&out), format!("imported 4 stacks (400 samples) from {} into {}\n", before.display(), db.display()));
    ok(&perfctl(db, &["import", after.to_str().unwrap(), "--op", "vm.list", "--at", "2026-11-22T12:00:00Z"]));
}

#[test]
fn flamegraph_draws_the_imported_stacks_and_escapes_labels() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    import_profiles(&db);
    let day = ["--now", NOW, "--last", "24h"];

    // Folded text: exactly the file's stacks (comment dropped), sorted.
    let folded = ok(&perfctl(&db, &[&["flamegraph", "vm.list", "--folded"][..], &day].concat()));
    let mut expected: Vec<String> = std::fs::read_to_string(fixture("profiles/vm-list.folded"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    expected.sort();
    assert_eq!(folded.lines().collect::<Vec<_>>(), expected);

    // The SVG: written to <op>.svg in the working folder, path printed, every function named
    // with its share, and labels escaped so the document stays well-formed XML.
    let out = Command::new(bin("perfctl"))
        .current_dir(dir.path())
        .args(["--db", db.to_str().unwrap(), "flamegraph", "vm.list"])
        .args(day)
        .output()
        .unwrap();
    assert_eq!(ok(&out), "vm.list.svg\n");
    let svg = std::fs::read_to_string(dir.path().join("vm.list.svg")).unwrap();
    assert!(svg.contains("vm.list (CPU): 2026-11-22T00:00:00Z → 2026-11-23T00:00:00Z, 600 samples"), "title");
    assert!(svg.contains("<title>fleet_cli::vm::parse_page (270 samples, 45.00%)</title>"));
    assert!(svg.contains("&lt;Vec&lt;Vm&gt; as Display&gt;::fmt &amp; &quot;quotes&quot;"));
    assert!(!svg.contains("<Vec<Vm>"));
    let parsed = Command::new("python3")
        .args(["-c", "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])"])
        .arg(dir.path().join("vm.list.svg"))
        .status();
    if let Ok(status) = parsed {
        assert!(status.success(), "the SVG is not well-formed XML");
    }

    // Icicle and differential graphs.
    let icicle = dir.path().join("icicle.svg");
    ok(&perfctl(&db, &[&["flamegraph", "vm.list", "--icicle", "-o", icicle.to_str().unwrap()][..], &day].concat()));
    assert_ne!(std::fs::read_to_string(&icicle).unwrap(), svg, "an icicle graph is drawn differently");
    let diff = dir.path().join("diff.svg");
    let args = ["flamegraph", "vm.list", "--diff", "--baseline-since", "2026-11-21T00:00:00Z", "-o"];
    ok(&perfctl(&db, &[&args[..], &[diff.to_str().unwrap()], &day].concat()));
    let diff = std::fs::read_to_string(&diff).unwrap();
    assert!(diff.contains("vm.list (CPU change)"), "diff title");
    assert!(diff.contains("vs baseline 2026-11-21T00:00:00Z → 2026-11-22T00:00:00Z (400 samples, normalized)"));
}

#[test]
fn flamegraph_explains_missing_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    import_profiles(&db);
    // Samples outside any operation are filed under `(none)`: never offered as a name.
    let before = fixture("profiles/vm-list-before.folded");
    ok(&perfctl(&db, &["import", before.to_str().unwrap(), "--op", "(none)", "--at", "2026-11-21T12:00:00Z"]));
    let e = err(&perfctl(&db, &["flamegraph", "vm.lsit", "--now", NOW, "--last", "24h"]));
    assert_eq!(
        e,
        format!(
            "error: unknown operation 'vm.lsit'; operations with CPU profiles in {}, closest first: vm.list\n",
            db.display()
        )
    );
    let e = err(&perfctl(&db, &["flamegraph", "vm.list", "--now", "2026-11-20T00:00:00Z", "--last", "1h"]));
    assert!(e.contains("it has 1000 samples outside this window (widen it with --last or --since)"), "{e}");

    // An operation with calls but no samples: say why (the profiler runs in SDK apps).
    let calls = dir.path().join("calls.db");
    load_statsd(&calls, &fixture("statsd/cloud-cli.statsd"));
    let e = err(&perfctl(&calls, &["flamegraph", "vm.start", "--now", NOW, "--last", "24h"]));
    assert!(e.starts_with("error: 'vm.start' has calls recorded in "), "{e}");
    assert!(
        e.contains("no CPU profile samples: profiles come from apps that run operations through the perfagent SDK")
    );

    // Malformed folded input is refused with its line, and nothing is stored.
    let bad = dir.path().join("bad.folded");
    std::fs::write(&bad, "a;b 3\na;c three\n").unwrap();
    let e = err(&perfctl(&db, &["import", bad.to_str().unwrap(), "--op", "other"]));
    assert_eq!(
        e,
        format!(
            "error: {}: line 2: expected a whole sample count after the last space, found 'three'; nothing was imported\n",
            bad.display()
        )
    );
    let e = err(&perfctl(&db, &["flamegraph", "other", "--now", NOW, "--last", "24h"]));
    assert!(e.starts_with("error: unknown operation 'other'"), "{e}");
}

#[test]
fn openmetrics_export_round_trips_through_import_and_promtool_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    load_statsd(&db, &fixture("statsd/cloud-cli.statsd"));
    let day = ["--now", NOW, "--last", "24h"];
    let om = dir.path().join("history.om");
    let out = perfctl(
        &db,
        &[&["export", "--step", "10m", "--buckets", "exact", "-o", om.to_str().unwrap()][..], &day].concat(),
    );
    ok(&out);
    let text = std::fs::read_to_string(&om).unwrap();
    // The default, compact buckets: 1-2-5 per decade, far smaller; the summary counts what
    // was written.
    let compact = dir.path().join("compact.om");
    let out = perfctl(&db, &[&["export", "--step", "10m", "-o", compact.to_str().unwrap()][..], &day].concat());
    ok(&out);
    let small = std::fs::read_to_string(&compact).unwrap();
    assert!(small.len() * 4 < text.len(), "compact {} vs exact {} bytes", small.len(), text.len());
    assert!(
        small.contains("le=\"0.1\"") && small.contains("le=\"0.2\"") && small.contains("le=\"0.5\""),
        "1-2-5 bounds"
    );
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines = small.lines().count();
    assert!(said.contains(&format!(" points ({lines} lines, ")) && said.contains("histogram bucket samples"), "{said}");
    assert!(text.ends_with("# EOF\n"));
    assert!(text.contains("# TYPE op_duration_seconds histogram\n"));
    assert!(text.contains("# TYPE op_retries counter\n"));
    // Counters start from 0 one step before their first point.
    let first_retry = text.lines().find(|l| l.starts_with("op_retries_total{")).unwrap();
    assert!(first_retry.contains("} 0 "), "{first_retry}");

    let copy = dir.path().join("copy.db");
    let out = perfctl(&copy, &["import", om.to_str().unwrap(), "--now", NOW]);
    assert!(ok(&out).starts_with("imported "), "import summary");
    let stats = |db: &Path| -> serde_json::Value {
        serde_json::from_str(&ok(&perfctl(db, &[&["stats", "--format", "json"][..], &day].concat()))).unwrap()
    };
    let (a, b) = (stats(&db), stats(&copy));
    let (a_ops, b_ops) = (a["ops"].as_array().unwrap(), b["ops"].as_array().unwrap());
    assert_eq!(a_ops.len(), b_ops.len());
    for (x, y) in a_ops.iter().zip(b_ops) {
        assert_eq!(x["op"], y["op"]);
        for k in ["calls", "errors", "retries", "cached_pct", "batched_pct", "batch_efficiency"] {
            assert_eq!(x[k], y[k], "{}: {k} survives export and import exactly", x["op"]);
        }
        let close = |k: &str, rel: f64| {
            let (p, q) = (x["latency_ms"][k].as_f64().unwrap(), y["latency_ms"][k].as_f64().unwrap());
            assert!((p - q).abs() <= rel * p, "{}: {k} {p} vs {q}", x["op"]);
        };
        close("avg", 1e-9); // sums are exact
        for q in ["p50", "p95", "p99"] {
            close(q, 0.01); // the sketch's bins are the histogram's buckets
        }
    }
    // Host gauges come back under their convention names (each step carries its last value,
    // so the mean of a 10-minute export is close to, not equal to, the mean of every sample).
    let (x, y) = (a["host"]["cpu_avg_pct"].as_f64().unwrap(), b["host"]["cpu_avg_pct"].as_f64().unwrap());
    assert!((x - y).abs() < 0.02 * x, "{x} vs {y}");

    // promtool builds TSDB blocks from the export.
    if let Ok(out) = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(dir.path().join("blocks"))
        .output()
    {
        assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI installs promtool");
    }
}

#[test]
fn import_reports_bad_lines_and_counter_resets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let om = dir.path().join("scrapes.prom");
    // Prometheus text (millisecond timestamps): a counter with a reset, a gauge, a bad line.
    std::fs::write(
        &om,
        "# TYPE op_retries_total counter\n\
         op_retries_total{op=\"vm.start\"} 10 1795327200000\n\
         op_retries_total{op=\"vm.start\"} 14 1795327260000\n\
         op_retries_total{op=\"vm.start\"} 3 1795327320000\n\
         op_retries_total{op=\"vm.start\"} 5 1795327380000\n\
         # TYPE pool_size gauge\n\
         pool_size{pool=\"blob\"} 8 1795327200000\n\
         pool_size{pool=\"blob\" 9 1795327260000\n",
    )
    .unwrap();
    let out = perfctl(&db, &["import", om.to_str().unwrap(), "--now", NOW]);
    let text = ok(&out);
    assert!(text.contains("imported 4 points of 2 series (8 lines)"), "{text}");
    assert!(text.ends_with("; skipped 1: 1 bad lines\n"), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:8: missing '}}' after the labels; skipped", om.display())), "{stderr}");
    assert!(!stderr.contains(":7:"), "{stderr}");
    // 10 → 14 (+4) → 3 (reset: +3) → 5 (+2): 9 retries after the baseline.
    let q = ok(&perfctl(
        &db,
        &[
            "query",
            "op.retries",
            "--agg",
            "sum",
            "--step",
            "1h",
            "--since",
            "2026-11-22T06:00:00Z",
            "--until",
            "2026-11-22T07:00:00Z",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(
        q,
        "time,series,value\n2026-11-22T06:00:00Z,\"op.retries{op=\"\"vm.start\"\",service=\"\"imported\"\"}\",9\n"
    );
}

#[test]
fn export_csv_and_json_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    load_statsd(&db, &fixture("statsd/cloud-cli.statsd"));
    let args = ["export", "op.*{op=\"vm.start\"}", "--step", "1h", "--now", NOW, "--last", "24h"];
    golden("export-vm-start.csv", &ok(&perfctl(&db, &[&args[..], &["--format", "csv"]].concat())));
    let json = ok(&perfctl(&db, &[&args[..], &["--format", "json"]].concat()));
    golden("export-vm-start.json", &json);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let calls: f64 = doc
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "op.duration")
        .flat_map(|s| s["points"].as_array().unwrap())
        .map(|p| p["count"].as_f64().unwrap())
        .sum();
    assert_eq!(calls, 120.0, "every call of vm.start, batched or not");
}

#[test]
fn a_statsd_capture_imports_as_the_agent_would_record_it() {
    let dir = tempfile::tempdir().unwrap();
    let capture = fixture("statsd/cloud-cli.statsd");
    let through_agent = dir.path().join("agent.db");
    load_statsd(&through_agent, &capture);
    let imported = dir.path().join("imported.db");
    let said = ok(&perfctl(&imported, &["import", capture.to_str().unwrap(), "--now", NOW]));
    assert!(said.starts_with("imported ") && said.contains(" events"), "{said}");
    let day = ["--now", NOW, "--last", "24h"];
    let stats = |db: &Path| -> serde_json::Value {
        serde_json::from_str(&ok(&perfctl(db, &[&["stats", "--format", "json"][..], &day].concat()))).unwrap()
    };
    let (a, b) = (stats(&through_agent), stats(&imported));
    let (a_ops, b_ops) = (a["ops"].as_array().unwrap(), b["ops"].as_array().unwrap());
    assert!(!a_ops.is_empty());
    assert_eq!(a_ops.len(), b_ops.len());
    for (x, y) in a_ops.iter().zip(b_ops) {
        assert_eq!(x["op"], y["op"]);
        for k in ["calls", "errors", "retries", "cached_pct", "batched_pct", "latency_ms", "last_error"] {
            assert_eq!(x[k], y[k], "{}: {k}, through the agent and imported", x["op"]);
        }
    }
    assert_eq!(a["host"], b["host"], "host gauges");
    // A bad line is named with its number and skipped; the rest is taken.
    let bad = dir.path().join("bad.statsd");
    std::fs::write(&bad, "op.retries:1|c|#op:x|T1795392000\nop.retries:one|c\n").unwrap();
    let out = perfctl(&dir.path().join("bad.db"), &["import", bad.to_str().unwrap(), "--now", NOW]);
    let said = ok(&out);
    assert!(said.contains("skipped 1: 1 bad lines"), "{said}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{}:2: ", bad.display())));
}
