//! Remote write from the store to real receivers, each test run against both: Debian's
//! `prometheus` 2.42 with `--web.enable-remote-write-receiver`, and `victoria-metrics`
//! (with deduplication, as it is run behind agents that may send a sample twice): three agents with three `host` labels fed known
//! events write to one receiver, and PromQL over the fleet equals the sum of the three local
//! `perfctl stats`; the receiver stopped for a while and started again, and one agent killed
//! with SIGKILL five times while sending, leave no gap in what the receiver holds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests fail loudly

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use perf_e2e::{Agent, get_ok as get, perfctl, skip, wait_for};

/// A receiver process, stopped with SIGTERM (so it keeps what it took) when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// The receivers every test runs against.
#[derive(Debug, Clone, Copy)]
enum Receiver {
    Prometheus,
    VictoriaMetrics,
}

const RECEIVERS: [Receiver; 2] = [Receiver::Prometheus, Receiver::VictoriaMetrics];

impl Receiver {
    fn binary(self) -> &'static str {
        match self {
            Receiver::Prometheus => "prometheus",
            Receiver::VictoriaMetrics => "victoria-metrics",
        }
    }

    /// Installed, or skipped (and said) outside CI.
    fn available(self, test: &str) -> bool {
        let ok = Command::new(self.binary()).arg("--version").output().is_ok_and(|o| o.status.success())
            || Command::new(self.binary()).arg("-version").output().is_ok_and(|o| o.status.success());
        if !ok {
            skip(
                &format!("remote_write::{test}::{}", self.binary()),
                &format!("no {} (apt-get install {})", self.binary(), self.binary()),
            );
        }
        ok
    }

    /// Start on `addr`, keeping data in `dir` (so it can be stopped and started again).
    fn start(self, dir: &Path, addr: &str) -> Kill {
        let mut cmd = Command::new(self.binary());
        match self {
            Receiver::Prometheus => {
                let config = dir.join("prometheus.yml");
                std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
                cmd.arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
                    .arg(format!("--web.listen-address={addr}"))
                    .arg("--web.enable-remote-write-receiver");
            }
            Receiver::VictoriaMetrics => {
                cmd.arg(format!("-storageDataPath={}", dir.join("vm").display()))
                    .arg(format!("-httpListenAddr={addr}"))
                    .arg("-retentionPeriod=1d")
                    .arg("-dedup.minScrapeInterval=1ms")
                    .arg("-search.latencyOffset=0s")
                    .arg("-search.disableCache");
            }
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let r = Kill(child);
        let ready = match self {
            Receiver::Prometheus => "/-/ready",
            Receiver::VictoriaMetrics => "/health",
        };
        wait_for(60, "the receiver to be ready", || get(addr, ready).map(|_| ()));
        r
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A PromQL instant query's vector: `(labels, value)`.
fn query(addr: &str, promql: &str) -> Vec<(serde_json::Value, f64)> {
    query_at(addr, promql, None)
}

/// [`query`] at a given time (Unix seconds).
fn query_at(addr: &str, promql: &str, at: Option<f64>) -> Vec<(serde_json::Value, f64)> {
    let q: String = promql
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let time = at.map_or(String::new(), |t| format!("&time={t:.3}"));
    let Some(body) = get(addr, &format!("/api/v1/query?query={q}{time}")) else { return Vec::new() };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter().map(|x| (x["metric"].clone(), x["value"][1].as_str().unwrap().parse::<f64>().unwrap())).collect()
        })
        .unwrap_or_default()
}

fn sum(addr: &str, promql: &str) -> f64 {
    query(addr, promql).iter().map(|(_, v)| v).sum()
}

fn config(dir: &Path, host: &str, prom: &str) -> PathBuf {
    let path = dir.join(format!("{host}.toml"));
    std::fs::write(
        &path,
        format!(
            "[[remote_write]]\nurl = \"http://{prom}/api/v1/write\"\nstep = \"1s\"\nexternal_labels = {{ host = \"{host}\" }}\n"
        ),
    )
    .unwrap();
    path
}

fn start(db: &Path, config: &Path) -> Agent {
    Agent::start(db, &["--config", config.to_str().unwrap()], &[("XDG_CONFIG_HOME", "/nonexistent")])
}

/// Send `calls` calls of `op` (every `fail_every`-th failing) and `retries` retries.
fn feed(agent: &Agent, op: &str, calls: usize, fail_every: usize, retries: usize) {
    let mut c = TcpStream::connect(agent.addr("statsd_tcp")).unwrap();
    for i in 0..calls {
        let outcome = if i % fail_every == 0 { "error" } else { "ok" };
        writeln!(c, "op.duration:{}|ms|#op:{op},outcome:{outcome},service:fleet", 10 + (i % 90)).unwrap();
    }
    for _ in 0..retries {
        writeln!(c, "op.retries:1|c|#op:{op},service:fleet").unwrap();
    }
}

