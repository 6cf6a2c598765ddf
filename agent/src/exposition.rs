//! Prometheus text exposition of the ingested series and the agent's own telemetry.
//!
//! Names follow the convention's Prometheus mapping
//! ([`perfstore::convention::prometheus`]). Ingested
//! counters are cumulative since the agent started, gauges and sets show the last value,
//! distributions are classic histograms (durations in seconds with the buckets in
//! [`DURATION_BUCKETS`], other values with [`VALUE_BUCKETS`]), every family has HELP text.
//! Two series whose names collide after sanitising with different types keep the first
//! family; the others are counted in `perfagent_name_collisions_total`.
//!
//! This is written by hand rather than through metrics-exporter-prometheus: StatsD counters
//! are f64 (fractional, even negative) and timer events carry 1/rate weights, neither of
//! which the exporter's u64 counters and unweighted histograms can carry.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::BuildHasher as _;
use std::sync::{Arc, LazyLock, Mutex};

use perfstore::convention::prometheus::{escape_help, is_label_name, label_names, metric_name, push_label_value};
use perfstore::{BucketBounds, Kind, Sample, SeriesKey, SharedStr};

use crate::statsd::prefetch;

/// Histogram buckets for durations, seconds: Prometheus' defaults plus 0.2 and 2, the default
/// p95 target and a common override, so that `perfctl slo rules` counts latency objectives at
/// their threshold exactly (a threshold between bounds is counted at the bound under it).
pub const DURATION_BUCKETS: [f64; 13] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0];
/// Histogram buckets for other distributions (batch sizes, payload counts).
pub const VALUE_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// [`DURATION_BUCKETS`] and [`VALUE_BUCKETS`] as a render needs them, worked out once.
static DURATION_BOUNDS: LazyLock<Buckets> = LazyLock::new(|| Buckets::new(&DURATION_BUCKETS));
static VALUE_BOUNDS: LazyLock<Buckets> = LazyLock::new(|| Buckets::new(&VALUE_BUCKETS));

/// A bucket list: the sketch keys under each bound, and each bound as `le` shows it, then
/// `+Inf`, each with the end of its label set (`0.005"} `).
struct Buckets {
    keys: BucketBounds,
    le: Vec<String>,
}

impl Buckets {
    fn new(bounds: &[f64]) -> Self {
        let mut le: Vec<String> = bounds
            .iter()
            .map(|&b| {
                let mut s = String::new();
                push_num(&mut s, b);
                s
            })
            .collect();
        le.push("+Inf".to_owned());
        for l in &mut le {
            l.push_str("\"} ");
        }
        Self { keys: BucketBounds::new(bounds), le }
    }

    /// Bounds, `+Inf` apart.
    fn len(&self) -> usize {
        self.le.len() - 1
    }
}

/// A series' labels, `{a="x",b="y"` without the closing brace (so that a bucket line can
/// add `le`), or nothing for none, written over `out`.
fn open_labels(out: &mut String, key: &SeriesKey) {
    out.clear();
    // Most tag keys are label names already (and a key's are unique): written as they are,
    // with no names worked out and allocated for every series of every scrape.
    if key.labels().all(|(k, _)| is_label_name(k)) {
        for (k, v) in key.labels() {
            push_label(out, k, v);
        }
        return;
    }
    let names = label_names(key.labels().map(|(k, _)| k));
    for (n, (_, v)) in names.iter().zip(key.labels()) {
        push_label(out, n, v);
    }
}

/// `{name="value"` or `,name="value"`.
fn push_label(out: &mut String, name: &str, value: &str) {
    out.push(if out.is_empty() { '{' } else { ',' });
    out.push_str(name);
    out.push_str("=\"");
    push_label_value(out, value);
    out.push('"');
}

/// The hash `/metrics` finds a slot by from the address of its key.
fn ptr_hash(hasher: &foldhash::fast::RandomState, key: &Arc<SeriesKey>) -> u64 {
    hasher.hash_one(Arc::as_ptr(key) as usize)
}

