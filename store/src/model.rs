//! The store's data model: series identities, kinds, labels and points.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use crate::labels::Labels;
pub use crate::labels::{LabelIter, LabelSets};
pub use crate::shared_str::SharedStr;
use crate::sketch::Sketch;

/// Integer id of a registered series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesId(pub i64);

impl ToSql for SeriesId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0))
    }
}

impl FromSql for SeriesId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(SeriesId)
    }
}

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a series measures, which decides how its points aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Per-interval deltas (f64: StatsD counters may be negative or fractional).
    Counter,
    /// A level: last, min and max per interval.
    Gauge,
    /// Timers, histograms, distributions: count, sum, min, max and a sketch per interval.
    Distribution,
    /// Distinct values seen per interval.
    Set,
}

impl Kind {
    pub(crate) fn code(self) -> i64 {
        match self {
            Kind::Counter => 0,
            Kind::Gauge => 1,
            Kind::Distribution => 2,
            Kind::Set => 3,
        }
    }

    pub(crate) fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Kind::Counter,
            1 => Kind::Gauge,
            2 => Kind::Distribution,
            3 => Kind::Set,
            _ => return None,
        })
    }

    /// Lower-case name (`counter`, `gauge`, `distribution`, `set`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Distribution => "distribution",
            Kind::Set => "set",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The label key every series carries so apps sharing a store stay apart.
pub const SERVICE_LABEL: &str = "service";

/// The identity of a series: name, kind, unit and a sorted label set that includes `service`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    /// Metric name, e.g. `op.duration`. Shared: the series of one name (often thousands of
    /// tag combinations) can hold one copy ([`SeriesKey::shared`]).
    pub name: SharedStr,
    /// Kind.
    pub kind: Kind,
    /// Base unit (`s`, `By`, `1`, or empty), shared as the name is.
    pub unit: SharedStr,
    /// Labels sorted by key, keys unique; includes `service`.
    pub(crate) labels: Labels,
}

impl SeriesKey {
    /// A key for `name` in `service`.
    pub fn new(service: &str, name: &str, kind: Kind) -> Self {
        Self::shared(service, name.into(), kind, SharedStr::default())
    }

    /// A key for `name` in `service` with `unit`, holding the name and unit given rather than
    /// copies: 100 000 series of 250 names hold 250 names.
    pub fn shared(service: &str, name: SharedStr, kind: Kind, unit: SharedStr) -> Self {
        Self { name, kind, unit, labels: Labels::from_sorted([(SERVICE_LABEL, service)]) }
    }

    /// Set the unit.
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = unit.into();
        self
    }

    /// Add or replace a label (the last value for a key wins, as in DogStatsD).
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.set_label(key, value);
        self
    }

    /// Add or replace a label in place.
    pub fn set_label(&mut self, key: &str, value: &str) {
        self.set_labels([(key, value)]);
    }

    /// Add or replace labels in place, the last value for a key winning: the labels are
    /// stored once, however many (a DogStatsD line may carry hundreds of tags).
    pub fn set_labels<'a>(&mut self, labels: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut pairs: Vec<(&str, &str)> = self.labels.iter().collect();
        pairs.extend(labels.into_iter().map(|(k, v)| -> (&str, &str) { (k, v) }));
        crate::labels::last_wins(&mut pairs);
        self.labels = Labels::from_sorted(pairs);
    }

    /// The labels, sorted by key.
    pub fn labels(&self) -> LabelIter<'_> {
        self.labels.iter()
    }

    /// One label's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The `service` label.
    pub fn service(&self) -> &str {
        self.get(SERVICE_LABEL).unwrap_or("")
    }

    pub(crate) fn from_parts(name: String, kind: Kind, unit: String, labels: Vec<(String, String)>) -> Self {
        Self { name: name.into(), kind, unit: unit.into(), labels: Labels::from_pairs(labels) }
    }

    /// Canonical label text stored in the label-set table (JSON array of pairs).
    pub(crate) fn labels_text(&self) -> String {
        serde_json::to_string(&self.labels).unwrap_or_else(|_| "[]".into())
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.name)?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// A registered series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesInfo {
    /// Its id.
    pub id: SeriesId,
    /// Its identity.
    pub key: SeriesKey,
}

/// What happened when a series was registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The series exists (now); write points with this id.
    Registered(SeriesId),
    /// Refused; the caller counts it under the reason.
    Rejected(RejectReason),
}

/// Why a series was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The name already has `max_series_per_name` series.
    PerNameLimit,
    /// The store already has `max_series` series.
    TotalLimit,
    /// The name and labels exist with another kind.
    KindConflict,
}

impl RejectReason {
    /// A short, bounded label for counters (`per_name_limit`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::PerNameLimit => "per_name_limit",
            RejectReason::TotalLimit => "total_limit",
            RejectReason::KindConflict => "kind_conflict",
        }
    }
}

