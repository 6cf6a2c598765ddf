//! The demo's simulated workloads: a cloud CLI instrumented with the SDK, a second app sending
//! DogStatsD, and thirty days of earlier history as timestamped StatsD lines.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use perfagent::sdk::{Cache, CacheResult, Circuit, CircuitState, Operation, Perf, Pool};
use perfstore::convention::{self as conv, OP_DURATION};

/// Deterministic pseudo-random numbers.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let z: f64 = (0..6).map(|_| self.next()).sum::<f64>() - 3.0;
        median * (z * sigma / 0.707).exp()
    }
}

macro_rules! cpu_work {
    ($iters:expr) => {{
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..$iters {
            x ^= x << 13;
            x ^= x >> 7;
            x = std::hint::black_box(x.wrapping_add(i));
        }
        x
    }};
}

#[inline(never)]
fn parse_instance_page(n: u64) -> u64 {
    cpu_work!(n * 600_000)
}

#[inline(never)]
fn sign_request_sigv4() -> u64 {
    cpu_work!(400_000)
}

#[inline(never)]
fn decode_command_output() -> u64 {
    cpu_work!(700_000)
}

#[inline(never)]
fn verify_blob_checksum(kib: u64) -> u64 {
    cpu_work!(kib * 8_000)
}

const ERRORS: [&str; 4] = [
    "ThrottlingException: Rate exceeded (DescribeInstances)",
    "InvocationDoesNotExist: the command expired before it reached the instance",
    "RequestTimeout: no response from ssm.eu-west-1.amazonaws.com in 5s",
    "OperationNotAllowed: quota of 20 vCPUs reached in westeurope",
];

fn sleep_ms(ms: f64) {
    std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
}

/// One simulated client thread: its operations' handles and state.
struct Client {
    rng: Lcg,
    list: Operation,
    start: Operation,
    stop: Operation,
    ssm: Operation,
    blob: Operation,
    cache: Cache,
    pool: Pool,
    breaker: Circuit,
    pooled: u64,
}

impl Client {
    /// vm.list: a stale-while-revalidate cache in front of DescribeInstances.
    fn list_vms(&mut self) {
        let r = self.rng.next();
        let result = if r < 0.55 {
            CacheResult::Hit
        } else if r < 0.7 {
            CacheResult::Stale
        } else {
            CacheResult::Miss
        };
        self.cache.lookup(result);
        let fail = self.rng.next() < 0.02;
        let (rng, cache) = (&mut self.rng, &self.cache);
        let _ = self.list.try_run(|op| {
            op.cache(result);
            match result {
                CacheResult::Miss => {
                    {
                        let _api = op.phase("api");
                        sleep_ms(rng.lognormal(70.0, 0.4));
                    }
                    let _parse = op.phase("parse");
                    parse_instance_page(4);
                    if fail {
                        return Err(ERRORS[0]);
                    }
                }
                CacheResult::Stale => {
                    cache.refresh();
                    parse_instance_page(1);
                }
                CacheResult::Hit => {
                    parse_instance_page(1);
                }
            }
            Ok(())
        });
    }

    /// vm.start / vm.stop: batched, with retries and exponential backoff on throttling.
    fn start_or_stop(&mut self) {
        let batch = 1 + (self.rng.next() * 12.0) as u32;
        let op = if self.rng.next() < 0.6 { &self.start } else { &self.stop };
        let throttled = self.rng.next() < 0.15;
        let quota = self.rng.next() < 0.02;
        let rng = &mut self.rng;
        let _ = op.try_run(|call| {
            call.batched(batch);
            sign_request_sigv4();
            let mut backoff = 20.0;
            if throttled {
                for _ in 0..2 {
                    call.retry();
                    let _wait = call.phase("backoff");
                    sleep_ms(backoff);
                    backoff *= 2.0;
                    sign_request_sigv4();
                }
            }
            let _api = call.phase("api");
            sleep_ms(rng.lognormal(180.0, 0.3));
            if quota { Err(ERRORS[3]) } else { Ok(()) }
        });
    }

    /// ssm.send_command: send, then poll until the invocation finishes.
    fn send_command(&mut self) {
        let expired = self.rng.next() < 0.03;
        let rng = &mut self.rng;
        let _ = self.ssm.try_run(|call| {
            sign_request_sigv4();
            for _ in 0..3 {
                {
                    let _poll = call.phase("poll");
                    sleep_ms(rng.lognormal(25.0, 0.3));
                }
                decode_command_output();
            }
            if expired { Err(ERRORS[1]) } else { Ok(()) }
        });
    }

    /// blob.read: through a small connection pool (drop-guard form: metrics only), and a
    /// breaker on the compute API that opens for a while after throttling streaks.
    fn read_blob(&mut self) {
        let reused = self.pooled > 0 && self.rng.next() < 0.9;
        if !reused {
            self.pooled = (self.pooled + 1).min(8);
        }
        self.pool.acquire(reused);
        let mut read = self.blob.start();
        read.pooled(reused);
        {
            let _net = read.phase("network");
            sleep_ms(if reused { self.rng.lognormal(12.0, 0.3) } else { self.rng.lognormal(45.0, 0.3) });
        }
        verify_blob_checksum(64);
        if self.rng.next() < 0.01 {
            read.fail(&ERRORS[2]);
        }
        read.finish();
        self.pool.size(self.pooled);
        if self.rng.next() < 0.01 {
            self.breaker.set(CircuitState::Open);
        } else if self.rng.next() < 0.05 {
            self.breaker.set(CircuitState::Closed);
        }
    }
}

