//! Burn-rate alerts from the agent to a real Alertmanager (Debian's `prometheus-alertmanager`
//! on loopback): a failure burst sent over StatsD makes the page alert appear in Alertmanager's
//! `GET /api/v2/alerts` with the right labels, and a restart of the agent neither loses nor
//! duplicates it (the same start time: the state was kept beside the store).

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
    (code, text.split_once("\r\n\r\n").map_or("", |b| b.1).to_owned())
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
    // The dashboard's API shows them too.
    let (_, held) = get(&agent.addr("http"), "/api/v1/alerts");
    let held: serde_json::Value = serde_json::from_str(&held).unwrap();
    assert!(held.as_array().unwrap().iter().any(|a| a["op"] == "vm.fail" && a["state"] == "firing"), "{held}");
    // `perfagent status` lists what fires.
    let st = perf_e2e::status(&db);
    let firing = st["alerts_firing"].as_array().unwrap();
    assert!(firing.iter().any(|a| a["op"] == "vm.fail" && a["severity"] == "page"), "{st}");
    // The state is kept beside the store; a restart keeps the alert as it was.
    agent.stop();
    assert!(std::fs::read_to_string(dir.path().join("perf.db.alerts")).unwrap().contains("vm.fail"));
    let agent = Agent::start(&db, &[], &envs);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let again = alerts(&am.addr, "vm.fail", "page");
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0]["startsAt"], started, "the same alert, not a new one");
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
    ];
    let agent = Agent::start(&db, &[], &envs);
    let mut conn = std::net::TcpStream::connect(agent.addr("statsd_tcp")).unwrap();
    for i in 0..100 {
        let outcome = if i % 2 == 0 { "error" } else { "ok" };
        writeln!(conn, "op.duration:20|ms|#op:hooked,outcome:{outcome},service:cli").unwrap();
    }
    drop(conn);
    // Wait for the first POST, for at most a minute.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
    });
    let body = rx.recv_timeout(std::time::Duration::from_secs(60));
    let _ = hook.kill();
    let _ = hook.wait();
    let body = body.expect("no POST reached the webhook within a minute");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let alerts = v["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["labels"]["op"] == "hooked" && a["labels"]["alertname"] == "OperationErrorBudgetBurn"),
        "{v}"
    );
    agent.stop();
}
