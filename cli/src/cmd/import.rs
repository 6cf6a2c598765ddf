//! `perfctl import FILE`: OpenMetrics / Prometheus text with timestamps, CSV, or folded
//! stacks for an operation, written to the store (which takes the writer lock: stop a running
//! agent first, or send the data to it instead).
//!
//! * **OpenMetrics / Prometheus text.** Counters are cumulative: the first sample of a series
//!   is its baseline and each later one adds `v[i] − v[i−1]`; a drop is a reset (the new value
//!   is the delta). Gauges (and untyped samples) keep their value. Histograms become
//!   distributions: `_count` and `_sum` deltas are exact, and each bucket's new events are
//!   filed at its upper bound `le` (events above the last finite bound at that bound), so
//!   quantiles are exact to the sketch for files `perfctl export` wrote and within a bucket's
//!   width for others. Summaries are skipped (their quantiles cannot be merged). Names of the
//!   metric convention and the host metrics map back (`op_duration_seconds` →
//!   `op.duration`, `system_cpu_utilization_ratio` → `system.cpu.utilization`); other names
//!   are kept (a counter's `_total` dropped). Timestamps may be seconds (OpenMetrics) or
//!   milliseconds (Prometheus text); samples without one take `--at`.
//! * **CSV** as `perfctl export --format csv` writes it (`time,series,kind,count,sum,min,max,
//!   last,…`), or `time,series,value` (gauges), with RFC 3339 or Unix-second times.
//! * **Folded stacks** (`frame;frame;… COUNT`, e.g. `py-spy record --format raw`) for `--op`,
//!   filed at `--at`. A bad line refuses the whole file.
//!
//! Bad lines of the other formats are reported with their line numbers and skipped; the
//! summary says what was taken and what was not.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use perfstore::{
    Distribution, Kind, ProfileWindow, Registration, Sample, Selector, SeriesKey, Sketch, StoreOptions, Write, Writer,
};

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// OpenMetrics or Prometheus text exposition with timestamps.
    Openmetrics,
    /// CSV as `perfctl export --format csv` writes it.
    Csv,
    /// Folded stacks for `--op`.
    Folded,
}

/// What to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// The file (`-` for standard input).
    pub file: PathBuf,
    /// The format, else guessed.
    pub format: Option<Format>,
    /// Operation of folded stacks.
    pub op: Option<String>,
    /// Service for data that names none.
    pub service: String,
    /// Time for folded stacks and samples without a timestamp, Unix ms.
    pub at_ms: i64,
    /// Now, Unix ms (series registration time).
    pub now_ms: i64,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The file.
    pub file: String,
    /// The store.
    pub db: String,
    /// Lines read.
    pub lines: usize,
    /// Points written.
    pub points: usize,
    /// Series written to.
    pub series: usize,
    /// Folded stacks written.
    pub stacks: usize,
    /// Profile samples written.
    pub samples: u64,
    /// Skipped lines or samples by reason.
    pub skipped: BTreeMap<String, usize>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.stacks > 0 {
            write!(
                f,
                "imported {} stacks ({} samples) from {} into {}",
                self.stacks, self.samples, self.file, self.db
            )?;
        } else {
            write!(
                f,
                "imported {} points of {} series ({} lines) from {} into {}",
                self.points, self.series, self.lines, self.file, self.db
            )?;
        }
        let skipped: usize = self.skipped.values().sum();
        if skipped > 0 {
            let why: Vec<String> = self.skipped.iter().map(|(r, n)| format!("{n} {r}")).collect();
            write!(f, "; skipped {skipped}: {}", why.join(", "))?;
        }
        Ok(())
    }
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(text)
}

fn guess(path: &Path, text: &str, op: Option<&str>) -> anyhow::Result<Format> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    Ok(match ext {
        "csv" => Format::Csv,
        "folded" | "collapsed" => Format::Folded,
        "om" | "prom" | "openmetrics" => Format::Openmetrics,
        _ if op.is_some() => Format::Folded,
        _ if text.starts_with("time,") => Format::Csv,
        _ if text.lines().any(|l| l.starts_with("# TYPE ") || l == "# EOF") => Format::Openmetrics,
        _ => anyhow::bail!(
            "cannot tell the format of {}: pass --format openmetrics|csv|folded (folded stacks also need --op)",
            path.display()
        ),
    })
}

