//! `query`, `series` and `export`: series as stored, one aggregation per step, and what the
//! store holds.

use perfstore::{Agg, Point, Selector, SeriesInfo, SeriesUsage, Snapshot, TimeRange};
use serde::Serialize;

use crate::time::rfc3339;

/// One series' values.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesValues {
    /// The series, as `name{k="v",…}`.
    pub series: String,
    /// The unit of the values (the series' unit, `1/s` for rates, empty for counts); JSON
    /// keeps plain SI numbers, tables show it.
    #[serde(skip)]
    pub unit: String,
    /// `(step start as RFC 3339, value)`; steps without data are left out.
    pub points: Vec<(String, f64)>,
}

/// A query's result, and what to say when it is empty.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    /// Matching series with data.
    pub series: Vec<SeriesValues>,
    /// Series matching the selector (with or without data in the window).
    #[serde(skip)]
    pub matched: usize,
    /// Newest data in the store, Unix ms.
    #[serde(skip)]
    pub newest_ms: Option<i64>,
}

/// One series and its steps `(step start ms, aggregate)`.
#[derive(Debug, Clone)]
pub struct SeriesSteps {
    /// The series.
    pub series: SeriesInfo,
    /// Steps with data, in time order.
    pub steps: Vec<(i64, Point)>,
}

/// Series with their steps (what `export` writes).
#[derive(Debug, Clone)]
pub struct Steps {
    /// Matching series with data in the window.
    pub series: Vec<SeriesSteps>,
    /// Step length, ms.
    pub step_ms: i64,
    /// Series matching the selector (with or without data).
    pub matched: usize,
    /// Newest data in the store.
    pub newest_ms: Option<i64>,
}

/// Every series matching `sel`, one aggregate per step of `step_ms` over `range`.
pub fn steps(snap: &Snapshot<'_>, sel: &Selector, range: TimeRange, step_ms: i64) -> crate::Result<Steps> {
    let found = snap.series(sel)?;
    let mut series = Vec::new();
    for s in &found {
        let r = snap.range(s, range, step_ms)?;
        if !r.steps.is_empty() {
            series.push(SeriesSteps { series: s.clone(), steps: r.steps });
        }
    }
    Ok(Steps { series, step_ms, matched: found.len(), newest_ms: snap.newest_ms()? })
}

/// `agg` of every series matching `sel`, per step.
pub fn query(
    snap: &Snapshot<'_>,
    sel: &Selector,
    range: TimeRange,
    step_ms: i64,
    agg: Agg,
) -> crate::Result<QueryResult> {
    let s = steps(snap, sel, range, step_ms)?;
    Ok(QueryResult {
        series: s.series.into_iter().map(|st| values(&st, step_ms, agg)).filter(|v| !v.points.is_empty()).collect(),
        matched: s.matched,
        newest_ms: s.newest_ms,
    })
}

/// How `query` combines the series a selector matches before aggregating each step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Merge {
    /// Each series on its own (the default).
    #[default]
    None,
    /// Every matching series merged into one: counts and sums added, sketches merged, so a
    /// percentile is that of all the calls together, never an average of percentiles.
    All,
    /// One merged series per value of this label (`op`, `outcome`, `service`…); series
    /// without the label merge under the empty value.
    By(String),
}

/// `agg` per step of the series matching `sel`, combined as `merge` says. A merged series is
/// named `name` (all) or `name{label="value"}` (by).
pub fn query_merged(
    snap: &Snapshot<'_>,
    sel: &Selector,
    range: TimeRange,
    step_ms: i64,
    agg: Agg,
    merge: &Merge,
) -> crate::Result<QueryResult> {
    let label = match merge {
        Merge::None => return query(snap, sel, range, step_ms, agg),
        Merge::All => None,
        Merge::By(l) => Some(l.as_str()),
    };
    let s = steps(snap, sel, range, step_ms)?;
    let mut groups: std::collections::BTreeMap<String, SeriesSteps> = std::collections::BTreeMap::new();
    for st in s.series {
        let value = label.map(|l| st.series.key.get(l).unwrap_or_default().to_owned());
        // Written as the store writes a key, so it reads like a selector.
        let name = match (label, &value) {
            (Some(l), Some(v)) => format!("{}{{{l}={v:?}}}", st.series.key.name),
            _ => st.series.key.name.to_string(),
        };
        match groups.get_mut(&name) {
            None => {
                groups.insert(name, st);
            }
            Some(g) => {
                let mut merged: std::collections::BTreeMap<i64, Point> =
                    std::mem::take(&mut g.steps).into_iter().collect();
                for (ts, p) in st.steps {
                    merged.entry(ts).and_modify(|m| m.merge(&p)).or_insert(p);
                }
                g.steps = merged.into_iter().collect();
            }
        }
    }
    let series = groups
        .into_iter()
        .map(|(name, st)| SeriesValues { series: name, ..values(&st, step_ms, agg) })
        .filter(|v| !v.points.is_empty())
        .collect();
    Ok(QueryResult { series, matched: s.matched, newest_ms: s.newest_ms })
}

