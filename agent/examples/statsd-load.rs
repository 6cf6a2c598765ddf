//! StatsD load benchmark: runs `perfagent start --foreground` pinned to CPU 0, sends packed
//! 1400-byte datagrams from CPU 1 at a series of rates, stops the agent with SIGTERM, reads
//! the store back and reports loss, CPU seconds per million lines, RSS (its peak, its median
//! over the run's second half sampled every 50 ms, and that median less the idle RSS per
//! series), and idle CPU. Loss counts counter increments and timer/histogram events (gauges cannot be
//! counted back).
//!
//! ```sh
//! cargo build --release -p perfagent --bins --examples
//! target/release/examples/statsd-load --agent target/release/perfagent \
//!     --rates 500000,1000000,2000000,3200000 --seconds 5 --names 400 --tags 0
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    agent: PathBuf,
    rates: Vec<u64>,
    seconds: f64,
    names: usize,
    tags: usize,
    flush: String,
    idle_seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        agent: PathBuf::from("target/release/perfagent"),
        rates: vec![500_000, 1_000_000, 2_000_000, 3_200_000],
        seconds: 5.0,
        names: 400,
        tags: 0,
        flush: "1s".into(),
        idle_seconds: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--agent" => a.agent = PathBuf::from(val()?),
            "--rates" => {
                a.rates = val()?
                    .split(',')
                    .map(|r| {
                        r.parse()
                            .map_err(|_| format!("invalid value '{r}' for '--rates': expected lines/s like 1000000"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--seconds" => a.seconds = val()?.parse().map_err(|_| "invalid '--seconds': expected a number")?,
            "--names" => a.names = val()?.parse().map_err(|_| "invalid '--names': expected a count")?,
            "--tags" => a.tags = val()?.parse().map_err(|_| "invalid '--tags': expected a count")?,
            "--flush-interval" => a.flush = val()?,
            "--idle-seconds" => {
                a.idle_seconds = val()?.parse().map_err(|_| "invalid '--idle-seconds': expected a number")?
            }
            "--help" | "-h" => {
                println!(
                    "statsd-load --agent PATH --rates R1,R2 --seconds S --names N --tags T --flush-interval DUR --idle-seconds S"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag '{other}'")),
        }
    }
    Ok(a)
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; sched_setaffinity reads
    // it for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// (user CPU seconds, system CPU seconds) of a live process.
fn proc_cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) / hz, ticks(12) / hz)
}

/// (utime + stime in seconds, RSS in KiB, peak RSS in KiB) of a live process.
fn proc_usage(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu = (ticks(11) + ticks(12)) / hz;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (cpu, kib("VmRSS:"), kib("VmHWM:"))
}

struct Outcome {
    sent: u64,
    counted: u64,
    received: f64,
    cpu_load: f64,
    cpu_user: f64,
    cpu_sys: f64,
    peak_rss_kib: u64,
    /// Median RSS over the second half of the load (every series seen by then).
    median_rss_kib: u64,
    idle_rss_kib: u64,
    idle_cpu_pct: f64,
    rcvbuf: u64,
    achieved_rate: f64,
}

fn run_once(a: &Args, rate: u64) -> Result<Outcome, String> {
    let dir = std::env::temp_dir().join(format!("statsd-load-{}-{rate}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db = dir.join("perf.db");
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(&a.agent)
        .args([
            "start",
            "--foreground",
            "--statsd-udp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--flush-interval",
            &a.flush,
            "--db",
        ])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {} under taskset: {e}", a.agent.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line).map_err(|e| e.to_string())?;
    let ready: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("ready line {line:?}: {e}"))?;
    let addr = ready["statsd_udp"].as_str().ok_or("no address")?.to_string();
    let rcvbuf = ready["receive_buffer_bytes"].as_u64().unwrap_or(0);
    let pid = child.id();

    // Idle: no traffic for --idle-seconds.
    let (cpu0, _, _) = proc_usage(pid);
    std::thread::sleep(Duration::from_secs_f64(a.idle_seconds));
    let (cpu1, idle_rss_kib, _) = proc_usage(pid);
    let idle_cpu_pct = (cpu1 - cpu0) / a.idle_seconds * 100.0;

    // Build packed datagrams covering every series in turn.
    let kinds = ["c", "g", "ms", "h"];
    // The kind must stay fixed per series: pick it from the series index.
    let mut datagrams: Vec<(Vec<u8>, u64)> = Vec::new(); // (bytes, countable lines)
    let mut cur = String::new();
    let mut countable = 0;
    let mut total_lines = 0;
    let series = a.names.max(1);
    let mut i = 0usize;
    while datagrams.len() < 2_000 || !i.is_multiple_of(series) {
        let kind = kinds[(i % series) % kinds.len()];
        // Series n: name n % 400, and with tags, tag values from n / 400, so --names counts
        // series (10 000 series with --tags 1 = 400 names x 25 tag values).
        let n = i % series;
        let value = if kind == "c" { 1 } else { (i * 7) % 1000 };
        let name = if a.tags > 0 { n % 400 } else { n };
        let mut l = format!("load.metric.{name}:{value}|{kind}");
        if a.tags > 0 {
            let tags: Vec<String> = (0..a.tags).map(|t| format!("tag{t}:value{}", n / 400 + t)).collect();
            l.push_str("|#");
            l.push_str(&tags.join(","));
        }
        l.push('\n');
        if cur.len() + l.len() > 1400 {
            datagrams.push((std::mem::take(&mut cur).into_bytes(), countable));
            countable = 0;
        }
        cur.push_str(&l);
        total_lines += 1;
        if kind != "g" {
            countable += 1;
        }
        i += 1;
    }
    let lines_per_datagram = total_lines as f64 / datagrams.len() as f64;

    // Send at `rate` lines/s from CPU 1, in 1 ms slices.
    pin_to(1);
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    sock.connect(&addr).map_err(|e| e.to_string())?;
    let (cpu_before, _, _) = proc_usage(pid);
    let (user_before, sys_before) = proc_cpu_split(pid);
    let start = Instant::now();
    let per_sec = rate as f64 / lines_per_datagram;
    let (mut sent_dgrams, mut sent, mut counted) = (0u64, 0u64, 0u64);
    let mut k = 0;
    // RSS every 50 ms of the run's second half: a flush's peak lasts about a tenth of a
    // second, so the median is the memory between flushes and the peak (VmHWM) a flush's.
    let (mut rss, mut next_rss) = (Vec::new(), a.seconds / 2.0);
    while start.elapsed().as_secs_f64() < a.seconds {
        if start.elapsed().as_secs_f64() >= next_rss {
            rss.push(proc_usage(pid).1);
            next_rss += 0.05;
        }
        let due = (start.elapsed().as_secs_f64() * per_sec) as u64;
        while sent_dgrams < due {
            let (bytes, c) = &datagrams[k % datagrams.len()];
            if sock.send(bytes).is_ok() {
                sent += (bytes.iter().filter(|&&b| b == b'\n').count()) as u64;
                counted += c;
            }
            sent_dgrams += 1;
            k += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed().as_secs_f64();
    rss.sort_unstable();
    let median_rss_kib = rss.get(rss.len() / 2).copied().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(300));
    let (cpu_after, _, peak_rss_kib) = proc_usage(pid);
    let (user_after, sys_after) = proc_cpu_split(pid);
    // SAFETY: kill(2) on our own child; no memory involved.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    child.wait().map_err(|e| e.to_string())?;

    let mut reader = perfstore::Reader::open(&db).map_err(|e| e.to_string())?;
    let snap = reader.snapshot().map_err(|e| e.to_string())?;
    let all = perfstore::TimeRange::new(0, i64::MAX / 2);
    // Only the load's own series: the agent also records host metrics.
    let series = snap.series(&perfstore::Selector::name("load.metric.*")).map_err(|e| e.to_string())?;
    let points = snap.aggregate_many(&series, all).map_err(|e| e.to_string())?;
    let mut received = 0.0;
    for (s, p) in series.iter().zip(points) {
        let Some(p) = p else { continue };
        match s.key.kind {
            // Every counter line adds 1, so a counter's sum is its line count.
            perfstore::Kind::Counter => received += p.sum,
            perfstore::Kind::Distribution => received += p.count,
            _ => {}
        }
    }
    drop(snap);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Outcome {
        sent,
        counted,
        received,
        cpu_load: cpu_after - cpu_before,
        cpu_user: user_after - user_before,
        cpu_sys: sys_after - sys_before,
        peak_rss_kib,
        median_rss_kib,
        idle_rss_kib,
        idle_cpu_pct,
        rcvbuf,
        achieved_rate: sent as f64 / elapsed,
    })
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "{:>10} {:>12} {:>9} {:>14} {:>16} {:>12} {:>14} {:>12} {:>10} {:>10} {:>12}",
        "target/s",
        "sent/s",
        "loss %",
        "CPU-s/1M lines",
        "(user + sys)",
        "peak RSS MiB",
        "median RSS MiB",
        "idle RSS MiB",
        "B/series",
        "idle CPU %",
        "rcvbuf bytes"
    );
    for &rate in &a.rates {
        match run_once(&a, rate) {
            Ok(o) => {
                let loss = if o.counted > 0 { (1.0 - o.received / o.counted as f64) * 100.0 } else { 0.0 };
                let per_m = |x: f64| x / (o.sent as f64 / 1e6);
                // Memory a series holds between flushes: the median over the idle agent's.
                let per_series =
                    o.median_rss_kib.saturating_sub(o.idle_rss_kib) as f64 * 1024.0 / a.names.max(1) as f64;
                println!(
                    "{:>10} {:>12.0} {:>9.3} {:>14.3} {:>16} {:>12.1} {:>14.1} {:>12.1} {:>10.0} {:>10.2} {:>12}",
                    rate,
                    o.achieved_rate,
                    loss,
                    per_m(o.cpu_load),
                    format!("({:.3} + {:.3})", per_m(o.cpu_user), per_m(o.cpu_sys)),
                    o.peak_rss_kib as f64 / 1024.0,
                    o.median_rss_kib as f64 / 1024.0,
                    o.idle_rss_kib as f64 / 1024.0,
                    per_series,
                    o.idle_cpu_pct,
                    o.rcvbuf
                );
            }
            Err(e) => eprintln!("rate {rate}: {e}"),
        }
    }
}
