//! The SDK against a real store file: what it records, that it matches the StatsD path event
//! for event, and that it forwards to a daemon holding the store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use perfagent::sdk::{CacheResult, Mode, Perf};
use perfstore::{Kind, Point, Reader, Selector, TimeRange};

fn all_time() -> TimeRange {
    TimeRange::new(0, i64::MAX / 2)
}

/// Every series in the store with its whole-history aggregate, keyed by its text form.
fn contents(db: &Path) -> Vec<(String, Kind, Point)> {
    let mut r = Reader::open(db).unwrap();
    let snap = r.snapshot().unwrap();
    let series: Vec<_> = snap
        .series(&Selector::default())
        .unwrap()
        .into_iter()
        .filter(|s| {
            s.key.service() != "host" && !s.key.name.starts_with("system.") && !s.key.name.starts_with("process.")
        })
        .collect();
    let points = snap.aggregate_many(&series, all_time()).unwrap();
    let mut out: Vec<(String, Kind, Point)> =
        series.iter().zip(points).filter_map(|(s, p)| p.map(|p| (s.key.to_string(), s.key.kind, p))).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn find<'a>(c: &'a [(String, Kind, Point)], series: &str) -> &'a Point {
    &c.iter()
        .find(|x| x.0 == series)
        .unwrap_or_else(|| panic!("no {series} in {:#?}", c.iter().map(|x| &x.0).collect::<Vec<_>>()))
        .2
}

/// The same calls through the SDK with explicit durations.
fn record_with_sdk(perf: &Perf) {
    let list = perf.operation("vm.list");
    for (i, ms) in [12.5, 80.25, 3.0, 150.0, 9.75, 41.0].iter().enumerate() {
        list.record(Duration::from_secs_f64(ms / 1000.0), |op| {
            op.cache(if i % 2 == 0 { CacheResult::Miss } else { CacheResult::Hit });
        });
    }
    let start = perf.operation("vm.start");
    start.record(Duration::from_millis(420), |op| {
        op.batched(6);
        op.retry();
        op.retry();
    });
    start.record(Duration::from_millis(300), |op| op.fail(&"QuotaExceeded: 20 vCPUs in eastus"));
    let cache = perf.cache("vm-list");
    cache.lookup(CacheResult::Hit);
    cache.lookup(CacheResult::Stale);
    cache.refresh();
    let pool = perf.pool("blob-http");
    pool.acquire(true);
    pool.acquire(true);
    pool.acquire(false);
    pool.evicted(1);
}

/// What a StatsD client sends for the same calls.
const STATSD: &str = "\
op.duration:12.5|ms|#op:vm.list,outcome:ok,cache:miss,service:app
op.duration:80.25|ms|#op:vm.list,outcome:ok,cache:hit,service:app
op.duration:3|ms|#op:vm.list,outcome:ok,cache:miss,service:app
op.duration:150|ms|#op:vm.list,outcome:ok,cache:hit,service:app
op.duration:9.75|ms|#op:vm.list,outcome:ok,cache:miss,service:app
op.duration:41|ms|#op:vm.list,outcome:ok,cache:hit,service:app
op.batch.size:6|h|#op:vm.start,service:app
op.retries:2|c|#op:vm.start,service:app
op.duration:420|ms|#op:vm.start,outcome:ok,batched:true,service:app
op.duration:300|ms|#op:vm.start,outcome:error,service:app
_e{15,33}:vm.start failed|QuotaExceeded: 20 vCPUs in eastus|t:error|#op:vm.start,service:app
cache.requests:1|c|#cache:vm-list,result:hit,service:app
cache.requests:1|c|#cache:vm-list,result:stale,service:app
cache.refresh:1|c|#cache:vm-list,service:app
pool.acquire:2|c|#pool:blob-http,result:hit,service:app
pool.acquire:1|c|#pool:blob-http,result:miss,service:app
pool.evictions:1|c|#pool:blob-http,service:app
";

fn sdk(db: &Path) -> Perf {
    Perf::builder().service("app").db(db).flush_interval(Duration::from_millis(200)).profiler_hz(0).start().unwrap()
}

