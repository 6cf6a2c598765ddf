//! A small "cloud CLI" instrumented with the perfagent SDK, running embedded: VM listing
//! through a cache, VM starts in batches with retries, an SSM-style command with polling
//! (async, on a multi-thread runtime) that sometimes fails, and blob reads through a
//! connection pool. Each operation burns CPU in its own named function, so the store ends up
//! with per-operation flame graphs.
//!
//! ```sh
//! cargo run --release -p perfagent --example cloud-app -- --db /tmp/app.db --seconds 5
//! perfctl --db /tmp/app.db stats --last 1h
//! perfctl --db /tmp/app.db flamegraph vm.list --last 1h
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::time::{Duration, Instant};

use perfagent::sdk::{CacheResult, Perf};

/// Deterministic pseudo-random numbers (no dependency needed for a demo).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// CPU work the compiler cannot remove. Each operation has its own copy (not a shared
/// helper behind a tail call), so its flame graph names its own function.
macro_rules! work {
    ($iters:expr) => {{
        let mut x = 0u64;
        for i in 0..$iters {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x)
    }};
}

#[inline(never)]
fn parse_vm_page(n: u64) -> u64 {
    work!(n * 40_000)
}

#[inline(never)]
fn sign_start_request(n: u64) -> u64 {
    work!(n * 30_000)
}

#[inline(never)]
fn decode_command_output() -> u64 {
    work!(120_000)
}

#[inline(never)]
fn checksum_blob() -> u64 {
    work!(60_000)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut db, mut seconds) = (None, 5.0f64);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--db" => db = args.next(),
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0),
            other => anyhow::bail!("unknown argument '{other}': expected --db PATH --seconds N"),
        }
    }
    let mut b = Perf::builder().service("cloud-app").flush_interval(Duration::from_secs(1));
    if let Some(db) = &db {
        b = b.db(db);
    }
    let perf = b.start()?;
    eprintln!("recording to {:?}", perf.mode());

    let list = perf.operation("vm.list");
    let start = perf.operation("vm.start");
    let blob = perf.operation("blob.read");
    let ssm = perf.operation("ssm.send_command");
    let cache = perf.cache("vm-list");
    let pool = perf.pool("blob-http");
    let mut rng = Lcg(7);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build()?;

    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut round = 0u64;
    while Instant::now() < until {
        round += 1;
        // vm.list: a cache in front of the API, stale-while-revalidate.
        let r = rng.next();
        let result = if r < 0.5 {
            CacheResult::Hit
        } else if r < 0.6 {
            CacheResult::Stale
        } else {
            CacheResult::Miss
        };
        cache.lookup(result);
        if result == CacheResult::Stale {
            cache.refresh();
        }
        list.run(|op| {
            op.cache(result);
            if result == CacheResult::Miss {
                parse_vm_page(3);
            } else {
                parse_vm_page(1);
            }
        });

        // vm.start: batched, with a retry now and then.
        if round.is_multiple_of(3) {
            let n = 2 + (rng.next() * 8.0) as u32;
            let retried = rng.next() < 0.2;
            let _ = start.try_run(|op| {
                op.batched(n);
                if retried {
                    op.retry();
                    sign_start_request(u64::from(n));
                }
                sign_start_request(u64::from(n));
                Ok::<_, String>(())
            });
        }

        // blob.read: a pooled connection, the drop-guard form.
        let reused = rng.next() < 0.9;
        pool.acquire(reused);
        let mut scope = blob.start();
        checksum_blob();
        scope.finish();

        // ssm.send_command: async, polled on the runtime's worker threads; 5 % fail.
        if round.is_multiple_of(5) {
            let fail = rng.next() < 0.05;
            runtime.block_on(ssm.instrument(|op| async move {
                for _ in 0..3 {
                    decode_command_output();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if fail {
                    op.fail(&format!("InvocationDoesNotExist: command {round} expired"));
                }
            }));
        }
    }
    pool.size(8);
    cache.size(120);
    perf.shutdown();
    eprintln!("done: {round} rounds");
    Ok(())
}
