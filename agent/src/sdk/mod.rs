//! The instrumentation SDK: how a Rust service gets its numbers and flame graphs.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
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
//! **Embedded** (the default): the aggregator, profiler and store writer run inside the app, on
//! background threads, writing the store at `$PERFAGENT_DB` (or [`Builder::db`]). If a
//! `perfagent` daemon already holds that store, the SDK **forwards** to it instead (DogStatsD
//! over its Unix socket, else UDP; CPU profiles over HTTP); [`Builder::forward`] asks for that
//! mode explicitly. Either way the SDK produces StatsD lines of the metric convention and the
//! same aggregator turns them into the store's points, so the SDK and StatsD clients give
//! identical stats.
//!
//! The SDK is a library in someone else's program: it returns a typed [`SdkError`], speaks
//! only through the `log` facade (the app decides where messages go), and counts what forward
//! mode could not deliver ([`Perf::forward_stats`]). Its cargo features: `profiler` (pprof,
//! per-operation flame graphs), `host-metrics` (sysinfo: the host sampled while embedded),
//! `prometheus` ([`Perf::install_recorder`]); an app that wants none of them depends on
//! `perfagent` with `default-features = false` and compiles neither the daemon nor its CLI.
//!
//! The hot path (see `buffer`) takes no lock and allocates nothing per event: counters are
//! striped atomics, timer values go into per-thread rings drained by a background thread.

pub mod buffer;
mod collector;
mod error;
mod forward;
pub mod markers;
mod op;
#[cfg(feature = "profiler")]
mod profiler;
mod recorder;
mod shared;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::Duration;

use perfstore::convention::{self as conv, PoolResult, tag};
use perfstore::{Error as StoreError, StoreOptions, Writer};

pub use error::SdkError;
pub use forward::ForwardStats;
pub use op::{Cache, Circuit, Instrumented, OpCtx, Operation, Phase, Pool, Scope};
pub use perfstore::convention::{CacheResult, CircuitState};
pub use recorder::{InstallError, SdkRecorder};

use self::buffer::Values;
use self::collector::{Control, Sink};
use self::forward::Socket;
use self::shared::{Registry, Shared};
use crate::listeners::{ForwardTo, Listeners};
use crate::statsd::aggregate::{Aggregator, AggregatorConfig};
use crate::status::StatusFile;
use crate::writer::WriterConfig;

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
    /// while on (pprof's unwinder) and under 2 % CPU at 99 Hz. Needs the `profiler` feature
    /// (on by default); without it this is ignored.
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
    pub fn start(self) -> Result<Perf, SdkError> {
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
        /// Where.
        to: ForwardTo,
        /// Why (asked for, or the store was held by the daemon).
        reason: String,
    },
}

/// The running SDK. Cheap to clone; the last clone dropped (or [`Perf::shutdown`]) flushes
/// and stops it.
#[derive(Debug, Clone)]
pub struct Perf {
    shared: Arc<Shared>,
    control: Arc<Control>,
    mode: Mode,
}

/// Where recording goes, decided at start.
struct Route {
    sink: Sink,
    mode: Mode,
}

/// Record into the store this process now holds: the aggregator and writer thread here.
fn embedded(b: &Builder, db: PathBuf, writer: Writer, control: &Control, interval_ms: i64) -> Result<Route, SdkError> {
    let clock = crate::clock::Clock::system();
    let status = StatusFile {
        pid: std::process::id(),
        started_ms: clock.now_ms(),
        db: db.display().to_string(),
        listeners: Listeners::default(),
        flush_interval_ms: interval_ms,
        ..StatusFile::default()
    };
    let cfg = WriterConfig {
        db: db.clone(),
        status,
        exposition: None,
        health: None,
        summaries: false,
        trim_memory: false,
        yield_to_receiving: false,
        clock: clock.clone(),
        state: None,
    };
    let w = crate::writer::spawn(writer, cfg).map_err(SdkError::io("starting the SDK's store writer"))?;
    *control.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(w.thread);
    let agg_cfg = AggregatorConfig { service: b.service.clone(), ..AggregatorConfig::default() };
    let start = clock.now_ms().div_euclid(interval_ms) * interval_ms;
    let agg = Box::new(Aggregator::new(agg_cfg, start, interval_ms));
    Ok(Route { sink: Sink::Embedded { agg, tx: w.tx }, mode: Mode::Embedded { db } })
}

/// The store is held by another process: forward to it, found through its status file (a
/// daemon that is just starting writes it a moment after taking the lock).
fn forward_to_holder(db: &Path, pid: Option<u32>) -> Result<Route, SdkError> {
    let st = crate::status::read(db, pid, 40, Duration::from_millis(50));
    let to = st.as_ref().and_then(|s| s.listeners.forward_to());
    let Some(to) = to else { return Err(SdkError::HeldWithoutStatsd { path: db.to_owned(), pid }) };
    let reason =
        format!("{} is held by perfagent{}", db.display(), pid.map_or(String::new(), |p| format!(" (pid {p})")));
    log::info!("perfagent SDK: {reason}; forwarding to it over {to}");
    let http = st.and_then(|s| s.listeners.http).map(|a| a.to_string());
    let token = crate::token::read(db);
    Ok(Route { sink: Sink::Forward { socket: Socket::connect(&to)?, http, token }, mode: Mode::Forward { to, reason } })
}

