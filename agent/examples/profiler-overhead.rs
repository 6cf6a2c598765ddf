//! Profiler overhead: a CPU-bound workload run inside profiled operation scopes, with the
//! SDK's profiler at 99 Hz and off, in interleaved pairs (on, off, on, off, ...) so drift on a
//! shared machine hits both alike. Prints each pair, the median overhead, and RSS with the
//! profiler on and off.
//!
//! ```sh
//! cargo run --release -p perfagent --example profiler-overhead -- --pairs 12 --seconds 2
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::time::{Duration, Instant};

use perfagent::sdk::Perf;

#[inline(never)]
fn crunch(rounds: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = std::hint::black_box(x.wrapping_add(i));
    }
    x
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Seconds of wall time for a fixed amount of work, and RSS at the end (KiB).
fn run(hz: u32, work: u64, db: &std::path::Path) -> (f64, u64) {
    let perf = Perf::builder()
        .service("overhead")
        .db(db)
        .profiler_hz(hz)
        .flush_interval(Duration::from_secs(1))
        .start()
        .expect("start");
    let op = perf.operation("crunch");
    let t = Instant::now();
    for _ in 0..work {
        op.run(|_| crunch(200_000));
    }
    let secs = t.elapsed().as_secs_f64();
    let rss = rss_kib();
    perf.shutdown();
    (secs, rss)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut pairs, mut seconds) = (12usize, 2.0f64);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pairs" => pairs = args.next().and_then(|v| v.parse().ok()).unwrap_or(pairs),
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(seconds),
            other => {
                eprintln!("unknown argument '{other}': expected --pairs N --seconds S");
                std::process::exit(2);
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("perf.db");
    // Calibrate the work to about `seconds` with the profiler off.
    let t = Instant::now();
    for _ in 0..50 {
        crunch(200_000);
    }
    let per = t.elapsed().as_secs_f64() / 50.0;
    let work = ((seconds / per) as u64).max(10);
    // RSS without the profiler, before it ever ran (pprof's memory stays once touched).
    let (_, rss_off) = run(0, work / 4, &db);
    let mut overheads = Vec::new();
    let mut rss_on = 0;
    println!("pair  on (s)   off (s)  overhead");
    for i in 0..pairs {
        let (on, r_on) = run(99, work, &db);
        let (off, _) = run(0, work, &db);
        rss_on = rss_on.max(r_on);
        let o = (on / off - 1.0) * 100.0;
        overheads.push(o);
        println!("{:>4}  {on:7.3}  {off:7.3}  {o:+6.2} %", i + 1);
    }
    overheads.sort_by(f64::total_cmp);
    let median = if overheads.len() % 2 == 1 {
        overheads[overheads.len() / 2]
    } else {
        (overheads[overheads.len() / 2 - 1] + overheads[overheads.len() / 2]) / 2.0
    };
    println!("median overhead at 99 Hz over {pairs} pairs: {median:+.2} %");
    println!(
        "peak RSS: {:.1} MiB with the profiler on, {:.1} MiB off",
        rss_on as f64 / 1024.0,
        rss_off as f64 / 1024.0
    );
}
