//! The instrumentation SDK: how a Rust service gets its numbers and flame graphs.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use perfagent::sdk::{CacheResult, Perf};
//!
//! let perf = Perf::builder().service("fleet-cli").start()?;
//! let list = perf.operation("vm.list"); // keep handles: scopes on them take no lock
//! let vms = list.try_run(|op| {
//!     op.cache(CacheResult::Miss);
//!     Ok::<_, std::io::Error>(vec!["vm-1"]) // call the API here
//! })?;
//! # let _ = vms;
//! perf.shutdown(); // final flush (also on drop)
//! # Ok(()) }
//! ```
//!
//! **Embedded** (the default): the aggregator, host sampler, profiler and store writer run
//! inside the app, on background threads, writing the store at `$PERFAGENT_DB` (or
//! [`Builder::db`]). If a `perfagent` daemon already holds that store, the SDK **forwards** to
//! it instead (DogStatsD over its Unix socket, else UDP) and says so on standard error;
//! [`Builder::forward`] asks for that mode explicitly. Either way the SDK produces StatsD
//! lines of the metric convention and the same aggregator turns them into the store's
//! points, so the SDK and StatsD clients give identical stats.
//!
//! The hot path (see `buffer`) takes no lock and allocates nothing per event: counters are
//! striped atomics, timer values go into per-thread rings drained by a background thread.

pub mod buffer;
pub mod markers;
mod op;
mod profiler;
mod recorder;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, mpsc};
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use perfstore::{Error as StoreError, StoreOptions, Writer};

pub use op::{Cache, CacheResult, Circuit, CircuitState, Instrumented, OpCtx, Operation, Phase, Pool, Scope};
pub use recorder::{InstallError, SdkRecorder};

use self::buffer::{Gauge, Striped, Values};
use crate::daemon::{Progress, StatusFile, WriterThread, now_ms, spawn_writer};
use crate::exposition::Exposition;
use crate::statsd::aggregate::{Aggregator, AggregatorConfig, Flush};

/// How often the background thread empties the per-thread rings.
const DRAIN_EVERY: Duration = Duration::from_millis(20);
/// Largest datagram the SDK sends when forwarding (the daemon reads 9 KiB).
const DATAGRAM: usize = 8_192;

/// Configures and starts the SDK. See [`Perf::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    service: String,
    db: Option<PathBuf>,
    flush_interval: Duration,
    profiler_hz: u32,
    forward: Option<String>,
    clock: Option<quanta::Clock>,
    store: StoreOptions,
    forward_http: Option<String>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            service: std::env::var("PERFAGENT_SERVICE").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "app".into())
            }),
            db: None,
            flush_interval: Duration::from_secs(10),
            profiler_hz: 99,
            forward: None,
            clock: None,
            store: StoreOptions::default(),
            forward_http: None,
        }
    }
}

impl Builder {
    /// The `service` tag of everything recorded [default: `$PERFAGENT_SERVICE`, else the
    /// executable's name].
    pub fn service(mut self, name: &str) -> Self {
        self.service = name.to_owned();
        self
    }

    /// Store path [default: `$PERFAGENT_DB`, else `$XDG_DATA_HOME/perfagent/perf.db`].
    pub fn db(mut self, path: impl AsRef<Path>) -> Self {
        self.db = Some(path.as_ref().to_owned());
        self
    }

