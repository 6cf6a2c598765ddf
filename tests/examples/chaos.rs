//! Chaos run against the real agent: SIGKILLs during load, a full disk, a deleted store and a
//! read-only store, each while lines arrive; prints what was sent, what the agent said, what
//! the store holds and what was reported lost.
//!
//! ```text
//! cargo run --release -p perf-e2e --example chaos -- [KILLS] [DISK_FULL_SECONDS]
//! ```
//! Defaults: 100 kills, 60 s of full disk (the disk-full phase needs root for a tmpfs mount).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use perf_e2e::{Agent, counter_sum, is_root, set_read_only, status};
use perfstore::Reader;

/// Lines of `name` sent at about `per_sec` over TCP until `stop`, spread over `series` tag
/// values (new series need new pages, so a full disk bites); counts what was written.
fn sender(addr: String, name: &'static str, per_sec: u64, series: u64, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let Ok(mut c) = TcpStream::connect(addr) else { return };
    let batch = (per_sec / 50).max(1);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut line = String::new();
        for _ in 0..batch {
            line.push_str(&format!("{name}:1|c|#n:{}\n", i % series));
            i += 1;
        }
        if c.write_all(line.as_bytes()).is_err() {
            return; // the agent died: what was not written was not sent
        }
        sent.fetch_add(batch, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lost(s: &serde_json::Value) -> u64 {
    s["lost"].as_object().map_or(0, |m| m.values().filter_map(serde_json::Value::as_u64).sum())
}

/// Run `during` while lines arrive; returns (sent, final status, agent log).
fn under_load(
    db: &Path,
    name: &'static str,
    series: u64,
    during: impl FnOnce(&Agent),
) -> (u64, serde_json::Value, String) {
    let agent = Agent::start(db, &["--flush-interval", "200ms"], &[]);
    let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let t = {
        let (addr, stop, sent) = (agent.addr("statsd_tcp"), stop.clone(), sent.clone());
        std::thread::spawn(move || sender(addr, name, 5000, series, stop, sent))
    };
    during(&agent);
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    let n = sent.load(Ordering::Relaxed);
    // Wait until the agent has seen everything sent, then for the queue to drain.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let s = status(db);
        if s["lines"].as_u64() >= Some(n) && s["pending_points"].as_u64() == Some(0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut s = status(db);
    let out = agent.terminate();
    // What was given up at exit is counted in the agent's last status.
    let last = status(db);
    if lost(&last) > lost(&s) {
        s["lost"] = last["lost"].clone();
    }
    (n, s, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn kills(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let (mut ok, mut sent_total, mut worst_gap, mut over_status) = (0, 0u64, 0i64, 0u64);
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    println!("SIGKILL during load: {n} cycles, 5000 lines/s over TCP, 200 ms flushes");
    for i in 0..n {
        let before = counter_sum(&db, "chaos.kill");
        let agent = Agent::start(&db, &["--flush-interval", "200ms"], &[]);
        let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let t = {
            let (addr, stop, sent) = (agent.addr("statsd_tcp"), stop.clone(), sent.clone());
            std::thread::spawn(move || sender(addr, "chaos.kill", 5000, 1, stop, sent))
        };
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(400 + rng % 1200));
        let said = status(&db);
        agent.kill9();
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        let sent = sent.load(Ordering::Relaxed);
        sent_total += sent;
        let integrity = Reader::open(&db).and_then(|mut r| r.snapshot().and_then(|s| s.integrity_check()));
        if integrity.is_ok() {
            ok += 1;
        } else {
            println!("  cycle {i}: integrity check failed: {integrity:?}");
        }
        let got = (counter_sum(&db, "chaos.kill") - before) as u64;
        // The status file is written after each flush: what it counted is in the store; the
        // rest is the last flush interval (and what sat in socket buffers) at the kill.
        let counted = said["lines"].as_u64().unwrap_or(0);
        if got < counted {
            println!("  cycle {i}: the status said {counted} lines were taken but only {got} are stored");
        } else {
            over_status += got - counted;
        }
        worst_gap = worst_gap.max(sent as i64 - got as i64);
    }
    let total = counter_sum(&db, "chaos.kill") as u64;
    println!("| cycles | integrity ok | sent | stored | lost | worst loss per kill | stored beyond the last status |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {ok}/{n} | {sent_total} | {total} | {} | {worst_gap} lines ({:.0} ms at 5000/s) | {over_status} |",
        sent_total - total,
        worst_gap as f64 / 5.0
    );
}

fn disk_full(secs: u64) {
    if !is_root() {
        println!("disk full: skipped (mounting a tmpfs needs root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("mount").args(["-t", "tmpfs", "-o", "size=8m", "chaos"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = dir.path().join("perf.db");
    let filler = dir.path().join("filler");
    let mut peak_pending = 0;
    let (sent, s, _) = under_load(&db, "chaos.full", 2000, |_| {
        std::thread::sleep(Duration::from_secs(2));
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 16 * 1024];
        while f.write_all(&block).is_ok() {}
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            peak_pending = peak_pending.max(status(&db)["pending_points"].as_u64().unwrap_or(0));
            std::thread::sleep(Duration::from_millis(500));
        }
        std::fs::remove_file(&filler).unwrap();
    });
    let got = counter_sum(&db, "chaos.full") as u64;
    println!("disk full for {secs} s (8 MiB tmpfs, 5000 lines/s over 2000 series):");
    println!("| sent | taken | stored | reported lost | unaccounted | peak points waiting |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {sent} | {} | {got} | {} | {} | {peak_pending} |",
        s["lines"],
        lost(&s),
        sent as i64 - got as i64 - lost(&s) as i64
    );
    let _ = Command::new("umount").arg("-l").arg(dir.path()).status();
}

fn deleted_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let (sent, s, _) = under_load(&db, "chaos.del", 100, |_| {
        std::thread::sleep(Duration::from_secs(2));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    println!(
        "store deleted while running: sent {sent}, in the recreated file {}, reopened {} time(s), reported lost {} (what the deleted file held is gone with it)",
        counter_sum(&db, "chaos.del") as u64,
        s["store_reopened"],
        lost(&s)
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let (sent, s, _) = under_load(&db, "chaos.ro", 100, |_| {
        std::thread::sleep(Duration::from_secs(2));
        set_read_only(&db, true);
        std::thread::sleep(Duration::from_secs(10));
        set_read_only(&db, false);
    });
    let got = counter_sum(&db, "chaos.ro") as u64;
    println!(
        "store read-only for 10 s: sent {sent}, stored {got}, reported lost {}, unaccounted {}",
        lost(&s),
        sent as i64 - got as i64 - lost(&s) as i64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let secs = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60);
    if n > 0 {
        kills(n);
    }
    disk_full(secs);
    deleted_and_read_only();
}
