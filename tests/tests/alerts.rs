//! Burn-rate alerts from the agent to a real Alertmanager (Debian's `prometheus-alertmanager`
//! on loopback): a failure burst sent over StatsD makes the page alert appear in Alertmanager's
//! `GET /api/v2/alerts` with the right labels, and a restart of the agent neither loses nor
//! duplicates it (the same start time: the state is kept in the store); with rules of short
//! spans, an alert resolves once the calls recover; other targets (a cold cache) reach a plain
//! webhook as `TargetViolated` tickets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::io::Write as _;
use std::process::{Child, Command, Stdio};

use perf_e2e::{Agent, skip, wait_for};

struct Alertmanager {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager() -> Option<Alertmanager> {
    if Command::new("prometheus-alertmanager").arg("--version").output().is_err() {
        skip("alerts::alertmanager", "no prometheus-alertmanager (apt-get install prometheus-alertmanager)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("am.yml");
    std::fs::write(&config, "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let am = Alertmanager { child, addr, _dir: dir };
    wait_for(30, "Alertmanager to be ready", || (get(&am.addr, "/-/ready").0 == 200).then_some(()));
    Some(am)
}

/// A GET that keeps its write side open until the answer (Go's server cancels a request whose
/// client half-closes).
fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::Read as _;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return (0, String::new()) };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    // `/metrics` comes chunked (streamed); a response cut short reads as empty.
    (code, text.split_once("\r\n\r\n").and_then(|(h, b)| perf_e2e::dechunk(h, b)).unwrap_or_default())
}

/// The alerts Alertmanager holds for `op` at `severity`.
fn alerts(am: &str, op: &str, severity: &str) -> Vec<serde_json::Value> {
    let (_, body) = get(am, "/api/v2/alerts");
    let all: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    all.as_array()
        .map(|a| a.iter().filter(|x| x["labels"]["op"] == op && x["labels"]["severity"] == severity).cloned().collect())
        .unwrap_or_default()
}

#[test]
fn a_failure_burst_pages_through_alertmanager_once_across_a_restart() {
    let Some(am) = alertmanager() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let url = format!("http://{}", am.addr);
    let envs = [
        ("PERFAGENT_ALERTS_ALERTMANAGER", url.as_str()),
        ("PERFAGENT_ALERTS_INTERVAL", "1s"),
        ("PERFAGENT_ALERTS_FOR", "0s"),
    ];
    let agent = Agent::start(&db, &[], &envs);
    // Half of 200 calls fail: 50 % bad against the 1 % allowed burns at 50x, over 14.4x in the
    // last hour and the last 5 minutes (page) and over 6x in 6 hours and 30 minutes (ticket).
    let mut conn = std::net::TcpStream::connect(agent.addr("statsd_tcp")).unwrap();
    for i in 0..200 {
        let outcome = if i % 2 == 0 { "error" } else { "ok" };
        writeln!(conn, "op.duration:{}|ms|#op:vm.fail,outcome:{outcome},service:cli", 20 + i % 7).unwrap();
    }
    drop(conn);
    let page = wait_for(60, "the page alert in Alertmanager", || {
        let a = alerts(&am.addr, "vm.fail", "page");
        (!a.is_empty()).then_some(a)
    });
    assert_eq!(page.len(), 1, "{page:?}");
    let labels = &page[0]["labels"];
    assert_eq!(labels["alertname"], "OperationErrorBudgetBurn");
    assert_eq!(labels["slo"], "availability");
    assert!(page[0]["annotations"]["description"].as_str().unwrap().contains("perfctl slo --op 'vm.fail'"), "{page:?}");
    let (_, all) = get(&am.addr, "/api/v2/alerts");
    assert_eq!(alerts(&am.addr, "vm.fail", "ticket").len(), 1, "the ticket rule fires too: {all}");
    let started = page[0]["startsAt"].clone();
    // /metrics shows the alerts and the objective behind them.
    let (_, metrics) = get(&agent.addr("http"), "/metrics");
    assert!(metrics.contains("perfagent_alerts_firing{severity=\"page\"} 1"), "{metrics}");
    assert!(metrics.contains("perfagent_slo_sli{op=\"vm.fail\",slo=\"availability\"} 0.5"), "{metrics}");
    let burn: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("perfagent_slo_burn_rate{op=\"vm.fail\",slo=\"availability\",window=\"1h\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no 1h burn rate in {metrics}"));
    assert!((burn - 50.0).abs() < 1e-6, "50 % bad against 1 % allowed: {burn}");
    if let Ok(mut lint) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        lint.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
        let out = lint.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The dashboard's API shows them too, once the writer has kept the state in the store (at
    // its next turn, within a flush interval).
    wait_for(10, "the dashboard to list the alert", || {
        let (_, held) = get(&agent.addr("http"), "/api/v1/alerts");
        let held: serde_json::Value = serde_json::from_str(&held).ok()?;
        held.as_array()?.iter().any(|a| a["op"] == "vm.fail" && a["state"] == "firing").then_some(())
    });
    // `perfagent status` lists what fires.
    let st = perf_e2e::status(&db);
    let firing = st["alerts_firing"].as_array().unwrap();
    assert!(firing.iter().any(|a| a["op"] == "vm.fail" && a["severity"] == "page"), "{st}");
    // The state is kept in the store (nothing beside it); a restart keeps the alert as it was.
    agent.stop();
    let mut r = perfstore::Reader::open(&db).unwrap();
    let kept = r.snapshot().unwrap().state("alerts").unwrap().unwrap(); // perfanalysis::alerts::STATE_KEY
    assert!(kept.contains("vm.fail"), "{kept}");
    drop(r);
    assert!(!dir.path().join("perf.db.alerts").exists());
    let agent = Agent::start(&db, &[], &envs);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let again = alerts(&am.addr, "vm.fail", "page");
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0]["startsAt"], started, "the same alert, not a new one");
    agent.stop();
}