/// Run the import.
pub fn run(db: &Path, opts: &Options) -> anyhow::Result<Summary> {
    let text = read_input(&opts.file)?;
    let format = match opts.format {
        Some(f) => f,
        None => guess(&opts.file, &text, opts.op.as_deref())?,
    };
    let mut summary = Summary {
        file: opts.file.display().to_string(),
        db: db.display().to_string(),
        lines: text.lines().count(),
        ..Summary::default()
    };
    if format == Format::Folded {
        let op = opts.op.as_deref().context("folded stacks belong to an operation: pass --op NAME")?;
        let stacks = perfstore::parse_folded(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was imported", opts.file.display()))?;
        anyhow::ensure!(!stacks.is_empty(), "{}: no stacks with samples; nothing was imported", opts.file.display());
        summary.stacks = stacks.len();
        summary.samples = stacks.iter().map(|s| s.samples).sum();
        let mut w = Writer::open(db, StoreOptions::default())?;
        w.write_profiles(&[ProfileWindow {
            service: opts.service.clone(),
            op: op.to_owned(),
            start_ms: opts.at_ms,
            end_ms: opts.at_ms + 1,
            stacks,
        }])?;
        w.close()?;
        return Ok(summary);
    }
    let mut bad: Vec<(usize, String)> = Vec::new();
    let series = match format {
        Format::Csv => parse_csv(&text, opts, &mut bad, &mut summary),
        _ => parse_openmetrics(&text, opts, &mut bad, &mut summary),
    };
    for (line, reason) in bad.iter().take(20) {
        eprintln!("{}:{line}: {reason}; skipped", opts.file.display());
    }
    if bad.len() > 20 {
        eprintln!("{}: … and {} more bad lines", opts.file.display(), bad.len() - 20);
    }
    if !bad.is_empty() {
        summary.skipped.insert("bad lines".into(), bad.len());
    }
    write(db, series, opts, &mut summary)?;
    Ok(summary)
}

/// Points per series, in file order.
type Parsed = Vec<(SeriesKey, Vec<(i64, Sample)>)>;

fn write(db: &Path, series: Parsed, opts: &Options, summary: &mut Summary) -> anyhow::Result<()> {
    let total: usize = series.iter().map(|s| s.1.len()).sum();
    if total == 0 {
        anyhow::bail!("{}: no points to import ({summary}); nothing was written", opts.file.display());
    }
    let mut w = Writer::open(db, StoreOptions::default())?;
    let keys: Vec<SeriesKey> = series.iter().map(|s| s.0.clone()).collect();
    let regs = w.register_all(&keys, opts.now_ms)?;
    let progress = std::io::stderr().is_terminal() && total > 200_000;
    let mut batch: Vec<Write> = Vec::with_capacity(50_000);
    let mut done = 0usize;
    for ((key, points), reg) in series.into_iter().zip(regs) {
        let id = match reg {
            Registration::Registered(id) => id,
            Registration::Rejected(reason) => {
                eprintln!("the store refused {key} ({reason:?}); its {} points were skipped", points.len());
                *summary.skipped.entry(format!("points of refused series ({reason:?})")).or_default() += points.len();
                continue;
            }
        };
        summary.series += 1;
        for (ts_ms, sample) in points {
            batch.push(Write { series: id, ts_ms, sample });
            if batch.len() == batch.capacity() {
                summary.points += w.write(&batch)?.points;
                done += batch.len();
                batch.clear();
                if progress {
                    eprint!("\rimported {done} of {total} points");
                }
            }
        }
    }
    summary.points += w.write(&batch)?.points;
    if progress {
        eprintln!("\rimported {total} of {total} points");
    }
    w.close()?;
    Ok(())
}

/// Convention names, so Prometheus names map back: `(name, kind, unit)`.
const KNOWN: &[(&str, Kind, &str)] = &[
    ("op.duration", Kind::Distribution, "s"),
    ("op.phase.duration", Kind::Distribution, "s"),
    ("op.retries", Kind::Counter, ""),
    ("op.batch.size", Kind::Distribution, ""),
    ("op.inflight", Kind::Gauge, ""),
    ("pool.acquire", Kind::Counter, ""),
    ("pool.size", Kind::Gauge, ""),
    ("pool.evictions", Kind::Counter, ""),
    ("cache.requests", Kind::Counter, ""),
    ("cache.refresh", Kind::Counter, ""),
    ("cache.size", Kind::Gauge, ""),
    ("circuit.state", Kind::Gauge, ""),
    ("circuit.transitions", Kind::Counter, ""),
    ("system.cpu.utilization", Kind::Gauge, "1"),
    ("system.cpu.logical_cpus", Kind::Gauge, "{cpu}"),
    ("container.cpu.limit", Kind::Gauge, "{cpu}"),
    ("system.cpu.load_average.1m", Kind::Gauge, "1"),
    ("system.memory.usage", Kind::Gauge, "By"),
    ("system.memory.limit", Kind::Gauge, "By"),
    ("system.memory.available", Kind::Gauge, "By"),
    ("system.memory.utilization", Kind::Gauge, "1"),
    ("system.paging.usage", Kind::Gauge, "By"),
    ("system.filesystem.usage", Kind::Gauge, "By"),
    ("system.filesystem.utilization", Kind::Gauge, "1"),
    ("system.disk.io", Kind::Counter, "By"),
    ("system.network.io", Kind::Counter, "By"),
    ("process.memory.usage", Kind::Gauge, "By"),
    ("process.cpu.time", Kind::Counter, "s"),
];

/// The store name, kind and unit for a Prometheus family of `kind`.
fn store_name(family: &str, kind: Kind, unit: Option<&str>) -> (String, String) {
    let prom =
        if kind == Kind::Counter && !family.ends_with("_total") { format!("{family}_total") } else { family.into() };
    // With the unit suffix as the agent writes it, or without (a StatsD client's gauge has
    // no unit, so `system.cpu.utilization` sent over StatsD exports as
    // `system_cpu_utilization`).
    for (name, k, u) in KNOWN {
        if *k == kind
            && (perfagent::exposition::prom_name(name, *k, u) == prom
                || perfagent::exposition::prom_name(name, *k, "") == prom)
        {
            return ((*name).to_owned(), (*u).to_owned());
        }
    }
    let name =
        if kind == Kind::Counter { prom.strip_suffix("_total").unwrap_or(&prom).to_owned() } else { family.into() };
    (name, unit.unwrap_or("").to_owned())
}

/// Sorted label pairs.
type Labels = Vec<(String, String)>;

/// A parsed sample line: name, labels, value, timestamp.
type SampleLine<'a> = (&'a str, Labels, f64, Option<f64>);

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
    Ok((name, labels, value, ts))
}

