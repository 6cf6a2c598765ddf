//! Real StatsD client libraries against the real agent: Python `statsd` (Influx-style tags in
//! the name) and Node `hot-shots` (DogStatsD tags), with sample rates. Each script prints
//! every line its library actually put on the wire (sampling is random), and the store must
//! hold exactly that: counters and timer counts weighted by 1/rate, gauges' last values, set
//! sizes, timer percentiles within 1 % of the weighted nearest rank.
//!
//! `.ci/run` installs pinned versions and points `PERFAGENT_PY_CLIENTS` / `PERFAGENT_NODE_MODULES`
//! at them; elsewhere a test without its client says so and passes, except under `CI`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use perf_e2e::{Agent, bin, nearest_rank, perfctl, record_skip, skip};
use perfstore::{Reader, Selector, TimeRange};

const PYTHON: &str = r#"
import random, statsd, sys
random.seed(7)
port = int(sys.argv[1])
c = statsd.StatsClient("127.0.0.1", port)
orig = c._after
def tap(data):
    print(data, flush=True)
    orig(data)
c._after = tap
for i in range(300):
    c.timing("op.duration,op=vm.list,outcome=ok,service=py-app", 5 + (i * 37) % 200)
    c.incr("op.retries,op=vm.list,service=py-app", 2, rate=0.5)
c.gauge("pool.size,pool=blob,service=py-app", 12)
c.gauge("pool.size,pool=blob,service=py-app", 9)
for u in ["a", "b", "c", "a", "d"]:
    c.set("users,service=py-app", u)
"#;

const NODE: &str = r#"
const StatsD = require('hot-shots');
const port = parseInt(process.argv[process.argv.length - 1]); // node -e SCRIPT PORT
let seed = 11;
Math.random = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
const c = new StatsD({ host: '127.0.0.1', port, protocol: 'udp', maxBufferSize: 0 });
const orig = c._send.bind(c);
c._send = (message, cb) => { console.log(message); return orig(message, cb); };
for (let i = 0; i < 300; i++) {
  c.timing('op.duration', 20 + (i * 53) % 400, 0.5, { op: 'ssm.send_command', outcome: 'ok', service: 'node-app' });
  c.increment('cache.requests', 1, { cache: 'vm-list', result: i % 3 ? 'hit' : 'miss', service: 'node-app' });
}
c.gauge('op.inflight', 4, { op: 'ssm.send_command', service: 'node-app' });
c.set('users', 'x', { service: 'node-app' });
c.set('users', 'y', { service: 'node-app' });
// hot-shots resolves the host before each send: close once those sends are out.
setTimeout(() => c.close(() => {}), 500);
"#;