    /// Aggregation interval [default: 10 s].
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d.max(Duration::from_millis(100));
        self
    }

    /// CPU profiler rate in Hz, 0 for off [default: 99]. Profiling costs about 76 MiB of RSS
    /// while on (pprof's unwinder) and under 2 % CPU at 99 Hz.
    pub fn profiler_hz(mut self, hz: u32) -> Self {
        self.profiler_hz = hz;
        self
    }

    /// Forward to a running daemon instead of writing the store: `udp://127.0.0.1:8125` or
    /// `unix:///path/to/socket`.
    pub fn forward(mut self, to: &str) -> Self {
        self.forward = Some(to.to_owned());
        self
    }

    /// With [`Builder::forward`]: the daemon's HTTP address (`127.0.0.1:9465`), to send CPU
    /// profiles to (found by itself when the SDK falls back to a daemon holding the store).
    pub fn forward_http(mut self, addr: &str) -> Self {
        self.forward_http = Some(addr.to_owned());
        self
    }

    /// A clock for deterministic tests (`quanta::Clock::mock()`).
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Store options (retention, limits) for embedded mode.
    pub fn store_options(mut self, opts: StoreOptions) -> Self {
        self.store = opts;
        self
    }

    /// Start recording.
    pub fn start(self) -> anyhow::Result<Perf> {
        Perf::start(self)
    }
}

/// Where the SDK's data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Written to this store by the app itself.
    Embedded {
        /// The store.
        db: PathBuf,
    },
    /// Sent to a running daemon.
    Forward {
        /// `udp://…` or `unix:…`.
        to: String,
        /// Why (asked for, or the store was held by the daemon).
        reason: String,
    },
}

/// Values handed to the aggregator without text: (a one-value line naming the series, values).
type Direct = Vec<(String, Vec<f64>)>;

/// Last-error events waiting for the next flush: (op, message, Unix seconds).
type Errors = Vec<(String, String, i64)>;

/// What every handle shares with the background thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) service: String,
    pub(crate) clock: quanta::Clock,
    pub(crate) values: Values,
    registry: Mutex<Registry>,
    errors: Mutex<Errors>,
    ops: RwLock<HashMap<String, Operation>>,
    prometheus: Mutex<Option<metrics_exporter_prometheus::PrometheusHandle>>,
}