/// Seconds (OpenMetrics) or milliseconds (Prometheus text) to Unix ms.
fn ts_ms(ts: f64) -> i64 {
    if ts.abs() < 1e11 { (ts * 1000.0).round() as i64 } else { ts.round() as i64 }
}

#[derive(Default)]
struct HistPoint {
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: Option<f64>,
}

fn parse_openmetrics(text: &str, opts: &Options, bad: &mut Vec<(usize, String)>, summary: &mut Summary) -> Parsed {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut units: HashMap<String, String> = HashMap::new();
    // Per (family, labels): scalar samples, or histogram points by time.
    let mut scalars: BTreeMap<(String, Labels), Vec<(i64, f64)>> = BTreeMap::new();
    let mut hists: BTreeMap<(String, Labels), BTreeMap<i64, HistPoint>> = BTreeMap::new();
    let mut order: Vec<(String, Labels)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut p = rest.split_whitespace();
            if let (Some(n), Some(t)) = (p.next(), p.next()) {
                types.insert(n.to_owned(), t.to_owned());
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# UNIT ") {
            let mut p = rest.split_whitespace();
            if let (Some(n), Some(u)) = (p.next(), p.next()) {
                units.insert(n.to_owned(), u.to_owned());
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, mut labels, value, ts) = match parse_sample(line) {
            Ok(s) => s,
            Err(e) => {
                bad.push((i + 1, e));
                continue;
            }
        };
        let at = ts.map_or(opts.at_ms, ts_ms);
        // The family: the name itself when typed, else the name without a known suffix.
        let (family, suffix) = if types.contains_key(name) {
            (name, "")
        } else {
            ["_total", "_bucket", "_count", "_sum", "_created", "_gcount", "_gsum"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)).map(|f| (f, *s)))
                .unwrap_or((name, ""))
        };
        let kind = types.get(family).map_or("untyped", String::as_str);
        match kind {
            "histogram" => {
                let le = labels.iter().position(|(k, _)| k == "le").map(|p| labels.remove(p).1);
                labels.sort();
                let key = (family.to_owned(), labels);
                let point = hists.entry(key.clone()).or_insert_with(|| {
                    order.push(key.clone());
                    BTreeMap::new()
                });
                let p = point.entry(at).or_default();
                match (suffix, le) {
                    ("_bucket", Some(le)) => {
                        match le.parse::<f64>().or_else(|_| if le == "+Inf" { Ok(f64::INFINITY) } else { Err(()) }) {
                            Ok(le) => p.buckets.push((le, value)),
                            Err(()) => bad.push((i + 1, format!("invalid le=\"{le}\""))),
                        }
                    }
                    ("_count", _) => p.count = Some(value),
                    ("_sum", _) => p.sum = Some(value),
                    ("_created", _) => {}
                    _ => bad.push((i + 1, format!("unexpected sample '{name}' in histogram {family}"))),
                }
            }
            "counter" | "gauge" | "untyped" | "unknown" => {
                if suffix == "_created" {
                    continue;
                }
                labels.sort();
                let fam = if kind == "counter" { family.to_owned() } else { name.to_owned() };
                let key = (fam, labels);
                scalars
                    .entry(key.clone())
                    .or_insert_with(|| {
                        order.push(key.clone());
                        Vec::new()
                    })
                    .push((at, value));
            }
            other => {
                *summary.skipped.entry(format!("{other} samples (not importable)")).or_default() += 1;
            }
        }
    }

    let mut out: Parsed = Vec::new();
    for key in order {
        let (family, labels) = &key;
        let kind_text = types.get(family).map_or("untyped", String::as_str);
        let kind = match kind_text {
            "counter" => Kind::Counter,
            "histogram" => Kind::Distribution,
            _ => Kind::Gauge,
        };
        let (name, unit) = store_name(family, kind, units.get(family).map(String::as_str));
        let service = labels.iter().find(|(k, _)| k == "service").map_or(opts.service.as_str(), |(_, v)| v);
        let mut sk = SeriesKey::new(service, &name, kind).unit(&unit);
        for (k, v) in labels.iter().filter(|(k, _)| k != "service") {
            sk = sk.label(k, v);
        }
        let mut points = Vec::new();
        match kind {
            Kind::Counter => {
                let mut s = scalars.remove(&key).unwrap_or_default();
                s.sort_by_key(|p| p.0);
                for w in s.windows(2) {
                    let (prev, (t, v)) = (w[0].1, w[1]);
                    let delta = if v >= prev { v - prev } else { v };
                    points.push((t, Sample::Counter(delta)));
                }
                if s.len() == 1 {
                    *summary.skipped.entry("counters with one sample (a baseline only)".into()).or_default() += 1;
                }
            }
            Kind::Distribution => {
                let h = hists.remove(&key).unwrap_or_default();
                let mut prev: Option<HistPoint> = None;
                for (t, mut p) in h {
                    p.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    if let Some(b) = &prev {
                        let reset = p.count.unwrap_or(0.0) < b.count.unwrap_or(0.0);
                        let d = histogram_delta(&p, if reset { None } else { Some(b) });
                        if let Some(d) = d {
                            points.push((t, Sample::Distribution(Box::new(d))));
                        }
                    }
                    prev = Some(p);
                }
            }
            _ => {
                for (t, v) in scalars.remove(&key).unwrap_or_default() {
                    if v.is_finite() {
                        points.push((t, Sample::Gauge { last: v, min: v, max: v }));
                    }
                }
            }
        }
        out.push((sk, points));
    }
    out
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

