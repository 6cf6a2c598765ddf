//! The SDK's background thread: every few tens of milliseconds it empties the per-thread value
//! rings; every flush interval it turns what was recorded into the convention's StatsD lines
//! and hands them to the embedded aggregator and store writer, or sends them to a daemon.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use super::buffer;
use super::forward::{Socket, upload_profiles};
use super::shared::{Direct, Shared};
use crate::statsd::aggregate::{Aggregator, Flush};
use crate::writer::{Progress, Totals};

/// How often the background thread empties the per-thread rings.
const DRAIN_EVERY: Duration = Duration::from_millis(20);

/// Where flushed lines go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// Into this process's aggregator and store writer.
    Embedded { agg: Box<Aggregator>, tx: mpsc::SyncSender<(Flush, Progress)> },
    /// To a daemon; profiles to its HTTP address, when known, with its token.
    Forward { socket: Socket, http: Option<String>, token: Option<String> },
}

/// Stopping the SDK: the background threads and the flag they watch.
#[derive(Debug, Default)]
pub(crate) struct Control {
    stop: Mutex<bool>,
    wake: Condvar,
    stopped: AtomicBool,
    pub(crate) collector: Mutex<Option<thread::JoinHandle<()>>>,
    pub(crate) writer: Mutex<Option<thread::JoinHandle<perfstore::Result<Totals>>>>,
}

impl Control {
    /// Flush what was recorded and stop; idempotent.
    pub(crate) fn shutdown(&self) {
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
                Ok(Err(e)) => log::error!("perfagent SDK: closing the store: {e}"),
                Err(_) => log::error!("perfagent SDK: the writer thread panicked"),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Wait up to [`DRAIN_EVERY`]; true when asked to stop.
    fn wait(&self) -> bool {
        let guard = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self.wake.wait_timeout(guard, DRAIN_EVERY).unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The CPU profiler, when the `profiler` feature is on.
#[cfg(feature = "profiler")]
pub(crate) type Profiler = super::profiler::Profiler;
/// No profiler without the `profiler` feature.
#[cfg(not(feature = "profiler"))]
#[derive(Debug)]
pub(crate) enum Profiler {}

fn profile_window(
    profiler: &mut Option<Profiler>,
    shared: &Shared,
    now: i64,
    last: bool,
) -> Vec<perfstore::ProfileWindow> {
    #[cfg(feature = "profiler")]
    if let Some(p) = profiler.as_mut() {
        let op_names = shared.registry.lock().map(|r| r.op_names.clone()).unwrap_or_default();
        return p.window(&op_names, now, last);
    }
    let _ = (profiler, shared, now, last);
    Vec::new()
}

/// The background thread's loop, until [`Control::shutdown`].
pub(crate) fn run(
    shared: &Shared,
    control: &Control,
    mut sink: Sink,
    interval_ms: i64,
    mut profiler: Option<Profiler>,
) {
    let mut pending: Vec<buffer::Value> = Vec::new();
    let mut interval_end = (crate::clock::now_ms().div_euclid(interval_ms) + 1) * interval_ms;
    loop {
        let stop = control.wait();
        shared.values.drain(&mut pending);
        let now = crate::clock::now_ms();
        if now < interval_end && !stop {
            continue;
        }
        interval_end = (now.div_euclid(interval_ms) + 1) * interval_ms;
        let mut direct: Direct = Vec::new();
        let embedded = matches!(sink, Sink::Embedded { .. });
        let datagrams = shared.take_lines(&mut pending, embedded.then_some(&mut direct));
        let dropped = shared.values.take_dropped();
        if dropped > 0 {
            log::warn!(
                "perfagent SDK: dropped {dropped} timer values: threads recorded faster than the SDK drains (over a \
                 million values waiting)"
            );
        }
        let profiles = profile_window(&mut profiler, shared, now, stop);
        #[cfg(feature = "prometheus")]
        if let Some(h) = shared.prometheus.lock().ok().and_then(|h| h.clone()) {
            h.run_upkeep();
        }
        if !deliver(&mut sink, shared, datagrams, &direct, dropped, profiles) || stop {
            return;
        }
    }
}

/// Hand one flush to the sink; false when the store writer is gone.
fn deliver(
    sink: &mut Sink,
    shared: &Shared,
    datagrams: Vec<Vec<u8>>,
    direct: &Direct,
    dropped: u64,
    profiles: Vec<perfstore::ProfileWindow>,
) -> bool {
    match sink {
        Sink::Embedded { agg, tx } => {
            for d in &datagrams {
                agg.ingest_datagram(d);
            }
            for (line, vals) in direct {
                if let Ok(crate::statsd::parser::Line::Metric(m)) = crate::statsd::parser::parse_line(line.as_bytes()) {
                    agg.ingest_values(&m, vals);
                }
            }
            agg.count_drops("sdk_overflow", dropped);
            let mut flush = agg.flush();
            flush.profiles = profiles;
            let progress = Progress { stats: agg.stats().clone(), series: agg.series(), kernel_drops: None };
            if tx.send((flush, progress)).is_err() {
                log::error!("perfagent SDK: the store writer stopped; recording ends");
                return false;
            }
            true
        }
        Sink::Forward { socket, http, token } => {
            socket.send_all(&datagrams, &shared.forward);
            upload_profiles(http.as_deref(), token.as_deref(), &profiles, &shared.forward);
            true
        }
    }
}
