//! Store faults under the real agent: a full disk (a real 3 MiB tmpfs), a file-size limit, the
//! store deleted or made read-only while the agent runs. The promise checked each time: what
//! the agent received is either in the store or counted as lost, and the agent says what is
//! wrong while it is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use perf_e2e::{Agent, bin, counter_sum, http, is_root, set_read_only, skip, status, wait_for};

/// `n` counter increments of `name` over one TCP connection, spread over `series` tag values.
fn send(agent: &Agent, name: &str, n: usize, series: usize) {
    let mut c = TcpStream::connect(agent.addr("statsd_tcp")).unwrap();
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("{name}:1|c|#n:{}\n", i % series));
    }
    c.write_all(text.as_bytes()).unwrap();
}

/// Wait until the agent has counted `lines` lines in all.
fn wait_lines(db: &Path, lines: u64) {
    wait_for(60, &format!("{lines} lines counted"), || (status(db)["lines"].as_u64() >= Some(lines)).then_some(()));
}

fn lost_total(s: &serde_json::Value) -> u64 {
    s["lost"].as_object().map_or(0, |m| m.values().filter_map(serde_json::Value::as_u64).sum())
}

/// A tmpfs of `size` mounted at a fresh folder, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "perf-test"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "mount tmpfs: {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.path().to_owned()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fill the file system holding `dir` with `dir/filler` until a write fails.
fn fill(dir: &Path) -> PathBuf {
    let p = dir.join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let block = vec![0u8; 16 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.flush();
    p
}

#[test]
fn a_full_disk_keeps_every_flush_says_so_and_catches_up_when_space_returns() {
    if !is_root() {
        return skip("a_full_disk_keeps_every_flush…", "mounting a 3 MiB tmpfs needs root");
    }
    let fs = Tmpfs::mount("3m");
    let db = fs.path().join("perf.db");
    let agent = Agent::start(&db, &["--flush-interval", "200ms"], &[]);
    let http_addr = agent.addr("http");
    send(&agent, "fill.before", 2000, 20);
    wait_lines(&db, 2000);
    wait_for(30, "the first lines stored", || (status(&db)["points_written"].as_u64() > Some(0)).then_some(()));

    let filler = fill(&fs.path());
    // New series need new pages: every flush now fails with "disk full".
    send(&agent, "fill.during", 20_000, 400);
    wait_lines(&db, 22_000);
    let degraded = wait_for(30, "status to say degraded", || {
        let s = status(&db);
        (s["degraded"]["reason"] == "disk full" && s["pending_points"].as_u64() > Some(0)).then_some(s)
    });
    assert_eq!(lost_total(&degraded), 0, "nothing lost while the queue has room: {degraded}");
    let (code, _, body) = http(&http_addr, "GET /readyz HTTP/1.1", format!("Host: {http_addr}\r\n\r\n").as_bytes());
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("disk full since"), "{body}");
    let text = Command::new(bin("perfagent")).args(["status", "--db"]).arg(&db).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("DEGRADED    disk full since"), "{text}");
    assert!(text.contains("points waiting"), "{text}");

    // Space returns: the agent catches up by itself, and stays caught up.
    std::fs::remove_file(filler).unwrap();
    wait_for(60, "the agent to catch up", || {
        let s = status(&db);
        (s["degraded"].is_null() && s["pending_points"].as_u64() == Some(0)).then_some(())
    });
    send(&agent, "fill.after", 5000, 50);
    wait_lines(&db, 27_000);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let s = status(&db);
    assert!(s["degraded"].is_null(), "the WAL was checkpointed after recovery, so the disk stays usable: {s}");
    let log = agent.stop();
    assert!(log.contains("disk full"), "the log says what happened: {log}");
    assert_eq!(counter_sum(&db, "fill.before"), 2000.0);
    assert_eq!(counter_sum(&db, "fill.during"), 20_000.0, "every line of the full-disk minute was kept and written");
    assert_eq!(counter_sum(&db, "fill.after"), 5000.0);
}

#[test]
fn a_file_size_limit_is_a_write_error_not_a_silent_death() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    // Enough for the schema and a first flush, not for 2000 new series.
    let agent = Agent::start_with(&db, &["--flush-interval", "200ms"], &[], |cmd| {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: setrlimit is async-signal-safe and touches only the child's limits.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: 400 * 1024, rlim_max: 400 * 1024 };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    });
    send(&agent, "limit.test", 20_000, 2000);
    wait_lines(&db, 20_000);
    let s = wait_for(30, "status to say degraded", || {
        let s = status(&db);
        (s["degraded"]["reason"] == "file-size limit reached").then_some(s)
    });
    assert!(s["pending_points"].as_u64() > Some(0), "{s}");
    // SAFETY: kill with signal 0 only checks that the process exists.
    assert_eq!(unsafe { libc::kill(agent.pid() as i32, 0) }, 0, "SIGXFSZ did not kill the agent");
    let out = agent.terminate();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("the file-size limit (ulimit -f, 409600 bytes) is reached"), "the log names the cause: {log}");
    assert_eq!(log.matches("keeping what arrives and retrying").count(), 1, "said once, not per retry: {log}");
    assert!(log.contains("lost"), "what could not be written is reported as lost at exit: {log}");
}

#[test]
fn a_deleted_store_is_noticed_and_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let agent = Agent::start(&db, &["--flush-interval", "200ms"], &[]);
    send(&agent, "del.before", 100, 5);
    wait_lines(&db, 100);
    wait_for(30, "a flush", || (status(&db)["points_written"].as_u64() > Some(0)).then_some(()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    send(&agent, "del.after", 300, 5);
    wait_lines(&db, 400);
    let s = wait_for(30, "the store recreated", || {
        let s = status(&db);
        (s["store_reopened"].as_u64() == Some(1) && s["pending_points"].as_u64() == Some(0)).then_some(s)
    });
    assert!(s["degraded"].is_null(), "{s}");
    let log = agent.stop();
    assert!(log.contains("the store file was deleted while the agent ran; recreated it"), "{log}");
    assert_eq!(counter_sum(&db, "del.after"), 300.0, "what came after the deletion is in the new file");
    assert_eq!(counter_sum(&db, "del.before"), 0.0, "the deleted file's data went with it");
}

#[test]
fn a_read_only_store_is_refused_at_start_and_waited_out_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    Agent::start(&db, &[], &[]).stop();

    set_read_only(&db, true);
    let out = Command::new(bin("perfagent"))
        .args(["start", "--foreground", "--statsd-udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    set_read_only(&db, false);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not writable); fix the permissions or pass another --db"), "{err}");

    let agent = Agent::start(&db, &["--flush-interval", "200ms"], &[]);
    send(&agent, "ro.before", 100, 5);
    wait_lines(&db, 100);
    wait_for(30, "a flush", || (status(&db)["points_written"].as_u64() > Some(0)).then_some(()));
    set_read_only(&db, true);
    send(&agent, "ro.during", 500, 5);
    wait_lines(&db, 600);
    let s = wait_for(30, "status to say read-only", || {
        let s = status(&db);
        (s["degraded"]["reason"] == "store read-only").then_some(s)
    });
    assert!(s["pending_points"].as_u64() > Some(0), "{s}");
    set_read_only(&db, false);
    wait_for(30, "the agent to catch up", || {
        let s = status(&db);
        (s["degraded"].is_null() && s["pending_points"].as_u64() == Some(0)).then_some(())
    });
    agent.stop();
    assert_eq!(counter_sum(&db, "ro.before"), 100.0);
    assert_eq!(counter_sum(&db, "ro.during"), 500.0, "kept while read-only, written when writable again");
}
