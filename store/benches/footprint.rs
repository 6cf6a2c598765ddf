//! Bytes per stored sample: the mix (200 series × 24 h at 10 s: 40 % integer
//! counters, 30 % full-precision float random walks, 30 % integer gauges), each class alone,
//! and timers (bytes per stored interval sketch). Total file bytes after a normal
//! checkpoint, all tiers included. Prints a table; run with
//! `cargo bench -p perfstore --bench footprint [filter]`. With `FOOTPRINT_KEEP=<dir>` the
//! stores are copied there (raw-<label>.db, then <label>.db after raw expiry) for a look with
//! `sqlite3 <file> "SELECT name, sum(pgsize), sum(payload), sum(unused) FROM dbstat GROUP BY name"`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

mod common;

use std::path::Path;
use std::time::Instant;

use common::{Class, DAY_STEPS, T0, fill, register};
use perfstore::{StoreOptions, Writer, wal_path};

fn file_bytes(path: &Path) -> u64 {
    path.metadata().map(|m| m.len()).unwrap_or(0) + wal_path(path).metadata().map(|m| m.len()).unwrap_or(0)
}

/// Copy the (closed, checkpointed) store to `$FOOTPRINT_KEEP` when set.
fn keep(path: &Path, label: &str) {
    if let Some(dir) = std::env::var_os("FOOTPRINT_KEEP") {
        let name: String = label.trim().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        std::fs::copy(path, Path::new(&dir).join(format!("{name}.db"))).expect("copy the store");
    }
}

fn measure(label: &str, classes: &[(Class, usize)], steps: i64) {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if !filter.is_empty() && !filter.iter().any(|f| label.contains(f.as_str())) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("perf.db");
    let mut w = Writer::open(&path, StoreOptions::default()).expect("open");
    let mut gens = register(&mut w, classes);
    let t = Instant::now();
    fill(&mut w, &mut gens, steps);
    let secs = t.elapsed().as_secs_f64();
    let samples = gens.len() as f64 * steps as f64;
    w.maintain(T0 + steps * common::STEP).expect("maintain");
    w.close().expect("close");
    let bytes = file_bytes(&path);
    keep(&path, &format!("raw-{label}"));
    println!(
        "{label:<44} {samples:>10.0} samples {bytes:>11} bytes {:>7.3} bytes/sample   (written at {:.0} samples/s)",
        bytes as f64 / samples,
        samples / secs
    );
    // The same data once raw has expired: one-minute and one-hour tiers only.
    let mut w = Writer::open(&path, StoreOptions::default()).expect("reopen");
    w.maintain(T0 + steps * common::STEP + 8 * 86_400_000).expect("roll up");
    w.close().expect("close");
    let rolled = file_bytes(&path);
    keep(&path, label);
    println!(
        "{:<44} {:>10} {:>17} bytes {:>7.3} bytes/raw sample",
        "  after raw expiry (1 m + 1 h tiers)",
        "",
        rolled,
        rolled as f64 / samples
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here
    }
    println!("perfstore footprint (file bytes incl. WAL after checkpoint, all tiers)");
    measure(
        "mix: 80 int counters + 60 float + 60 int gauges",
        &[(Class::IntCounter, 80), (Class::FloatGauge, 60), (Class::IntGauge, 60)],
        DAY_STEPS,
    );
    measure("  integer counters only (200)", &[(Class::IntCounter, 200)], DAY_STEPS);
    measure("  float random walks only (200)", &[(Class::FloatGauge, 200)], DAY_STEPS);
    measure("  integer gauges only (200)", &[(Class::IntGauge, 200)], DAY_STEPS);
    measure("timers: 20 series, 50 events per interval", &[(Class::Timer, 20)], DAY_STEPS);
    // Bytes of one encoded interval sketch (50 log-normal latencies).
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let mut gens = {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Writer::open(dir.path().join("x.db"), StoreOptions::default()).expect("open");
        register(&mut w, &[(Class::Timer, 1)])
    };
    let mut total = 0usize;
    for i in 0..1000 {
        let batch = common::flush(&mut gens, &mut rng, T0 + i);
        if let perfstore::Sample::Distribution(d) = &batch[0].sample {
            total += d.sketch.encode().len();
        }
    }
    println!("one interval sketch of 50 latencies: {:.1} bytes encoded (mean of 1000)", total as f64 / 1000.0);
}
