//! A real Prometheus server (Debian's `prometheus`, installed by `.ci/run`) scraping the
//! agent's `/metrics`, and a real exporter's scrapes (Prometheus's own `/metrics`) as an
//! OpenMetrics history through `perfctl import` / `export` into `promtool tsdb
//! create-blocks-from openmetrics`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use perf_e2e::{Agent, bin, get_ok as get, skip};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus(dir: &Path, target: &str) -> Option<(Kill, String)> {
    prometheus_with_rules(dir, target, None)
}

fn prometheus_with_rules(dir: &Path, target: &str, rules: Option<&Path>) -> Option<(Kill, String)> {
    let config = dir.join("prometheus.yml");
    let rule_files = rules.map_or(String::new(), |r| format!("rule_files: ['{}']\n", r.display()));
    std::fs::write(
        &config,
        format!(
            "{rule_files}global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: perfagent\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let child = match Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => Kill(c),
        Err(_) => {
            skip("prometheus scrape", "no prometheus binary (apt-get install prometheus)");
            return None;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&addr, "/-/ready").is_none() {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    Some((child, addr))
}

#[test]
fn a_prometheus_server_sees_the_same_totals_as_perfctl() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &[], &[]);
    let http = agent.addr("http");
    let Some((_prom, prom)) = prometheus(dir.path(), &http) else { return };
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = agent.addr("statsd_udp");
    for i in 0..200 {
        let op = ["vm.list", "vm.start", "blob.read"][i % 3];
        udp.send_to(format!("op.retries:{}|c|#op:{op},service:app\n", 1 + i % 4).as_bytes(), &to).unwrap();
        udp.send_to(format!("op.duration:{}|ms|#op:{op},outcome:ok,service:app\n", 10 + i).as_bytes(), &to).unwrap();
    }
    std::thread::sleep(Duration::from_millis(2500)); // two flushes: everything is in /metrics

    let since = "10m";
    let out = Command::new(bin("perfctl"))
        .args([
            "--db",
            db.to_str().unwrap(),
            "query",
            "op.retries",
            "--since",
            since,
            "--step",
            "1h",
            "--agg",
            "sum",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let q: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ours: Vec<(String, f64)> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let name = s["series"].as_str().unwrap();
            let op = name.split("op=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
            (op, s["points"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).sum())
        })
        .collect();
    ours.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(ours.len(), 3);
    assert_eq!(ours.iter().map(|o| o.1).sum::<f64>(), (0..200).map(|i| 1.0 + (i % 4) as f64).sum::<f64>());

    // Prometheus's instant query of the cumulative counter, once a scrape after the last
    // flush has landed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let theirs = loop {
        let body = get(&prom, "/api/v1/query?query=op_retries_total").unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let mut got: Vec<(String, f64)> = v["data"]["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|s| {
                        (
                            s["metric"]["op"].as_str().unwrap_or("").to_owned(),
                            s["value"][1].as_str().unwrap_or("0").parse().unwrap_or(0.0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        if got == ours || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(theirs, ours, "Prometheus's op_retries_total equals perfctl's total since the agent started");
    let body = get(&prom, "/api/v1/query?query=sum(op_duration_seconds_count)").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "200");
    agent.stop();

    // A real exporter's scrapes (Prometheus's own /metrics, three of them a second apart,
    // stamped with their time) as an OpenMetrics history: import, export, promtool.
    let mut history = String::new();
    let mut typed = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let text = get(&prom, "/metrics").unwrap();
        for l in text.lines() {
            let family = l.strip_prefix("# TYPE ").unwrap_or(l).split([' ', '{']).next().unwrap_or("");
            let keep = family.starts_with("prometheus_http_requests_total")
                || family.starts_with("go_goroutines")
                || family.starts_with("prometheus_http_request_duration_seconds");
            if l.starts_with("# TYPE ") && keep && typed.insert(l.to_owned()) {
                history.push_str(l);
                history.push('\n');
            } else if !l.starts_with('#') && keep {
                history.push_str(&format!("{l} {t:.3}\n"));
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // Families must be contiguous: group the lines by family, TYPE first.
    let mut by_family: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for l in history.lines() {
        // The same key for a family's TYPE line (`prometheus_http_requests_total` in the
        // classic format) and its samples, so the TYPE comes first, as OpenMetrics requires
        // (the importer streams, and types what follows a TYPE line).
        let n = match l.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next().unwrap(),
            None => l.split([' ', '{']).next().unwrap(),
        };
        let fam = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .fold(n.to_owned(), |acc, s| acc.strip_suffix(s).map_or(acc.clone(), str::to_owned));
        by_family.entry(fam).or_default().push(l.to_owned());
    }
    let mut om = String::new();
    for (_, mut lines) in by_family {
        lines.sort_by_key(|l| !l.starts_with("# TYPE"));
        for l in lines {
            om.push_str(&l);
            om.push('\n');
        }
    }
    om.push_str("# EOF\n");
    let scraped = dir.path().join("scraped.prom");
    std::fs::write(&scraped, &om).unwrap();
    let copy = dir.path().join("copy.db");
    let out = Command::new(bin("perfctl"))
        .args(["--db", copy.to_str().unwrap(), "import", scraped.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let imported = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(imported.starts_with("imported "), "{imported}");
    let exported = dir.path().join("export.om");
    let out = Command::new(bin("perfctl"))
        .args([
            "--db",
            copy.to_str().unwrap(),
            "export",
            "--last",
            "10m",
            "--step",
            "1s",
            "-o",
            exported.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("# TYPE prometheus_http_requests counter"), "{imported}\n{}", &text[..text.len().min(500)]);
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&exported)
        .arg(dir.path().join("blocks"))
        .output()
        .unwrap();
    assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn prometheus_evaluating_slo_rules_fires_the_same_alert_as_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    // The agent evaluates its own alerts (a receiver that is not there: the state still shows).
    let closed = format!("http://127.0.0.1:{}/", free_port());
    let envs = [
        ("PERFAGENT_ALERTS_WEBHOOK", closed.as_str()),
        ("PERFAGENT_ALERTS_INTERVAL", "1s"),
        ("PERFAGENT_ALERTS_FOR", "0s"),
    ];
    let agent = Agent::start(&db, &[], &envs);
    let http = agent.addr("http");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = agent.addr("statsd_udp");
    let burst = || {
        for i in 0..100 {
            let outcome = if i % 2 == 0 { "error" } else { "ok" };
            udp.send_to(format!("op.duration:20|ms|#op:vm.fail,outcome:{outcome},service:app\n").as_bytes(), &to)
                .unwrap();
        }
    };
    burst();
    std::thread::sleep(Duration::from_millis(1500)); // flushed: the operation is in the store
    let rules = dir.path().join("slo.rules.yml");
    let out = Command::new(bin("perfctl"))
        .args(["--db", db.to_str().unwrap(), "slo", "rules", "--for", "0s", "-o", rules.to_str().unwrap()])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let Some((_prom, prom)) = prometheus_with_rules(dir.path(), &http, Some(&rules)) else { return };
    // Samples before and after a second burst, so the counters grow between them: wait for
    // Prometheus's first scrapes (its scrape loop starts a few seconds after it is ready).
    let scraped = Instant::now() + Duration::from_secs(30);
    while !get(&prom, "/api/v1/query?query=op_duration_seconds_count").unwrap_or_default().contains("vm.fail") {
        assert!(Instant::now() < scraped, "Prometheus never scraped the agent");
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(1500));
    burst();
    let deadline = Instant::now() + Duration::from_secs(60);
    let firing = |text: &str| {
        text.contains("\"alertname\":\"OperationErrorBudgetBurn\"")
            && text.contains("\"op\":\"vm.fail\"")
            && text.contains("\"severity\":\"page\"")
            && text.contains("\"state\":\"firing\"")
    };
    loop {
        let alerts = get(&prom, "/api/v1/alerts").unwrap_or_default();
        if firing(&alerts) {
            break;
        }
        if Instant::now() >= deadline {
            let q = |e: &str| get(&prom, &format!("/api/v1/query?query={e}")).unwrap_or_default();
            panic!(
                "Prometheus never fired the page alert: {alerts}\ncount: {}\nratio: {}\nrules: {}",
                q("op_duration_seconds_count%5B2m%5D"),
                q("perfagent:op_error_ratio:rate5m"),
                get(&prom, "/api/v1/rules").unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // The agent, on the same data, fires the same alert.
    let ours = get(&http, "/api/v1/alerts").unwrap_or_default();
    assert!(
        ours.contains("\"op\": \"vm.fail\"")
            && ours.contains("\"severity\": \"page\"")
            && ours.contains("\"state\": \"firing\""),
        "{ours}"
    );
    agent.stop();
}
