//! Helpers for the end-to-end tests in `tests/tests/`, which run the real `perfagent` and
//! `perfctl` binaries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::path::{Path, PathBuf};
use std::process::Command;

/// A workspace binary, built (or brought up to date) once per test process with the same
/// cargo and profile, so `cargo test -p perf-e2e` alone never runs stale binaries.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--bins", "-p", "perfctl", "-p", "perfagent"]);
        if dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
    });
    dir.join(name)
}

/// A file under the workspace's `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fixtures").join(rel)
}

/// Compare `actual` with the blessed file `fixtures/golden/<name>`; with `PERF_BLESS=1` in
/// the environment, write it instead (then review the diff and commit it).
pub fn golden(name: &str, actual: &str) {
    let path = fixture(&format!("golden/{name}"));
    if std::env::var_os("PERF_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create fixtures/golden");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with PERF_BLESS=1 to create it)", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
            .collect();
        panic!(
            "{} differs ({} lines expected, {} actual; PERF_BLESS=1 rewrites it after review):\n{}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// `perfagent start --foreground` on `db` with ephemeral StatsD UDP, TCP and HTTP listeners
/// and a 1 s flush (plus `extra` flags and `envs`), running until [`Agent::stop`].
#[derive(Debug)]
pub struct Agent {
    child: std::process::Child,
    /// The ready line: `statsd_udp`, `statsd_tcp`, `http`, `pid`, …
    pub ready: serde_json::Value,
}

impl Agent {
    /// Start it and wait for its ready line.
    pub fn start(db: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Agent {
        Self::start_with(db, extra, envs, |_| {})
    }

    /// [`Agent::start`], with `setup` applied to the command first (limits, working folder).
    pub fn start_with(db: &Path, extra: &[&str], envs: &[(&str, &str)], setup: impl FnOnce(&mut Command)) -> Agent {
        use std::io::BufRead as _;
        let mut cmd = Command::new(bin("perfagent"));
        setup(&mut cmd);
        let mut child = cmd
            .args(["start", "--foreground", "--db"])
            .arg(db)
            .args(["--statsd-udp", "127.0.0.1:0", "--statsd-tcp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(if extra.contains(&"--flush-interval") { &[][..] } else { &["--flush-interval", "1s"][..] })
            .args(extra)
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn perfagent");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
        let ready = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let _ = child.kill();
                let said = child.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
                panic!("ready line {line:?}: {e}; perfagent said: {}", said.unwrap_or_default())
            }
        };
        Agent { child, ready }
    }

    /// A listener's address from the ready line (`statsd_udp`, `statsd_tcp`, `http`).
    pub fn addr(&self, key: &str) -> String {
        self.ready[key].as_str().unwrap_or_else(|| panic!("no {key} in {}", self.ready)).to_owned()
    }

    /// SIGTERM (the agent drains, writes its final flush and exits 0) and wait; what it wrote
    /// to stderr (its log).
    pub fn stop(self) -> String {
        let out = self.terminate();
        assert!(out.status.success(), "perfagent: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// SIGTERM and wait, whatever the exit status.
    pub fn terminate(mut self) -> std::process::Output {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
        std::mem::replace(&mut self.child, Command::new("true").spawn().expect("spawn true"))
            .wait_with_output()
            .expect("wait for perfagent")
    }

    /// SIGKILL and wait: no chance to flush.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `perfctl --db DB ARGS` with no config file and no colour.
pub fn perfctl(db: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin("perfctl"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("XDG_DATA_HOME", "/nonexistent")
        .env("NO_COLOR", "1")
        .output()
        .expect("run perfctl")
}

/// Weighted nearest-rank quantile of `(value, weight)` pairs: the smallest value whose
/// cumulative weight reaches ⌈q·N⌉.
pub fn nearest_rank(values: &[(f64, f64)], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n: f64 = v.iter().map(|x| x.1).sum();
    let rank = (q * n).ceil().max(1.0);
    let mut seen = 0.0;
    for (x, w) in &v {
        seen += w;
        if seen >= rank {
            return *x;
        }
    }
    v.last().map_or(f64::NAN, |x| x.0)
}

/// Feed a StatsD capture (lines with `|T` timestamps) through the real agent over TCP into
/// the store at `db`, and stop the agent with SIGTERM (which flushes everything received).
/// Retention is unlimited so old fixture timestamps are never expired.
pub fn load_statsd(db: &Path, capture: &Path) {
    use std::io::Write as _;
    let envs = ["RAW", "MINUTE", "HOUR"].map(|t| format!("PERFAGENT_STORE_{t}_RETENTION"));
    let agent = Agent::start(db, &[], &envs.iter().map(|k| (k.as_str(), "100years")).collect::<Vec<_>>());
    let text = std::fs::read(capture).unwrap_or_else(|e| panic!("{}: {e}", capture.display()));
    let mut conn = std::net::TcpStream::connect(agent.addr("statsd_tcp")).expect("connect to the agent");
    conn.write_all(&text).expect("send the capture");
    conn.write_all(b"\n").expect("send");
    drop(conn);
    // The agent reads what a closed connection held before it stops: wait until every line
    // is counted, then SIGTERM.
    let lines = text.split(|&b| b == b'\n').filter(|l| !l.is_empty() && !l.starts_with(b"_e")).count() as u64;
    wait_for(60, &format!("the agent to take {lines} lines"), || {
        (status(db)["lines"].as_u64().unwrap_or(0) >= lines).then_some(())
    });
    agent.stop();
}

/// An example of the workspace (`cargo build --example NAME -p PACKAGE`), built once per test
/// process with the same profile as the tests.
pub fn example(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name, "-p", package]);
    if dir.file_name().is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    assert!(cmd.status().expect("run cargo build").success(), "building example {name} failed");
    dir.join("examples").join(name)
}

/// Record that `test` skipped for `why` (a missing tool or privilege), so `scripts/test` lists
/// it in its summary; under `CI=true` a skip is a failure instead: CI provides everything.
pub fn skip(test: &str, why: &str) {
    assert!(std::env::var_os("CI").is_none(), "{test} cannot skip under CI=true: {why}");
    record_skip(test, why);
}

/// Record a skip the machine imposes even under CI (a sandbox that forbids ptrace), for the
/// summary of `scripts/test`.
pub fn record_skip(test: &str, why: &str) {
    eprintln!("skipped: {test}: {why}");
    if let Some(log) = std::env::var_os("PERF_SKIP_LOG") {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            // One write of the whole line: tests skip from parallel threads, and an O_APPEND
            // write of a short buffer is not interleaved with another.
            let _ = f.write_all(format!("{test}: {why}\n").as_bytes());
        }
    }
}

/// Whether this process runs as root (tmpfs mounts, the immutable attribute).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory of ours.
    unsafe { libc::geteuid() == 0 }
}

/// Make `path` read-only for every process of ours: the immutable attribute as root (who
/// writes through any mode bits), the mode bits otherwise; `false` undoes it.
pub fn set_read_only(path: &Path, read_only: bool) {
    use std::os::unix::fs::PermissionsExt as _;
    if is_root() {
        let flag = if read_only { "+i" } else { "-i" };
        let out = Command::new("chattr").arg(flag).arg(path).output().expect("chattr (e2fsprogs)");
        assert!(out.status.success(), "chattr {flag}: {}", String::from_utf8_lossy(&out.stderr));
    } else {
        let mode = if read_only { 0o400 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

/// One HTTP/1.1 request written as is (`raw` is everything after the request line's
/// `METHOD TARGET HTTP/1.1\r\n`, up to and including the blank line and any body); the
/// status code, the headers (lower-case names) and the body (chunked coding removed).
pub fn http(addr: &str, request_line: &str, raw: &[u8]) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("timeout");
    s.write_all(format!("{request_line}\r\n").as_bytes()).expect("send");
    let _ = s.write_all(raw);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut text = Vec::new();
    let _ = s.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let code = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    // A response cut short keeps its raw body: hostile-input tests look at what came.
    (code, headers, dechunk(head, body).unwrap_or_else(|| body.to_owned()))
}

/// A GET's body when the answer is 200, chunked transfer decoded (Prometheus and
/// VictoriaMetrics answer queries chunked); None on any failure, for polling.
pub fn get_ok(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    dechunk(head, body)
}

/// A response's body as sent: `body` without its chunked transfer coding when `head` says it
/// has one (the agent streams `/metrics`; Prometheus and VictoriaMetrics answer queries
/// chunked). None when the chunks do not add up (a response cut short).
pub fn dechunk(head: &str, body: &str) -> Option<String> {
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Some(body.to_owned());
    }
    let mut text = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            return Some(text);
        }
        text.push_str(after.get(..n)?);
        rest = after.get(n + 2..)?;
    }
    None
}

/// The agent's write token for the store at `db` (`<db>.token`).
pub fn token(db: &Path) -> String {
    let db = db.canonicalize().expect("store path");
    let mut name = db.file_name().expect("file name").to_os_string();
    name.push(".token");
    std::fs::read_to_string(db.with_file_name(name)).expect("token file").trim().to_owned()
}

/// `perfagent status --format json --db DB` (an empty object while there is no status).
pub fn status(db: &Path) -> serde_json::Value {
    let out = Command::new(bin("perfagent"))
        .args(["status", "--format", "json", "--db"])
        .arg(db)
        .output()
        .expect("perfagent status");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// Poll `f` every 100 ms until it returns `Some`, for at most `secs` seconds; panic with
/// `what` and the last status otherwise.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The sum of every `name` counter series in the store at `db` over all time (0 when the
/// store cannot be opened).
pub fn counter_sum(db: &Path, name: &str) -> f64 {
    use perfstore::{Reader, Selector, TimeRange};
    let Ok(mut r) = Reader::open(db) else { return 0.0 };
    let snap = r.snapshot().expect("snapshot");
    let all = TimeRange::new(0, i64::MAX / 2);
    snap.series(&Selector::name(name))
        .expect("series")
        .iter()
        .filter_map(|s| snap.aggregate(s, all).expect("aggregate"))
        .map(|p| p.sum)
        .sum()
}