/// `agg` of each step of one series.
pub fn values(s: &SeriesSteps, step_ms: i64, agg: Agg) -> SeriesValues {
    let secs = step_ms as f64 / 1000.0;
    // The series' own unit, else the convention's for its name (series written without one).
    let key = &s.series.key;
    let base = if key.unit.is_empty() {
        perfstore::convention::find(&key.name).map_or("", |m| m.unit).to_owned()
    } else {
        key.unit.to_string()
    };
    let unit = match agg {
        Agg::Count => String::new(),
        Agg::Rate if base.is_empty() || key.kind == perfstore::Kind::Counter => "1/s".into(),
        Agg::Rate => format!("{base}/s"),
        _ => base,
    };
    SeriesValues {
        series: s.series.key.to_string(),
        unit,
        points: s.steps.iter().filter_map(|(ts, p)| agg.apply(p, secs).map(|v| (rfc3339(*ts), v))).collect(),
    }
}

/// Every series with its stored point count, most points first, at most `top`.
pub fn series(snap: &Snapshot<'_>, top: Option<usize>) -> crate::Result<Vec<SeriesUsage>> {
    let mut rows = snap.series_usage()?;
    if let Some(n) = top {
        rows.truncate(n);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfstore::{Kind, Sample, SeriesId, SeriesKey};

    #[test]
    fn each_step_gets_its_aggregation() {
        let key = SeriesKey::new("api", "op.retries", Kind::Counter);
        let p = |ts: i64, v: f64| (ts, Point::from_sample(ts, &Sample::Counter(v)));
        let s = SeriesSteps { series: SeriesInfo { id: SeriesId(1), key }, steps: vec![p(0, 6.0), p(60_000, 3.0)] };
        let v = values(&s, 60_000, Agg::Rate);
        assert_eq!(v.series, r#"op.retries{service="api"}"#);
        assert_eq!(v.points, [("1970-01-01T00:00:00Z".to_owned(), 0.1), ("1970-01-01T00:01:00Z".to_owned(), 0.05)]);
    }

    #[test]
    fn merged_series_are_one_distribution_not_an_average_of_percentiles() {
        use perfstore::{Distribution, Reader, Registration, StoreOptions, Write, Writer};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let mut w = Writer::open(&db, StoreOptions::default()).unwrap();
        // Two outcomes of one op, and another op: 90 fast ok calls, 10 slow errors.
        let mut write = |op: &str, outcome: &str, values: &[f64]| {
            let key =
                SeriesKey::new("api", "op.duration", Kind::Distribution).label("op", op).label("outcome", outcome);
            let Registration::Registered(id) = w.register(&key, 0).unwrap() else { panic!("refused") };
            let d = Distribution::from_values(values);
            w.write(&[Write { series: id, ts_ms: 1_000, sample: Sample::Distribution(Box::new(d)) }]).unwrap();
        };
        write("vm.list", "ok", &[0.010; 90]);
        write("vm.list", "error", &[1.0; 10]);
        write("vm.start", "ok", &[0.5; 5]);
        w.close().unwrap();
        let mut r = Reader::open(&db).unwrap();
        let snap = r.snapshot().unwrap();
        let range = TimeRange::new(0, 60_000);
        let q = |sel: &str, agg: &str, merge: Merge| {
            let sel = Selector::parse(sel).unwrap();
            query_merged(&snap, &sel, range, 60_000, Agg::parse(agg).unwrap(), &merge).unwrap().series
        };
        let all = q(r#"op.duration{op="vm.list"}"#, "p95", Merge::All);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].series, "op.duration");
        // The 95th of 100 calls is a slow one (an average of the two p95s would be ~0.5 s).
        assert!((all[0].points[0].1 - 1.0).abs() < 0.02, "{:?}", all[0].points);
        let by = q("op.duration", "count", Merge::By("op".into()));
        let named: Vec<(&str, f64)> = by.iter().map(|s| (s.series.as_str(), s.points[0].1)).collect();
        assert_eq!(named, [(r#"op.duration{op="vm.list"}"#, 100.0), (r#"op.duration{op="vm.start"}"#, 5.0)]);
        assert_eq!(q("op.duration", "count", Merge::None).len(), 3, "no merge: each series");
    }
}