#[derive(Debug, Default)]
struct Registry {
    counters: Vec<(String, String, Arc<Striped>)>,
    gauges: Vec<(String, String, Arc<Gauge>)>,
    /// (name, tags, StatsD type).
    dists: Vec<(String, String, &'static str)>,
    /// Levels sent as gauges when they change: (name, tags, level, last sent).
    levels: Vec<(String, String, Arc<Striped>, i64)>,
    index: HashMap<(u8, String, String), usize>,
    /// Operation names by marker id.
    op_names: Vec<String>,
}

/// The handle registered for (`kind`, name, tags) in `list`, created on first use.
fn intern<T: Default>(
    index: &mut HashMap<(u8, String, String), usize>,
    list: &mut Vec<(String, String, Arc<T>)>,
    kind: u8,
    name: &str,
    tags: String,
) -> Arc<T> {
    let key = (kind, clean(name), tags);
    if let Some(&i) = index.get(&key) {
        return list[i].2.clone();
    }
    let h = Arc::new(T::default());
    list.push((key.1.clone(), key.2.clone(), h.clone()));
    index.insert(key, list.len() - 1);
    h
}

/// Names and tag values safe inside a StatsD line.
fn clean(s: &str) -> String {
    s.chars().map(|c| if matches!(c, ':' | '|' | '@' | '#' | ',' | '\n' | '\r' | ' ') { '_' } else { c }).collect()
}

impl Shared {
    /// DogStatsD tags for `pairs` (sorted) plus this service.
    pub(crate) fn tags(&self, pairs: &[(&str, &str)]) -> String {
        let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| (clean(k), clean(v))).collect();
        v.retain(|(k, _)| k != "service");
        v.push(("service".into(), clean(&self.service)));
        v.sort();
        v.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",")
    }

    pub(crate) fn counter(&self, name: &str, tags: String) -> Arc<Striped> {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let r = &mut *r;
        intern(&mut r.index, &mut r.counters, 0, name, tags)
    }

    pub(crate) fn gauge(&self, name: &str, tags: String) -> Arc<Gauge> {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let r = &mut *r;
        intern(&mut r.index, &mut r.gauges, 1, name, tags)
    }

    pub(crate) fn level(&self, name: &str, tags: String) -> Arc<Striped> {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let l = Arc::new(Striped::default());
        r.levels.push((clean(name), tags, l.clone(), 0));
        l
    }

    /// A distribution series id; `ty` is `ms` (milliseconds) or `h`.
    pub(crate) fn dist(&self, name: &str, tags: String, ty: &'static str) -> u32 {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let key = (2u8, clean(name), tags);
        if let Some(&i) = r.index.get(&key) {
            return i as u32;
        }
        r.dists.push((key.1.clone(), key.2.clone(), ty));
        let i = r.dists.len() - 1;
        r.index.insert(key, i);
        i as u32
    }

    pub(crate) fn error(&self, op: &str, message: &str) {
        let mut e = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        // Only the latest per operation matters; keep the queue small under error storms.
        e.retain(|(o, _, _)| o != op);
        let text: String = message.chars().take(perfstore::EVENT_MESSAGE_MAX_CHARS).collect();
        e.push((op.to_owned(), text, now_ms() / 1000));
    }

    /// Everything recorded since the last call, as StatsD lines in datagrams of at most
    /// [`DATAGRAM`] bytes; with `direct`, timer and histogram values go there instead, as
    /// (a line naming their series, the values).
    fn take_lines(&self, values: &mut Vec<buffer::Value>, mut direct: Option<&mut Direct>) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut cur = String::new();
        let mut emit = |line: &str, out: &mut Vec<Vec<u8>>| {
            if !cur.is_empty() && cur.len() + line.len() + 1 > DATAGRAM {
                out.push(std::mem::take(&mut cur).into_bytes());
            }
            cur.push_str(line);
            cur.push('\n');
        };
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        for (name, tags, l, last) in &mut r.levels {
            let v = l.level();
            if v != *last {
                *last = v;
                emit(&format!("{name}:{v}|g|#{tags}"), &mut out);
            }
        }
        for (name, tags, c) in &r.counters {
            let n = c.take();
            if n > 0 {
                emit(&format!("{name}:{n}|c|#{tags}"), &mut out);
            }
        }
        for (name, tags, g) in &r.gauges {
            if let Some(v) = g.take() {
                emit(&format!("{name}:{v}|g|#{tags}"), &mut out);
            }
        }
        // Values by series: handed over as they are when embedded (no formatting and
        // re-parsing), else several per line (`name:1:2:3|ms`) under the datagram size.
        values.sort_by_key(|v| v.0);
        let mut i = 0;
        while i < values.len() {
            let id = values[i].0;
            let end = i + values[i..].iter().take_while(|v| v.0 == id).count();
            let Some((name, tags, ty)) = r.dists.get(id as usize) else {
                i = end;
                continue;
            };
            let suffix = format!("|{ty}|#{tags}");
            if let Some(direct) = direct.as_mut() {
                direct.push((format!("{name}:0{suffix}"), values[i..end].iter().map(|v| v.1).collect()));
                i = end;
                continue;
            }
            while i < end {
                let mut line = name.clone();
                while i < end {
                    let mut v = String::new();
                    let _ = write!(v, ":{}", values[i].1);
                    if line.len() + v.len() + suffix.len() > DATAGRAM - 1 && line.len() > name.len() {
                        break;
                    }
                    line.push_str(&v);
                    i += 1;
                }
                line.push_str(&suffix);
                emit(&line, &mut out);
            }
        }
        values.clear();
        drop(r);
        let errors = std::mem::take(&mut *self.errors.lock().unwrap_or_else(|e| e.into_inner()));
        for (op, text, ts) in errors {
            let title = format!("{op} failed");
            let text = text.replace('\n', "\\n");
            let tags = self.tags(&[("op", &op)]);
            emit(&format!("_e{{{},{}}}:{title}|{text}|d:{ts}|t:error|#{tags}", title.len(), text.len()), &mut out);
        }
        if !cur.is_empty() {
            out.push(cur.into_bytes());
        }
        out
    }
}

