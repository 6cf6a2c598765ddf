//! `perfctl demo`: the product end to end with no setup.
//!
//! 1. Starts the perfagent daemon in this process (StatsD over UDP and TCP, HTTP, a 1 s flush)
//!    on a demo store: `--db`, else `$PERFAGENT_DB`, else `$XDG_DATA_HOME/perfagent/demo.db`
//!    (never the default store of `perfagent start`).
//! 2. Sends it 30 days of an earlier, simulated history of the demo's API calls (StatsD lines
//!    with `|T` timestamps and sample rates), so there is something to project capacity from.
//! 3. Runs a simulated cloud CLI instrumented with the SDK for `--seconds` (the SDK finds the
//!    store held by the daemon and forwards to it): VM listing behind a stale-while-revalidate
//!    cache, batched VM start/stop, an SSM-style command with polling, blob reads through a
//!    connection pool, retries with backoff, about 2 % failures with real-looking error
//!    messages, and CPU work in named functions (profiled). A second app sends DogStatsD.
//! 4. Shows `stats`, writes a flame graph, prints a capacity projection, and the next commands.

mod apps;

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use perfagent::daemon::DaemonConfig;
use perfagent::sdk::Perf;
use perfanalysis::time::rfc3339;

use apps::{client, history_lines, statsd_app};

/// Where the demo writes: `--db`, else `$PERFAGENT_DB`, else `<data dir>/perfagent/demo.db`.
pub fn demo_path(explicit: Option<&Path>) -> anyhow::Result<(PathBuf, bool)> {
    if let Some(p) = explicit {
        return Ok((p.to_owned(), false));
    }
    if let Some(p) = std::env::var_os("PERFAGENT_DB").filter(|v| !v.is_empty()) {
        return Ok((PathBuf::from(p), false));
    }
    let base = perfstore::default_path_from(|k| if k == "PERFAGENT_DB" { None } else { std::env::var_os(k) })?;
    Ok((base.with_file_name("demo.db"), true))
}

fn progress(done: f64, total: f64, calls: u64, tty: bool) {
    if tty {
        let width = 30;
        let filled = ((done / total).min(1.0) * width as f64) as usize;
        eprint!(
            "\r  [{}{}] {:>3.0}s / {total:.0}s  {calls} calls ",
            "#".repeat(filled),
            " ".repeat(width - filled),
            done
        );
        let _ = std::io::stderr().flush();
    } else {
        eprintln!("  {done:.0}s / {total:.0}s: {calls} calls");
    }
}

/// What is at the demo's path before it starts.
enum Found {
    /// Nothing, an empty file, or a store without series: the demo may write there.
    Nothing,
    /// An earlier demo's store (made at this time, Unix ms).
    Demo(i64),
    /// A store with data of its own (or, at the default demo path, an unmarked demo store from
    /// an earlier version).
    Store(String),
    /// Not a store: never written to.
    Other(String),
}

