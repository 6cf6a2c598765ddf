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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::BuildHasher as _;
use std::sync::{Arc, LazyLock};

use perfstore::convention::prometheus::{escape_help, escape_label_value, label_names, metric_name};
use perfstore::{BucketBounds, Kind, Sample, SeriesKey, SharedStr};

/// Histogram buckets for durations, seconds: Prometheus' defaults plus 0.2 and 2, the default
/// p95 target and a common override, so that `perfctl slo rules` counts latency objectives at
/// their threshold exactly (a threshold between bounds is counted at the bound under it).
pub const DURATION_BUCKETS: [f64; 13] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0];
/// Histogram buckets for other distributions (batch sizes, payload counts).
pub const VALUE_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// [`DURATION_BUCKETS`] and [`VALUE_BUCKETS`] with the sketch keys under each bound, worked
/// out once.
static DURATION_BOUNDS: LazyLock<BucketBounds> = LazyLock::new(|| BucketBounds::new(&DURATION_BUCKETS));
static VALUE_BOUNDS: LazyLock<BucketBounds> = LazyLock::new(|| BucketBounds::new(&VALUE_BUCKETS));

fn labels(key: &SeriesKey) -> String {
    let names = label_names(key.labels().map(|(k, _)| k));
    let parts: Vec<String> =
        names.iter().zip(key.labels()).map(|(n, (_, v))| format!("{n}=\"{}\"", escape_label_value(v))).collect();
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

/// The hash `/metrics` finds a slot by from the address of its key.
fn ptr_hash(hasher: &foldhash::fast::RandomState, key: &Arc<SeriesKey>) -> u64 {
    hasher.hash_one(Arc::as_ptr(key) as usize)
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
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
    /// Events at or under each bound (the first `bounds_of(key).bounds().len()`).
    buckets: [f64; MAX_BUCKETS],
    count: f64,
    sum: f64,
}

/// Bounds of the longest bucket list.
const MAX_BUCKETS: usize =
    if DURATION_BUCKETS.len() > VALUE_BUCKETS.len() { DURATION_BUCKETS.len() } else { VALUE_BUCKETS.len() };

/// A family's series, in order.
type Members = Vec<(Arc<SeriesKey>, Value)>;

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
                        let n = bounds.bounds().len();
                        let mut counts = [0.0; MAX_BUCKETS];
                        d.sketch.counts_at_most(bounds, &mut counts[..n]);
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
    /// Ordering and grouping the series wait for the first piece after the head, so the
    /// lock is held only for the copy.
    pub fn page(&self) -> Page {
        Page {
            head: Some([self.own.as_str(), &self.alerts, &self.remote_write].concat()),
            ungrouped: Some(self.series.clone()),
            families: BTreeMap::new().into_iter(),
            current: None,
            collisions: 0,
            done: false,
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
    /// The series as copied, until the first piece after the head groups them.
    ungrouped: Option<Members>,
    /// Families by name: their kind, the StatsD name they came from, and their series.
    families: std::collections::btree_map::IntoIter<String, (Kind, SharedStr, Members)>,
    /// The family being rendered, its series, and how many of them are.
    current: Option<(String, Members, usize)>,
    /// Series left out because their family's name is another kind's.
    collisions: u64,
    done: bool,
}

impl Page {
    /// Order the series by key and group them by family name.
    fn group(&mut self, mut series: Members) {
        series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut families: BTreeMap<String, (Kind, SharedStr, Members)> = BTreeMap::new();
        for (key, value) in series {
            let family = metric_name(&key.name, key.kind, &key.unit);
            let entry = families.entry(family).or_insert_with(|| (key.kind, key.name.clone(), Vec::new()));
            if entry.0 == key.kind {
                entry.2.push((key, value));
            } else {
                self.collisions += 1;
            }
        }
        self.families = families.into_iter();
    }
}

impl Iterator for Page {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if let Some(series) = self.ungrouped.take() {
            self.group(series);
        }
        if self.done {
            return None;
        }
        let mut out = String::with_capacity(PIECE + 4096);
        while out.len() < PIECE {
            let Some((family, members, at)) = &mut self.current else {
                match self.families.next() {
                    Some((family, (kind, source, members))) => {
                        render_header(&mut out, &family, kind, &source);
                        self.current = Some((family, members, 0));
                        continue;
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "# HELP perfagent_name_collisions_total Series left out of /metrics because their name collides with another type after sanitising.\n# TYPE perfagent_name_collisions_total counter\nperfagent_name_collisions_total {}",
                            self.collisions
                        );
                        self.done = true;
                        break;
                    }
                }
            };
            match members.get(*at) {
                Some((key, value)) => {
                    render_series(&mut out, family, key, value);
                    *at += 1;
                }
                None => self.current = None,
            }
        }
        Some(out)
    }
}

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
fn bounds_of(key: &SeriesKey) -> &'static BucketBounds {
    if &*key.unit == "s" { &DURATION_BOUNDS } else { &VALUE_BOUNDS }
}

