//! OpenMetrics / Prometheus text with timestamps.
//!
//! Counters are cumulative: the first sample of a series is its baseline and each later one
//! adds `v[i] − v[i−1]`; a drop is a reset (the new value is the delta). Gauges (and untyped
//! samples) keep their value. Histograms become distributions: `_count` and `_sum` deltas are
//! exact, and each bucket's new events are filed at its upper bound `le` (events above the
//! last finite bound at that bound), so quantiles are exact to the sketch for files `perfctl
//! export` wrote and within a bucket's width for others. Summaries are skipped (their
//! quantiles cannot be merged). Names of the metric convention and the host metrics map back
//! (`op_duration_seconds` → `op.duration`, `system_cpu_utilization_ratio` →
//! `system.cpu.utilization`, former names too); other names are kept (a counter's `_total`
//! dropped). Timestamps may be seconds (OpenMetrics) or milliseconds (Prometheus text);
//! samples without one take `--at`.

use std::collections::HashMap;
use std::io::BufRead;

use perfstore::convention::prometheus::from_family;
use perfstore::{Distribution, Kind, Sample, SeriesKey, Sketch};

use super::sink::Sink;
use super::{BadLines, Options, Summary};

/// The store name and unit for a Prometheus family of `kind`.
fn store_name(family: &str, kind: Kind, unit: Option<&str>) -> (String, String) {
    if let Some(m) = from_family(family, kind) {
        return (m.name.to_owned(), m.unit.to_owned());
    }
    let name = match kind {
        Kind::Counter => family.strip_suffix("_total").unwrap_or(family).to_owned(),
        _ => family.to_owned(),
    };
    (name, unit.unwrap_or("").to_owned())
}

/// Sorted label pairs.
type Labels = Vec<(String, String)>;

/// A parsed sample line.
#[derive(Debug, Clone, PartialEq)]
struct SampleLine<'a> {
    name: &'a str,
    labels: Labels,
    value: f64,
    /// Seconds (OpenMetrics) or milliseconds (Prometheus text).
    ts: Option<f64>,
}

/// `name{a="b",c="d"} value [timestamp]` (an exemplar after ` # ` is ignored).
fn parse_sample(line: &str) -> Result<SampleLine<'_>, String> {
    let line = line.split(" # ").next().unwrap_or(line);
    let name_end = line.find(['{', ' ']).ok_or("expected `name{labels} value [timestamp]`")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("empty metric name".into());
    }
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = Some(*i);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut key = String::new();
            while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=') {
                key.push(c);
            }
            if key.trim().contains(char::is_whitespace) || chars.peek().is_none() {
                return Err("missing '}' after the labels".into());
            }
            if chars.next().map(|x| x.1) != Some('=') || chars.next().map(|x| x.1) != Some('"') {
                return Err(format!("expected label=\"value\" after '{key}'"));
            }
            let mut value = String::new();
            loop {
                match chars.next().map(|x| x.1) {
                    Some('\\') => match chars.next().map(|x| x.1) {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => return Err("unterminated label value".into()),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            }
            labels.push((key.trim().to_owned(), value));
        }
        let end = end.ok_or("missing '}' after the labels")?;
        rest = &body[end + 1..];
    }
    let mut parts = rest.split_whitespace();
    let value = parts.next().ok_or("missing value")?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().map_err(|_| format!("invalid value '{v}'"))?,
    };
    let ts = match parts.next() {
        Some(t) => Some(t.parse::<f64>().map_err(|_| format!("invalid timestamp '{t}'"))?),
        None => None,
    };
    Ok(SampleLine { name, labels, value, ts })
}

/// Seconds (OpenMetrics) or milliseconds (Prometheus text) to Unix ms, within what a store
/// keeps.
pub(crate) fn ts_ms(ts: f64) -> Result<i64, String> {
    let ms = if ts.abs() < 1e11 { ts * 1000.0 } else { ts }.round();
    let range = perfstore::TIME_RANGE_MS;
    if (*range.start() as f64..=*range.end() as f64).contains(&ms) {
        Ok(ms as i64)
    } else {
        Err(format!("timestamp {ts} is outside what a store keeps (1970-01-01 to 9998-12-31)"))
    }
}