fn found(db: &Path) -> anyhow::Result<Found> {
    match std::fs::metadata(db) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", db.display()))),
        Ok(m) if m.len() == 0 => return Ok(Found::Nothing),
        Ok(_) => {}
    }
    let mut reader = match perfstore::Reader::open(db) {
        Ok(r) => r,
        Err(perfstore::Error::NotFound { .. }) => {
            return Ok(Found::Other("a file that is not a perfagent store".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let snap = reader.snapshot()?;
    if let Some(t) = snap.demo_created_ms()? {
        return Ok(Found::Demo(t));
    }
    if !snap.has_series()? {
        return Ok(Found::Nothing);
    }
    let newest = snap.newest_ms()?.map_or(String::new(), |t| format!(", newest data {}", rfc3339(t)));
    Ok(Found::Store(format!("a perfagent store with data of its own{newest}")))
}

/// Ask on the terminal; anything but y/yes is no.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Make sure the demo may write into `db`: a new store, or an earlier demo's replaced (the
/// default demo store, `--fresh`, or a yes on the terminal). A store holding anything else is
/// refused, never written.
fn prepare(db: &Path, is_default: bool, fresh: bool) -> anyhow::Result<()> {
    if let Some(pid) = perfstore::lock_holder(db)? {
        let by = pid.map_or(String::new(), |p| format!(" (pid {p})"));
        anyhow::bail!(
            "{} is in use by a running agent{by}: stop it first (perfagent stop --db {}) or pass another --db",
            db.display(),
            db.display()
        );
    }
    match found(db)? {
        Found::Nothing => {}
        // The default demo store is the demo's own, whatever version wrote it.
        Found::Store(_) if is_default => perfstore::remove_store(db)?,
        Found::Store(what) | Found::Other(what) => anyhow::bail!(
            "{} is {what}: the demo writes only into a new store or an earlier demo's, so that simulated data never \
             mixes with real data; pass another --db (or leave it out for the demo store)",
            db.display()
        ),
        Found::Demo(made) => {
            let replace = is_default
                || fresh
                || (std::io::stdin().is_terminal()
                    && std::io::stderr().is_terminal()
                    && confirm(&format!(
                        "{} holds the demo from {}; running again into it would double its history. Replace it?",
                        db.display(),
                        rfc3339(made)
                    )));
            if !replace {
                anyhow::bail!(
                    "{} holds the demo from {}; running again into it would double its history: pass --fresh to \
                     replace it, or another --db",
                    db.display(),
                    rfc3339(made)
                );
            }
            perfstore::remove_store(db)?;
        }
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut w = perfstore::Writer::open(db, perfstore::StoreOptions::default())?;
    w.mark_demo(now_ms)?;
    w.close()?;
    Ok(())
}

/// Run the demo; returns the store and when the live run started (Unix ms).
pub fn run(db_flag: Option<&Path>, seconds: f64, fresh: bool) -> anyhow::Result<(PathBuf, i64)> {
    let (db, is_default) = demo_path(db_flag)?;
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    // Like the store's own folder: private (0700).
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    prepare(&db, is_default, fresh)?;
    let log = dir.join("demo.log");
    perfagent::logging::to_file(&log, perfagent::logging::LOG_CAP_BYTES)
        .with_context(|| format!("opening {}", log.display()))?;
    eprintln!("perfctl demo: recording into {} (agent log: {})", db.display(), log.display());

    // 1. The agent, in this process.
    let store = perfstore::StoreOptions { raw_retention_ms: 31 * 86_400_000, ..Default::default() };
    let cfg = DaemonConfig {
        db: db.clone(),
        statsd_udp: "127.0.0.1:0".parse()?,
        statsd_unix: None,
        statsd_tcp: Some("127.0.0.1:0".parse()?),
        http: Some("127.0.0.1:0".parse()?),
        flush_interval: Duration::from_secs(1),
        aggregator: perfagent::statsd::aggregate::AggregatorConfig { service: "demo".into(), ..Default::default() },
        store,
        clock: perfagent::clock::Clock::system(),
        dashboard: perfagent::daemon::DashboardSettings::default(),
        alerts: perfagent::alerts::AlertsConfig::default(),
        probes: perfagent::probes::ProbesConfig::default(),
        remote_write: Vec::new(),
    };
    let shutdown = Arc::new(perfagent::shutdown::Shutdown::new().context("creating the shutdown pipe")?);
    let (ready_tx, ready_rx) = mpsc::channel();
    let sd = shutdown.clone();
    let agent = std::thread::Builder::new().name("demo-agent".into()).spawn(move || {
        perfagent::daemon::run(cfg, &sd, |r| {
            let _ = ready_tx.send((r.listeners.statsd_udp, r.listeners.statsd_tcp));
        })
    })?;
    let Ok((udp, tcp)) = ready_rx.recv_timeout(Duration::from_secs(30)) else {
        let err = agent.join().map_err(|_| anyhow::anyhow!("the agent thread panicked"))?;
        return Err(err.err().unwrap_or_else(|| anyhow::anyhow!("the agent did not start")));
    };

    // 2. History to project from.
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    eprintln!("  sending 30 days of simulated earlier history (hourly, sampled StatsD with |T timestamps) ...");
    let mut conn = std::net::TcpStream::connect(tcp.context("the TCP listener")?)?;
    conn.write_all(history_lines(now_ms).as_bytes())?;
    drop(conn);

    // 3. The instrumented client and a second app.
    let started = SystemTime::now();
    eprintln!("  running a simulated cloud CLI (SDK) and a billing worker (StatsD) for {seconds:.0}s ...");
    let perf = Perf::builder().service("fleet-cli").db(&db).flush_interval(Duration::from_secs(1)).start()?;
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let tty = std::io::stderr().is_terminal();
    std::thread::scope(|s| -> anyhow::Result<()> {
        for seed in 1..=3 {
            let (perf, calls) = (&perf, &calls);
            s.spawn(move || client(perf, seed, until, calls));
        }
        let stop2 = stop.clone();
        let udp = udp.context("the UDP listener")?;
        let app_calls = &calls;
        let billing = s.spawn(move || statsd_app(udp, until, &stop2, app_calls));
        let mut last_line = Instant::now();
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
            if tty || last_line.elapsed() >= Duration::from_secs(5) {
                last_line = Instant::now();
                progress(t0.elapsed().as_secs_f64(), seconds, calls.load(Ordering::Relaxed), tty);
            }
        }
        stop.store(true, Ordering::Relaxed);
        billing.join().map_err(|_| anyhow::anyhow!("the StatsD app panicked"))??;
        Ok(())
    })?;
    if tty {
        progress(seconds, seconds, calls.load(Ordering::Relaxed), tty);
        eprintln!();
    }
    perf.shutdown();
    std::thread::sleep(Duration::from_millis(1500)); // the agent's next flush takes the last sends
    shutdown.trigger();
    agent.join().map_err(|_| anyhow::anyhow!("the agent thread panicked"))??;
    let started_ms = started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    eprintln!("  done: {} calls recorded since {}\n", calls.load(Ordering::Relaxed), rfc3339(started_ms));
    Ok((db, started_ms))
}
