//! The real `perfagent start --foreground` with real UDP sockets and a real store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use perf_e2e::bin;
use perfstore::{Reader, Selector, TimeRange};

struct Agent {
    child: Child,
    port: u16,
    http: Option<String>,
}

impl Agent {
    /// Wait for the agent to exit and take what it printed.
    fn output(self) -> Output {
        self.into_child().wait_with_output().unwrap()
    }

    /// The process, no longer killed on drop.
    fn into_child(mut self) -> Child {
        std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap())
    }
}

impl Drop for Agent {
    /// A test that fails midway must not leave its agent running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &Path, extra: &[&str]) -> Agent {
    start_with(db, extra, &[]).0
}

/// Start `perfagent start --foreground` with extra flags and environment; the agent and its
/// ready line.
fn start_with(db: &Path, extra: &[&str], envs: &[(&str, &str)]) -> (Agent, serde_json::Value) {
    let mut cmd = Command::new(bin("perfagent"));
    cmd.env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["start", "--foreground", "--db", db.to_str().unwrap(), "--statsd-udp", "127.0.0.1:0"])
        .args(extra)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn perfagent");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("ready line");
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
    assert_eq!(ready["event"], "ready");
    assert_eq!(ready["pid"], child.id());
    assert_eq!(ready["db"], db.display().to_string());
    let addr: std::net::SocketAddr = ready["statsd_udp"].as_str().unwrap().parse().unwrap();
    assert!(addr.ip().is_loopback(), "listens on loopback by default");
    let http = ready["http"].as_str().map(str::to_owned);
    (Agent { child, port: addr.port(), http }, ready)
}