/// One interval's worth of a series, as written by the agent at a flush.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    /// Sum of the interval's deltas.
    Counter(f64),
    /// Gauge state at the end of the interval.
    Gauge {
        /// Last value.
        last: f64,
        /// Lowest value during the interval.
        min: f64,
        /// Highest value during the interval.
        max: f64,
    },
    /// Distinct values seen in the interval.
    Set(f64),
    /// A distribution of events.
    Distribution(Box<Distribution>),
}

/// Count, sum, min, max and sketch of a distribution over one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// Weighted number of events.
    pub count: f64,
    /// Weighted sum of values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Quantile sketch of the values.
    pub sketch: Sketch,
}

impl Distribution {
    /// Summarise raw values (each with weight 1).
    pub fn from_values(values: &[f64]) -> Self {
        let mut d =
            Distribution { count: 0.0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, sketch: Sketch::new() };
        for &v in values {
            d.record(v, 1.0);
        }
        d
    }

    /// Record one value with a weight.
    pub fn record(&mut self, v: f64, weight: f64) {
        self.count += weight;
        self.sum += v * weight;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sketch.add_weighted(v, weight);
    }
}

impl Sample {
    /// The series kind this sample belongs to.
    pub fn kind(&self) -> Kind {
        match self {
            Sample::Counter(_) => Kind::Counter,
            Sample::Gauge { .. } => Kind::Gauge,
            Sample::Set(_) => Kind::Set,
            Sample::Distribution(_) => Kind::Distribution,
        }
    }
}

/// A point to write: a series, the start of its interval (Unix ms) and its sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The series.
    pub series: SeriesId,
    /// Start of the interval the sample covers, Unix milliseconds.
    pub ts_ms: i64,
    /// The sample.
    pub sample: Sample,
}

/// A stored point, or the aggregate of several: what every tier holds and every query
/// returns. For counters `sum` is the total delta; for gauges and sets `sum`/`count` is the
/// mean of the interval values and `min`/`max`/`last` are what they say; for distributions
/// `count`, `sum`, `min`, `max` are over events and `sketch` answers quantiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Start of the first interval covered, Unix ms.
    pub ts_ms: i64,
    /// Intervals covered (scalars) or weighted events (distributions).
    pub count: f64,
    /// Sum (see above).
    pub sum: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Value of the latest interval (0 for distributions).
    pub last: f64,
    /// Start of the latest interval covered, Unix ms.
    pub last_ts_ms: i64,
    /// Merged sketch (distributions only).
    pub sketch: Option<Sketch>,
}

impl Point {
    /// The raw point a flush writes for one sample.
    pub fn from_sample(ts_ms: i64, sample: &Sample) -> Self {
        let scalar = |v: f64, min: f64, max: f64| Point {
            ts_ms,
            count: 1.0,
            sum: v,
            min,
            max,
            last: v,
            last_ts_ms: ts_ms,
            sketch: None,
        };
        match sample {
            Sample::Counter(v) | Sample::Set(v) => scalar(*v, *v, *v),
            Sample::Gauge { last, min, max } => scalar(*last, *min, *max),
            Sample::Distribution(d) => Point {
                ts_ms,
                count: d.count,
                sum: d.sum,
                min: d.min,
                max: d.max,
                // `last` means nothing for a distribution; 0 costs one bit per stored point.
                last: 0.0,
                last_ts_ms: ts_ms,
                sketch: Some(d.sketch.clone()),
            },
        }
    }

    /// Merge two raw points of the same interval (a backfill of an interval already stored):
    /// counter deltas add, a gauge takes the later value and widens min/max, a set keeps the
    /// larger distinct count (two partial sets cannot be unioned), distributions merge.
    pub(crate) fn merge_same_interval(&mut self, later: &Point, kind: Kind) {
        match kind {
            Kind::Counter => {
                let v = self.sum + later.sum;
                *self = Point { sum: v, min: v, max: v, last: v, ..later.clone() };
            }
            Kind::Gauge => {
                self.min = self.min.min(later.min);
                self.max = self.max.max(later.max);
                self.last = later.last;
                self.sum = later.last;
            }
            Kind::Set => {
                let v = self.last.max(later.last);
                *self = Point { sum: v, min: v, max: v, last: v, ..later.clone() };
            }
            Kind::Distribution => self.merge(later),
        }
    }

    /// Merge another aggregate into this one (rollups and query results).
    pub fn merge(&mut self, other: &Point) {
        self.ts_ms = self.ts_ms.min(other.ts_ms);
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.last_ts_ms >= self.last_ts_ms {
            self.last = other.last;
            self.last_ts_ms = other.last_ts_ms;
        }
        match (&mut self.sketch, &other.sketch) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.sketch = Some(b.clone()),
            _ => {}
        }
    }

    /// Mean: `sum / count` (None when empty).
    pub fn avg(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// Nearest-rank quantile from the sketch, clamped to the exact min and max.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let v = self.sketch.as_ref()?.quantile(q)?;
        Some(v.clamp(self.min.min(self.max), self.max.max(self.min)))
    }
}

