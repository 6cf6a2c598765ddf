//! The dashboard (`perfctl ui`, and the agent's `/`) on a store with known contents: the
//! known StatsD capture, a CPU profile of vm.list, and two operations with hostile names.
//! The JSON API answers exactly what `perfctl … --format json` prints; pages are locked down
//! (CSP, Host allow-list, no writes); and a real Chromium shows perfctl's numbers, draws the
//! charts, searches the flame graph and renders hostile names as text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use perf_e2e::{Agent, bin, fixture, http, load_statsd, perfctl, skip};

const NOW: &str = "2026-11-23T00:00:00Z";
const SINCE: &str = "2026-11-22T00:00:00Z";
const HOSTILE: [&str; 2] = ["<script>window.__pwned=1</script>", "\"><img src=x onerror=window.__pwned=2>"];

/// One store per test process: the capture, the hostile operations, and a vm.list profile.
fn store() -> &'static Path {
    static STORE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, db) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("perf.db");
        let capture = dir.path().join("all.statsd");
        let mut text = std::fs::read_to_string(fixture("statsd/cloud-cli.statsd")).unwrap();
        for (i, name) in HOSTILE.iter().enumerate() {
            for k in 0..20 {
                let t = 1_795_340_000 + i * 100 + k * 60;
                text.push_str(&format!("op.duration:{}|ms|#op:{name},outcome:ok,service:fleet-cli|T{t}\n", 10 + k));
            }
        }
        std::fs::write(&capture, text).unwrap();
        load_statsd(&db, &capture);
        let at = "2026-11-22T12:00:00Z";
        let folded = fixture("profiles/vm-list.folded");
        let out = perfctl(&db, &["import", folded.to_str().unwrap(), "--op", "vm.list", "--at", at]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (dir, db)
    });
    db
}

/// `perfctl ui` on the store, on a free port, with a fixed now.
struct Ui {
    child: Child,
    addr: String,
}

impl Ui {
    fn start(db: &Path) -> Ui {
        let mut child = Command::new(bin("perfctl"))
            .arg("--db")
            .arg(db)
            .args(["ui", "--listen", "127.0.0.1:0", "--now", NOW])
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn perfctl ui");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().trim_start_matches("http://").trim_end_matches('/').to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "perfctl ui printed {line:?}");
        Ui { child, addr }
    }

    fn get(&self, target: &str) -> (u16, Vec<(String, String)>, String) {
        http(&self.addr, &format!("GET {target} HTTP/1.1"), b"Host: localhost\r\n\r\n")
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// `a=b&c=d` with each value percent-encoded.
fn query(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&")
}

#[test]
fn every_api_endpoint_answers_what_perfctl_prints() {
    let db = store();
    let ui = Ui::start(db);
    let w = [("since", SINCE), ("until", NOW)];
    let sel = r#"op.duration{op="vm.start"}"#;
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("stats?{}", query(&w)), vec!["stats", "--since", SINCE, "--until", NOW, "--format", "json"]),
        (
            format!("stats?{}", query(&[w[0], w[1], ("op", "vm.*"), ("by", "service")])),
            vec!["stats", "--since", SINCE, "--until", NOW, "--op", "vm.*", "--by", "service", "--format", "json"],
        ),
        (
            format!("profile?{}", query(&[w[0], w[1], ("op", "vm.start")])),
            vec!["profile", "vm.start", "--since", SINCE, "--until", NOW, "--format", "json"],
        ),
        (
            format!("flamegraph?{}", query(&[w[0], w[1], ("op", "vm.list")])),
            vec!["flamegraph", "vm.list", "--since", SINCE, "--until", NOW, "--json"],
        ),
        (
            format!("query?{}", query(&[w[0], w[1], ("selector", sel), ("agg", "p95"), ("step", "1h")])),
            vec!["query", sel, "--since", SINCE, "--until", NOW, "--step", "1h", "--agg", "p95", "--format", "json"],
        ),
        (
            format!("query?{}", query(&[w[0], w[1], ("selector", "op.duration"), ("agg", "p99"), ("merge", "op")])),
            vec![
                "query",
                "op.duration",
                "--since",
                SINCE,
                "--until",
                NOW,
                "--agg",
                "p99",
                "--merge",
                "op",
                "--format",
                "json",
            ],
        ),
        (format!("series?{}", query(&[("top", "5")])), vec!["series", "--top", "5", "--format", "json"]),
        (
            format!("slo?{}", query(&[("window", "1d")])),
            vec!["slo", "--window", "1d", "--now", NOW, "--format", "json"],
        ),
        (
            format!("capacity?{}", query(&[("growth", "0.3"), ("months", "6")])),
            vec!["capacity", "--growth", "0.3", "--months", "6", "--now", NOW, "--format", "json"],
        ),
    ];
    for (target, args) in &cases {
        let (code, headers, body) = ui.get(&format!("/api/v1/{target}"));
        let out = perfctl(db, args);
        let printed = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            assert_eq!(code, 200, "{target}: {body}");
            assert_eq!(header(&headers, "content-type"), "application/json");
            assert_eq!(body, printed, "{target} differs from perfctl {args:?}");
        } else {
            // The same refusal, word for word.
            let said = String::from_utf8_lossy(&out.stderr);
            let err: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(code == 404 || code == 400, "{target}: {code}");
            assert_eq!(format!("error: {}\n", err["error"].as_str().unwrap()), said, "{target}");
        }
    }
    // The merged query is the sketches merged, not an average: p99 of all vm.start calls
    // equals perfctl stats' p99 for vm.start within the window's single step.
    let (_, _, body) = ui.get(&format!(
        "/api/v1/query?{}",
        query(&[w[0], w[1], ("selector", sel), ("agg", "p99"), ("merge", "all"), ("step", "1d")])
    ));
    let merged: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (_, _, body) = ui.get(&format!("/api/v1/stats?{}", query(&w)));
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    let p99 = stats["ops"].as_array().unwrap().iter().find(|o| o["op"] == "vm.start").unwrap()["latency_ms"]["p99"]
        .as_f64()
        .unwrap();
    let q = merged[0]["points"][0][1].as_f64().unwrap() * 1000.0;
    assert!((q - p99).abs() <= p99 * 1e-9, "merged p99 {q} ms vs stats {p99} ms");
}