/// `perfagent status --format json` for the store at `db`.
fn status_json(db: &str) -> serde_json::Value {
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["status", "--db", db, "--format", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status JSON: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `perfagent stop --db DB`.
fn perfagent_stop(db: &str) -> Output {
    Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["stop", "--db", db])
        .output()
        .unwrap()
}

fn sigterm(child: &Child) {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
}

#[test]
fn sigterm_loses_nothing_that_was_received() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = start(&db, &["--flush-interval", "1s", "--service", "e2e"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", agent.port)).unwrap();
    let mut sent_ms = 0u64;
    for d in 0..300 {
        let mut datagram = String::new();
        for i in 0..20 {
            let ms = 10 + (d * 20 + i) % 500;
            sent_ms += ms;
            datagram.push_str(&format!("op.duration:{ms}|ms|#op:vm.list,outcome:ok\nop.retries:1|c|#op:vm.list\n"));
        }
        datagram.push_str("bad line without a value\n");
        sock.send(datagram.as_bytes()).unwrap();
        if d % 100 == 99 {
            std::thread::sleep(Duration::from_millis(600)); // span a few flushes
        }
    }
    sigterm(&agent.child);
    let out = agent.output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("perfagent: stopped: 12000 lines, 300 dropped"), "{stderr}");
    assert!(
        stderr.contains(
            "since the last summary: calls=6000, successes=6000, failures=0, success_rate=1.000, avg_duration="
        ),
        "{stderr}"
    );

    let mut r = Reader::open(&db).unwrap();
    let snap = r.snapshot().unwrap();
    let all = TimeRange::new(0, i64::MAX / 2);
    let retries = snap.series(&Selector::parse(r#"op.retries{service="e2e",op="vm.list"}"#).unwrap()).unwrap();
    assert_eq!(snap.aggregate(&retries[0], all).unwrap().unwrap().sum, 6000.0, "every counter increment");
    let dur = snap.series(&Selector::name("op.duration")).unwrap();
    let p = snap.aggregate(&dur[0], all).unwrap().unwrap();
    assert_eq!(p.count, 6000.0);
    assert!((p.sum - sent_ms as f64 / 1000.0).abs() < 1e-6, "{} vs {}", p.sum, sent_ms as f64 / 1000.0);
}

#[test]
fn a_second_agent_on_the_same_store_is_refused_with_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let mut first = start(&db, &[]);
    // The same file by its own name, through a symlinked file, and through a symlinked folder:
    // the lock is on the file itself, so no alias gets a second writer.
    let alias_dir = tempfile::tempdir().unwrap();
    let linked_file = alias_dir.path().join("alias.db");
    std::os::unix::fs::symlink(&db, &linked_file).unwrap();
    let linked_dir = alias_dir.path().join("dir");
    std::os::unix::fs::symlink(dir.path(), &linked_dir).unwrap();
    for path in [db.clone(), linked_file, linked_dir.join("perf.db")] {
        let out = Command::new(bin("perfagent"))
            .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
            .args(["start", "--foreground", "--db", path.to_str().unwrap(), "--statsd-udp", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let canonical = db.canonicalize().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "error: perfagent is already running (pid {}) on {}: stop it with `perfagent stop --db {}`, or start \
                 this one with another --db\n",
                first.child.id(),
                canonical.display(),
                canonical.display()
            ),
            "{}",
            path.display()
        );
    }
    // Deleting the lock file does not free the store either.
    std::fs::remove_file(dir.path().join("perf.db.lock")).unwrap();
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["start", "--foreground", "--db", db.to_str().unwrap(), "--statsd-udp", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    sigterm(&first.child);
    assert_eq!(first.child.wait().unwrap().code(), Some(0));
    let _ = first.port;
}

#[test]
fn a_port_in_use_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["start", "--foreground", "--db", db.to_str().unwrap(), "--statsd-udp", &addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("error: binding StatsD socket {addr}: ")), "{err}");
    assert!(err.contains("; the address is in use"), "{err}");
    assert!(
        err.contains("--statsd-udp / --statsd-tcp (127.0.0.1:0 takes any free port), or set [statsd] udp"),
        "{err}"
    );
    assert!(!db.exists(), "a failed start leaves no new empty store behind");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nor any file beside it");
}

#[test]
fn importing_into_a_store_an_agent_holds_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = perf_e2e::Agent::start(&db, &[], &[]);
    let csv = dir.path().join("one.csv");
    std::fs::write(&csv, "time,series,value\n2026-11-22T00:00:00Z,op.retries{op=\"x\"},1\n").unwrap();
    let out = perf_e2e::perfctl(&db, &["import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already open for writing by another process"), "{err}");
    assert!(err.contains("stop the agent (`perfagent stop --db "), "{err}");
    assert!(err.contains("or send the data to the running agent instead"), "{err}");
    assert!(err.trim_end().ends_with("nothing was imported"), "{err}");
    agent.stop();
}

#[test]
fn a_bad_interval_names_the_flag_and_the_form() {
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["start", "--foreground", "--flush-interval", "5x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value '5x' for '--flush-interval <DUR>': expected a duration like 10s or 500ms, between 100ms and 1h"),
        "{err}"
    );
}

