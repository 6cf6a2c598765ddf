//! Hostile and odd input through the real agent and perfctl: absurd timestamps and values,
//! oversized lines and datagrams, terminal escapes, tag keys that would break the Prometheus
//! exposition, and files that are not what they should be. Each was a reproduced finding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use perf_e2e::{Agent, bin, http, perfctl, skip, status, wait_for};
use perfstore::{Reader, Selector, TimeRange};

fn dropped(s: &serde_json::Value, reason: &str) -> u64 {
    s["dropped"][reason].as_u64().unwrap_or(0)
}

/// Lines the agent took or dropped.
fn seen(s: &serde_json::Value) -> u64 {
    s["lines"].as_u64().unwrap_or(0)
        + s["dropped"].as_object().map_or(0, |m| m.values().filter_map(serde_json::Value::as_u64).sum())
}

/// Send `text` over TCP and wait until the agent has taken or dropped `lines` lines in all.
fn send_tcp(agent: &Agent, db: &Path, text: &[u8], lines: u64) {
    let mut c = TcpStream::connect(agent.addr("statsd_tcp")).unwrap();
    c.write_all(text).unwrap();
    drop(c);
    wait_for(60, &format!("{lines} lines"), || (seen(&status(db)) >= lines).then_some(()));
}

fn series_names(db: &Path) -> Vec<String> {
    let mut r = Reader::open(db).unwrap();
    let snap = r.snapshot().unwrap();
    snap.series(&Selector::default()).unwrap().into_iter().map(|s| s.key.name.to_string()).collect()
}