/// Where flushed lines go.
enum Sink {
    Embedded { agg: Box<Aggregator>, tx: mpsc::SyncSender<(Flush, Progress)> },
    Udp(UdpSocket, String),
    Unix(UnixDatagram, PathBuf),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Embedded { .. } => write!(f, "Embedded"),
            Sink::Udp(_, a) => write!(f, "Udp({a})"),
            Sink::Unix(_, p) => write!(f, "Unix({})", p.display()),
        }
    }
}

/// The writer thread's result: (points written, failed writes).
type WriterJoin = thread::JoinHandle<anyhow::Result<(usize, usize)>>;

#[derive(Debug, Default)]
struct Control {
    stop: Mutex<bool>,
    wake: Condvar,
    stopped: AtomicBool,
    collector: Mutex<Option<thread::JoinHandle<()>>>,
    writer: Mutex<Option<WriterJoin>>,
}

impl Control {
    fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
        if let Some(t) = self.collector.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        if let Some(t) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            match t.join() {
                Ok(Err(e)) => crate::log!("SDK: closing the store: {e:#}"),
                Err(_) => crate::log!("SDK: the writer thread panicked"),
                Ok(Ok(_)) => {}
            }
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The running SDK. Cheap to clone; the last clone dropped (or [`Perf::shutdown`]) flushes
/// and stops it.
#[derive(Debug, Clone)]
pub struct Perf {
    shared: Arc<Shared>,
    control: Arc<Control>,
    mode: Mode,
}

fn parse_forward(to: &str) -> anyhow::Result<Sink> {
    if let Some(path) = to.strip_prefix("unix://").or_else(|| to.strip_prefix("unix:")) {
        let s = UnixDatagram::unbound().context("creating a Unix datagram socket")?;
        s.connect(path).with_context(|| format!("connecting to the agent's socket {path}"))?;
        return Ok(Sink::Unix(s, PathBuf::from(path)));
    }
    let addr = to.strip_prefix("udp://").unwrap_or(to);
    let s = UdpSocket::bind("127.0.0.1:0").or_else(|_| UdpSocket::bind("[::1]:0")).context("binding a UDP socket")?;
    s.connect(addr)
        .with_context(|| format!("invalid forward address '{to}': expected udp://HOST:PORT or unix:PATH"))?;
    Ok(Sink::Udp(s, addr.to_owned()))
}

impl Perf {
    /// Configure the SDK.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn start(b: Builder) -> anyhow::Result<Perf> {
        let shared = Arc::new(Shared {
            service: b.service.clone(),
            clock: b.clock.clone().unwrap_or_default(),
            values: Values::new(),
            registry: Mutex::new(Registry::default()),
            errors: Mutex::new(Vec::new()),
            ops: RwLock::new(HashMap::new()),
            prometheus: Mutex::new(None),
        });
        let control = Arc::new(Control::default());
        let interval_ms = i64::try_from(b.flush_interval.as_millis()).unwrap_or(i64::MAX).max(1);
        let (sink, mode, upload_to) = match &b.forward {
            Some(to) => (
                parse_forward(to)?,
                Mode::Forward { to: to.clone(), reason: "asked for".into() },
                b.forward_http.clone(),
            ),
            None => {
                let db = match &b.db {
                    Some(p) => p.clone(),
                    None => perfstore::default_path()?,
                };
                match Writer::open(&db, b.store.clone()) {
                    Ok(writer) => {
                        let status = StatusFile {
                            pid: std::process::id(),
                            started_ms: now_ms(),
                            db: db.display().to_string(),
                            statsd_udp: "none (embedded SDK)".into(),
                            flush_interval_ms: interval_ms,
                            ..StatusFile::default()
                        };
                        let expo = Arc::new(Mutex::new(Exposition::default()));
                        let WriterThread { tx, thread } = spawn_writer(writer, status, &db, expo, false)?;
                        *control.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
                        let cfg = AggregatorConfig { service: b.service.clone(), ..AggregatorConfig::default() };
                        let start = now_ms().div_euclid(interval_ms) * interval_ms;
                        let agg = Box::new(Aggregator::new(cfg, start, interval_ms));
                        (Sink::Embedded { agg, tx }, Mode::Embedded { db }, None)
                    }
                    Err(StoreError::Locked { pid, .. }) => {
                        // A daemon that is just starting writes its status file a moment
                        // after taking the lock.
                        let mut st: Option<StatusFile> = None;
                        for _ in 0..40 {
                            st = std::fs::read_to_string(crate::daemon::status_path(&db))
                                .ok()
                                .and_then(|t| serde_json::from_str(&t).ok())
                                .filter(|s: &StatusFile| pid.is_none_or(|p| s.pid == p));
                            if st.is_some() {
                                break;
                            }
                            thread::sleep(Duration::from_millis(50));
                        }
                        let to = match &st {
                            Some(s) if s.statsd_unix.is_some() => {
                                format!("unix:{}", s.statsd_unix.clone().unwrap_or_default())
                            }
                            Some(s) if s.statsd_udp.contains(':') => format!("udp://{}", s.statsd_udp),
                            _ => anyhow::bail!(
                                "{} is held by another process{} that takes no StatsD: cannot record into it",
                                db.display(),
                                pid.map_or(String::new(), |p| format!(" (pid {p})"))
                            ),
                        };
                        let reason = format!(
                            "{} is held by perfagent{}",
                            db.display(),
                            pid.map_or(String::new(), |p| format!(" (pid {p})"))
                        );
                        crate::log!("SDK: {reason}; forwarding to it over {to}");
                        let http = st.as_ref().and_then(|s| s.http.clone());
                        (parse_forward(&to)?, Mode::Forward { to, reason }, http)
                    }
                    Err(e) => return Err(e).with_context(|| format!("opening store {}", db.display())),
                }
            }
        };
        let profiler = (b.profiler_hz > 0).then(|| profiler::Profiler::new(b.profiler_hz as i32, b.service.clone()));
        let (s2, c2) = (shared.clone(), control.clone());
        let collector = thread::Builder::new()
            .name("perfagent-sdk".into())
            .spawn(move || collect_loop(&s2, &c2, sink, interval_ms, profiler, upload_to))
            .context("starting the SDK thread")?;
        *control.collector.lock().unwrap_or_else(|e| e.into_inner()) = Some(collector);
        Ok(Perf { shared, control, mode })
    }