#[test]
fn config_show_check_and_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = Command::new(bin("perfagent"));
        cmd.env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0");
        cmd.args(args).env("XDG_CONFIG_HOME", dir.path().join("nowhere"));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // The default file is valid and says what the defaults are.
    let out = run(&["config", "default"], &[]);
    std::fs::write(&file, &out.stdout).unwrap();
    let out = run(&["config", "check", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}: ok\n", file.display()));

    std::fs::write(&file, "[agent]\nflush_interval = \"2s\"\n[targets]\np95 = \"200ms\"\n").unwrap();
    let out = run(&["config", "show", "--config", file.to_str().unwrap()], &[("PERFAGENT_SERVICE", "billing")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = |key: &str| text.lines().find(|l| l.starts_with(key)).unwrap_or_default().to_string();
    assert!(line("agent.flush_interval").ends_with(&format!("# file {}:2", file.display())), "{text}");
    assert!(line("agent.flush_interval").contains("\"2s\""), "{text}");
    assert!(
        line("agent.service").contains("\"billing\"") && line("agent.service").ends_with("# env PERFAGENT_SERVICE"),
        "{text}"
    );
    assert!(line("statsd.udp").ends_with("# default"), "{text}");

    std::fs::write(&file, "[agent]\nservice = \"x\"\nflush_intervl = \"5s\"\n").unwrap();
    let out = run(&["config", "check", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("error: {}:3: unknown field `flush_intervl`, expected", file.display())), "{err}");
    // start refuses the same file before touching anything.
    let db = dir.path().join("perf.db");
    let out = run(&["start", "--foreground", "--config", file.to_str().unwrap(), "--db", db.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!db.exists());
}

#[test]
fn status_before_the_first_flush_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = start(&db, &["--flush-interval", "1h"]);
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["status", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no flush yet"), "{text}");
    assert!(!text.contains("years"), "not a date in 1970: {text}");
    drop(agent);
}

#[test]
fn status_and_stop_find_the_agent_through_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let dbs = db.to_str().unwrap();
    let mut agent = start(&db, &["--flush-interval", "200ms"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"op.retries:1|c\nop.retries:1|c\nbroken\n", ("127.0.0.1", agent.port)).unwrap();
    // Wait for a flush that saw the lines.
    let mut json = serde_json::Value::Null;
    for _ in 0..100 {
        let out = Command::new(bin("perfagent"))
            .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
            .args(["status", "--db", dbs, "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        json = serde_json::from_slice(&out.stdout).unwrap();
        if json["lines"] == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(json["running"], true);
    assert_eq!(json["pid"], agent.child.id());
    assert_eq!(json["lines"], 2, "{json}");
    assert_eq!(json["dropped"]["missing_value"], 1, "{json}");
    assert_eq!(json["statsd_udp"], format!("127.0.0.1:{}", agent.port));
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["status", "--db", dbs])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("running     pid {}, up ", agent.child.id())), "{text}");
    assert!(text.contains("dropped     missing_value=1"), "{text}");

    let out = perfagent_stop(dbs);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("perfagent stopped (pid {}); its final flush is in {}\n", agent.child.id(), db.display())
    );
    assert_eq!(agent.child.wait().unwrap().code(), Some(0));
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["status", "--db", dbs])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("perfagent is not running (store {})\n", db.display()));
    let out = perfagent_stop(dbs);
    assert_eq!(out.status.code(), Some(0), "stopping a stopped agent is not an error");

    // The agent sampled the host at every flush, under OpenTelemetry names.
    let mut r = Reader::open(&db).unwrap();
    let snap = r.snapshot().unwrap();
    let all = TimeRange::new(0, i64::MAX / 2);
    let cpu = snap.series(&Selector::parse(r#"system.cpu.utilization{service="host"}"#).unwrap()).unwrap();
    let p = snap.aggregate(&cpu[0], all).unwrap().unwrap();
    assert!(p.count >= 2.0 && p.min >= 0.0 && p.max <= 1.0, "{p:?}");
    let mem = snap.series(&Selector::name("system.memory.usage")).unwrap();
    assert_eq!(mem[0].key.unit, "By");
    assert!(snap.aggregate(&mem[0], all).unwrap().unwrap().last > 0.0);
    let rss = snap.series(&Selector::name("process.memory.usage")).unwrap();
    assert!(snap.aggregate(&rss[0], all).unwrap().unwrap().max > 1e6, "the agent's own RSS");
}

#[test]
fn background_start_returns_when_ready_and_reports_failures() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store").join("perf.db");
    let dbs = db.to_str().unwrap();
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["start", "--db", dbs, "--statsd-udp", "127.0.0.1:0", "--flush-interval", "200ms"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let log = dir.path().join("store").join("perfagent.log");
    assert!(text.starts_with("perfagent started (pid "), "{text}");
    assert!(text.trim_end().ends_with(&format!("store {dbs}, log {}", log.display())), "{text}");
    let pid: u32 = text["perfagent started (pid ".len()..].split(')').next().unwrap().parse().unwrap();
    assert_eq!(perfstore::lock_holder(&db).unwrap(), Some(Some(pid)), "the agent runs after start returned");
    let port: u16 = text.split("udp://127.0.0.1:").nth(1).unwrap().split([',', ';']).next().unwrap().parse().unwrap();
    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"bg.calls:5|c\n", ("127.0.0.1", port)).unwrap();

    // A second start is refused with the pid, before spawning anything.
    let again = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["start", "--db", dbs, "--statsd-udp", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains(&format!("already running (pid {pid})")));

    let out = perfagent_stop(dbs);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("perfagent: listening: StatsD on udp://127.0.0.1:"), "{logged}");
    assert!(logged.contains("perfagent: stopped: 1 lines, 0 dropped"), "{logged}");
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    let mut r = Reader::open(&db).unwrap();
    let snap = r.snapshot().unwrap();
    let s = snap.series(&Selector::name("bg.calls")).unwrap();
    assert_eq!(snap.aggregate(&s[0], TimeRange::new(0, i64::MAX / 2)).unwrap().unwrap().sum, 5.0);

    // A background start that cannot bind says why.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["start", "--db", dbs, "--statsd-udp", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the agent did not start") && err.contains(&format!("binding StatsD socket {addr}")), "{err}");
}