#[test]
fn embedded_sdk_records_the_convention() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let perf = sdk(&db);
    assert_eq!(perf.mode(), &Mode::Embedded { db: db.clone() });
    record_with_sdk(&perf);
    perf.shutdown();

    let c = contents(&db);
    let miss = find(&c, r#"op.duration{cache="miss",op="vm.list",outcome="ok",service="app"}"#);
    assert_eq!((miss.count, miss.min, miss.max), (3.0, 0.003, 0.0125), "durations are stored in seconds");
    let retries = find(&c, r#"op.retries{op="vm.start",service="app"}"#);
    assert_eq!(retries.sum, 2.0);
    let err = find(&c, r#"op.duration{op="vm.start",outcome="error",service="app"}"#);
    assert_eq!(err.count, 1.0);
    assert_eq!(find(&c, r#"op.batch.size{op="vm.start",service="app"}"#).sum, 6.0);
    assert_eq!(find(&c, r#"pool.acquire{pool="blob-http",result="hit",service="app"}"#).sum, 2.0);
    assert_eq!(find(&c, r#"cache.requests{cache="vm-list",result="stale",service="app"}"#).sum, 1.0);

    let mut r = Reader::open(&db).unwrap();
    let events = r.snapshot().unwrap().last_events(perfstore::EventKind::Error, all_time()).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].op.as_str(), events[0].message.as_str()), ("vm.start", "QuotaExceeded: 20 vCPUs in eastus"));
}

#[test]
fn unfinished_cancelled_and_panicking_calls_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let perf = sdk(&db);
    let op = perf.operation("vm.stop");
    {
        let _scope = op.start(); // dropped without finish(): an early return
    }
    let mut ok = op.start();
    ok.finish();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.run(|_| panic!("boom"))));
    assert!(r.is_err());
    let _: Result<(), String> = op.try_run(|_| Err("NotFound: vm-9".into()));
    // A future dropped before it completes (a timeout) is an error call.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let slow = op.instrument(|_| tokio::time::sleep(Duration::from_secs(60)));
        assert!(tokio::time::timeout(Duration::from_millis(20), slow).await.is_err());
        op.instrument(|_| async {}).await;
    });
    perf.shutdown();
    let c = contents(&db);
    assert_eq!(find(&c, r#"op.duration{op="vm.stop",outcome="error",service="app"}"#).count, 4.0);
    assert_eq!(find(&c, r#"op.duration{op="vm.stop",outcome="ok",service="app"}"#).count, 2.0);
}

/// A daemon child that is killed if a test fails before stopping it.
struct Daemon(Option<std::process::Child>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn daemon(db: &Path) -> (Daemon, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_perfagent"))
        .args(["start", "--foreground", "--db"])
        .arg(db)
        .args([
            "--statsd-udp",
            "127.0.0.1:0",
            "--statsd-tcp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--flush-interval",
            "200ms",
        ])
        .arg("--statsd-unix")
        .arg(db.with_extension("sock"))
        .env("PERFAGENT_SERVICE", "app")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (Daemon(Some(child)), serde_json::from_str(&line).unwrap())
}

fn stop(mut daemon: Daemon) {
    let child = daemon.0.take().unwrap();
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_sdk_and_statsd_give_the_same_store_contents() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("sdk.db"), dir.path().join("statsd.db"));
    let perf = sdk(&a);
    record_with_sdk(&perf);
    perf.shutdown();

    let (child, ready) = daemon(&b);
    let mut tcp = std::net::TcpStream::connect(ready["statsd_tcp"].as_str().unwrap()).unwrap();
    tcp.write_all(STATSD.as_bytes()).unwrap();
    drop(tcp);
    std::thread::sleep(Duration::from_millis(600));
    stop(child);

    let (ca, cb) = (contents(&a), contents(&b));
    let names = |c: &[(String, Kind, Point)]| c.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ca), names(&cb));
    for ((name, kind, p), (_, _, q)) in ca.iter().zip(&cb) {
        assert_eq!((p.count, p.sum, p.min, p.max), (q.count, q.sum, q.min, q.max), "{name}");
        if *kind == Kind::Distribution {
            assert_eq!(p.sketch, q.sketch, "{name}: identical sketches");
        }
    }
    let events = |db: &Path| {
        let mut r = Reader::open(db).unwrap();
        r.snapshot()
            .unwrap()
            .last_events(perfstore::EventKind::Error, all_time())
            .unwrap()
            .into_iter()
            .map(|e| (e.op, e.message))
            .collect::<Vec<_>>()
    };
    assert_eq!(events(&a), events(&b));
}

#[test]
fn the_sdk_forwards_to_a_daemon_that_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let (child, _) = daemon(&db);
    let perf = sdk(&db);
    match perf.mode() {
        Mode::Forward { to, reason } => {
            assert!(matches!(to, perfagent::listeners::ForwardTo::Unix(_)), "the Unix socket is preferred: {to}");
            assert!(reason.contains("is held by perfagent (pid "), "{reason}");
        }
        m => panic!("expected forward mode, got {m:?}"),
    }
    record_with_sdk(&perf);
    perf.shutdown();
    std::thread::sleep(Duration::from_millis(600));
    stop(child);
    let c = contents(&db);
    assert_eq!(find(&c, r#"op.retries{op="vm.start",service="app"}"#).sum, 2.0);
    assert_eq!(find(&c, r#"op.duration{cache="hit",op="vm.list",outcome="ok",service="app"}"#).count, 3.0);
}

fn post(addr: &str, token: Option<&str>, target: &str, body: &str) -> String {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "POST {target} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_daemon_takes_folded_stacks_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let (child, ready) = daemon(&db);
    let http = ready["http"].as_str().unwrap().to_owned();
    // py-spy's raw format: frames with spaces and parentheses, the count after the last space.
    let py = "<module> (app.py:30);main (app.py:25);list_vms (cloud.py:12) 40\n<module> (app.py:30);main (app.py:25);parse (cloud.py:40) 10\n";
    // Without the store's token (a web page cannot read it, nor send the header without a
    // preflight) an upload is refused before its body is looked at.
    let r = post(&http, None, "/profile?op=vm.list&service=py-app", py);
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    let token = std::fs::read_to_string(perfagent::token::path(&db.canonicalize().unwrap())).unwrap();
    let token = Some(token.trim());
    let r = post(&http, token, "/profile?op=vm.list&service=py-app", py);
    assert!(r.starts_with("HTTP/1.1 202"), "{r}");
    assert!(r.ends_with("accepted 2 stacks (50 samples) for vm.list; stored with the next flush\n"), "{r}");
    let r = post(&http, token, "/profile?op=vm.list", "main;work 3\nmain;broken\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(
        r.ends_with("line 2: expected `frame;frame;… COUNT` (no sample count after the stack); nothing was stored\n"),
        "{r}"
    );
    assert!(post(&http, token, "/profile", "a 1\n").starts_with("HTTP/1.1 400"), "an operation is required");
    std::thread::sleep(Duration::from_millis(500));
    stop(child);
    let mut r = Reader::open(&db).unwrap();
    let snap = r.snapshot().unwrap();
    let stacks = snap.profile("vm.list", Some("py-app"), all_time()).unwrap();
    assert_eq!(
        stacks,
        vec![
            perfstore::Stack::new("<module> (app.py:30);main (app.py:25);list_vms (cloud.py:12)", 40),
            perfstore::Stack::new("<module> (app.py:30);main (app.py:25);parse (cloud.py:40)", 10)
        ]
    );
    assert_eq!(snap.profiled_ops(all_time()).unwrap().len(), 1, "the malformed upload stored nothing");
}

#[test]
fn phases_pools_and_circuits_with_an_injected_clock() {
    use perfagent::sdk::CircuitState;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let (clock, mock) = quanta::Clock::mock();
    let perf = Perf::builder()
        .service("app")
        .db(&db)
        .flush_interval(Duration::from_millis(200))
        .profiler_hz(0)
        .clock(clock)
        .start()
        .unwrap();
    let op = perf.operation("vm.start");
    let ms = |n: u64| mock.increment(Duration::from_millis(n));
    op.run(|call| {
        call.pooled(false);
        ms(5); // other
        let api = call.phase("api");
        ms(20);
        {
            let _net = call.phase("network");
            ms(30); // network, taken from api
        }
        ms(10);
        drop(api);
        ms(35); // other
    });
    let circuit = perf.circuit("azure-compute");
    circuit.set(CircuitState::Open);
    circuit.set(CircuitState::Open);
    circuit.set(CircuitState::HalfOpen);
    circuit.set(CircuitState::Closed);
    perf.shutdown();

    let c = contents(&db);
    let total = find(&c, r#"op.duration{op="vm.start",outcome="ok",pool="miss",service="app"}"#);
    assert_eq!((total.count, total.sum), (1.0, 0.1), "100 ms on the injected clock");
    for (phase, secs) in [("api", 0.03), ("network", 0.03), ("other", 0.04)] {
        let p = find(&c, &format!(r#"op.phase.duration{{op="vm.start",phase="{phase}",service="app"}}"#));
        assert!((p.sum - secs).abs() < 1e-12, "{phase}: {} s", p.sum);
    }
    assert_eq!(find(&c, r#"circuit.transitions{circuit="azure-compute",service="app",to="open"}"#).sum, 1.0);
    assert_eq!(find(&c, r#"circuit.state{circuit="azure-compute",service="app"}"#).last, 0.0);
}