#[test]
fn absurd_timestamps_and_values_are_refused_and_counted_and_every_command_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &["--flush-interval", "200ms"], &[]);
    let lines = "ok.count:1|c\n\
                 ts.min:1|c|T-9223372036854775808\n\
                 ts.far:1|c|T99999999999\n\
                 ts.old:1|c|T1\n\
                 big.count:1e308|c\n\
                 big.count:1e308|c\n\
                 rate.count:1e10|c|@1e-300\n\
                 big.gauge:+1e308|g\n\
                 big.gauge:+1e308|g\n";
    send_tcp(&agent, &db, lines.as_bytes(), 9);
    let s = wait_for(30, "the refusals counted", || {
        let s = status(&db);
        (dropped(&s, "timestamp_out_of_range") == 3 && dropped(&s, "value_overflow") == 3).then_some(s)
    });
    assert_eq!(dropped(&s, "timestamp_out_of_range"), 3, "{s}");
    agent.stop();

    let mut r = Reader::open(&db).unwrap();
    let snap = r.snapshot().unwrap();
    let newest = snap.newest_ms().unwrap().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((newest - now).abs() < 600_000, "the store's newest time stays sane: {newest}");
    let all = TimeRange::new(0, now + 3_600_000);
    let sum = |name: &str| {
        let s = snap.series(&Selector::name(name)).unwrap();
        s.first().and_then(|s| snap.aggregate(s, all).unwrap()).map(|p| (p.sum, p.last))
    };
    assert_eq!(sum("big.count").map(|p| p.0), Some(1e308), "the first 1e308 is kept, the overflow refused");
    assert_eq!(sum("big.gauge").map(|p| p.1), Some(1e308));
    assert_eq!(sum("rate.count"), None, "1e10 at rate 1e-300 is not infinity in the store");
    drop(snap);
    for args in [
        &["series"][..],
        &["query", "big.count", "--last", "1h"],
        &["export", "--last", "1h"],
        &["export", "--since", "1970-01-01", "--step", "100000d"],
    ] {
        let out = perfctl(&db, args);
        assert!(out.status.success(), "perfctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("inf") && !text.contains("null"), "perfctl {args:?}: {text}");
    }
    // No operation calls among them: stats says so, naming what the store does hold.
    let out = perfctl(&db, &["stats", "--last", "24h"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: no data for operation calls (op.duration) between "), "{err}");
    assert!(err.contains("(0 matching series; its newest data is from "), "{err}");
}

#[test]
fn oversized_lines_and_datagrams_are_dropped_whole_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let sock = dir.path().join("statsd.sock");
    let agent = Agent::start(&db, &["--flush-interval", "200ms", "--statsd-unix", sock.to_str().unwrap()], &[]);
    // A 100,000-byte name, a 200,000-byte line (its tail must not become a series), then a
    // good line on the same connection.
    let mut text = Vec::new();
    text.extend(std::iter::repeat_n(b'a', 100_000));
    text.extend_from_slice(b":1|c\n");
    text.extend(std::iter::repeat_n(b'b', 131_053));
    text.extend_from_slice(b"tail.name:1|c");
    text.extend(std::iter::repeat_n(b'c', 68_934));
    text.extend_from_slice(b":1|c\ngood.tcp:1|c\n");
    send_tcp(&agent, &db, &text, 3);
    // A 150 KiB Unix datagram of 10,000 lines: read whole, every line counted.
    let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let big: String = (0..10_000).map(|i| format!("good.unix:1|c|#n:{}\n", i % 10)).collect();
    assert!(big.len() > 150_000 && big.len() < 212_992, "{}", big.len());
    client.send_to(big.as_bytes(), &sock).unwrap();
    wait_for(60, "the datagram's lines", || (seen(&status(&db)) >= 10_003).then_some(()));
    let s = status(&db);
    assert_eq!(dropped(&s, "line_too_long") + dropped(&s, "name_too_long"), 2, "{s}");
    assert_eq!(dropped(&s, "missing_type"), 0, "no line was parsed cut: {s}");
    agent.stop();
    let mut names: Vec<String> =
        series_names(&db).into_iter().filter(|n| !n.starts_with("system.") && !n.starts_with("process.")).collect();
    names.sort();
    names.dedup();
    assert_eq!(names, ["good.tcp", "good.unix"], "neither the long name nor the long line's tail is a series");
    let out = perfctl(&db, &["series"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tags_that_would_break_the_exposition_are_refused_or_made_unique_and_promtool_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &["--flush-interval", "200ms"], &[]);
    let http_addr = agent.addr("http");
    let lines = "eq.key:1|c|#a=b\n\
                 ctl.name\u{1b}]0;x:1|c\n\
                 ctl.tag:1|c|#op:vm\u{1b}[31m\n\
                 dot.dash:1|c|#a.b:1,a-b:2\n\
                 op.duration:20|ms|#le:5,quantile:x,__name__:y,op:vm.list\n";
    send_tcp(&agent, &db, lines.as_bytes(), 5);
    let s = wait_for(30, "the refusals counted", || {
        let s = status(&db);
        (dropped(&s, "bad_tag_key") >= 1 && dropped(&s, "bad_name") >= 1 && dropped(&s, "bad_tags") >= 1).then_some(s)
    });
    assert_eq!((dropped(&s, "bad_tag_key"), dropped(&s, "bad_name"), dropped(&s, "bad_tags")), (1, 1, 1), "{s}");
    let body = wait_for(30, "/metrics with the timer", || {
        let (code, _, body) =
            http(&http_addr, "GET /metrics HTTP/1.1", format!("Host: {http_addr}\r\n\r\n").as_bytes());
        (code == 200 && body.contains("op_duration_seconds_bucket") && body.contains("dot_dash")).then_some(body)
    });
    agent.stop();
    assert!(!body.contains('\u{1b}'), "no escape reaches /metrics");
    for line in body.lines().filter(|l| l.starts_with("dot_dash") || l.starts_with("op_duration_seconds_bucket")) {
        let labels = line.split_once('{').map_or("", |(_, r)| r.split_once('}').map_or("", |(l, _)| l));
        let keys: Vec<&str> = labels.split(',').filter_map(|kv| kv.split_once('=').map(|(k, _)| k)).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(keys.len(), unique.len(), "label names are unique: {line}");
        assert_eq!(keys.iter().filter(|k| **k == "le").count(), usize::from(line.contains("_bucket")), "{line}");
        assert!(!keys.iter().any(|k| k.starts_with("__") || *k == "quantile"), "{line}");
    }
    let path = dir.path().join("metrics.txt");
    std::fs::write(&path, &body).unwrap();
    match Command::new("promtool").args(["check", "metrics"]).stdin(std::fs::File::open(&path).unwrap()).output() {
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(!said.contains("error") && !said.contains("invalid"), "promtool: {said}\n{body}");
            assert!(out.status.success() || said.contains("lint"), "promtool: {said}");
        }
        Err(_) => skip("tags_that_would_break_the_exposition…", "no promtool (apt-get install prometheus)"),
    }
}

/// Every byte a terminal would act on.
fn assert_no_escapes(what: &str, bytes: &[u8]) {
    let bad: Vec<u8> = bytes.iter().copied().filter(|&b| b == 0x1b || b == 0x07 || b == b'\r' || b == 0x9b).collect();
    assert!(bad.is_empty(), "{what} printed control bytes {bad:?}: {}", String::from_utf8_lossy(bytes));
}

#[test]
fn escapes_in_stored_names_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let evil = "vm\u{1b}]0;pwned\u{7}\u{1b}[2J\rlist";
    // Imported data may hold anything: an op name with OSC and CSI sequences, label keys and
    // values with escapes.
    let om = dir.path().join("evil.om");
    std::fs::write(
        &om,
        format!(
            "# TYPE op_calls counter\nop_calls_total{{service=\"s\",op=\"{evil}\"}} 1 1795428000\nop_calls_total{{service=\"s\",op=\"{evil}\"}} 4 1795428060\n"
        ),
    )
    .unwrap();
    let out = perfctl(&db, &["import", om.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folded = dir.path().join("evil.folded");
    std::fs::write(&folded, "main;list_vms 5\n").unwrap();
    let out = perfctl(&db, &["import", folded.to_str().unwrap(), "--op", evil, "--at", "2026-11-23T10:00:00Z"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let window = ["--since", "2026-11-23T09:00:00Z", "--until", "2026-11-23T11:00:00Z"];
    let runs: Vec<Vec<&str>> = vec![
        vec!["series"],
        vec!["query", "op.calls"],
        vec!["query", "op.calls", "--format", "csv"],
        vec!["export", "--format", "csv"],
        vec!["export", "--format", "openmetrics"],
        vec!["stats"],
        vec!["stats", "--format", "csv"],
        vec!["flamegraph", "no.such.op"],
        vec!["flamegraph", evil, "-o", "-"],
        vec!["profile", evil],
        vec!["query", evil],
    ];
    for args in runs {
        let mut all = args.clone();
        if !matches!(args[0], "series") {
            all.extend(window);
        }
        let out = perfctl(&db, &all);
        assert_no_escapes(&format!("perfctl {args:?} stdout"), &out.stdout);
        assert_no_escapes(&format!("perfctl {args:?} stderr"), &out.stderr);
    }
}

#[test]
fn files_are_never_followed_or_clobbered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    // --statsd-unix naming a regular file: refused, the file kept.
    let precious = dir.path().join("notes.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let out = Command::new(bin("perfagent"))
        .args(["start", "--foreground", "--statsd-udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--statsd-unix")
        .arg(&precious)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a socket"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");

    // A status file planted as a symlink is not written through.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("perf.db.status")).unwrap();
    let agent = Agent::start(&db, &["--flush-interval", "200ms"], &[]);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let log = agent.stop();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched", "{log}");
    assert!(log.contains("perf.db.status"), "the log names the file it would not write: {log}");
}

#[test]
fn stop_never_signals_a_pid_it_cannot_trust() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &[], &[]);
    let lock = dir.path().join("perf.db.lock");
    for garbage in ["0\n", "-1\n", "4294967295\n", "99999999999\n", "abc\n", ""] {
        std::fs::write(&lock, garbage).unwrap();
        let out = Command::new(bin("perfagent")).args(["stop", "--db"]).arg(&db).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{garbage:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("pid"), "{garbage:?}: {err}");
        // SAFETY: kill with signal 0 only checks that the process exists.
        assert_eq!(unsafe { libc::kill(agent.pid() as i32, 0) }, 0, "the agent still runs after {garbage:?}");
    }
    std::fs::write(&lock, format!("{}\n", agent.pid())).unwrap();
    let out = Command::new(bin("perfagent")).args(["stop", "--db"]).arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = agent.terminate();
}