#[derive(Debug, Default)]
struct HistPoint {
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: Option<f64>,
}

/// What a sample line is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    Counter,
    Gauge,
    Histogram,
}

/// One series being read: its key and what its next point depends on.
#[derive(Debug)]
struct Series {
    key: SeriesKey,
    /// Counters: the previous cumulative sample `(ts, value)`, and whether a delta came of it.
    counter: Option<(i64, f64)>,
    deltas: bool,
    /// Histograms: the point being read (its timestamp), and the one before.
    hist: Option<(i64, HistPoint)>,
    prev_hist: Option<HistPoint>,
}

/// Streaming state: what `# TYPE`/`# UNIT` said, and every series seen.
#[derive(Debug, Default)]
struct State {
    types: HashMap<String, String>,
    units: HashMap<String, String>,
    names: HashMap<(String, Family), (String, String)>,
    series: HashMap<(String, Labels), Series>,
}

/// Read OpenMetrics / Prometheus text from `input`, a line at a time, into `sink`.
pub(crate) fn import(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut Sink,
    bad: &mut BadLines,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut st = State::default();
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        if input.read_line(&mut line).map_err(|e| anyhow::anyhow!("reading line {}: {e}", n + 1))? == 0 {
            break;
        }
        n += 1;
        summary.lines = n;
        summary.bytes += line.len() as u64;
        if let Err(reason) = st.line(line.trim(), opts, sink, summary)? {
            bad.push((n, reason));
        }
        if n.is_multiple_of(100_000) {
            summary.progress();
        }
    }
    st.finish(sink, summary)
}

impl State {
    /// Take one line; `Ok(Err(reason))` for a bad line.
    fn line(
        &mut self,
        line: &str,
        opts: &Options,
        sink: &mut Sink,
        summary: &mut Summary,
    ) -> anyhow::Result<Result<(), String>> {
        if line.is_empty() || line == "# EOF" {
            return Ok(Ok(()));
        }
        if let Some(rest) = line.strip_prefix("# TYPE ").or_else(|| line.strip_prefix("# UNIT ")) {
            let mut p = rest.split_whitespace();
            if let (Some(n), Some(t)) = (p.next(), p.next()) {
                let map = if line.starts_with("# TYPE ") { &mut self.types } else { &mut self.units };
                map.insert(n.to_owned(), t.to_owned());
            }
            return Ok(Ok(()));
        }
        if line.starts_with('#') {
            return Ok(Ok(()));
        }
        let s = match parse_sample(line) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let at = match s.ts.map(ts_ms) {
            None => opts.at_ms,
            Some(Ok(t)) => t,
            Some(Err(e)) => return Ok(Err(e)),
        };
        // The family: the name itself when typed, else the name without a known suffix.
        let (family, suffix) = if self.types.contains_key(s.name) {
            (s.name, "")
        } else {
            ["_total", "_bucket", "_count", "_sum", "_created", "_gcount", "_gsum"]
                .iter()
                .find_map(|x| s.name.strip_suffix(x).filter(|f| self.types.contains_key(*f)).map(|f| (f, *x)))
                .unwrap_or((s.name, ""))
        };
        let kind = self.types.get(family).map_or("untyped", String::as_str).to_owned();
        match kind.as_str() {
            "histogram" => self.histogram(family, suffix, s, at, opts, sink, summary),
            "counter" | "gauge" | "untyped" | "unknown" if suffix == "_created" => Ok(Ok(())),
            "counter" => self.counter(family, s, at, opts, sink, summary).map(Ok),
            "gauge" | "untyped" | "unknown" => {
                let name = s.name.to_owned();
                let v = s.value;
                let series = self.series_of(&name, Family::Gauge, s.labels, opts);
                if v.is_finite() {
                    sink.push(&series.key, at, Sample::Gauge { last: v, min: v, max: v }, summary)?;
                }
                Ok(Ok(()))
            }
            other => {
                *summary.skipped.entry(format!("{other} samples (not importable)")).or_default() += 1;
                Ok(Ok(()))
            }
        }
    }

