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

/// `perfctl query SELECTOR --prometheus URL`: the PromQL range query giving, per step, what
/// `query` gives from a store, for a metric of the convention (the agents send its Prometheus
/// names). Each value is evaluated at the step's end over the step (the change of a
/// cumulative series, exact; `avg_over_time(…[step])` of a gauge); [`matrix`] labels it with
/// the step's start. Returns the query
/// and the unit of its values.
pub fn range_query(
    sel: &perfstore::Selector,
    agg: perfstore::Agg,
    step_ms: i64,
    merge: &crate::query::Merge,
) -> Result<(String, String), String> {
    use crate::query::Merge;
    use perfstore::{Agg, MatchOp};
    let m = conv::find(&sel.name).filter(|_| !sel.name.contains(['*', '?'])).ok_or_else(|| {
        format!(
            "'{}': with --prometheus the selector names one metric of the convention (op.duration, op.retries, \
             cache.requests, …), as the agents send them",
            sel.name
        )
    })?;
    let family = metric_name(m.name, m.kind, m.unit);
    let matchers: Vec<String> = sel
        .matchers
        .iter()
        .map(|x| {
            let k = perfstore::convention::prometheus::label_name(&x.key);
            let lit = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
            match x.op {
                MatchOp::Eq => format!("{k}={}", lit(&x.value)),
                MatchOp::Ne => format!("{k}!={}", lit(&x.value)),
                MatchOp::Glob => format!("{k}=~{}", lit(&crate::slo::glob_regex(&x.value))),
                MatchOp::NotGlob => format!("{k}!~{}", lit(&crate::slo::glob_regex(&x.value))),
            }
        })
        .collect();
    let sel_text = |suffix: &str| format!("{family}{suffix}{{{}}}", matchers.join(","));
    let w = format!("{}s", step_ms / 1000);
    let (by, wrap) = match merge {
        Merge::None => (None, false),
        Merge::All => (None, true),
        Merge::By(l) => (Some(perfstore::convention::prometheus::label_name(l)), true),
    };
    let grouped = |inner: String, op: &str| match (&by, wrap) {
        (_, false) => inner,
        (None, true) => format!("{op}({inner})"),
        (Some(l), true) => format!("{op} by ({l}) ({inner})"),
    };
    let unsupported =
        || format!("--agg {agg:?} of {} ({:?}) is not available with --prometheus", m.name, m.kind).to_lowercase();
    // The change of a cumulative series over each step: its last value in the step minus its
    // last value before it (0 when it had none: a new series). Exact, where PromQL's
    // increase() extrapolates to the step's edges.
    let delta = |suffix: &str| {
        let x = sel_text(suffix);
        format!("(last_over_time({x}[{w}]) - (last_over_time({x}[1d] offset {w}) or last_over_time({x}[{w}]) * 0))")
    };
    let secs = step_ms as f64 / 1000.0;
    let q = match (m.kind, agg) {
        (Kind::Distribution, Agg::Count) => grouped(delta("_count"), "sum"),
        (Kind::Distribution, Agg::Sum) => grouped(delta("_sum"), "sum"),
        (Kind::Distribution, Agg::Rate) => format!("{} / {secs}", grouped(delta("_count"), "sum")),
        (Kind::Distribution, Agg::Avg) => {
            format!("{} / {}", grouped(delta("_sum"), "sum"), grouped(delta("_count"), "sum"))
        }
        (Kind::Distribution, Agg::Quantile(q)) => {
            let buckets = delta("_bucket");
            let inner = match (&by, wrap) {
                (_, false) => buckets,
                (None, true) => format!("sum by (le) ({buckets})"),
                (Some(l), true) => format!("sum by (le, {l}) ({buckets})"),
            };
            format!("histogram_quantile({q}, {inner})")
        }
        (Kind::Counter, Agg::Sum) => grouped(delta(""), "sum"),
        (Kind::Counter, Agg::Rate) => format!("{} / {secs}", grouped(delta(""), "sum")),
        (Kind::Gauge | Kind::Set, Agg::Avg) => grouped(format!("avg_over_time({}[{w}])", sel_text("")), "avg"),
        (Kind::Gauge | Kind::Set, Agg::Min) => grouped(format!("min_over_time({}[{w}])", sel_text("")), "min"),
        (Kind::Gauge | Kind::Set, Agg::Max) => grouped(format!("max_over_time({}[{w}])", sel_text("")), "max"),
        (Kind::Gauge | Kind::Set, Agg::Last) => grouped(format!("last_over_time({}[{w}])", sel_text("")), "sum"),
        _ => return Err(unsupported()),
    };
    let unit = match agg {
        Agg::Count => String::new(),
        Agg::Rate => "1/s".into(),
        _ => m.unit.to_owned(),
    };
    Ok((q, unit))
}