/// A sample value: whole numbers (counts, most counters) as integers, the rest as Rust's
/// shortest round-trip form, which both read back to the same `f64`.
fn push_num(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.abs() < 1e15 && (v as i64) as f64 == v && !(v == 0.0 && v.is_sign_negative()) {
        // Exact: the value is whole and well inside i64 (and f64's integers). Tested by a
        // round trip through i64 rather than `fract`, a call to libm's `trunc` here.
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A series' cumulative value: 16 bytes, a histogram's counts apart (`/metrics` holds one
/// per series, often by the 100 000, and most are counters or gauges). The counts are shared
/// with a scrape's [`Page`], which copies every value: an add copies them only while a page
/// being sent still holds them.
#[derive(Debug, Clone)]
enum Value {
    Counter(f64),
    Gauge(f64),
    Histogram(Arc<Hist>),
}

/// A histogram's cumulative counts, in one allocation; its bounds follow from its key's unit
/// ([`bounds_of`]).
#[derive(Debug, Clone)]
struct Hist {
    /// Events at or under each bound (the first `bounds_of(key).len()`).
    buckets: [f64; MAX_BUCKETS],
    count: f64,
    sum: f64,
}

/// Bounds of the longest bucket list.
const MAX_BUCKETS: usize =
    if DURATION_BUCKETS.len() > VALUE_BUCKETS.len() { DURATION_BUCKETS.len() } else { VALUE_BUCKETS.len() };

/// The order `/metrics` shows the series in: by family name, then by key. Sorting 10 000
/// keys took a quarter of a scrape, and the order changes only when a series is added (a
/// returning series' key is an equal one), so the first page after an addition works it
/// out, outside the lock, and leaves it here for the pages after it.
#[derive(Debug, Default)]
struct Layout {
    /// Slots it covers: the series' count when it was worked out.
    slots: usize,
    families: Vec<Family>,
    /// Series left out because their family's name is another kind's.
    collisions: u64,
}

/// A family: its name, kind, the StatsD name it came from, and its series' slots in order.
#[derive(Debug)]
struct Family {
    name: String,
    kind: Kind,
    source: SharedStr,
    slots: Vec<u32>,
}

impl Layout {
    fn of(series: &[(Arc<SeriesKey>, Value)]) -> Self {
        // The series of each name, kind and unit first: a family's name is worked out once
        // for them all, and the sort compares the few series of one family rather than
        // every key with every other (first page after 10 000 new series: 7.7-8.2 -> 6.1-6.3 ms).
        let mut group_of: HashMap<(&str, Kind, &str), usize, foldhash::fast::RandomState> = HashMap::default();
        let mut groups: Vec<(&SeriesKey, Vec<u32>)> = Vec::new();
        for (slot, (key, _)) in series.iter().enumerate() {
            let g = *group_of.entry((key.name.as_str(), key.kind, key.unit.as_str())).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(slot as u32);
        }
        // In key order, so that a family takes the kind and source of its first key, and the
        // series of another kind under its name are the ones left out, as by a sort of all.
        groups.sort_unstable_by(|(a, _), (b, _)| (&a.name, a.kind, &a.unit).cmp(&(&b.name, b.kind, &b.unit)));
        let mut families: BTreeMap<String, Family> = BTreeMap::new();
        let mut collisions = 0;
        for (key, slots) in groups {
            let name = metric_name(&key.name, key.kind, &key.unit);
            let family = families.entry(name).or_insert_with_key(|name| Family {
                name: name.clone(),
                kind: key.kind,
                source: key.name.clone(),
                slots: Vec::new(),
            });
            if family.kind == key.kind {
                family.slots.extend(slots);
            } else {
                collisions += slots.len() as u64;
            }
        }
        for family in families.values_mut() {
            family.slots.sort_unstable_by(|&a, &b| series[a as usize].0.cmp(&series[b as usize].0));
        }
        Self { slots: series.len(), families: families.into_values().collect(), collisions }
    }
}

/// Where a [`Page`] gets its layout: the one kept, or the cell to leave the one it works out.
#[derive(Debug)]
enum PageLayout {
    Kept(Arc<Layout>),
    ToWorkOut(Arc<Mutex<Arc<Layout>>>),
}

/// Bytes of a piece of the page: big enough that the pieces cost nothing, small enough that
/// a page of 100 000 series is never held whole (40 MB).
const PIECE: usize = 64 * 1024;

/// Cumulative state of everything `/metrics` shows.
#[derive(Debug, Default)]
pub struct Exposition {
    /// Each series' key and cumulative value, by slot; a render sorts them by key.
    series: Vec<(Arc<SeriesKey>, Value)>,
    /// Slots by their key's content…
    by_key: hashbrown::HashTable<u32>,
    /// …and by the address of the key their slot holds, which is the one the aggregator
    /// shares with every flush of a live series: an add hashes a pointer, not strings. The
    /// slot holds its key, so no other key can have that address while it is here. Two
    /// 4-byte tables: maps of shared and weak keys to slots took 50 bytes a series.
    by_ptr: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// The agent's own families, rendered by [`crate::telemetry`].
    own: String,
    /// The SLO and alert families, rendered by `crate::alerts`.
    alerts: String,
    /// The remote-write families, rendered by `crate::remote_write`.
    remote_write: String,
    /// The latest order worked out, shared with the pages that work it out.
    layout: Arc<Mutex<Arc<Layout>>>,
}

impl Exposition {
    /// Fold one flush's points in.
    pub fn add(&mut self, points: &[(Arc<SeriesKey>, i64, Sample)]) {
        for (key, _, sample) in points {
            let slot = match self.find_by_ptr(key) {
                Some(slot) => slot,
                None => self.slot_of(key, sample),
            };
            let v = &mut self.series[slot].1;
            match sample {
                Sample::Gauge { last: x, .. } | Sample::Set(x) => *v = Value::Gauge(*x),
                Sample::Counter(d) => {
                    if let Value::Counter(total) = v {
                        *total += d;
                    }
                }
                Sample::Distribution(d) => {
                    if let Value::Histogram(h) = v {
                        let h = Arc::make_mut(h);
                        let bounds = bounds_of(key);
                        let n = bounds.len();
                        let mut counts = [0.0; MAX_BUCKETS];
                        d.sketch.counts_at_most(&bounds.keys, &mut counts[..n]);
                        for (bucket, c) in h.buckets.iter_mut().zip(&counts[..n]) {
                            *bucket += c;
                        }
                        h.count += d.count;
                        h.sum += d.sum;
                    }
                }
            }
        }
    }

    fn ptr_hash(&self, key: &Arc<SeriesKey>) -> u64 {
        ptr_hash(&self.hasher, key)
    }

    fn find_by_ptr(&self, key: &Arc<SeriesKey>) -> Option<usize> {
        let series = &self.series;
        self.by_ptr.find(self.ptr_hash(key), |&s| Arc::ptr_eq(&series[s as usize].0, key)).map(|&s| s as usize)
    }

    /// The slot of a key not found by its address: an equal key's (the series expired and
    /// came back with a new key, or a backfilled point's one-off key), which then holds this
    /// key instead, or a new one.
    fn slot_of(&mut self, key: &Arc<SeriesKey>, sample: &Sample) -> usize {
        let hash = self.hasher.hash_one(&**key);
        let series = &self.series;
        let found = self.by_key.find(hash, |&s| *series[s as usize].0 == **key).map(|&s| s as usize);
        let slot = match found {
            Some(slot) => {
                let old = self.ptr_hash(&self.series[slot].0);
                if let Ok(entry) = self.by_ptr.find_entry(old, |&s| s as usize == slot) {
                    entry.remove();
                }
                self.series[slot].0 = Arc::clone(key);
                slot
            }
            None => {
                let value = match sample {
                    Sample::Gauge { last: v, .. } | Sample::Set(v) => Value::Gauge(*v),
                    Sample::Counter(_) => Value::Counter(0.0),
                    Sample::Distribution(_) => {
                        Value::Histogram(Arc::new(Hist { buckets: [0.0; MAX_BUCKETS], count: 0.0, sum: 0.0 }))
                    }
                };
                perfstore::grow::reserve_by_eighths(&mut self.series, 1);
                self.series.push((Arc::clone(key), value));
                let slot = self.series.len() - 1;
                let (series, hasher) = (&self.series, &self.hasher);
                self.by_key.insert_unique(hash, slot as u32, |&s| hasher.hash_one(&*series[s as usize].0));
                slot
            }
        };
        let hash = self.ptr_hash(key);
        let (series, hasher) = (&self.series, &self.hasher);
        self.by_ptr.insert_unique(hash, slot as u32, |&s| ptr_hash(hasher, &series[s as usize].0));
        slot
    }

    /// Replace the agent's own families (text rendered by [`crate::telemetry`]).
    pub fn set_own(&mut self, text: String) {
        self.own = text;
    }

    /// Replace the SLO and alert families (text rendered by the alerts evaluation).
    pub fn set_alerts(&mut self, text: String) {
        self.alerts = text;
    }

    /// Replace the remote-write families.
    pub fn set_remote_write(&mut self, text: String) {
        self.remote_write = text;
    }

    /// The page as of now, to render a piece at a time without the lock: the agent's own
    /// families and a copy of every series (its shared key and its value, not its text).
    /// When series were added since the last order was worked out, the first piece after
    /// the head works it out, so the lock is held only for the copy.
    pub fn page(&self) -> Page {
        let kept = self.layout.lock().map(|l| Arc::clone(&l)).unwrap_or_default();
        let layout = if kept.slots == self.series.len() {
            PageLayout::Kept(kept)
        } else {
            PageLayout::ToWorkOut(Arc::clone(&self.layout))
        };
        Page {
            head: Some([self.own.as_str(), &self.alerts, &self.remote_write].concat()),
            series: self.series.clone(),
            layout,
            family: 0,
            at: 0,
            done: false,
            labels: String::new(),
        }
    }

    /// The whole text exposition at once (the tests' view; `/metrics` streams [`Page`]).
    #[cfg(test)]
    fn render(&self) -> String {
        self.page().collect()
    }
}

/// `/metrics` as of one moment ([`Exposition::page`]), rendered in pieces of about
/// [`PIECE`] bytes as the response is sent.
#[derive(Debug)]
pub struct Page {
    head: Option<String>,
    /// The series as copied, by slot.
    series: Vec<(Arc<SeriesKey>, Value)>,
    layout: PageLayout,
    /// The family being rendered, and how many of its series are.
    family: usize,
    at: usize,
    done: bool,
    /// The labels of the series being rendered (scratch space).
    labels: String,
}

impl Page {
    /// The order, worked out now if it was not kept.
    fn layout(&mut self) -> Arc<Layout> {
        match &self.layout {
            PageLayout::Kept(layout) => Arc::clone(layout),
            PageLayout::ToWorkOut(cell) => {
                let layout = Arc::new(Layout::of(&self.series));
                if let Ok(mut kept) = cell.lock() {
                    // A page taken later may have left a newer one.
                    if kept.slots < layout.slots {
                        *kept = Arc::clone(&layout);
                    }
                }
                self.layout = PageLayout::Kept(Arc::clone(&layout));
                layout
            }
        }
    }
}

impl Iterator for Page {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if self.done {
            return None;
        }
        let layout = self.layout();
        let mut out = String::with_capacity(PIECE + 4096);
        while out.len() < PIECE {
            let Some(family) = layout.families.get(self.family) else {
                let _ = writeln!(
                    out,
                    "# HELP perfagent_name_collisions_total Series left out of /metrics because their name collides with another type after sanitising.\n# TYPE perfagent_name_collisions_total counter\nperfagent_name_collisions_total {}",
                    layout.collisions
                );
                self.done = true;
                break;
            };
            if self.at == 0 {
                render_header(&mut out, &family.name, family.kind, &family.source);
            }
            match family.slots.get(self.at) {
                Some(&slot) => {
                    // The series' keys and counts lie where they were made, not in the page's
                    // order: ask for a later series' while this one is written.
                    if let Some(&ahead) = family.slots.get(self.at + PREFETCH_AHEAD) {
                        let (key, value) = &self.series[ahead as usize];
                        prefetch(Arc::as_ptr(key));
                        if let Value::Histogram(h) = value {
                            prefetch(Arc::as_ptr(h));
                        }
                    }
                    let (key, value) = &self.series[slot as usize];
                    render_series(&mut out, &mut self.labels, &family.name, key, value);
                    self.at += 1;
                }
                None => (self.family, self.at) = (self.family + 1, 0),
            }
        }
        Some(out)
    }
}

/// Series ahead of the one being written whose key and counts a page asks the CPU for.
const PREFETCH_AHEAD: usize = 6;

/// A family's `HELP` and `TYPE` lines.
fn render_header(out: &mut String, family: &str, kind: Kind, source: &str) {
    let (ty, what) = match kind {
        Kind::Counter => ("counter", "counter, cumulative since the agent started"),
        Kind::Gauge => ("gauge", "gauge, last value"),
        Kind::Set => ("gauge", "set, distinct values in the last interval"),
        Kind::Distribution => ("histogram", "distribution, cumulative since the agent started"),
    };
    let _ = writeln!(out, "# HELP {family} StatsD {what}: {}\n# TYPE {family} {ty}", escape_help(source));
}

/// A histogram's bucket bounds: durations' for seconds, else values'. A slot's key changes
/// only for an equal one, so its bounds never change.
fn bounds_of(key: &SeriesKey) -> &'static Buckets {
    if &*key.unit == "s" { &DURATION_BOUNDS } else { &VALUE_BOUNDS }
}

/// One series' lines. `labels` is scratch space, kept to save an allocation a series.
fn render_series(out: &mut String, labels: &mut String, family: &str, key: &SeriesKey, value: &Value) {
    open_labels(labels, key);
    let sample = |out: &mut String, suffix: &str, v: f64| {
        out.push_str(family);
        out.push_str(suffix);
        out.push_str(labels);
        if !labels.is_empty() {
            out.push('}');
        }
        out.push(' ');
        push_num(out, v);
        out.push('\n');
    };
    match value {
        Value::Counter(v) | Value::Gauge(v) => sample(out, "", *v),
        Value::Histogram(h) => {
            let Hist { buckets, count, sum } = &**h;
            let bounds = bounds_of(key);
            // Every bucket line starts the same: `family_bucket{labels,le="`, put together
            // once (at the end of `out`, copied from there), each line then three pieces.
            let start = out.len();
            out.push_str(family);
            out.push_str("_bucket");
            out.push_str(labels);
            out.push_str(if labels.is_empty() { "{le=\"" } else { ",le=\"" });
            let prefix = start..out.len();
            for (i, (le, c)) in bounds.le.iter().zip(buckets[..bounds.len()].iter().chain([count])).enumerate() {
                if i > 0 {
                    out.extend_from_within(prefix.clone());
                }
                out.push_str(le);
                push_num(out, c.min(*count));
                out.push('\n');
            }
            sample(out, "_sum", *sum);
            sample(out, "_count", *count);
        }
    }
}

#[cfg(test)]
mod tests;
