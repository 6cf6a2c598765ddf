//! Instructions per StatsD line through the receive thread's code (parse + aggregate +
//! flush), for `valgrind --tool=callgrind`: counts that do not move with whatever else runs
//! on the machine, unlike times.
//!
//! The datagrams are the peers harness's (`../shared/bench/peers/loadgen`): packed to 1400
//! bytes, mix c=60,g=15,ms=15,h=10, `--names` names per type, values as loadgen draws them,
//! and with `--tag-values N` a DogStatsD tag `t:v<0..N>` on every line. One flush per
//! `--per-flush` lines, as a 1 s flush at that rate would do.
//!
//! Run it at two line counts and take the difference, so start-up and the pool's building
//! cancel out (`scripts/bench-ingest-instructions` does this):
//!
//! ```sh
//! cargo build --release -p perfagent --example ingest-cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/ingest-cost --lines 2000000
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::fmt::Write as _;
use std::hint::black_box;

use perfagent::statsd::aggregate::{Aggregator, AggregatorConfig};

struct Args {
    lines: u64,
    names: u64,
    tag_values: u64,
    per_flush: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { lines: 1_000_000, names: 100, tag_values: 0, per_flush: 1_600_000 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v: u64 = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse()
            .map_err(|_| format!("invalid value for '{flag}': expected a whole number"))?;
        match flag.as_str() {
            "--lines" => a.lines = v,
            "--names" => a.names = v.max(1),
            "--tag-values" => a.tag_values = v,
            "--per-flush" => a.per_flush = v.max(1),
            _ => return Err(format!("unknown flag '{flag}' (--lines, --names, --tag-values, --per-flush)")),
        }
    }
    Ok(a)
}

/// loadgen's xorshift64* generator, so the lines are the harness's.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// A pool of 1400-byte datagrams and the number of lines in each.
fn pool(a: &Args) -> Vec<(Vec<u8>, u64)> {
    const TYPES: [&str; 4] = ["c", "g", "ms", "h"];
    const MIX: [u64; 4] = [60, 15, 15, 10];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    let (mut cur, mut n) = (Vec::new(), 0);
    let mut line = String::new();
    for _ in 0..200_000 {
        let mut r = rng.below(100);
        let mut t = 0;
        while r >= MIX[t] {
            r -= MIX[t];
            t += 1;
        }
        let name = rng.below(a.names);
        let val = if t == 0 { 1 + rng.below(10) } else { rng.below(1000) };
        line.clear();
        write!(line, "bench.{}.{name}:{val}|{}", TYPES[t], TYPES[t]).unwrap();
        if a.tag_values > 0 {
            write!(line, "|#t:v{}", rng.below(a.tag_values)).unwrap();
        }
        if !cur.is_empty() && cur.len() + 1 + line.len() > 1400 {
            out.push((std::mem::take(&mut cur), n));
            n = 0;
        }
        if !cur.is_empty() {
            cur.push(b'\n');
        }
        cur.extend_from_slice(line.as_bytes());
        n += 1;
    }
    out
}

/// Datagrams per batch: the UDP listener's `recvmmsg` takes up to 64.
const BATCH: usize = 64;

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ingest-cost: {e}");
            std::process::exit(2);
        }
    };
    let pool = pool(&a);
    let mut agg = Aggregator::new(AggregatorConfig::default(), 1_767_225_600_000, 1_000);
    let (mut done, mut since_flush, mut points) = (0u64, 0u64, 0usize);
    'outer: loop {
        // In batches, as the UDP listener hands over what one `recvmmsg` brought.
        for batch in pool.chunks(BATCH) {
            if done >= a.lines {
                break 'outer;
            }
            agg.ingest_batch(black_box(batch).iter().map(|(d, _)| Some(d.as_slice())));
            let n: u64 = batch.iter().map(|(_, n)| n).sum();
            done += n;
            since_flush += n;
            if since_flush >= a.per_flush {
                points += agg.flush().points.len();
                since_flush = 0;
            }
        }
    }
    points += agg.flush().points.len();
    let s = agg.stats();
    assert_eq!(s.dropped_total(), 0, "{:?}", s.dropped);
    println!("lines {} series {} points flushed {points}", s.lines, agg.series());
}