    /// Where the data goes.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The operation's handles (registered on first use). Keep the handle for the hot path.
    pub fn operation(&self, name: &str) -> Operation {
        if let Some(op) = self.shared.ops.read().unwrap_or_else(|e| e.into_inner()).get(name) {
            return op.clone();
        }
        let mut ops = self.shared.ops.write().unwrap_or_else(|e| e.into_inner());
        if let Some(op) = ops.get(name) {
            return op.clone();
        }
        let s = &self.shared;
        let mut durations = [0u32; 72];
        for (outcome_i, outcome) in ["ok", "error"].iter().enumerate() {
            for (cache_i, cache) in [None, Some("hit"), Some("miss"), Some("stale")].iter().enumerate() {
                for (batched_i, batched) in [None, Some("false"), Some("true")].iter().enumerate() {
                    for (pool_i, pool) in [None, Some("hit"), Some("miss")].iter().enumerate() {
                        let mut tags = vec![("op", name), ("outcome", *outcome)];
                        if let Some(c) = cache {
                            tags.push(("cache", c));
                        }
                        if let Some(b) = batched {
                            tags.push(("batched", b));
                        }
                        if let Some(p) = pool {
                            tags.push(("pool", p));
                        }
                        durations[op::duration_index(outcome_i, cache_i, batched_i, pool_i)] =
                            s.dist("op.duration", s.tags(&tags), "ms");
                    }
                }
            }
        }
        let id = {
            let mut r = s.registry.lock().unwrap_or_else(|e| e.into_inner());
            r.op_names.push(name.to_owned());
            (r.op_names.len() - 1) as u32
        };
        let op = Operation {
            inner: Arc::new(op::OpInner {
                name: name.to_owned(),
                id,
                durations,
                batch_size: s.dist("op.batch.size", s.tags(&[("op", name)]), "h"),
                retries: s.counter("op.retries", s.tags(&[("op", name)])),
                inflight: s.level("op.inflight", s.tags(&[("op", name)])),
                shared: s.clone(),
            }),
        };
        ops.insert(name.to_owned(), op.clone());
        op
    }

