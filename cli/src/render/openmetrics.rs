//! `export` formats: OpenMetrics text with timestamps (for Prometheus tooling), CSV and JSON.
//!
//! * **OpenMetrics** (for `promtool tsdb create-blocks-from openmetrics`): names by the
//!   convention's Prometheus mapping; counters are cumulative `_total` starting from 0 one
//!   step before their first point; gauges give each step's last value (their min and max are
//!   not carried: OpenMetrics has no place for them); distributions are cumulative histograms
//!   whose `le` bounds are the sketch's own bins, so `perfctl import` rebuilds the same
//!   sketches and quantiles. Timestamps are Unix seconds at each step's start.
//! * **CSV**: `time,series,kind,count,sum,min,max,last,p50,p95,p99`, one row per series per
//!   step (counters: `sum` is the step's increase; quantiles only for distributions).
//! * **JSON**: `[{series, name, kind, unit, labels, points: [{time, count, sum, min, max,
//!   last, bins}]}]`, `bins` being a distribution's `[value, weight]` pairs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use perfanalysis::query::{SeriesSteps, Steps};
use perfanalysis::time::rfc3339;
use perfstore::convention::prometheus::{escape_help, escape_label_value, family_name, label_names};
use perfstore::{Kind, SeriesInfo};

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
    let names = label_names(s.key.labels().iter().map(|(k, _)| k.as_str()));
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

/// Write OpenMetrics text. Families whose Prometheus name collides with one of another kind
/// are left out and named on standard error.
pub fn write_openmetrics(e: &Steps, out: &mut dyn Write) -> std::io::Result<()> {
    let mut families: BTreeMap<String, (Kind, Vec<&SeriesSteps>)> = BTreeMap::new();
    for entry in &e.series {
        let k = &entry.series.key;
        let kind = if k.kind == Kind::Set { Kind::Gauge } else { k.kind };
        let family = family_name(&k.name, kind, &k.unit);
        let slot = families.entry(family.clone()).or_insert((kind, Vec::new()));
        if slot.0 != kind {
            eprintln!("left out {}: its name {family} is already a {} family", k, slot.0.as_str());
            continue;
        }
        slot.1.push(entry);
    }
    let mut text = String::new();
    for (family, (kind, members)) in &families {
        let om_type = match kind {
            Kind::Counter => "counter",
            Kind::Distribution => "histogram",
            _ => "gauge",
        };
        let names: Vec<&str> = {
            let mut n: Vec<&str> = members.iter().map(|m| m.series.key.name.as_str()).collect();
            n.dedup();
            n
        };
        let _ = writeln!(text, "# TYPE {family} {om_type}");
        let _ = writeln!(text, "# HELP {family} perfagent series {}", escape_help(&names.join(", ")));
        for (s, steps) in members.iter().map(|m| (&m.series, &m.steps)) {
            let first = steps.first().map_or(0, |p| p.0) - e.step_ms;
            match kind {
                Kind::Counter => {
                    let labels = om_labels(s, None);
                    let _ = writeln!(text, "{family}_total{labels} 0 {}", om_time(first));
                    let mut total = 0.0;
                    for (t, p) in steps {
                        total += p.sum;
                        let _ = writeln!(text, "{family}_total{labels} {} {}", om_num(total), om_time(*t));
                    }
                }
                Kind::Distribution => {
                    // Every bin the series uses in the window, so bucket counts stay cumulative.
                    let mut les: Vec<f64> = steps
                        .iter()
                        .filter_map(|(_, p)| p.sketch.as_ref())
                        .flat_map(|s| s.bin_values().into_iter().map(|b| b.0))
                        .collect();
                    les.sort_by(f64::total_cmp);
                    les.dedup();
                    let mut cum: Vec<f64> = vec![0.0; les.len()];
                    let (mut count, mut sum) = (0.0, 0.0);
                    let point = |text: &mut String, t: i64, cum: &[f64], count: f64, sum: f64| {
                        for (le, c) in les.iter().zip(cum) {
                            let _ = writeln!(
                                text,
                                "{family}_bucket{} {} {}",
                                om_labels(s, Some(("le", &om_num(*le)))),
                                om_num(*c),
                                om_time(t)
                            );
                        }
                        let _ = writeln!(
                            text,
                            "{family}_bucket{} {} {}",
                            om_labels(s, Some(("le", "+Inf"))),
                            om_num(count),
                            om_time(t)
                        );
                        let _ = writeln!(text, "{family}_count{} {} {}", om_labels(s, None), om_num(count), om_time(t));
                        let _ = writeln!(text, "{family}_sum{} {} {}", om_labels(s, None), om_num(sum), om_time(t));
                    };
                    point(&mut text, first, &cum, 0.0, 0.0);
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
                        point(&mut text, *t, &cum, count, sum);
                    }
                }
                _ => {
                    let labels = om_labels(s, None);
                    for (t, p) in steps {
                        let _ = writeln!(text, "{family}{labels} {} {}", om_num(p.last), om_time(*t));
                    }
                }
            }
            if text.len() > 1 << 20 {
                out.write_all(text.as_bytes())?;
                text.clear();
            }
        }
    }
    text.push_str("# EOF\n");
    out.write_all(text.as_bytes())
}

/// Write CSV.
pub fn write_csv(e: &Steps, out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = super::csv::writer(out);
    super::csv::record(&mut w, ["time", "series", "kind", "count", "sum", "min", "max", "last", "p50", "p95", "p99"])?;
    for st in &e.series {
        let s = &st.series;
        let series = s.key.to_string();
        for (t, p) in &st.steps {
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
    }
    w.flush()
}

/// Write JSON.
pub fn write_json(e: &Steps, out: &mut dyn Write) -> std::io::Result<()> {
    let doc: Vec<serde_json::Value> = e
        .series
        .iter()
        .map(|st| {
            let (s, steps) = (&st.series, &st.steps);
            let labels: serde_json::Map<String, serde_json::Value> =
                s.key.labels().iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
            serde_json::json!({
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
            })
        })
        .collect();
    super::json(&doc, out)
}