    fn series_of(&mut self, family: &str, kind: Family, mut labels: Labels, opts: &Options) -> &mut Series {
        labels.sort();
        let (name, unit) = self
            .names
            .entry((family.to_owned(), kind))
            .or_insert_with(|| {
                let k = match kind {
                    Family::Counter => Kind::Counter,
                    Family::Gauge => Kind::Gauge,
                    Family::Histogram => Kind::Distribution,
                };
                store_name(family, k, self.units.get(family).map(String::as_str))
            })
            .clone();
        self.series.entry((family.to_owned(), labels)).or_insert_with_key(|(_, labels)| {
            let service = labels.iter().find(|(k, _)| k == "service").map_or(opts.service.as_str(), |(_, v)| v);
            let k = match kind {
                Family::Counter => Kind::Counter,
                Family::Gauge => Kind::Gauge,
                Family::Histogram => Kind::Distribution,
            };
            let mut key = SeriesKey::new(service, &name, k).unit(&unit);
            for (k, v) in labels.iter().filter(|(k, _)| k != "service") {
                key.set_label(k, v);
            }
            Series { key, counter: None, deltas: false, hist: None, prev_hist: None }
        })
    }

    fn counter(
        &mut self,
        family: &str,
        s: SampleLine<'_>,
        at: i64,
        opts: &Options,
        sink: &mut Sink,
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        let v = s.value;
        let series = self.series_of(family, Family::Counter, s.labels, opts);
        match series.counter {
            Some((t, prev)) if at > t => {
                let delta = if v >= prev { v - prev } else { v };
                series.deltas = true;
                series.counter = Some((at, v));
                sink.push(&series.key, at, Sample::Counter(delta), summary)?;
            }
            Some(_) => *summary.skipped.entry("counter samples out of time order".into()).or_default() += 1,
            None => series.counter = Some((at, v)),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn histogram(
        &mut self,
        family: &str,
        suffix: &str,
        mut s: SampleLine<'_>,
        at: i64,
        opts: &Options,
        sink: &mut Sink,
        summary: &mut Summary,
    ) -> anyhow::Result<Result<(), String>> {
        let le = s.labels.iter().position(|(k, _)| k == "le").map(|p| s.labels.remove(p).1);
        let (name, value) = (s.name.to_owned(), s.value);
        let series = self.series_of(family, Family::Histogram, s.labels, opts);
        if series.hist.as_ref().is_some_and(|(t, _)| *t != at) {
            finish_hist(series, sink, summary)?;
        }
        let p = &mut series.hist.get_or_insert_with(|| (at, HistPoint::default())).1;
        Ok(match (suffix, le) {
            ("_bucket", Some(le)) => {
                match le.parse::<f64>().or_else(|_| if le == "+Inf" { Ok(f64::INFINITY) } else { Err(()) }) {
                    Ok(le) => {
                        p.buckets.push((le, value));
                        Ok(())
                    }
                    Err(()) => Err(format!("invalid le=\"{le}\"")),
                }
            }
            ("_count", _) => {
                p.count = Some(value);
                Ok(())
            }
            ("_sum", _) => {
                p.sum = Some(value);
                Ok(())
            }
            ("_created", _) => Ok(()),
            _ => Err(format!("unexpected sample '{name}' in histogram {family}")),
        })
    }

    /// The histogram points still being read, and what never became a point.
    fn finish(mut self, sink: &mut Sink, summary: &mut Summary) -> anyhow::Result<()> {
        let mut keys: Vec<(String, Labels)> = self.series.keys().cloned().collect();
        keys.sort();
        for k in keys {
            let Some(series) = self.series.get_mut(&k) else { continue };
            if series.hist.is_some() {
                finish_hist(series, sink, summary)?;
            }
            if series.counter.is_some() && !series.deltas {
                *summary.skipped.entry("counters with one sample (a baseline only)".into()).or_default() += 1;
            }
        }
        Ok(())
    }
}

/// Close a histogram series' current point: its events since the one before go to the store.
fn finish_hist(series: &mut Series, sink: &mut Sink, summary: &mut Summary) -> anyhow::Result<()> {
    let Some((t, mut p)) = series.hist.take() else { return Ok(()) };
    p.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(b) = &series.prev_hist {
        let reset = p.count.unwrap_or(0.0) < b.count.unwrap_or(0.0);
        if let Some(d) = histogram_delta(&p, if reset { None } else { Some(b) }) {
            sink.push(&series.key, t, Sample::Distribution(Box::new(d)), summary)?;
        }
    }
    series.prev_hist = Some(p);
    Ok(())
}

/// New events between two cumulative histogram points (None when nothing happened).
fn histogram_delta(now: &HistPoint, before: Option<&HistPoint>) -> Option<Distribution> {
    let count = now.count.unwrap_or(0.0) - before.and_then(|b| b.count).unwrap_or(0.0);
    if count <= 0.0 {
        return None;
    }
    let sum = now.sum.unwrap_or(0.0) - before.and_then(|b| b.sum).unwrap_or(0.0);
    let cum_before =
        |le: f64| -> f64 { before.and_then(|b| b.buckets.iter().find(|(l, _)| *l == le).map(|x| x.1)).unwrap_or(0.0) };
    let mut sketch = Sketch::new();
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut below = 0.0;
    let mut last_finite = None;
    for &(le, cum) in &now.buckets {
        let new_cum = cum - cum_before(le);
        let n = new_cum - below;
        below = new_cum;
        let at = if le.is_finite() { Some(le) } else { last_finite };
        if le.is_finite() {
            last_finite = Some(le);
        }
        if let Some(v) = at.filter(|_| n > 0.0) {
            sketch.add_weighted(v, n);
            min = min.min(v);
            max = max.max(v);
        }
    }
    if !min.is_finite() {
        // No buckets: the mean is all we know.
        let v = sum / count;
        sketch.add_weighted(v, count);
        (min, max) = (v, v);
    }
    Some(Distribution { count, sum, min, max, sketch })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse() {
        let s = parse_sample(r#"op_duration_seconds_bucket{op="vm.list",le="0.5",x="a\"b"} 3 1795327200.5"#).unwrap();
        assert_eq!(s.name, "op_duration_seconds_bucket");
        assert_eq!(
            s.labels,
            vec![("op".into(), "vm.list".into()), ("le".into(), "0.5".into()), ("x".into(), "a\"b".into())]
        );
        assert_eq!((s.value, s.ts), (3.0, Some(1_795_327_200.5)));
        assert_eq!(ts_ms(1_795_327_200.5), Ok(1_795_327_200_500));
        assert_eq!(ts_ms(1_795_327_200_500.0), Ok(1_795_327_200_500));
        for absurd in [-1.0, 1e300, f64::NAN, f64::INFINITY, 253_370_764_800_000.0, -9.2e18] {
            assert!(ts_ms(absurd).unwrap_err().contains("outside what a store keeps"), "{absurd}");
        }
        assert!(parse_sample("x{a=1} 2").is_err());
        assert!(parse_sample("x 2 soon").is_err());
        assert_eq!(parse_sample("up 1 # {trace=\"x\"} 1").unwrap().value, 1.0);
    }

    #[test]
    fn names_map_back_to_the_convention_and_its_former_names() {
        assert_eq!(store_name("op_duration_seconds", Kind::Distribution, None), ("op.duration".into(), "s".into()));
        assert_eq!(store_name("op_retries", Kind::Counter, None), ("op.retries".into(), String::new()));
        assert_eq!(store_name("op_retries_total", Kind::Counter, None), ("op.retries".into(), String::new()));
        assert_eq!(
            store_name("system_cpu_utilization_ratio", Kind::Gauge, None),
            ("system.cpu.utilization".into(), "1".into())
        );
        assert_eq!(
            store_name("system_cpu_logical_cpus", Kind::Gauge, None),
            ("system.cpu.logical.count".into(), "{cpu}".into()),
            "exports of stores written before the OpenTelemetry names import under the new name"
        );
        assert_eq!(store_name("http_requests_total", Kind::Counter, None), ("http_requests".into(), String::new()));
        assert_eq!(
            store_name("system_cpu_logical_count_value", Kind::Gauge, None),
            ("system.cpu.logical.count".into(), "{cpu}".into()),
            "a gauge whose name ends like a histogram sample is exported with _value and read back"
        );
        assert_eq!(
            perfstore::convention::prometheus::family_name("system.cpu.logical.count", Kind::Gauge, "{cpu}"),
            "system_cpu_logical_count_value"
        );
    }
}