fn parse_csv(text: &str, opts: &Options, bad: &mut Vec<(usize, String)>, summary: &mut Summary) -> Parsed {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else { return Vec::new() };
    let cols: Vec<String> = split_csv(header).into_iter().map(|c| c.trim().to_lowercase()).collect();
    let col = |n: &str| cols.iter().position(|c| c == n);
    let (Some(t_col), Some(s_col)) = (col("time"), col("series")) else {
        bad.push((1, "expected a header with `time` and `series` columns".into()));
        return Vec::new();
    };
    let (kind_col, value_col) = (col("kind"), col("value"));
    let [sum_col, min_col, max_col, last_col] = ["sum", "min", "max", "last"].map(col);
    let mut by_series: BTreeMap<String, (SeriesKey, Vec<(i64, Sample)>)> = BTreeMap::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_csv(line);
        let get = |c: Option<usize>| c.and_then(|c| f.get(c)).map(|s| s.trim()).filter(|s| !s.is_empty());
        let num = |c: Option<usize>| get(c).and_then(|s| s.parse::<f64>().ok());
        let Some(time) = get(Some(t_col)) else {
            bad.push((i + 1, "missing time".into()));
            continue;
        };
        let ts = match humantime::parse_rfc3339_weak(time) {
            Ok(t) => t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
            Err(_) => match time.parse::<f64>() {
                Ok(v) => ts_ms(v),
                Err(_) => {
                    bad.push((i + 1, format!("invalid time '{time}': expected RFC 3339 or Unix seconds")));
                    continue;
                }
            },
        };
        let Some(series) = get(Some(s_col)) else {
            bad.push((i + 1, "missing series".into()));
            continue;
        };
        let kind = get(kind_col).unwrap_or("gauge");
        let sample = match kind {
            "counter" => num(sum_col).or(num(value_col)).map(Sample::Counter),
            "gauge" | "set" => num(last_col).or(num(value_col)).map(|v| Sample::Gauge {
                last: v,
                min: num(min_col).unwrap_or(v),
                max: num(max_col).unwrap_or(v),
            }),
            "distribution" => {
                *summary
                    .skipped
                    .entry("distribution rows (CSV carries no sketch; use OpenMetrics)".into())
                    .or_default() += 1;
                continue;
            }
            other => {
                bad.push((i + 1, format!("unknown kind '{other}': expected counter, gauge or distribution")));
                continue;
            }
        };
        let Some(sample) = sample else {
            bad.push((i + 1, "missing or invalid value".into()));
            continue;
        };
        let entry = match by_series.get_mut(series) {
            Some(e) => e,
            None => {
                let sel = match Selector::parse(series) {
                    Ok(s) if !s.name.is_empty() && !s.name.contains(['*', '?']) => s,
                    _ => {
                        bad.push((i + 1, format!("invalid series '{series}': expected name{{k=\"v\",…}}")));
                        continue;
                    }
                };
                let service =
                    sel.matchers.iter().find(|m| m.key == "service").map_or(opts.service.as_str(), |m| &m.value);
                let k = if kind == "counter" { Kind::Counter } else { Kind::Gauge };
                let mut key = SeriesKey::new(service, &sel.name, k);
                for m in sel.matchers.iter().filter(|m| m.key != "service") {
                    key = key.label(&m.key, &m.value);
                }
                by_series.entry(series.to_owned()).or_insert((key, Vec::new()))
            }
        };
        entry.1.push((ts, sample));
    }
    by_series.into_values().collect()
}

