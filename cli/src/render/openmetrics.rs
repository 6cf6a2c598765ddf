//! `export` formats: OpenMetrics text with timestamps (for Prometheus tooling), CSV and JSON,
//! written one series at a time (memory holds one series' steps, whatever the window).
//!
//! * **OpenMetrics** (for `promtool tsdb create-blocks-from openmetrics`): names by the
//!   convention's Prometheus mapping; counters are cumulative `_total` starting from 0 one
//!   step before their first point; gauges give each step's last value (their min and max are
//!   not carried: OpenMetrics has no place for them); distributions are cumulative
//!   histograms. Their `le` bounds are, by default ([`Buckets::Compact`]), 1-2-5 per decade
//!   over the values the series saw (about 3 per decade, like Prometheus' own layouts); with
//!   [`Buckets::Exact`] they are the sketch's own bins, so `perfctl import` rebuilds the same
//!   sketches and quantiles (a round trip, at some 30× the size). Timestamps are Unix seconds
//!   at each step's start.
//! * **CSV**: `time,series,kind,count,sum,min,max,last,p50,p95,p99`, one row per series per
//!   step (counters: `sum` is the step's increase; quantiles only for distributions).
//! * **JSON**: `[{series, name, kind, unit, labels, points: [{time, count, sum, min, max,
//!   last, bins}]}]`, `bins` being a distribution's `[value, weight]` pairs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use perfanalysis::time::rfc3339;
use perfstore::convention::prometheus::{escape_help, escape_label_value, family_name, label_names};
use perfstore::{Kind, Point, SeriesInfo, Snapshot, TimeRange};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// OpenMetrics text with timestamps (ends with `# EOF`).
    Openmetrics,
    /// One row per series per step.
    Csv,
    /// One JSON document.
    Json,
}