/// Merge `p` into an optional running aggregate (the first point starts it).
pub fn merge_into(acc: &mut Option<Point>, p: &Point) {
    match acc {
        Some(a) => a.merge(p),
        None => *acc = Some(p.clone()),
    }
}

/// What an [`Event`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A failed call's error message (an operation's last errors).
    Error,
}

impl EventKind {
    /// The text stored in the event table.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Error => "error",
        }
    }
}

/// Longest event message kept, in characters.
pub const EVENT_MESSAGE_MAX_CHARS: usize = 1_000;

/// An event kept in the bounded event log (for example an operation's last error).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// When, Unix ms.
    pub ts_ms: i64,
    /// Service.
    pub service: String,
    /// Operation.
    pub op: String,
    /// What it records.
    pub kind: EventKind,
    /// Message (truncated to [`EVENT_MESSAGE_MAX_CHARS`]).
    pub message: String,
}

/// One folded stack and how many samples had it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Stack {
    /// Frames joined by `;`, root first.
    pub frames: String,
    /// Samples.
    pub samples: u64,
}

impl Stack {
    /// `frames` with `samples`.
    pub fn new(frames: impl Into<String>, samples: u64) -> Self {
        Self { frames: frames.into(), samples }
    }
}

/// Folded stacks sampled for one operation over one profile window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileWindow {
    /// Service.
    pub service: String,
    /// Operation ([`crate::convention::NO_OP`] for samples outside any operation).
    pub op: String,
    /// Window start, Unix ms.
    pub start_ms: i64,
    /// Window end, Unix ms.
    pub end_ms: i64,
    /// The stacks.
    pub stacks: Vec<Stack>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_back_sorted_whatever_their_size_and_script() {
        let long = "v".repeat(300);
        let key = SeriesKey::new("api", "op.duration", Kind::Distribution)
            .label("zone", "eu-west-1")
            .label("op", "vm.list")
            .label("note", &long)
            .label("名前", "värde")
            .label("op", "vm.start")
            .label("", "");
        let got: Vec<(&str, &str)> = key.labels().collect();
        assert_eq!(
            got,
            [
                ("", ""),
                ("note", long.as_str()),
                ("op", "vm.start"),
                ("service", "api"),
                ("zone", "eu-west-1"),
                ("名前", "värde")
            ]
        );
        assert_eq!(key.get("op"), Some("vm.start"));
        assert_eq!(key.get("o"), None);
        assert_eq!(key.service(), "api");
        assert_eq!(
            key.to_string(),
            format!(
                "op.duration{{=\"\",note={long:?},op=\"vm.start\",service=\"api\",zone=\"eu-west-1\",名前=\"värde\"}}"
            )
        );
    }

    #[test]
    fn many_labels_at_once_are_as_one_at_a_time() {
        let tags: Vec<(String, String)> = (0..500).map(|i| (format!("t{}", i % 300), format!("v{i}"))).collect();
        let mut at_once = SeriesKey::new("api", "op.calls", Kind::Counter);
        at_once.set_labels(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut one_by_one = SeriesKey::new("api", "op.calls", Kind::Counter);
        for (k, v) in &tags {
            one_by_one.set_label(k, v);
        }
        assert_eq!(at_once, one_by_one);
        assert_eq!(at_once.labels().count(), 301);
        assert_eq!(at_once.get("t7"), Some("v307"), "the last value for a key wins");
        assert_eq!(at_once.get("t299"), Some("v299"));
    }

    #[test]
    fn keys_order_by_their_label_pairs_not_by_the_stored_bytes() {
        // Stored with lengths first, `b` (1 byte) would come before `ab` (2).
        let a = SeriesKey::new("s", "m", Kind::Counter).label("ab", "x");
        let b = SeriesKey::new("s", "m", Kind::Counter).label("b", "x");
        assert!(a < b);
        let mut keys = vec![b.clone(), a.clone()];
        keys.sort();
        assert_eq!(keys, [a, b]);
    }

    #[test]
    fn labels_serialize_as_a_list_of_pairs_and_come_back_sorted() {
        let key = SeriesKey::new("api", "op.calls", Kind::Counter).label("op", "vm.list");
        let json = serde_json::to_value(&key).unwrap_or_default();
        assert_eq!(json["labels"], serde_json::json!([["op", "vm.list"], ["service", "api"]]));
        assert_eq!(key.labels_text(), r#"[["op","vm.list"],["service","api"]]"#);
        let unsorted = serde_json::json!({"name": "op.calls", "kind": "counter", "unit": "", "labels": [["service", "api"], ["op", "vm.list"]]});
        let back: Option<SeriesKey> = serde_json::from_value(unsorted).ok();
        assert_eq!(back, Some(key));
    }
}
