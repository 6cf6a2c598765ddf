//! `perfctl demo`, the README's main command, as a newcomer runs it (shortened to a few
//! seconds): everything in one store it creates, with stats, a flame graph, a capacity
//! projection and the next commands.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::process::Command;

use perf_e2e::bin;

#[test]
fn the_demo_runs_end_to_end_and_never_touches_the_real_store() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let out = Command::new(bin("perfctl"))
        .args(["demo", "--seconds", "4"])
        .env_remove("PERFAGENT_DB")
        .env("XDG_DATA_HOME", &data)
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let db = data.join("perfagent/demo.db");
    assert!(db.exists(), "the demo store");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join("perfagent")), 0o700, "the data folder is private");
    assert_eq!(mode(&db), 0o600, "the store is private");
    assert!(!data.join("perfagent/perf.db").exists(), "the default store of `perfagent start` is never created");
    assert!(stderr.contains("running a simulated cloud CLI (SDK) and a billing worker (StatsD)"), "{stderr}");
    // Stats: the SDK's operations and the StatsD app's, with caches, pools and errors.
    for op in ["vm.list", "vm.start", "ssm.send_command", "blob.read", "invoice.render"] {
        assert!(stdout.contains(&format!("\n{op} ")), "{op} in:\n{stdout}");
    }
    assert!(stdout.contains("Cache     hit rate "), "{stdout}");
    assert!(stdout.contains("Pool      hit rate "), "{stdout}");
    // A flame graph file for vm.list, with its own function in it.
    let svg = std::fs::read_to_string(data.join("perfagent/vm.list.svg")).expect("flame graph written");
    assert!(svg.contains("parse_instance_page"), "vm.list's CPU is in parse_instance_page");
    // Capacity from the simulated 30-day history of request rates.
    assert!(stdout.contains("requests  (40.0 calls/s)"), "{stdout}");
    assert!(stdout.contains("auto (30 days of history)"), "{stdout}");
    // CPU and memory too, from the simulated host history.
    assert!(stdout.contains("\ncpu  (") && stdout.contains("\nmemory  ("), "{stdout}");
    // perfctl is not on this test's PATH: the next commands name the binary that ran.
    let me = bin("perfctl");
    assert!(
        stdout.contains(&format!(
            "Next, try:\n  (perfctl is not on your PATH; `cargo install --path cli --locked` puts it there)\n  {} --db {} stats",
            me.display(),
            db.display()
        )),
        "{stdout}"
    );
    // It ends by saying how to see it all in a browser.
    let last = stdout.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("Dashboard: ") && last.contains("ui`, then open http://127.0.0.1:9466/"), "{last}");
    // The progress counts every call of both apps, once.
    let done: f64 = stderr.split("done: ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    let calls: f64 = stdout.split("Calls     ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!((done - calls).abs() <= 0.1 * calls, "progress said {done} calls, stats {calls}");
    let progress: Vec<&str> = stderr.lines().filter(|l| l.contains("s / 4s")).collect();
    let mut unique = progress.clone();
    unique.dedup();
    assert_eq!(progress, unique, "no progress line twice");
    // Running it again starts afresh in the same demo store.
    let again = Command::new(bin("perfctl"))
        .args(["demo", "--seconds", "1"])
        .env_remove("PERFAGENT_DB")
        .env("XDG_DATA_HOME", &data)
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
}

#[test]
fn a_demo_store_is_replaced_only_when_asked_and_other_stores_never() {
    let home = tempfile::tempdir().unwrap();
    let demo = |db: &std::path::Path, extra: &[&str]| {
        Command::new(bin("perfctl"))
            .args([&["--db", db.to_str().unwrap(), "demo", "--seconds", "1"][..], extra].concat())
            .env_remove("PERFAGENT_DB")
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .output()
            .unwrap()
    };
    let db = home.path().join("mine.db");
    let first = demo(&db, &[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let before = std::fs::metadata(&db).unwrap().len();
    // Again without --fresh (and no terminal to ask on): refused, history not doubled.
    let again = demo(&db, &[]);
    assert_eq!(again.status.code(), Some(1));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("holds the demo from ") && said.contains("pass --fresh to replace it"), "{said}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), before, "untouched");
    let fresh = demo(&db, &["--fresh"]);
    assert!(fresh.status.success(), "{}", String::from_utf8_lossy(&fresh.stderr));

    // A store with data of its own is never written, --fresh or not.
    let other = home.path().join("real.db");
    let csv = home.path().join("one.csv");
    std::fs::write(&csv, "time,series,value\n2026-11-22T00:00:00Z,op.retries{op=\"x\"},1\n").unwrap();
    let out = Command::new(bin("perfctl"))
        .args(["--db", other.to_str().unwrap(), "import", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&other).unwrap();
    for extra in [&[][..], &["--fresh"][..]] {
        let out = demo(&other, extra);
        assert_eq!(out.status.code(), Some(1));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("is a perfagent store with data of its own"), "{said}");
        assert_eq!(std::fs::read(&other).unwrap(), bytes, "the other store is untouched");
    }
}

#[test]
fn demo_serve_keeps_the_dashboard_open_on_the_demo_store() {
    use std::io::BufRead as _;
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("d.db");
    let mut child = Command::new(bin("perfctl"))
        .arg("--db")
        .arg(&db)
        .args(["demo", "--seconds", "1", "--serve", "--listen", "127.0.0.1:0"])
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.map_while(Result::ok).find(|l| l.starts_with("Dashboard (")).expect("a Dashboard line");
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap();
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    // The process is still serving after the demo: the overview's data is there.
    let (code, _, body) = perf_e2e::http(addr, "GET /api/v1/info?last=1h HTTP/1.1", b"Host: localhost\r\n\r\n");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 200, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["demo"], true);
    assert!(info["operations"].as_array().unwrap().iter().any(|o| o == "vm.list"), "{info}");
}