/// One series of a range query's answer: its labels and `(Unix ms, value)` points.
pub type Matrix = (BTreeMap<String, String>, Vec<(i64, f64)>);

/// A range query's matrix as `query` shows it: each series named by the metric and its labels
/// (`op.duration{host="h1",op="vm.list"}`), each value at the start of its step.
pub fn matrix(name: &str, unit: &str, step_ms: i64, series: Vec<Matrix>) -> crate::query::QueryResult {
    let mut out: Vec<crate::query::SeriesValues> = series
        .into_iter()
        .map(|(labels, points)| {
            let l: Vec<String> = labels
                .iter()
                .filter(|(k, _)| *k != "__name__" && *k != "le")
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            crate::query::SeriesValues {
                series: if l.is_empty() { name.to_owned() } else { format!("{name}{{{}}}", l.join(",")) },
                unit: unit.to_owned(),
                points: points
                    .into_iter()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(t, v)| (crate::time::rfc3339(t - step_ms), v))
                    .collect(),
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    out.sort_by(|a, b| a.series.cmp(&b.series));
    let matched = out.len();
    crate::query::QueryResult { series: out, matched, newest_ms: None }
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

    #[test]
    fn selectors_become_promql() {
        use crate::query::Merge;
        use perfstore::{Agg, Selector};
        let sel = Selector::parse("op.duration{op=~\"vm.*\",outcome=\"ok\"}").unwrap();
        let (q, unit) = range_query(&sel, Agg::Quantile(0.95), 60_000, &Merge::By("host".into())).unwrap();
        let b = "op_duration_seconds_bucket{op=~\"vm\\\\..*\",outcome=\"ok\"}";
        assert_eq!(
            q,
            format!(
                "histogram_quantile(0.95, sum by (le, host) ((last_over_time({b}[60s]) - (last_over_time({b}[1d] offset 60s) or last_over_time({b}[60s]) * 0))))"
            )
        );
        assert_eq!(unit, "s");
        let (q, _) = range_query(&Selector::parse("op.retries").unwrap(), Agg::Sum, 10_000, &Merge::All).unwrap();
        assert_eq!(
            q,
            "sum((last_over_time(op_retries_total{}[10s]) - (last_over_time(op_retries_total{}[1d] offset 10s) or last_over_time(op_retries_total{}[10s]) * 0)))"
        );
        let e = range_query(&Selector::parse("op.*").unwrap(), Agg::Sum, 10_000, &Merge::None).unwrap_err();
        assert!(e.contains("names one metric of the convention"), "{e}");
        let e = range_query(&Selector::parse("op.retries").unwrap(), Agg::Max, 10_000, &Merge::None).unwrap_err();
        assert!(e.contains("not available with --prometheus"), "{e}");
        let r = matrix(
            "op.duration",
            "s",
            60_000,
            vec![(
                BTreeMap::from([("host".into(), "h1".into()), ("le".into(), "1".into())]),
                vec![(120_000, 2.0), (180_000, f64::NAN)],
            )],
        );
        assert_eq!(r.series[0].series, "op.duration{host=\"h1\"}");
        assert_eq!(r.series[0].points, vec![("1970-01-01T00:01:00Z".to_owned(), 2.0)]);
    }
}