fn local_stats(db: &Path) -> serde_json::Value {
    let out = perfctl(db, &["stats", "--last", "1h", "--op", "vm.list", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn three_agents_write_to_one_receiver_and_the_fleet_adds_up() {
    for r in RECEIVERS {
        if r.available("three_agents") {
            fleet_adds_up(r);
        }
    }
}

fn fleet_adds_up(receiver: Receiver) {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let _rx = receiver.start(dir.path(), &addr);
    let hosts = [("h1", 300, 10, 7), ("h2", 200, 4, 0), ("h3", 150, 50, 30)];
    let mut agents = Vec::new();
    for (host, calls, fail_every, retries) in hosts {
        let db = dir.path().join(format!("{host}.db"));
        let agent = start(&db, &config(dir.path(), host, &addr));
        feed(&agent, "vm.list", calls, fail_every, retries);
        agents.push((host, db, agent));
    }
    // Every agent's calls arrive (the counters are cumulative: the latest value is the total).
    let calls = wait_for(60, "all calls in Prometheus", || {
        let by_host = query(&addr, "sum by (host) (op_duration_seconds_count{op=\"vm.list\"})");
        let total: f64 = by_host.iter().map(|(_, v)| v).sum();
        (by_host.len() == 3 && total == 650.0).then_some(by_host)
    });
    eprintln!("{receiver:?}: {} calls from 3 hosts", 650);
    for (labels, v) in &calls {
        let host = labels["host"].as_str().unwrap();
        let (_, db, _) = agents.iter().find(|(h, _, _)| *h == host).unwrap();
        let local = local_stats(db);
        assert_eq!(*v, local["overall"]["calls"].as_f64().unwrap(), "{host}: {local}");
    }
    // Errors and retries add up exactly to the sum of the local stats.
    let local: Vec<serde_json::Value> = agents.iter().map(|(_, db, _)| local_stats(db)).collect();
    let local_sum = |f: &dyn Fn(&serde_json::Value) -> f64| local.iter().map(f).sum::<f64>();
    let errors = sum(&addr, "sum(op_duration_seconds_count{op=\"vm.list\",outcome=\"error\"})");
    assert_eq!(errors, local_sum(&|s| s["overall"]["errors"].as_f64().unwrap()));
    assert_eq!(errors, 30.0 + 50.0 + 3.0);
    let retries = sum(&addr, "sum(op_retries_total{op=\"vm.list\"})");
    assert_eq!(retries, 37.0);
    // p95 over the fleet from the buckets: the calls take 10..99 ms, so the 95th percentile
    // lies in the (0.05, 0.1] bucket.
    let p95 = sum(&addr, "histogram_quantile(0.95, sum by (le) (op_duration_seconds_bucket{op=\"vm.list\"}))");
    assert!(p95 > 0.05 && p95 <= 0.1, "{p95}");
    // `perfctl stats --prometheus` over the fleet: the sum of the three local reports (calls,
    // errors and retries exact), p95 in the bucket the local sketches put it in.
    let fleet = |extra: &[&str]| {
        let url = format!("http://{addr}");
        let args = [&["stats", "--prometheus", url.as_str(), "--last", "10m", "--format", "json"][..], extra].concat();
        let out = perfctl(Path::new("/nonexistent/no.db"), &args);
        assert!(out.status.success(), "{receiver:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let f = fleet(&[]);
    let op = f["ops"].as_array().unwrap().iter().find(|o| o["op"] == "vm.list").unwrap().clone();
    let sum_local = |key: &str| local.iter().map(|s| s["ops"][0][key].as_f64().unwrap_or(0.0)).sum::<f64>();
    assert_eq!(op["calls"].as_f64(), Some(650.0), "{op}");
    assert_eq!(op["errors"].as_f64(), Some(sum_local("errors")), "{op}");
    assert_eq!(op["retries"].as_f64(), Some(37.0), "{op}");
    assert_eq!(op["retries"].as_f64(), Some(sum_local("retries")), "{op}");
    let p95 = op["latency_ms"]["p95"].as_f64().unwrap();
    assert!(p95 > 50.0 && p95 <= 100.0, "{receiver:?}: fleet p95 {p95} ms is in the (50, 100] ms bucket: {op}");
    let by_host = fleet(&["--by", "host"]);
    let rows = by_host["ops"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{by_host}");
    for (host, db, _) in &agents {
        let row = rows.iter().find(|r| r["group"]["host"] == *host).unwrap_or_else(|| panic!("{host}: {by_host}"));
        let local = local_stats(db);
        for key in ["calls", "errors", "retries"] {
            assert_eq!(row[key], local["ops"][0][key], "{host} {key}");
        }
    }
    // `perfctl query --prometheus`: calls per minute over the fleet add up to the calls,
    // exactly, and per host.
    let q = |extra: &[&str]| {
        let url = format!("http://{addr}");
        let args =
            [
                &[
                    "query",
                    "op.duration{op=\"vm.list\"}",
                    "--prometheus",
                    url.as_str(),
                    "--agg",
                    "count",
                    "--step",
                    "1m",
                ][..],
                &["--last", "10m", "--format", "json"][..],
                extra,
            ]
            .concat();
        let out = perfctl(Path::new("/nonexistent/no.db"), &args);
        assert!(out.status.success(), "{receiver:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let total = |v: &serde_json::Value| -> f64 {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["points"].as_array().unwrap().iter())
            .map(|p| p[1].as_f64().unwrap())
            .sum()
    };
    let all = q(&["--merge", "all"]);
    assert_eq!(total(&all), 650.0, "{receiver:?}: {all}");
    let hosts = q(&["--merge", "host"]);
    assert_eq!(hosts.as_array().unwrap().len(), 3, "{hosts}");
    assert!(hosts[0]["series"].as_str().unwrap().starts_with("op.duration{host="), "{hosts}");
    // Each agent says what it sent: on /metrics, and in `perfagent status` (from the progress
    // kept in its store).
    for (_, db, _) in &agents {
        let st = wait_for(10, "status to show the remote write", || {
            let st = perf_e2e::status(db);
            (st["remote_write"][0]["samples_sent"].as_f64()? > 0.0).then_some(st)
        });
        assert_eq!(st["remote_write"][0]["endpoint"], format!("http://{addr}/api/v1/write"), "{st}");
        assert_eq!(st["remote_write"][0]["dropped"], 0, "{st}");
    }
    // The dashboard's API too (the Host page shows it).
    let (_, _, agent) = &agents[0];
    let rw: serde_json::Value =
        serde_json::from_str(&get(&agent.addr("http"), "/api/v1/remote_write").unwrap()).unwrap();
    assert_eq!(rw[0]["endpoint"], format!("http://{addr}/api/v1/write"), "{rw}");
    assert!(rw[0]["samples_sent"].as_f64().unwrap() > 0.0 && rw[0]["lag_s"].as_f64().unwrap() < 60.0, "{rw}");
    for (_, _, agent) in &agents {
        let m = get(&agent.addr("http"), "/metrics").unwrap();
        let sent = m
            .lines()
            .find_map(|l| l.strip_prefix("perfagent_remote_write_samples_sent_total{"))
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.parse::<f64>().unwrap())
            .unwrap();
        assert!(sent > 0.0, "{m}");
    }
    for (_, _, agent) in agents {
        agent.stop();
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn an_outage_and_five_kills_leave_no_gap() {
    for r in RECEIVERS {
        if r.available("no_gap") {
            no_gap(r);
        }
    }
}

fn no_gap(receiver: Receiver) {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let prom = receiver.start(dir.path(), &addr);
    let db = dir.path().join("gap.db");
    let cfg = config(dir.path(), "gap", &addr);
    let mut agent = start(&db, &cfg);
    // A call every 100 ms for the whole test, from a feeder that reconnects to the agent.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let statsd = std::sync::Arc::new(std::sync::Mutex::new(agent.addr("statsd_udp")));
    let feeder = {
        let (stop, statsd) = (stop.clone(), statsd.clone());
        std::thread::spawn(move || {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let to = statsd.lock().unwrap().clone();
                let _ = sock.send_to(b"op.duration:20|ms|#op:tick,outcome:ok,service:fleet", &to);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let selector = "op_duration_seconds_count{op=\"tick\",host=\"gap\"}";
    wait_for(60, "the first samples", || (!query(&addr, selector).is_empty()).then_some(()));
    let first = unix_now();
    // The receiver goes away for 60 s: the agent keeps recording and retries.
    drop(prom);
    std::thread::sleep(Duration::from_secs(60));
    let prom = receiver.start(dir.path(), &addr);
    // Five kills while sending, each followed by a restart on the same store.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(2500));
        agent.kill9();
        std::thread::sleep(Duration::from_millis(500));
        agent = start(&db, &cfg);
        *statsd.lock().unwrap() = agent.addr("statsd_udp");
    }
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    feeder.join().unwrap();
    // Caught up: the newest sample is at most a few seconds old.
    wait_for(60, "the agent to catch up", || {
        let v = query(&addr, &format!("time() - timestamp({selector})"));
        v.first().is_some_and(|(_, age)| *age < 15.0).then_some(())
    });
    // Every second from the first sample on holds exactly one sample: nothing missing, nothing
    // twice (the step is 1 s, stamped on whole seconds). The kills lose at most the calls of
    // the flush interval before each (never written to the store): a smaller count, not a gap.
    let until = unix_now() - 15.0;
    let secs = (until - first - 1.0).floor();
    let held = query_at(&addr, &format!("count_over_time({selector}[{secs}s])"), Some(until));
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].1, secs, "{receiver:?}: one sample per second over the {secs} s from the first one");
    // The outage shows as retries in what the agent kept with its cursor.
    let m = get(&agent.addr("http"), "/metrics").unwrap();
    let counter = |name: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{endpoint=")))
            .and_then(|l| l.rsplit_once(' '))
            .map_or(0.0, |(_, v)| v.parse::<f64>().unwrap())
    };
    eprintln!("{}", m.lines().filter(|l| l.starts_with("perfagent_remote_write")).collect::<Vec<_>>().join("\n"));
    assert!(counter("perfagent_remote_write_retries_total") > 0.0, "{m}");
    assert_eq!(counter("perfagent_remote_write_samples_dropped_total"), 0.0, "{m}");
    drop(prom);
    agent.stop();
}