/// The simulated client: one thread's loop until `until`.
pub(crate) fn client(perf: &Perf, seed: u64, until: Instant, calls: &AtomicU64) {
    let mut c = Client {
        rng: Lcg(seed),
        list: perf.operation("vm.list"),
        start: perf.operation("vm.start"),
        stop: perf.operation("vm.stop"),
        ssm: perf.operation("ssm.send_command"),
        blob: perf.operation("blob.read"),
        cache: perf.cache("vm-list"),
        pool: perf.pool("blob-https"),
        breaker: perf.circuit("compute-api"),
        pooled: 0,
    };
    while Instant::now() < until {
        c.list_vms();
        calls.fetch_add(1, Ordering::Relaxed);
        if c.rng.next() < 0.25 {
            c.start_or_stop();
            calls.fetch_add(1, Ordering::Relaxed);
        }
        if c.rng.next() < 0.15 {
            c.send_command();
            calls.fetch_add(1, Ordering::Relaxed);
        }
        c.read_blob();
        calls.fetch_add(1, Ordering::Relaxed);
    }
    c.cache.size(240);
}

/// A second app, in another language for all it knows: DogStatsD over UDP.
pub(crate) fn statsd_app(
    addr: std::net::SocketAddr,
    until: Instant,
    stop: &AtomicBool,
    calls: &AtomicU64,
) -> anyhow::Result<()> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let mut rng = Lcg(99);
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        let ms = rng.lognormal(35.0, 0.25);
        let outcome = if rng.next() < 0.01 { "error" } else { "ok" };
        let lines = format!(
            "{name}:{ms:.2}|ms|#op:invoice.render,outcome:{outcome},service:billing-worker\n\
             queue.depth:{}|g|#queue:invoices,service:billing-worker\n",
            (rng.next() * 40.0) as u32,
            name = OP_DURATION.name,
        );
        sock.send_to(lines.as_bytes(), addr)?;
        calls.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(40));
    }
    Ok(())
}

/// Thirty days of the fleet CLI's earlier calls, hour by hour (a daily cycle, quiet weekends,
/// ~35 %/year growth), as sampled StatsD lines: each value stands for 100 calls; and of the
/// host it ran on (`service:host`, the host sampler's series): CPU utilization and memory
/// following the load, with this machine's core count and memory size, so `capacity` projects
/// CPU and memory as well as requests.
pub(crate) fn history_lines(now_ms: i64) -> String {
    let mut rng = Lcg(2024);
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let memory = mem_total_bytes().unwrap_or(8 << 30) as f64;
    let hour_now = now_ms.div_euclid(3_600_000);
    let mut out = String::new();
    for h in (hour_now - 30 * 24)..hour_now {
        let t = h * 3600;
        let age_years = (hour_now - h) as f64 / (24.0 * 365.25);
        let hour_of_day = h.rem_euclid(24) as f64;
        let weekday = (h / 24 + 4).rem_euclid(7); // 1970-01-01 was a Thursday
        let daily = 0.35 + 0.65 * (std::f64::consts::PI * (hour_of_day - 3.0) / 24.0).sin().max(0.0).powi(2);
        let weekly = if weekday >= 5 { 0.45 } else { 1.0 };
        let calls_per_hour = 90_000.0 * daily * weekly * 1.35f64.powf(-age_years) * (0.9 + 0.2 * rng.next());
        for (op, share, median) in [
            ("vm.list", 0.55, 12.0),
            ("blob.read", 0.3, 20.0),
            ("vm.start", 0.1, 190.0),
            ("ssm.send_command", 0.05, 90.0),
        ] {
            let n = (calls_per_hour * share / 100.0).round() as usize;
            if n == 0 {
                continue;
            }
            let values: Vec<String> = (0..n).map(|_| format!("{:.2}", rng.lognormal(median, 0.4))).collect();
            for chunk in values.chunks(100) {
                out.push_str(&format!(
                    "{}:{}|ms|@0.01|#op:{op},outcome:ok,service:fleet-cli|T{t}\n",
                    OP_DURATION.name,
                    chunk.join(":")
                ));
            }
        }
        let load = calls_per_hour / 90_000.0;
        let host = [
            (conv::SYSTEM_CPU_UTILIZATION.name, (0.04 + 0.38 * load).min(1.0)),
            (conv::SYSTEM_CPU_LOGICAL_COUNT.name, cores as f64),
            (conv::SYSTEM_MEMORY_USAGE.name, memory * (0.22 + 0.18 * load)),
            (conv::SYSTEM_MEMORY_LIMIT.name, memory),
        ];
        for (name, v) in host {
            out.push_str(&format!("{name}:{v:.4}|g|#service:{}|T{t}\n", conv::HOST_SERVICE));
        }
    }
    out
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn mem_total_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 =
        text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