    /// Shorthand for `operation(name)` when a handle is not kept (one map lookup per call).
    pub fn op(&self, name: &str) -> Operation {
        self.operation(name)
    }

    /// A connection pool's handles.
    pub fn pool(&self, name: &str) -> Pool {
        let s = &self.shared;
        Pool {
            hits: s.counter("pool.acquire", s.tags(&[("pool", name), ("result", "hit")])),
            misses: s.counter("pool.acquire", s.tags(&[("pool", name), ("result", "miss")])),
            size: s.gauge("pool.size", s.tags(&[("pool", name)])),
            evictions: s.counter("pool.evictions", s.tags(&[("pool", name)])),
        }
    }

    /// A circuit breaker's handles: `circuit.state` (0 closed, 1 half-open, 2 open) and
    /// `circuit.transitions{to}`.
    pub fn circuit(&self, name: &str) -> Circuit {
        let s = &self.shared;
        Circuit {
            state: s.gauge("circuit.state", s.tags(&[("circuit", name)])),
            transitions: ["closed", "half_open", "open"]
                .map(|to| s.counter("circuit.transitions", s.tags(&[("circuit", name), ("to", to)]))),
            current: Arc::new(std::sync::atomic::AtomicU8::new(0)),
        }
    }

    /// A cache's handles.
    pub fn cache(&self, name: &str) -> Cache {
        let s = &self.shared;
        Cache {
            results: ["hit", "miss", "stale"]
                .map(|r| s.counter("cache.requests", s.tags(&[("cache", name), ("result", r)]))),
            refreshes: s.counter("cache.refresh", s.tags(&[("cache", name)])),
            size: s.gauge("cache.size", s.tags(&[("cache", name)])),
        }
    }

    /// The SDK's `metrics` recorder, for an app that installs its own and wants to combine
    /// them (e.g. with `metrics_util::layers::FanoutBuilder`).
    pub fn recorder(&self) -> SdkRecorder {
        SdkRecorder::new(self.shared.clone())
    }

    /// Install one global `metrics` recorder: the SDK's and a Prometheus recorder combined,
    /// so every crate using the `metrics` macros is recorded into the store and can be
    /// rendered in Prometheus format with the returned handle (kept up to date on each
    /// flush). Fails with [`InstallError::AlreadyInstalled`] when the app already installed
    /// one: combine [`Perf::recorder`] with yours instead.
    pub fn install_recorder(&self) -> Result<metrics_exporter_prometheus::PrometheusHandle, InstallError> {
        let prom = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = prom.handle();
        let fanout =
            metrics_util::layers::FanoutBuilder::default().add_recorder(self.recorder()).add_recorder(prom).build();
        metrics::set_global_recorder(fanout).map_err(|_| InstallError::AlreadyInstalled)?;
        *self.shared.prometheus.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle.clone());
        Ok(handle)
    }

    /// Flush what was recorded and stop: the final flush is in the store (embedded) or sent
    /// (forward) when this returns. Dropping the last clone does the same.
    pub fn shutdown(&self) {
        self.control.shutdown();
    }
}