#[test]
fn kernel_drops_are_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let dbs = db.to_str().unwrap();
    let agent = start(&db, &["--flush-interval", "200ms"]);
    let pid = agent.child.id() as i32;
    // Freeze the agent and overfill its receive buffer.
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = vec![b'x'; 1400];
    for _ in 0..40_000 {
        let _ = sock.send_to(&datagram, ("127.0.0.1", agent.port));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let mut drops = 0;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let json = status_json(dbs);
        drops = json["kernel_drops"].as_u64().unwrap_or(0);
        if drops > 0 {
            break;
        }
    }
    assert!(drops > 0, "the kernel's drops are visible in status");
    sigterm(&agent.child);
    let out = agent.output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("StatsD datagrams (receive buffer full;"), "{err}");
}

#[test]
fn unix_datagram_and_tcp_listeners() {
    use std::io::Write as _;
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let sock_path = dir.path().join("dsd.socket");
    // A socket file left behind by a killed agent is replaced.
    drop(UnixDatagram::bind(&sock_path).unwrap());
    assert!(sock_path.exists());
    let (agent, ready) =
        start_with(&db, &["--statsd-unix", sock_path.to_str().unwrap(), "--statsd-tcp", "127.0.0.1:0"], &[]);
    let child = agent.into_child();
    assert_eq!(ready["statsd_unix"], sock_path.display().to_string());
    let tcp: std::net::SocketAddr = ready["statsd_tcp"].as_str().unwrap().parse().unwrap();

    let uds = UnixDatagram::unbound().unwrap();
    for _ in 0..3 {
        uds.send_to(b"uds.calls:1|c|#via:uds", &sock_path).unwrap();
    }
    let mut stream = std::net::TcpStream::connect(tcp).unwrap();
    stream.write_all(b"tcp.calls:2|c\ntcp.ca").unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.write_all(b"lls:3|c\ntcp.calls:5|c").unwrap(); // the last line has no newline
    drop(stream);
    // A second agent cannot take the live socket.
    let out = Command::new(bin("perfagent"))
        .env("PERFAGENT_HTTP_LISTEN", "127.0.0.1:0")
        .args(["start", "--foreground", "--db", dir.path().join("other.db").to_str().unwrap()])
        .args(["--statsd-udp", "127.0.0.1:0", "--statsd-unix", sock_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another process is listening there"));

    std::thread::sleep(Duration::from_millis(200));
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!sock_path.exists(), "the socket file is removed on exit");
    let mut r = Reader::open(&db).unwrap();
    let snap = r.snapshot().unwrap();
    let sum = |name: &str| {
        let s = snap.series(&Selector::name(name)).unwrap();
        snap.aggregate(&s[0], TimeRange::new(0, i64::MAX / 2)).unwrap().unwrap().sum
    };
    assert_eq!(sum("uds.calls"), 3.0);
    assert_eq!(sum("tcp.calls"), 10.0, "lines split across reads, and a last line without newline");
}

/// Peak resident memory of a live process, KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_million_unique_names_keep_memory_bounded_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let dbs = db.to_str().unwrap();
    let (agent, ready) = start_with(&db, &["--flush-interval", "1s"], &[("PERFAGENT_STATSD_MAX_SERIES", "20000")]);
    let child = agent.into_child();
    let addr = ready["statsd_udp"].as_str().unwrap().to_string();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(&addr).unwrap();
    let mut datagram = String::new();
    let mut lines_per_datagram = 0;
    let mut sent = 0u64;
    for i in 0..1_000_000u32 {
        datagram.push_str(&format!("flood.user_{i}:1|c\n"));
        if datagram.len() > 1350 {
            lines_per_datagram = lines_per_datagram.max(datagram.matches('\n').count() as u64);
            sock.send(datagram.as_bytes()).unwrap();
            datagram.clear();
            sent += 1;
            if sent.is_multiple_of(20) {
                // About 250 000 lines/s, so that a debug build keeps up.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    sock.send(datagram.as_bytes()).unwrap();
    // Wait until the agent has taken everything that reached it: the status file changes
    // once per flush (1 s), so compare readings further apart than that.
    let mut json = serde_json::Value::Null;
    let mut last_seen = 0;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(2500));
        json = status_json(dbs);
        let seen = json["lines"].as_u64().unwrap_or(0) + json["dropped"]["cardinality_total"].as_u64().unwrap_or(0);
        if seen == last_seen && seen > 0 {
            break;
        }
        last_seen = seen;
    }
    assert_eq!(json["series_in_memory"], 20_000, "{json}");
    assert_eq!(json["lines"], 20_000, "{json}");
    // Every line is accounted for: taken, refused by the limit, or in a datagram the kernel
    // dropped (which is visible too).
    let refused = json["dropped"]["cardinality_total"].as_u64().unwrap();
    let kernel = json["kernel_drops"].as_u64().unwrap_or(0);
    assert!(refused + 20_000 + kernel * lines_per_datagram >= 1_000_000, "{json}");
    assert!(refused >= 900_000, "most of the flood reached the agent and was refused: {json}");
    let peak = peak_rss_kib(child.id());
    assert!(peak < 128 * 1024, "peak RSS {peak} KiB with 20 000 series held and the rest refused");
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("lines over the cardinality limits this interval (first: flood.user_20000)"), "{log}");
    let mut r = Reader::open(&db).unwrap();
    assert_eq!(r.snapshot().unwrap().series(&Selector::name("flood.*")).unwrap().len(), 20_000);
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0);
    // `/metrics` comes chunked (streamed); a response cut short reads as empty.
    let body = text.split_once("\r\n\r\n").and_then(|(h, b)| perf_e2e::dechunk(h, b)).unwrap_or_default();
    (status, body)
}