impl Perf {
    /// Configure the SDK.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn route(b: &Builder, control: &Control, interval_ms: i64) -> Result<Route, SdkError> {
        if let Some(to) = &b.forward {
            let to = ForwardTo::parse(to).map_err(SdkError::ForwardAddress)?;
            let sink = Sink::Forward { socket: Socket::connect(&to)?, http: b.forward_http.clone(), token: None };
            return Ok(Route { sink, mode: Mode::Forward { to, reason: "asked for".into() } });
        }
        let db = match &b.db {
            Some(p) => p.clone(),
            None => perfstore::default_path().map_err(SdkError::NoStorePath)?,
        };
        match Writer::open(&db, b.store.clone()) {
            Ok(writer) => embedded(b, db, writer, control, interval_ms),
            Err(StoreError::Locked { pid, .. }) => forward_to_holder(&db, pid),
            Err(source) => Err(SdkError::Store { path: db, source }),
        }
    }

    fn start(b: Builder) -> Result<Perf, SdkError> {
        let shared = Arc::new(Shared {
            service: b.service.clone(),
            clock: b.clock.clone().unwrap_or_default(),
            values: Values::new(),
            registry: Mutex::new(Registry::default()),
            errors: Mutex::new(Vec::new()),
            ops: RwLock::new(HashMap::new()),
            forward: forward::Counters::default(),
            #[cfg(feature = "prometheus")]
            prometheus: Mutex::new(None),
        });
        let control = Arc::new(Control::default());
        let interval_ms = i64::try_from(b.flush_interval.as_millis()).unwrap_or(i64::MAX).max(1);
        let Route { sink, mode } = Self::route(&b, &control, interval_ms)?;
        #[cfg(feature = "profiler")]
        let profiler = (b.profiler_hz > 0).then(|| profiler::Profiler::new(b.profiler_hz as i32, b.service.clone()));
        #[cfg(not(feature = "profiler"))]
        let profiler: Option<collector::Profiler> = None;
        let (s2, c2) = (shared.clone(), control.clone());
        let collector = thread::Builder::new()
            .name("perfagent-sdk".into())
            .spawn(move || collector::run(&s2, &c2, sink, interval_ms, profiler))
            .map_err(SdkError::io("starting the SDK thread"))?;
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
        let durations = op::register_durations(s, name);
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
                batch_size: s.dist(conv::OP_BATCH_SIZE.name, s.tags(&[(tag::OP, name)]), "h"),
                retries: s.counter(conv::OP_RETRIES.name, s.tags(&[(tag::OP, name)])),
                inflight: s.level(conv::OP_INFLIGHT.name, s.tags(&[(tag::OP, name)])),
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
        let result = |r: PoolResult| s.tags(&[(tag::POOL, name), (tag::RESULT, r.as_str())]);
        Pool {
            hits: s.counter(conv::POOL_ACQUIRE.name, result(PoolResult::Hit)),
            misses: s.counter(conv::POOL_ACQUIRE.name, result(PoolResult::Miss)),
            size: s.gauge(conv::POOL_SIZE.name, s.tags(&[(tag::POOL, name)])),
            evictions: s.counter(conv::POOL_EVICTIONS.name, s.tags(&[(tag::POOL, name)])),
        }
    }

    /// A circuit breaker's handles: `circuit.state` (0 closed, 1 half-open, 2 open) and
    /// `circuit.transitions{to}`.
    pub fn circuit(&self, name: &str) -> Circuit {
        let s = &self.shared;
        Circuit {
            state: s.gauge(conv::CIRCUIT_STATE.name, s.tags(&[(tag::CIRCUIT, name)])),
            transitions: [CircuitState::Closed, CircuitState::HalfOpen, CircuitState::Open].map(|to| {
                s.counter(conv::CIRCUIT_TRANSITIONS.name, s.tags(&[(tag::CIRCUIT, name), (tag::TO, to.as_str())]))
            }),
            current: Arc::new(std::sync::atomic::AtomicU8::new(0)),
        }
    }

    /// A cache's handles.
    pub fn cache(&self, name: &str) -> Cache {
        let s = &self.shared;
        Cache {
            results: [CacheResult::Hit, CacheResult::Miss, CacheResult::Stale].map(|r| {
                s.counter(conv::CACHE_REQUESTS.name, s.tags(&[(tag::CACHE, name), (tag::RESULT, r.as_str())]))
            }),
            refreshes: s.counter(conv::CACHE_REFRESH.name, s.tags(&[(tag::CACHE, name)])),
            size: s.gauge(conv::CACHE_SIZE.name, s.tags(&[(tag::CACHE, name)])),
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
    #[cfg(feature = "prometheus")]
    pub fn install_recorder(&self) -> Result<metrics_exporter_prometheus::PrometheusHandle, InstallError> {
        let prom = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = prom.handle();
        let fanout =
            metrics_util::layers::FanoutBuilder::default().add_recorder(self.recorder()).add_recorder(prom).build();
        metrics::set_global_recorder(fanout).map_err(|_| InstallError::AlreadyInstalled)?;
        *self.shared.prometheus.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle.clone());
        Ok(handle)
    }

    /// What forward mode sent and failed to send so far (all zero when embedded).
    pub fn forward_stats(&self) -> ForwardStats {
        self.shared.forward.stats()
    }

    /// Flush what was recorded and stop: the final flush is in the store (embedded) or sent
    /// (forward) when this returns. Dropping the last clone does the same.
    pub fn shutdown(&self) {
        self.control.shutdown();
    }
}