/// Forward mode: send each operation's folded stacks to the daemon's `POST /profile`.
fn upload_profiles(http: Option<&str>, profiles: &[perfstore::ProfileWindow]) {
    use std::io::{Read as _, Write as _};
    let Some(addr) = http else { return };
    for p in profiles {
        let body: String = p.stacks.iter().map(|s| format!("{} {}\n", s.frames, s.samples)).collect();
        let enc = |v: &str| -> String {
            v.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        let target =
            format!("/profile?op={}&service={}&at={}", enc(&p.op), enc(&p.service), p.start_ms as f64 / 1000.0);
        let sent = std::net::TcpStream::connect(addr).and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(c, "POST {target} HTTP/1.1\r\nHost: perfagent\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
            let mut reply = String::new();
            c.read_to_string(&mut reply)?;
            Ok(reply)
        });
        match sent {
            Ok(r) if r.starts_with("HTTP/1.1 202") => {}
            Ok(r) => crate::log!("SDK: the agent refused the profile of {}: {}", p.op, r.lines().last().unwrap_or("")),
            Err(e) => crate::log!("SDK: sending the profile of {} to http://{addr}: {e}", p.op),
        }
    }
}

fn collect_loop(
    shared: &Shared,
    control: &Control,
    mut sink: Sink,
    interval_ms: i64,
    mut profiler: Option<profiler::Profiler>,
    upload_to: Option<String>,
) {
    let mut pending: Vec<buffer::Value> = Vec::new();
    let mut interval_end = (now_ms().div_euclid(interval_ms) + 1) * interval_ms;
    loop {
        let stop = {
            let guard = control.stop.lock().unwrap_or_else(|e| e.into_inner());
            let (guard, _) = control.wake.wait_timeout(guard, DRAIN_EVERY).unwrap_or_else(|e| e.into_inner());
            *guard
        };
        shared.values.drain(&mut pending);
        let now = now_ms();
        if now < interval_end && !stop {
            continue;
        }
        interval_end = (now.div_euclid(interval_ms) + 1) * interval_ms;
        let mut direct: Direct = Vec::new();
        let embedded = matches!(sink, Sink::Embedded { .. });
        let datagrams = shared.take_lines(&mut pending, embedded.then_some(&mut direct));
        let dropped = shared.values.take_dropped();
        if dropped > 0 {
            crate::log!(
                "SDK: dropped {dropped} timer values: threads recorded faster than the SDK drains (over a million \
                 values waiting)"
            );
        }
        let op_names = shared.registry.lock().map(|r| r.op_names.clone()).unwrap_or_default();
        let profiles = profiler.as_mut().map(|p| p.window(&op_names, now, stop)).unwrap_or_default();
        if let Some(h) = shared.prometheus.lock().ok().and_then(|h| h.clone()) {
            h.run_upkeep();
        }
        match &mut sink {
            Sink::Embedded { agg, tx } => {
                for d in &datagrams {
                    agg.ingest_datagram(d);
                }
                for (line, vals) in &direct {
                    if let Ok(crate::statsd::parser::Line::Metric(m)) =
                        crate::statsd::parser::parse_line(line.as_bytes())
                    {
                        agg.ingest_values(&m, vals);
                    }
                }
                agg.count_drops("sdk_overflow", dropped);
                let mut flush = agg.flush();
                flush.profiles = profiles;
                let progress = Progress { stats: agg.stats().clone(), series: agg.series(), kernel_drops: None };
                if tx.send((flush, progress)).is_err() {
                    crate::log!("SDK: the store writer stopped; recording ends");
                    return;
                }
            }
            Sink::Udp(s, _) => {
                for d in &datagrams {
                    let _ = s.send(d);
                }
                upload_profiles(upload_to.as_deref(), &profiles);
            }
            Sink::Unix(s, _) => {
                for d in &datagrams {
                    // The daemon's socket is full: wait a little rather than lose the flush.
                    let mut tries = 0;
                    while let Err(e) = s.send(d) {
                        tries += 1;
                        if e.kind() != std::io::ErrorKind::WouldBlock || tries > 50 {
                            break;
                        }
                        thread::sleep(Duration::from_millis(2));
                    }
                }
                upload_profiles(upload_to.as_deref(), &profiles);
            }
        }
        if stop {
            if let Sink::Embedded { tx, .. } = sink {
                drop(tx);
            }
            return;
        }
    }
}