#[test]
fn an_alert_resolves_in_alertmanager_once_the_calls_recover() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(am) = alertmanager() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let url = format!("http://{}", am.addr);
    // A page rule over spans of seconds, so recovery shows within a test: 14.4x over the last
    // 20 s and the last 4 s.
    let envs = [
        ("PERFAGENT_ALERTS_ALERTMANAGER", url.as_str()),
        ("PERFAGENT_ALERTS_INTERVAL", "1s"),
        ("PERFAGENT_ALERTS_FOR", "0s"),
        ("PERFAGENT_ALERTS_PAGE", "14.4x 20s 4s"),
        ("PERFAGENT_ALERTS_TICKET", "off"),
        ("PERFAGENT_ALERTS_TARGETS_WINDOW", "off"),
    ];
    let agent = Agent::start(&db, &[], &envs);
    // Calls every 50 ms: half fail until told to stop, then all succeed.
    let failing = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (failing, stop) = (failing.clone(), stop.clone());
        let mut conn = std::net::TcpStream::connect(agent.addr("statsd_tcp")).unwrap();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let outcome = if failing.load(Ordering::SeqCst) && i.is_multiple_of(2) { "error" } else { "ok" };
                writeln!(conn, "op.duration:20|ms|#op:vm.flaky,outcome:{outcome},service:cli").unwrap();
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
    };
    let page = wait_for(60, "the page alert in Alertmanager", || {
        let a = alerts(&am.addr, "vm.flaky", "page");
        (!a.is_empty()).then_some(a)
    });
    assert_eq!(page.len(), 1, "{page:?}");
    let (_, metrics) = get(&agent.addr("http"), "/metrics");
    assert!(
        metrics.contains("perfagent_slo_burn_rate{op=\"vm.flaky\",slo=\"availability\",window=\"4s\"}"),
        "{metrics}"
    );
    failing.store(false, Ordering::SeqCst);
    // Recovered: the short span is clean after 4 s, then two clear evaluations resolve it; the
    // agent says so and Alertmanager no longer lists it, while the calls go on.
    wait_for(60, "the agent to resolve the page alert", || {
        let (_, held) = get(&agent.addr("http"), "/api/v1/alerts");
        let held: serde_json::Value = serde_json::from_str(&held).ok()?;
        (!held.as_array()?.iter().any(|a| a["op"] == "vm.flaky")).then_some(())
    });
    wait_for(30, "Alertmanager to drop the resolved alert", || {
        alerts(&am.addr, "vm.flaky", "page").is_empty().then_some(())
    });
    let (_, metrics) = get(&agent.addr("http"), "/metrics");
    assert!(metrics.contains("perfagent_alerts_firing{severity=\"page\"} 0"), "{metrics}");
    stop.store(true, Ordering::SeqCst);
    sender.join().unwrap();
    agent.stop();
}