#[test]
fn bad_arguments_and_missing_data_are_said_plainly() {
    let ui = Ui::start(store());
    for (target, code, words) in [
        ("/api/v1/stats?last=soon", 400, "invalid 'last': expected a duration like 1h"),
        ("/api/v1/stats?since=%3Cscript%3E", 400, "invalid 'since'"),
        ("/api/v1/query?selector=op.duration&agg=p101", 400, "invalid 'agg'"),
        ("/api/v1/query", 400, "missing 'selector'"),
        ("/api/v1/profile?last=30d", 400, "missing 'op'"),
        ("/api/v1/capacity?growth=9", 400, "invalid 'growth'"),
        ("/api/v1/flamegraph?op=vm.list&full_stacks=maybe", 400, "invalid 'full_stacks'"),
        ("/api/v1/stats?last=1h&last=2h", 400, "bad query string"),
        ("/api/v1/stats?last=1h", 404, "no data"),
        ("/api/v1/profile?op=vm.lst&last=30d", 404, "vm.list"),
    ] {
        let (c, _, body) = ui.get(target);
        assert_eq!(c, code, "{target}: {body}");
        assert!(body.contains(words), "{target}: {body}");
    }
}

#[test]
fn pages_are_locked_down() {
    let ui = Ui::start(store());
    let (code, h, page) = ui.get("/");
    assert_eq!(code, 200);
    let csp = header(&h, "content-security-policy");
    for part in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    // No inline script: every <script> loads a file from this origin.
    for tag in page.split("<script").skip(1) {
        assert!(tag.trim_start().starts_with("type=\"module\" src=\"/assets/"), "inline script in {page}");
    }
    // Every asset the page names is served, as what it is.
    let mut gz_total = 0;
    for (name, kind) in [
        ("app.js", "text/javascript"),
        ("pages.js", "text/javascript"),
        ("chart.js", "text/javascript"),
        ("flame.js", "text/javascript"),
        ("app.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let (c, h, body) = ui.get(&format!("/assets/{name}"));
        assert_eq!(c, 200, "{name}");
        assert!(header(&h, "content-type").starts_with(kind), "{name}");
        assert!(!body.contains("innerHTML") && !body.contains("insertAdjacentHTML"), "{name} writes markup");
        let mut gz =
            Command::new("gzip").args(["-9", "-c"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(gz.stdin.as_mut().unwrap(), body.as_bytes()).unwrap();
        drop(gz.stdin.take());
        gz_total += gz.wait_with_output().unwrap().stdout.len();
    }
    gz_total += page.len() / 2;
    assert!(gz_total < 300 << 10, "assets are {gz_total} bytes gzipped");
    eprintln!("dashboard assets: {gz_total} bytes gzipped");
    // A page of another site resolving to 127.0.0.1 (DNS rebinding) is refused.
    let (c, _, _) = http(&ui.addr, "GET /api/v1/stats HTTP/1.1", b"Host: evil.example\r\n\r\n");
    assert_eq!(c, 421);
    // Nothing here writes: a POST is refused.
    let (c, _, _) = http(&ui.addr, "POST /api/v1/stats HTTP/1.1", b"Host: localhost\r\nContent-Length: 0\r\n\r\n");
    assert!(c == 401 || c == 405, "POST got {c}");
    assert_eq!(ui.get("/assets/../Cargo.toml").0, 404);
    // Hostile names stay data: JSON strings, never markup outside them.
    let (_, h, body) = ui.get(&format!("/api/v1/stats?{}", query(&[("since", SINCE), ("until", NOW)])));
    assert_eq!(header(&h, "content-type"), "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ops: Vec<&str> = v["ops"].as_array().unwrap().iter().filter_map(|o| o["op"].as_str()).collect();
    for name in HOSTILE {
        assert!(ops.contains(&name), "{name} in {ops:?}");
    }
}

#[test]
fn perfctl_ui_serves_loopback_only_and_names_a_missing_store() {
    let out = perfctl(store(), &["ui", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback only"), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let out = perfctl(&dir.path().join("none.db"), &["ui", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no perfagent store here"), "{out:?}");
}

#[test]
fn the_running_agent_serves_the_same_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &[], &[]);
    let addr = agent.addr("http");
    let (c, h, _) = http(&addr, "GET / HTTP/1.1", b"Host: localhost\r\n\r\n");
    assert_eq!(c, 200);
    assert!(header(&h, "content-security-policy").contains("script-src 'self'"));
    let (c, _, body) = http(&addr, "GET /api/v1/info HTTP/1.1", b"Host: localhost\r\n\r\n");
    assert_eq!(c, 200, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["source"], "perfagent");
    assert_eq!(Path::new(info["db"].as_str().unwrap()).file_name(), db.file_name());
    // /metrics is still the agent's.
    let (c, _, body) = http(&addr, "GET /metrics HTTP/1.1", b"Host: localhost\r\n\r\n");
    assert_eq!(c, 200);
    assert!(body.contains("perfagent_"), "{body}");
    agent.stop();
}

/// Where screenshots go: beside the test binaries, in `dashboard-shots/`.
fn shots_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(Path::parent).and_then(Path::parent).unwrap().to_path_buf();
    let dir = target.join("dashboard-shots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let test = "dashboard::the_dashboard_in_a_real_browser";
    let modules =
        std::env::var("PERFAGENT_BROWSER_MODULES").ok().filter(|d| Path::new(d).join("playwright-core").is_dir());
    let Some(modules) = modules else {
        return skip(test, "playwright-core not installed (scripts/test-tools installs it)");
    };
    let chromium = std::env::var("PERFAGENT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return skip(test, "chromium not installed (scripts/test-tools installs Debian's)");
    }
    let db = store();
    let stats = perfctl(db, &["stats", "--since", SINCE, "--until", NOW, "--format", "json"]);
    assert!(stats.status.success() || stats.status.code() == Some(3));
    let slo = perfctl(db, &["slo", "--window", "1d", "--now", NOW, "--format", "json"]);
    assert!(slo.status.success(), "{}", String::from_utf8_lossy(&slo.stderr));
    let expected = serde_json::json!({
        "slo": serde_json::from_slice::<serde_json::Value>(&slo.stdout).unwrap(),
        "stats": serde_json::from_slice::<serde_json::Value>(&stats.stdout).unwrap(),
        "window": { "since": SINCE, "until": NOW },
        "flame": { "op": "vm.list", "search": "parse_page", "zoom": "fleet_cli::api::get" },
        "hostile": HOSTILE,
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expected.json");
    std::fs::write(&file, expected.to_string()).unwrap();
    let ui = Ui::start(db);
    let shots = shots_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/dashboard.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://{}/", ui.addr))
        .arg(&file)
        .arg(&shots)
        .env("PERFAGENT_BROWSER_MODULES", &modules)
        .env("PERFAGENT_CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser checks failed:\n{said}");
    assert!(said.contains("all dashboard checks passed"), "{said}");
    eprintln!("{said}screenshots: {}", shots.display());
}