fn om_labels(s: &SeriesInfo, extra: Option<(&str, &str)>) -> String {
    let names = label_names(s.key.labels().map(|(k, _)| k));
    let mut parts: Vec<String> =
        names.iter().zip(s.key.labels()).map(|(n, (_, v))| format!("{n}=\"{}\"", escape_label_value(v))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn om_time(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn om_num(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Histogram bucket layouts of OpenMetrics export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Buckets {
    /// 1-2-5 per decade over the values seen: small files, quantiles within a bucket.
    #[default]
    Compact,
    /// Every sketch bin: exact round trips through `perfctl import`, much larger files.
    Exact,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Series with data in the window.
    pub series: usize,
    /// Steps with data, over all series.
    pub points: usize,
    /// Histogram bucket samples written (OpenMetrics).
    pub buckets: usize,
    /// Lines written.
    pub lines: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Counts the bytes and lines that pass through.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
    lines: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What [`Export::each`] calls with each series and its steps.
type SeriesFn<'f> = dyn FnMut(&SeriesInfo, &[(i64, Point)]) -> anyhow::Result<()> + 'f;

/// One export: which series, over which window, at which step.
#[allow(missing_debug_implementations)] // holds a Snapshot (an open SQLite transaction)
pub struct Export<'a, 's> {
    /// The store snapshot.
    pub snap: &'a Snapshot<'s>,
    /// Series to export, in the order `Snapshot::series` gives them.
    pub series: &'a [SeriesInfo],
    /// The window.
    pub range: TimeRange,
    /// Step length, ms.
    pub step_ms: i64,
    /// Histogram layout (OpenMetrics).
    pub buckets: Buckets,
}

impl Export<'_, '_> {
    /// Write in `format` to `out`, one series at a time.
    pub fn write(&self, format: Format, out: &mut dyn Write) -> anyhow::Result<Written> {
        let mut c = Counting { inner: out, bytes: 0, lines: 0 };
        let mut w = match format {
            Format::Openmetrics => self.openmetrics(&mut c)?,
            Format::Csv => self.csv(&mut c)?,
            Format::Json => self.json(&mut c)?,
        };
        c.flush()?;
        (w.bytes, w.lines) = (c.bytes, c.lines);
        Ok(w)
    }

    /// Each of `series` with data in the window, with its steps (read one series at a time).
    fn each<'s>(
        &self,
        series: impl IntoIterator<Item = &'s SeriesInfo>,
        f: &mut SeriesFn<'_>,
    ) -> anyhow::Result<Written> {
        let mut w = Written::default();
        for s in series {
            let r = self.snap.range(s, self.range, self.step_ms)?;
            if r.steps.is_empty() {
                continue;
            }
            w.series += 1;
            w.points += r.steps.len();
            f(s, &r.steps)?;
        }
        Ok(w)
    }

    /// OpenMetrics text. Families whose Prometheus name collides with one of another kind are
    /// left out and named on standard error.
    fn openmetrics(&self, out: &mut dyn Write) -> anyhow::Result<Written> {
        let mut families: BTreeMap<String, (Kind, Vec<&SeriesInfo>)> = BTreeMap::new();
        for s in self.series {
            let k = &s.key;
            let kind = if k.kind == Kind::Set { Kind::Gauge } else { k.kind };
            let family = family_name(&k.name, kind, &k.unit);
            let slot = families.entry(family.clone()).or_insert((kind, Vec::new()));
            if slot.0 != kind {
                eprintln!("left out {k}: its name {family} is already a {} family", slot.0.as_str());
                continue;
            }
            slot.1.push(s);
        }
        let mut total = Written::default();
        let mut text = String::new();
        for (family, (kind, members)) in &families {
            let mut header = false;
            let names: Vec<&str> = {
                let mut n: Vec<&str> = members.iter().map(|m| m.key.name.as_str()).collect();
                n.dedup();
                n
            };
            let w = self.each(members.iter().copied(), &mut |s, steps| {
                // The family's header with its first series that has data.
                if !header {
                    let om_type = match kind {
                        Kind::Counter => "counter",
                        Kind::Distribution => "histogram",
                        _ => "gauge",
                    };
                    let _ = writeln!(text, "# TYPE {family} {om_type}");
                    let _ = writeln!(text, "# HELP {family} perfagent series {}", escape_help(&names.join(", ")));
                    header = true;
                }
                total.buckets += om_series(&mut text, family, *kind, s, steps, self.step_ms, self.buckets);
                if text.len() > 1 << 20 {
                    out.write_all(text.as_bytes())?;
                    text.clear();
                }
                Ok(())
            })?;
            total.series += w.series;
            total.points += w.points;
        }
        text.push_str("# EOF\n");
        out.write_all(text.as_bytes())?;
        Ok(total)
    }

    fn csv(&self, out: &mut dyn Write) -> anyhow::Result<Written> {
        let mut w = super::csv::writer(out);
        super::csv::record(
            &mut w,
            ["time", "series", "kind", "count", "sum", "min", "max", "last", "p50", "p95", "p99"],
        )?;
        let written = self.each(self.series, &mut |s, steps| {
            let series = s.key.to_string();
            for (t, p) in steps {
                let q = |q: f64| p.quantile(q).map_or(String::new(), |v| format!("{v}"));
                let last = if s.key.kind == Kind::Distribution { String::new() } else { format!("{}", p.last) };
                super::csv::record(
                    &mut w,
                    [
                        rfc3339(*t),
                        series.clone(),
                        s.key.kind.as_str().to_owned(),
                        format!("{}", p.count),
                        format!("{}", p.sum),
                        format!("{}", p.min),
                        format!("{}", p.max),
                        last,
                        q(0.5),
                        q(0.95),
                        q(0.99),
                    ],
                )?;
            }
            Ok(())
        })?;
        w.flush()?;
        Ok(written)
    }

    fn json(&self, out: &mut dyn Write) -> anyhow::Result<Written> {
        out.write_all(b"[")?;
        let mut first = true;
        let written = self.each(self.series, &mut |s, steps| {
            let labels: serde_json::Map<String, serde_json::Value> =
                s.key.labels().map(|(k, v)| (k.to_owned(), v.into())).collect();
            let doc = serde_json::json!({
                "series": s.key.to_string(),
                "name": s.key.name,
                "kind": s.key.kind.as_str(),
                "unit": s.key.unit,
                "labels": labels,
                "points": steps.iter().map(|(t, p)| {
                    let mut v = serde_json::json!({
                        "time": rfc3339(*t), "count": p.count, "sum": p.sum, "min": p.min, "max": p.max, "last": p.last,
                    });
                    if let Some(sk) = &p.sketch {
                        v["bins"] = sk.bin_values().into_iter().map(|(x, w)| serde_json::json!([x, w])).collect();
                    }
                    v
                }).collect::<Vec<_>>(),
            });
            out.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            serde_json::to_writer(&mut *out, &doc).map_err(std::io::Error::from)?;
            Ok(())
        })?;
        out.write_all(b"\n]\n")?;
        Ok(written)
    }
}

/// 1-2-5 per decade from below the smallest positive value to at least the largest, plus 0
/// when a value is at or below it.
pub fn compact_bounds(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let (mut lo, mut hi, mut nonpositive) = (f64::INFINITY, 0.0f64, false);
    for v in values {
        if v > 0.0 && v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        } else if v <= 0.0 {
            nonpositive = true;
        }
    }
    let mut out = Vec::new();
    if nonpositive {
        out.push(0.0);
    }
    if lo.is_finite() {
        let bound = |i: i32| -> f64 {
            let m = [1, 2, 5][i.rem_euclid(3) as usize];
            format!("{m}e{}", i.div_euclid(3)).parse().unwrap_or(f64::INFINITY)
        };
        // The largest bound at or below the smallest value, then up to the largest.
        let mut i = 3 * lo.log10().floor() as i32;
        while i > -1000 && bound(i) > lo {
            i -= 1;
        }
        while i < 1000 && bound(i + 1) <= lo {
            i += 1;
        }
        while bound(i).is_finite() {
            out.push(bound(i));
            if bound(i) >= hi {
                break;
            }
            i += 1;
        }
    }
    out
}

/// One series of a family; returns the bucket samples written.
fn om_series(
    text: &mut String,
    family: &str,
    kind: Kind,
    s: &SeriesInfo,
    steps: &[(i64, Point)],
    step_ms: i64,
    layout: Buckets,
) -> usize {
    let first = steps.first().map_or(0, |p| p.0) - step_ms;
    match kind {
        Kind::Counter => {
            let labels = om_labels(s, None);
            let _ = writeln!(text, "{family}_total{labels} 0 {}", om_time(first));
            let mut total = 0.0;
            for (t, p) in steps {
                total += p.sum;
                let _ = writeln!(text, "{family}_total{labels} {} {}", om_num(total), om_time(*t));
            }
            0
        }
        Kind::Distribution => {
            let values = steps.iter().filter_map(|(_, p)| p.sketch.as_ref()).flat_map(|s| s.bin_values()).map(|b| b.0);
            let les: Vec<f64> = match layout {
                Buckets::Compact => compact_bounds(values),
                Buckets::Exact => {
                    // Every bin the series uses in the window, so bucket counts stay cumulative.
                    let mut les: Vec<f64> = values.collect();
                    les.sort_by(f64::total_cmp);
                    les.dedup();
                    les
                }
            };
            let bucket_labels: Vec<String> = les
                .iter()
                .map(|le| om_num(*le))
                .chain(std::iter::once("+Inf".to_owned()))
                .map(|le| om_labels(s, Some(("le", &le))))
                .collect();
            let plain = om_labels(s, None);
            let mut cum: Vec<f64> = vec![0.0; les.len()];
            let (mut count, mut sum) = (0.0, 0.0);
            let mut buckets = 0;
            let mut point = |text: &mut String, t: i64, cum: &[f64], count: f64, sum: f64| {
                let time = om_time(t);
                for (labels, c) in bucket_labels.iter().zip(cum.iter().chain(std::iter::once(&count))) {
                    let _ = writeln!(text, "{family}_bucket{labels} {} {time}", om_num(*c));
                }
                buckets += bucket_labels.len();
                let _ = writeln!(text, "{family}_count{plain} {} {time}", om_num(count));
                let _ = writeln!(text, "{family}_sum{plain} {} {time}", om_num(sum));
            };
            point(text, first, &cum, 0.0, 0.0);
            for (t, p) in steps {
                count += p.count;
                sum += p.sum;
                if let Some(sk) = &p.sketch {
                    for (v, w) in sk.bin_values() {
                        let i = les.partition_point(|le| *le < v);
                        for c in &mut cum[i..] {
                            *c += w;
                        }
                    }
                }
                point(text, *t, &cum, count, sum);
            }
            buckets
        }
        _ => {
            let labels = om_labels(s, None);
            for (t, p) in steps {
                let _ = writeln!(text, "{family}{labels} {} {}", om_num(p.last), om_time(*t));
            }
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_bounds_are_1_2_5_per_decade_around_the_values() {
        assert_eq!(compact_bounds([0.012, 0.3, 1.7].into_iter()), [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]);
        assert_eq!(compact_bounds([0.0, 5.0].into_iter()), [0.0, 5.0]);
        assert_eq!(compact_bounds([3.0].into_iter()), [2.0, 5.0]);
        assert!(compact_bounds(std::iter::empty()).is_empty());
        // Every value is at or below the last bound, and the first bound is not far below the
        // smallest value.
        for v in [1e-9, 0.000_37, 1.0, 9.99, 123_456.0, 1e300] {
            let b = compact_bounds([v].into_iter());
            assert!(*b.last().unwrap() >= v && b[0] <= v && b[0] >= v / 2.5, "{v}: {b:?}");
        }
    }
}