#[test]
fn the_plain_webhook_gets_the_same_alerts_as_json() {
    use std::io::BufRead as _;
    // A receiver printing each POST body on a line of its own.
    let script = "import http.server, sys\n\
                  class H(http.server.BaseHTTPRequestHandler):\n\
                  \x20   def do_POST(self):\n\
                  \x20       body = self.rfile.read(int(self.headers['Content-Length']))\n\
                  \x20       self.send_response(200); self.end_headers()\n\
                  \x20       print(body.decode(), flush=True)\n\
                  \x20   def log_message(self, *a): pass\n\
                  srv = http.server.HTTPServer(('127.0.0.1', 0), H)\n\
                  print(srv.server_address[1], flush=True)\n\
                  srv.serve_forever()\n";
    let mut hook = Command::new("python3").arg("-c").arg(script).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(hook.stdout.take().unwrap()).lines();
    let port = lines.next().unwrap().unwrap();
    let url = format!("http://127.0.0.1:{}/hook", port.trim());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let envs = [
        ("PERFAGENT_ALERTS_WEBHOOK", url.as_str()),
        ("PERFAGENT_ALERTS_INTERVAL", "1s"),
        ("PERFAGENT_ALERTS_FOR", "0s"),
        ("PERFAGENT_TARGETS_CACHE_HIT_RATE", "50%"),
    ];
    let agent = Agent::start(&db, &[], &envs);
    let mut conn = std::net::TcpStream::connect(agent.addr("statsd_tcp")).unwrap();
    for i in 0..100 {
        let outcome = if i % 2 == 0 { "error" } else { "ok" };
        writeln!(conn, "op.duration:20|ms|#op:hooked,outcome:{outcome},service:cli").unwrap();
        // One lookup in four hits: a cold cache under the 50 % floor.
        let result = if i % 4 == 0 { "hit" } else { "miss" };
        writeln!(conn, "cache.requests:1|c|#cache:vm-cache,result:{result},service:cli").unwrap();
    }
    drop(conn);
    // Read POSTs until both alerts have arrived, for at most a minute.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (mut burn, mut cold) = (None, None);
    while burn.is_none() || cold.is_none() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let body =
            rx.recv_timeout(left).expect("the burn-rate and target alerts did not both reach the webhook in a minute");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        for a in v["alerts"].as_array().unwrap() {
            let l = &a["labels"];
            if l["op"] == "hooked" && l["alertname"] == "OperationErrorBudgetBurn" {
                burn = Some(a.clone());
            }
            if l["alertname"] == "TargetViolated" && l["target"] == "cache_hit_rate" {
                cold = Some(a.clone());
            }
        }
    }
    let _ = hook.kill();
    let _ = hook.wait();
    let cold = cold.unwrap();
    assert_eq!((&cold["labels"]["op"], &cold["labels"]["severity"]), (&"vm-cache".into(), &"ticket".into()), "{cold}");
    assert_eq!(cold["annotations"]["summary"], "vm-cache cache hit rate 25% < 50%", "{cold}");
    // `perfagent status` names it in words too (once the state is in the store).
    wait_for(10, "perfagent status to list the cache alert", || {
        let st = perf_e2e::status(&db);
        let firing = st["alerts_firing"].as_array()?.clone();
        firing
            .iter()
            .any(|a| a["slo"] == "target:cache_hit_rate" && a["text"] == "vm-cache cache hit rate 25% < 50%")
            .then_some(())
    });
    agent.stop();
}