/// What the lines on the wire add up to, per series (name + sorted tags).
#[derive(Debug, Default)]
struct Expected {
    counters: BTreeMap<String, f64>,
    gauges: BTreeMap<String, f64>,
    timers: BTreeMap<String, Vec<(f64, f64)>>,
    sets: BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// Parse one line the way the convention defines it (both tag styles, `@rate`).
fn take(e: &mut Expected, line: &str) {
    let Some((name_part, rest)) = line.split_once(':') else { return };
    let mut tags: Vec<(String, String)> = Vec::new();
    let mut parts = name_part.split(',');
    let name = parts.next().unwrap_or("").to_owned();
    for kv in parts {
        if let Some((k, v)) = kv.split_once('=') {
            tags.push((k.into(), v.into()));
        }
    }
    let fields: Vec<&str> = rest.split('|').collect();
    let (value, ty) = (fields[0], fields[1]);
    let mut rate = 1.0;
    for f in &fields[2..] {
        if let Some(r) = f.strip_prefix('@') {
            rate = r.parse().unwrap();
        }
        if let Some(t) = f.strip_prefix('#') {
            for kv in t.split(',') {
                let (k, v) = kv.split_once(':').unwrap_or((kv, ""));
                tags.push((k.into(), v.into()));
            }
        }
    }
    tags.sort();
    let key = format!("{name}{{{}}}", tags.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect::<Vec<_>>().join(","));
    match ty {
        "c" => *e.counters.entry(key).or_default() += value.parse::<f64>().unwrap() / rate,
        "g" => {
            e.gauges.insert(key, value.parse().unwrap());
        }
        "ms" => e.timers.entry(key).or_default().push((value.parse::<f64>().unwrap() / 1000.0, 1.0 / rate)),
        "s" => {
            e.sets.entry(key).or_default().insert(value.to_owned());
        }
        _ => panic!("unexpected type in {line}"),
    }
}

/// `perfctl stats --last 1h --format json` on the store.
fn stats_json(db: &Path) -> serde_json::Value {
    let out = perfctl(db, &["stats", "--last", "1h", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn client_dir(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(d) if Path::new(&d).exists() => Some(d),
        _ => {
            // The harness names each test's thread after the test.
            let test = std::thread::current().name().unwrap_or("a client test").to_owned();
            skip(&test, &format!("{var} is not set to the client library's folder (scripts/test-tools installs it)"));
            None
        }
    }
}

fn run_against_agent(
    program: &str,
    script: &str,
    env: (&str, &str),
) -> (tempfile::TempDir, std::path::PathBuf, Expected) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &[], &[]);
    let port = agent.addr("statsd_udp").rsplit(':').next().unwrap().to_owned();
    let out = Command::new(program)
        .arg(if program == "node" { "-e" } else { "-c" })
        .arg(script)
        .arg(&port)
        .env(env.0, env.1)
        .output()
        .unwrap();
    assert!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
    let mut expected = Expected::default();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        for m in l.split('\n').filter(|m| !m.is_empty()) {
            take(&mut expected, m);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    agent.stop();
    (dir, db, expected)
}

fn check(db: &Path, e: &Expected) {
    let mut r = Reader::open(db).unwrap();
    let snap = r.snapshot().unwrap();
    let all = TimeRange::new(0, i64::MAX / 2);
    let point = |key: &str| {
        let s = snap.series(&Selector::parse(key).unwrap()).unwrap();
        assert_eq!(s.len(), 1, "{key}: {s:?}");
        snap.aggregate(&s[0], all).unwrap().unwrap()
    };
    assert!(!e.counters.is_empty() && !e.timers.is_empty() && !e.gauges.is_empty() && !e.sets.is_empty());
    for (k, v) in &e.counters {
        assert!((point(k).sum - v).abs() < 1e-9, "{k}: {} vs {v} sent (weighted)", point(k).sum);
    }
    for (k, v) in &e.gauges {
        assert_eq!(point(k).last, *v, "{k}");
    }
    for (k, members) in &e.sets {
        let p = point(k);
        assert!(p.max <= members.len() as f64 && p.sum >= members.len() as f64, "{k}: {p:?} vs {}", members.len());
    }
    for (k, values) in &e.timers {
        let p = point(k);
        let n: f64 = values.iter().map(|v| v.1).sum();
        assert!((p.count - n).abs() < 1e-9, "{k}: count {} vs {n} (weighted by 1/rate)", p.count);
        for q in [0.5, 0.95, 0.99] {
            let exact = nearest_rank(values, q);
            let got = p.quantile(q).unwrap();
            assert!((got - exact).abs() <= 0.01 * exact, "{k} p{q}: {got} vs {exact}");
        }
    }
}

#[test]
fn python_statsd_with_influx_tags_and_sample_rates() {
    let Some(dir) = client_dir("PERFAGENT_PY_CLIENTS") else { return };
    let (_tmp, db, expected) = run_against_agent("python3", PYTHON, ("PYTHONPATH", &dir));
    assert!(
        expected.counters.values().next().is_some_and(|v| *v > 0.0 && *v < 1200.0),
        "sampling dropped some increments"
    );
    check(&db, &expected);
    // perfctl shows the same calls.
    let stats = stats_json(&db);
    assert_eq!(stats["ops"][0]["op"], "vm.list");
    assert_eq!(stats["ops"][0]["calls"], 300);
}

#[test]
fn node_hot_shots_with_dogstatsd_tags_and_sample_rates() {
    let Some(dir) = client_dir("PERFAGENT_NODE_MODULES") else { return };
    let (_tmp, db, expected) = run_against_agent("node", NODE, ("NODE_PATH", &dir));
    check(&db, &expected);
    let stats = stats_json(&db);
    let sent: f64 = expected.timers.values().flatten().map(|v| v.1).sum();
    assert_eq!(stats["ops"][0]["calls"].as_f64().unwrap(), sent, "calls weighted by 1/rate");
    assert_eq!(stats["overall"]["cache"]["requests"], 300);
}

const PROGRAM: &str = r#"
import time
def list_vms():
    x = 0
    for i in range(200000):
        x += i * i
    return x
def parse_page():
    return sum(j % 7 for j in range(100000))
t = time.time()
while time.time() - t < 3:
    list_vms()
    parse_page()
"#;

#[test]
fn py_spy_profiles_render_with_python_function_names() {
    let Some(py_spy) = client_dir("PERFAGENT_PYSPY") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (prog, raw) = (dir.path().join("prog.py"), dir.path().join("raw.txt"));
    std::fs::write(&prog, PROGRAM).unwrap();
    // Attach to a running interpreter (`--pid`) rather than have py-spy spawn it: its
    // spawn-and-wait mode races under a loaded test run ("No child process").
    let mut python = Command::new("python3").arg(&prog).spawn().expect("python3");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = Command::new(&py_spy)
        .args(["record", "--format", "raw", "-r", "100", "--duration", "1", "--pid"])
        .arg(python.id().to_string())
        .arg("-o")
        .arg(&raw)
        .output()
        .unwrap();
    let _ = python.wait();
    if !out.status.success() {
        // py-spy needs ptrace; a sandbox may forbid it.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(std::env::var_os("CI").is_none() || err.contains("ermission"), "py-spy: {err}");
        record_skip("py_spy_profiles_render…", &format!("py-spy cannot trace here: {}", err.trim()));
        return;
    }
    let folded = std::fs::read_to_string(&raw).unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &[], &[]);
    let http = agent.addr("http");
    // As a user would: curl with the store's token (the README's line).
    let token = perf_e2e::token(&db);
    let reply = perf_e2e::http(
        &http,
        "POST /profile?op=report.build&service=py-app HTTP/1.1",
        format!("Host: {http}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{folded}", folded.len())
            .as_bytes(),
    );
    let reply = format!("HTTP/1.1 {} {}", reply.0, reply.2);
    assert!(reply.starts_with("HTTP/1.1 202"), "{reply}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    agent.stop();
    let svg = dir.path().join("report.svg");
    let out = Command::new(bin("perfctl"))
        .args(["--db", db.to_str().unwrap(), "flamegraph", "report.build", "--last", "1h", "-o", svg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.contains("list_vms (prog.py:"), "the Python function names are in the flame graph");
    assert!(svg.contains("parse_page (prog.py:"));
}
