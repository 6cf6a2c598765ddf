//! The SDK as a `metrics` recorder: any crate using the `metrics` macros is recorded into the
//! store. Counters become StatsD counters, gauges gauges, histograms `|h` distributions;
//! labels become tags (sorted when the series is registered) plus the SDK's `service`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};

use super::Shared;
use super::buffer::{Gauge as AtomicGauge, Striped};

/// Installing the global recorder failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The app (or a library) already installed a global `metrics` recorder; only one can
    /// exist. Combine [`super::Perf::recorder`] with yours (for example with
    /// `metrics_util::layers::FanoutBuilder`) and install that instead.
    #[error(
        "a global metrics recorder is already installed; combine Perf::recorder() with it \
         (metrics_util::layers::FanoutBuilder) and install the combination instead"
    )]
    AlreadyInstalled,
}

/// Handles already registered, by key (the macros register on every call unless the app
/// keeps the handle; a cached handle makes that a map lookup, not a registration).
#[derive(Debug, Default)]
struct Handles {
    counters: RwLock<HashMap<Key, Counter>>,
    gauges: RwLock<HashMap<Key, Gauge>>,
    histograms: RwLock<HashMap<Key, Histogram>>,
}

/// The SDK's `metrics::Recorder`. See [`super::Perf::recorder`].
#[derive(Debug, Clone)]
pub struct SdkRecorder {
    shared: Arc<Shared>,
    handles: Arc<Handles>,
}

fn cached<T: Clone>(map: &RwLock<HashMap<Key, T>>, key: &Key, make: impl FnOnce() -> T) -> T {
    if let Some(h) = map.read().unwrap_or_else(|e| e.into_inner()).get(key) {
        return h.clone();
    }
    map.write().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_insert_with(make).clone()
}

impl SdkRecorder {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared, handles: Arc::default() }
    }

    fn tags(&self, key: &Key) -> String {
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        self.shared.tags(&labels)
    }
}

#[derive(Debug)]
struct CounterHandle(Arc<Striped>);

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        self.0.add(value);
    }

    fn absolute(&self, _value: u64) {
        // A StatsD counter carries increments; an absolute value has no delta to send.
    }
}

#[derive(Debug)]
struct GaugeHandle(Arc<AtomicGauge>);

impl GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        self.0.add(value);
    }
    fn decrement(&self, value: f64) {
        self.0.add(-value);
    }
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

#[derive(Debug)]
struct HistogramHandle {
    shared: Arc<Shared>,
    id: u32,
}

impl HistogramFn for HistogramHandle {
    fn record(&self, value: f64) {
        self.shared.values.push((self.id, value));
    }
}

impl metrics::Recorder for SdkRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        cached(&self.handles.counters, key, || {
            Counter::from_arc(Arc::new(CounterHandle(self.shared.counter(key.name(), self.tags(key)))))
        })
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        cached(&self.handles.gauges, key, || {
            Gauge::from_arc(Arc::new(GaugeHandle(self.shared.gauge(key.name(), self.tags(key)))))
        })
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        cached(&self.handles.histograms, key, || {
            let id = self.shared.dist(key.name(), self.tags(key), "h");
            Histogram::from_arc(Arc::new(HistogramHandle { shared: self.shared.clone(), id }))
        })
    }
}
