//! `stats` for a fleet: the same report computed from what many agents remote-wrote to a
//! Prometheus-compatible server, read back with PromQL.
//!
//! The agents send counters as cumulative `_total` and distributions as classic histograms
//! (`_bucket{le}`, `_sum`, `_count`), each series with its agent's `host` label. Over a window
//! `(start, end]` each series' change is its last value up to `end` minus its last value up
//! to `start` (0 when it had none): calls, errors, retries and cache lookups come out exact.
//! A histogram's change per bucket becomes a sketch, each bucket's calls spread evenly over
//! it (values past the last bound at the bound), so quantiles are those of the buckets: the
//! true p95 lies in the same bucket, and within it the estimate interpolates linearly, as
//! PromQL's `histogram_quantile` does.

use std::collections::BTreeMap;

use perfstore::convention::prometheus::{from_family, metric_name};
use perfstore::convention::{self as conv, Metric, tag};
use perfstore::sketch::Sketch;
use perfstore::{Kind, Point, TimeRange};

use crate::stats::Input;

/// The counters and distributions `stats` reads ([`crate::stats::METRICS`]; the host's
/// gauges say nothing about a fleet), as a PromQL name matcher:
/// `op_duration_seconds_(count|sum|bucket)|op_retries_total|…`.
pub fn families() -> String {
    crate::stats::METRICS
        .iter()
        .filter(|m| !m.name.starts_with("system.") && !m.name.starts_with("container."))
        .filter_map(|m| {
            let name = metric_name(m.name, m.kind, m.unit);
            match m.kind {
                Kind::Counter => Some(name),
                Kind::Distribution => Some(format!("{name}_(count|sum|bucket)")),
                _ => None,
            }
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// The query whose answers at the window's start and end [`input`] takes: every series of
/// [`families`], its last value up to then (looking back `lookback`, which should reach the
/// start of the data).
pub fn query(lookback: &str) -> String {
    format!("last_over_time({{__name__=~\"{}\"}}[{lookback}])", families())
}

/// One sample of a PromQL vector.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    /// Its labels, `__name__` included.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// What a series is, from its `__name__`: the metric, and the part (`count`, `sum`,
/// `bucket` for histograms; `total` for counters).
fn metric_of(name: &str) -> Option<(&'static Metric, &'static str)> {
    for part in ["_count", "_sum", "_bucket"] {
        if let Some(family) = name.strip_suffix(part)
            && let Some(m) = from_family(family, Kind::Distribution)
        {
            return Some((m, &part[1..]));
        }
    }
    from_family(name, Kind::Counter).map(|m| (m, "total"))
}

/// A series' labels but its name and `le`.
type Identity = Vec<(String, String)>;

#[derive(Default)]
struct Acc {
    count: f64,
    sum: f64,
    buckets: BTreeMap<u64, (f64, f64)>,
}

/// The `stats` input of the window `range` from the answers of [`query`] at its end and at
/// its start; `source` names the server (shown where a store's path would be).
pub fn input(end: &[PromSample], start: &[PromSample], range: TimeRange, source: &str) -> Input {
    let before: BTreeMap<&BTreeMap<String, String>, f64> = start.iter().map(|s| (&s.labels, s.value)).collect();
    let mut acc: BTreeMap<(&'static str, Identity), Acc> = BTreeMap::new();
    for s in end {
        let Some((m, part)) = s.labels.get("__name__").and_then(|n| metric_of(n)) else { continue };
        let earlier = before.get(&s.labels).copied().unwrap_or(0.0);
        // A counter that went down restarted (a new store): all it holds is new.
        let delta = if s.value >= earlier { s.value - earlier } else { s.value };
        let identity: Identity = s
            .labels
            .iter()
            .filter(|(k, _)| *k != "__name__" && *k != "le")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let a = acc.entry((m.name, identity)).or_default();
        match part {
            "count" | "total" => a.count += delta,
            "sum" => a.sum += delta,
            _ => {
                let le = s.labels.get("le").map_or(f64::INFINITY, |l| l.parse().unwrap_or(f64::INFINITY));
                a.buckets.entry(le.to_bits()).or_insert((le, 0.0)).1 += delta;
            }
        }
    }
    let mut series = Vec::new();
    for ((name, labels), a) in acc {
        let Some(m) = conv::ALL.iter().find(|m| m.name == name) else { continue };
        let service = labels.iter().find(|(k, _)| k == tag::SERVICE).map_or("", |(_, v)| v.as_str());
        let mut key = m.key(service);
        for (k, v) in &labels {
            if k != tag::SERVICE {
                key.set_label(k, v);
            }
        }
        if a.count <= 0.0 {
            continue;
        }
        let p = match m.kind {
            Kind::Distribution => distribution(range, &a),
            _ => Point {
                ts_ms: range.start_ms,
                count: 1.0,
                sum: a.count,
                min: a.count,
                max: a.count,
                last: a.count,
                last_ts_ms: range.start_ms,
                sketch: None,
            },
        };
        series.push((key, p));
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    Input {
        db: source.to_owned(),
        schema_version: 0,
        newest_ms: None,
        series,
        last_errors: Vec::new(),
        circuit_open_s: BTreeMap::new(),
    }
}

/// Points spread over each bucket.
const SPREAD: usize = 8;

fn distribution(range: TimeRange, a: &Acc) -> Point {
    let mut sk = Sketch::new();
    let (mut lo, mut prev) = (0.0f64, 0.0f64);
    let (mut min, mut max) = (f64::INFINITY, 0.0f64);
    let bounds: Vec<(f64, f64)> = a.buckets.values().copied().collect();
    let last_finite = bounds.iter().rev().find(|(le, _)| le.is_finite()).map_or(0.0, |(le, _)| *le);
    for (le, cumulative) in bounds {
        let n = (cumulative - prev).max(0.0);
        prev = prev.max(cumulative);
        if n > 0.0 {
            if le.is_finite() {
                for k in 0..SPREAD {
                    sk.add_weighted(lo + (le - lo) * (k as f64 + 0.5) / SPREAD as f64, n / SPREAD as f64);
                }
                min = min.min(lo);
                max = max.max(le);
            } else {
                sk.add_weighted(last_finite, n);
                min = min.min(last_finite);
                max = max.max(last_finite);
            }
        }
        if le.is_finite() {
            lo = le;
        }
    }
    Point {
        ts_ms: range.start_ms,
        count: a.count,
        sum: a.sum,
        min: if min.is_finite() { min } else { 0.0 },
        max,
        last: 0.0,
        last_ts_ms: range.start_ms,
        sketch: Some(sk),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, labels: &[(&str, &str)], value: f64) -> PromSample {
        let mut l: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        l.insert("__name__".into(), name.into());
        PromSample { labels: l, value }
    }

    #[test]
    fn counts_are_differences_and_quantiles_come_from_the_buckets() {
        let l = [("op", "vm.list"), ("outcome", "ok"), ("service", "cli"), ("host", "h1")];
        let bucket = |le: &str, v: f64| {
            let mut x = l.to_vec();
            x.push(("le", le));
            s("op_duration_seconds_bucket", &x, v)
        };
        let start = [
            s("op_duration_seconds_count", &l, 100.0),
            bucket("0.1", 50.0),
            bucket("0.2", 100.0),
            bucket("+Inf", 100.0),
        ];
        let end = [
            s("op_duration_seconds_count", &l, 300.0),
            s("op_duration_seconds_sum", &l, 30.0),
            bucket("0.1", 60.0),
            bucket("0.2", 260.0),
            bucket("+Inf", 300.0),
            s("op_retries_total", &[("op", "vm.list"), ("service", "cli"), ("host", "h1")], 7.0),
            s("up", &[], 1.0),
        ];
        let i = input(&end, &start, TimeRange::new(0, 3_600_000), "http://prom:9090");
        assert_eq!(i.series.len(), 2, "{:?}", i.series);
        let (k, p) = i.series.iter().find(|(k, _)| k.name == "op.duration").unwrap();
        assert_eq!((k.get("host"), k.get("service"), k.get("le")), (Some("h1"), Some("cli"), None));
        // 200 calls in the window: 10 under 0.1 s, 150 in (0.1, 0.2], 40 over 0.2 s.
        assert_eq!(p.count, 200.0);
        let sk = p.sketch.as_ref().unwrap();
        assert!((sk.count() - 200.0).abs() < 1e-9);
        // p50 is the 100th call: in (0.1, 0.2]; p95 the 190th: past the last bound, read at it.
        let p50 = sk.quantile(0.5).unwrap();
        assert!(p50 > 0.1 && p50 <= 0.2, "{p50}");
        assert!((sk.quantile(0.95).unwrap() - 0.2).abs() < 0.2 * 0.02);
        let (_, r) = i.series.iter().find(|(k, _)| k.name == "op.retries").unwrap();
        assert_eq!(r.sum, 7.0, "a series absent at the start counts from 0");
        let f = families();
        assert!(f.starts_with("op_duration_seconds_(count|sum|bucket)|op_retries_total|"), "{f}");
        assert!(f.contains("cache_requests_total") && !f.contains("system_"), "{f}");
    }
}