#[test]
fn metrics_endpoint_serves_the_convention_and_the_agents_own_telemetry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = start(&db, &["--flush-interval", "200ms"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(
        b"op.retries:2|c|#op:vm.list\nop.retries:0.5|c|#op:vm.list\nop.duration:20|ms|#op:vm.list,outcome:ok\nop.duration:300|ms|#op:vm.list,outcome:ok\npool.size:4|g|#pool:arm\nbad\n",
        ("127.0.0.1", agent.port),
    )
    .unwrap();
    let http = agent.http.clone().expect("http address in the ready line");
    let mut body = String::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let (code, b) = http_get(&http, "/metrics");
        assert_eq!(code, 200);
        body = b;
        // The flush's series reach `/metrics` a moment before the writer publishes the
        // agent's own counters for it: wait for both.
        if body.contains("op_retries_total") && body.contains("perfagent_lines_received_total 5\n") {
            break;
        }
    }
    assert!(body.contains("# TYPE op_retries_total counter\n"), "{body}");
    assert!(body.contains("op_retries_total{op=\"vm.list\",service=\"unknown\"} 2.5\n"), "{body}");
    assert!(body.contains("# TYPE op_duration_seconds histogram\n"), "{body}");
    assert!(
        body.contains("op_duration_seconds_bucket{op=\"vm.list\",outcome=\"ok\",service=\"unknown\",le=\"0.025\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("op_duration_seconds_count{op=\"vm.list\",outcome=\"ok\",service=\"unknown\"} 2\n"),
        "{body}"
    );
    assert!(body.contains("pool_size{pool=\"arm\",service=\"unknown\"} 4\n"), "{body}");
    assert!(body.contains("# TYPE system_cpu_utilization_ratio gauge\n"), "host metrics too: {body}");
    assert!(body.contains("perfagent_lines_received_total 5\n"), "{body}");
    assert!(body.contains("perfagent_dropped_lines_total{reason=\"missing_value\"} 1\n"), "{body}");
    for line in body.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = line.split_whitespace().nth(2).unwrap();
        assert!(body.contains(&format!("# HELP {family} ")), "{family} has HELP text");
    }
    assert_eq!(http_get(&http, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(http_get(&http, "/readyz").0, 200);
    assert_eq!(http_get(&http, "/nope").0, 404);
    // promtool (Debian's prometheus package; .ci/run installs it) must accept the output.
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut c) => {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => assert!(std::env::var_os("CI").is_none(), "promtool is missing: install Debian's prometheus package"),
    }
    sigterm(&agent.child);
}

#[test]
fn sigkill_leaves_a_consistent_store_missing_at_most_the_last_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = start(&db, &["--flush-interval", "200ms"]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", agent.port)).unwrap();
    let datagram = "k.calls:1|c\n".repeat(100);
    let start = std::time::Instant::now();
    let mut sent: Vec<(Duration, u64)> = Vec::new();
    let mut total = 0;
    let mut killed_at = None;
    while start.elapsed() < Duration::from_millis(2500) {
        sock.send(datagram.as_bytes()).unwrap();
        total += 100;
        sent.push((start.elapsed(), total));
        if killed_at.is_none() && start.elapsed() > Duration::from_millis(1500) {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            assert_eq!(unsafe { libc::kill(agent.child.id() as i32, libc::SIGKILL) }, 0);
            killed_at = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut child = agent.into_child();
    child.wait().unwrap();
    let killed_at = killed_at.expect("killed");
    // The store reopens (the writer's quick_check passes), integrity_check is ok, and
    // everything sent more than three flush intervals before the kill is there.
    let mut w = perfstore::Writer::open(&db, perfstore::StoreOptions::default()).expect("reopen after SIGKILL");
    let snap = w.snapshot().unwrap();
    snap.integrity_check().unwrap();
    let s = snap.series(&Selector::name("k.calls")).unwrap();
    let stored = snap.aggregate(&s[0], TimeRange::new(0, i64::MAX / 2)).unwrap().unwrap().sum as u64;
    let safe = sent.iter().rev().find(|(t, _)| *t + Duration::from_millis(600) <= killed_at).map_or(0, |x| x.1);
    assert!(stored <= total, "{stored} stored, {total} sent");
    assert!(stored >= safe, "{stored} stored, {safe} sent more than 3 intervals before the kill");
}

/// Where the receive thread and the writer share a core, receiving goes first: the writer
/// runs at nice 10, the receive thread at the agent's own priority.
#[test]
fn the_writer_yields_a_shared_core_to_receiving() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start(&dir.path().join("perf.db"), &[]);
    let pid = agent.child.id();
    let nice_of = |comm: &str| -> Option<i64> {
        std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten().find_map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the name: state is the 3rd of stat(5), nice the 19th.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            (name.trim_end() == comm).then(|| fields[16].parse().ok()).flatten()
        })
    };
    // The writer lowers its own priority as it starts, maybe just after the ready line.
    let mut writer = None;
    for _ in 0..50 {
        writer = nice_of("perfagent-write");
        if writer == Some(10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(writer, Some(10));
    assert_eq!(nice_of("perfagent"), Some(0), "the receive thread keeps the agent's priority");
}
