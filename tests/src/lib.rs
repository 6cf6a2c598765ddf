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
        use std::io::BufRead as _;
        let mut child = Command::new(bin("perfagent"))
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

    /// SIGTERM (the agent drains, writes its final flush and exits 0) and wait.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().expect("spawn true"))
            .wait_with_output()
            .expect("wait for perfagent");
        assert!(out.status.success(), "perfagent: {}", String::from_utf8_lossy(&out.stderr));
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
    let status = || -> serde_json::Value {
        let out = Command::new(bin("perfagent"))
            .args(["status", "--format", "json", "--db"])
            .arg(db)
            .output()
            .expect("perfagent status");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while status()["lines"].as_u64().unwrap_or(0) < lines {
        assert!(std::time::Instant::now() < deadline, "the agent did not take {lines} lines: {}", status());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
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