/// One series' lines.
fn render_series(out: &mut String, family: &str, key: &SeriesKey, value: &Value) {
    // The series' labels once; a bucket line adds `le` before the closing brace.
    let base = labels(key);
    match value {
        Value::Counter(v) | Value::Gauge(v) => {
            let _ = writeln!(out, "{family}{base} {}", num(*v));
        }
        Value::Histogram(h) => {
            let Hist { buckets, count, sum } = &**h;
            let with_le = match base.strip_suffix('}') {
                Some(open) => format!("{open},le=\""),
                None => "{le=\"".to_owned(),
            };
            for (b, c) in bounds_of(key).bounds().iter().zip(buckets) {
                let _ = writeln!(out, "{family}_bucket{with_le}{}\"}} {}", num(*b), num(c.min(*count)));
            }
            let _ = writeln!(out, "{family}_bucket{with_le}+Inf\"}} {}", num(*count));
            let _ = writeln!(out, "{family}_sum{base} {}", num(*sum));
            let _ = writeln!(out, "{family}_count{base} {}", num(*count));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfstore::Distribution;

    #[test]
    fn a_series_that_expires_and_returns_keeps_counting_and_its_old_key_is_let_go() {
        let mut e = Exposition::default();
        let key = || SeriesKey::new("api", "op.calls", Kind::Counter).label("op", "vm.list");
        let first = Arc::new(key());
        e.add(&[(Arc::clone(&first), 0, Sample::Counter(2.0))]);
        e.add(&[(Arc::clone(&first), 10, Sample::Counter(1.0))]);
        // The aggregator dropped the series; it comes back with a new shared key.
        let weak_first = Arc::downgrade(&first);
        drop(first);
        let again = Arc::new(key());
        e.add(&[(Arc::clone(&again), 20, Sample::Counter(1.0))]);
        assert!(weak_first.upgrade().is_none(), "the first key is let go");
        assert_eq!(e.find_by_ptr(&again), Some(0), "the new key is found by its address");
        // A backfilled point's one-off key, then the live key again.
        e.add(&[(Arc::new(key()), 5, Sample::Counter(3.0))]);
        e.add(&[(Arc::clone(&again), 30, Sample::Counter(1.0))]);
        let other = Arc::new(SeriesKey::new("api", "op.other", Kind::Counter));
        for i in 0..70 {
            e.add(&[(Arc::clone(&other), 30 + i, Sample::Counter(1.0))]);
        }
        let text = e.render();
        assert!(text.contains("op_calls_total{op=\"vm.list\",service=\"api\"} 8\n"), "{text}");
        assert!(text.contains("op_other_total{service=\"api\"} 70\n"), "{text}");
        assert_eq!(e.series.len(), 2);
        assert_eq!((e.by_key.len(), e.by_ptr.len()), (2, 2), "one entry a series in each table");
        assert_eq!(e.find_by_ptr(&again), Some(0));
        assert_eq!(e.find_by_ptr(&other), Some(1));
    }

    #[test]
    fn a_large_page_comes_in_pieces_that_add_up_to_it() {
        let mut e = Exposition::default();
        let points: Vec<_> = (0..2000)
            .map(|i| {
                let kind = if i % 2 == 0 { Kind::Counter } else { Kind::Distribution };
                // One family of 1000 counters, five of 200 histograms (about 220 KB each).
                let name = if kind == Kind::Counter { "op.calls".to_owned() } else { format!("op{}.duration", i % 5) };
                let key = SeriesKey::new("api", &name, kind).label("host", &format!("vm-{i}"));
                let sample = match kind {
                    Kind::Counter => Sample::Counter(f64::from(i)),
                    _ => Sample::Distribution(Box::new(Distribution::from_values(&[0.001 * f64::from(i), 3.0]))),
                };
                (Arc::new(key.unit(if kind == Kind::Counter { "" } else { "s" })), 0, sample)
            })
            .collect();
        e.add(&points);
        e.set_own("# agent's own\n".into());
        let pieces: Vec<String> = e.page().collect();
        let page = pieces.concat();
        assert!(page.starts_with("# agent's own\n"), "{}", &page[..100]);
        assert!(page.ends_with("perfagent_name_collisions_total 0\n"), "{}", &page[page.len() - 100..]);
        assert!(page.lines().count() > 1000 * 16 + 1000, "every bucket line is there");
        assert_eq!(page.matches("# TYPE ").count(), 7, "six families and the collisions counter");
        assert_eq!(
            page.matches("# TYPE op1_duration_seconds histogram\n").count(),
            1,
            "a family split across pieces is named once"
        );
        // Never the whole page at once: pieces of about 64 KiB, each of whole lines.
        assert!(pieces.len() > 10, "{} pieces", pieces.len());
        for p in &pieces[1..] {
            assert!(p.len() < PIECE + 4096, "{}", p.len());
            assert!(p.ends_with('\n'));
        }
    }

    #[test]
    fn a_page_being_sent_shows_the_moment_it_was_taken() {
        let mut e = Exposition::default();
        let d = Arc::new(SeriesKey::new("api", "op.duration", Kind::Distribution).unit("s"));
        let dist = || Sample::Distribution(Box::new(Distribution::from_values(&[0.02])));
        e.add(&[(Arc::clone(&d), 0, dist())]);
        let page = e.page();
        // Flushes go on while the page is sent.
        e.add(&[(Arc::clone(&d), 10, dist())]);
        let then: String = page.collect();
        assert!(then.contains("op_duration_seconds_count{service=\"api\"} 1\n"), "{then}");
        assert!(e.render().contains("op_duration_seconds_count{service=\"api\"} 2\n"));
    }

    #[test]
    fn counters_accumulate_histograms_bucket_and_labels_escape() {
        let mut e = Exposition::default();
        let c = Arc::new(SeriesKey::new("api", "op.retries", Kind::Counter).label("op", "vm \"list\"\n"));
        let d = Arc::new(SeriesKey::new("api", "op.duration", Kind::Distribution).unit("s"));
        let dist = Distribution::from_values(&[0.003, 0.02, 0.02, 0.3, 20.0]);
        e.add(&[(c.clone(), 0, Sample::Counter(2.5)), (d.clone(), 0, Sample::Distribution(Box::new(dist.clone())))]);
        e.add(&[(c, 10, Sample::Counter(1.0)), (d, 10, Sample::Distribution(Box::new(dist)))]);
        let text = e.render();
        assert!(text.contains("# TYPE op_retries_total counter\n"), "{text}");
        assert!(text.contains("op_retries_total{op=\"vm \\\"list\\\"\\n\",service=\"api\"} 3.5\n"), "{text}");
        assert!(text.contains("op_duration_seconds_bucket{service=\"api\",le=\"0.005\"} 2\n"), "{text}");
        assert!(text.contains("op_duration_seconds_bucket{service=\"api\",le=\"0.025\"} 6\n"), "{text}");
        assert!(text.contains("op_duration_seconds_bucket{service=\"api\",le=\"10\"} 8\n"), "{text}");
        assert!(text.contains("op_duration_seconds_bucket{service=\"api\",le=\"+Inf\"} 10\n"), "{text}");
        assert!(text.contains("op_duration_seconds_count{service=\"api\"} 10\n"), "{text}");
        assert!(text.contains("# HELP op_duration_seconds StatsD distribution"), "{text}");
    }

    #[test]
    fn colliding_families_are_counted_not_mixed() {
        let mut e = Exposition::default();
        e.add(&[
            (Arc::new(SeriesKey::new("a", "x.y", Kind::Gauge)), 0, Sample::Gauge { last: 1.0, min: 1.0, max: 1.0 }),
            (Arc::new(SeriesKey::new("a", "x-y", Kind::Set)), 0, Sample::Set(3.0)),
            (Arc::new(SeriesKey::new("a", "x_y", Kind::Counter)), 0, Sample::Counter(1.0)),
        ]);
        let text = e.render();
        assert!(
            text.contains("perfagent_name_collisions_total 1\n"),
            "the set x-y collides with the gauge x.y: {text}"
        );
        assert_eq!(text.matches("# TYPE x_y ").count(), 1, "one family per name: {text}");
    }
}