/// Split one CSV line (RFC 4180 quotes).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("one field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().expect("one field").push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse() {
        let (n, l, v, t) =
            parse_sample(r#"op_duration_seconds_bucket{op="vm.list",le="0.5",x="a\"b"} 3 1795327200.5"#).unwrap();
        assert_eq!(n, "op_duration_seconds_bucket");
        assert_eq!(l, vec![("op".into(), "vm.list".into()), ("le".into(), "0.5".into()), ("x".into(), "a\"b".into())]);
        assert_eq!((v, t), (3.0, Some(1_795_327_200.5)));
        assert_eq!(ts_ms(1_795_327_200.5), 1_795_327_200_500);
        assert_eq!(ts_ms(1_795_327_200_500.0), 1_795_327_200_500);
        assert!(parse_sample("x{a=1} 2").is_err());
        assert!(parse_sample("x 2 soon").is_err());
        assert_eq!(parse_sample("up 1 # {trace=\"x\"} 1").unwrap().2, 1.0);
    }

    #[test]
    fn names_map_back_to_the_convention() {
        assert_eq!(store_name("op_duration_seconds", Kind::Distribution, None), ("op.duration".into(), "s".into()));
        assert_eq!(store_name("op_retries", Kind::Counter, None), ("op.retries".into(), String::new()));
        assert_eq!(store_name("op_retries_total", Kind::Counter, None), ("op.retries".into(), String::new()));
        assert_eq!(
            store_name("system_cpu_utilization_ratio", Kind::Gauge, None),
            ("system.cpu.utilization".into(), "1".into())
        );
        assert_eq!(store_name("http_requests_total", Kind::Counter, None), ("http_requests".into(), String::new()));
        assert_eq!(split_csv(r#"a,"b,""c""",d"#), vec!["a", "b,\"c\"", "d"]);
    }
}
