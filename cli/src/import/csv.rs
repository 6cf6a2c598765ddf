//! CSV as `perfctl export --format csv` writes it (`time,series,kind,count,sum,min,max,last,…`),
//! or `time,series,value` (gauges), with RFC 3339 or Unix-second times, read a record at a
//! time through the `csv` crate.

use std::collections::HashMap;
use std::io::BufRead;

use perfstore::convention;
use perfstore::{Kind, Sample, Selector, SeriesKey};

use super::sink::Sink;
use super::{BadLines, Summary};

/// The columns a file has.
struct Columns {
    time: usize,
    series: usize,
    kind: Option<usize>,
    value: Option<usize>,
    sum: Option<usize>,
    min: Option<usize>,
    max: Option<usize>,
    last: Option<usize>,
}

fn columns(header: &csv::StringRecord) -> Option<Columns> {
    let col = |n: &str| header.iter().position(|c| c.trim().eq_ignore_ascii_case(n));
    Some(Columns {
        time: col("time")?,
        series: col("series")?,
        kind: col("kind"),
        value: col("value"),
        sum: col("sum"),
        min: col("min"),
        max: col("max"),
        last: col("last"),
    })
}

fn time_ms(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return super::openmetrics::ts_ms(seconds);
    }
    perfanalysis::time::parse_time(text).map_err(|e| {
        let e = if e.starts_with("expected") { "expected RFC 3339 or Unix seconds".into() } else { e };
        format!("invalid time '{text}': {e}")
    })
}

/// The series key of `text` (`name{k="v",…}`), with the service from its labels or the default.
fn key_of(text: &str, kind: Kind, service: &str) -> Result<SeriesKey, String> {
    let sel = match Selector::parse(text) {
        Ok(s) if !s.name.is_empty() && !s.name.contains(['*', '?']) => s,
        _ => return Err(format!("invalid series '{text}': expected name{{k=\"v\",…}}")),
    };
    let service = sel.matchers.iter().find(|m| m.key == convention::tag::SERVICE).map_or(service, |m| &m.value);
    // A name an older store exported is stored under the convention's current name.
    let name = convention::find(&sel.name).filter(|m| m.kind == kind).map_or(sel.name.as_str(), |m| m.name);
    let unit = convention::find(name).filter(|m| m.kind == kind).map_or("", |m| m.unit);
    let mut key = SeriesKey::new(service, name, kind).unit(unit);
    for m in sel.matchers.iter().filter(|m| m.key != convention::tag::SERVICE) {
        key.set_label(&m.key, &m.value);
    }
    Ok(key)
}

/// Read CSV from `input` into `sink`.
pub(crate) fn import(
    input: &mut dyn BufRead,
    service: &str,
    sink: &mut Sink,
    bad: &mut BadLines,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(input);
    let Some(cols) = reader.headers().ok().and_then(columns) else {
        bad.push((1, "expected a header with `time` and `series` columns".into()));
        return Ok(());
    };
    let mut keys: HashMap<(String, Kind), Option<SeriesKey>> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() as usize;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                bad.push((line, format!("unreadable CSV: {e}")));
                continue;
            }
        }
        summary.lines = line;
        summary.bytes = reader.position().byte();
        if let Err(reason) = row(&record, &cols, service, &mut keys, sink, summary)? {
            bad.push((line, reason));
        }
        if line.is_multiple_of(100_000) {
            summary.progress();
        }
    }
    Ok(())
}

fn row(
    r: &csv::StringRecord,
    c: &Columns,
    service: &str,
    keys: &mut HashMap<(String, Kind), Option<SeriesKey>>,
    sink: &mut Sink,
    summary: &mut Summary,
) -> anyhow::Result<Result<(), String>> {
    let get = |i: Option<usize>| i.and_then(|i| r.get(i)).map(str::trim).filter(|s| !s.is_empty());
    let num = |i: Option<usize>| get(i).and_then(|s| s.parse::<f64>().ok());
    let Some(time) = get(Some(c.time)) else { return Ok(Err("missing time".into())) };
    let ts = match time_ms(time) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let Some(series) = get(Some(c.series)) else { return Ok(Err("missing series".into())) };
    let kind_text = get(c.kind).unwrap_or("gauge");
    let (kind, sample) = match kind_text {
        "counter" => (Kind::Counter, num(c.sum).or(num(c.value)).map(Sample::Counter)),
        "gauge" | "set" => (
            Kind::Gauge,
            num(c.last).or(num(c.value)).map(|v| Sample::Gauge {
                last: v,
                min: num(c.min).unwrap_or(v),
                max: num(c.max).unwrap_or(v),
            }),
        ),
        "distribution" => {
            *summary.skipped.entry("distribution rows (CSV carries no sketch; use OpenMetrics)".into()).or_default() +=
                1;
            return Ok(Ok(()));
        }
        other => return Ok(Err(format!("unknown kind '{other}': expected counter, gauge or distribution"))),
    };
    let Some(sample) = sample else { return Ok(Err("missing or invalid value".into())) };
    let key = keys.entry((series.to_owned(), kind)).or_insert_with(|| key_of(series, kind, service).ok());
    match key {
        Some(k) => {
            sink.push(k, ts, sample, summary)?;
            Ok(Ok(()))
        }
        None => Ok(Err(format!("invalid series '{series}': expected name{{k=\"v\",…}}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_take_the_service_label_and_current_names() {
        let k = key_of(r#"system.cpu.logical_cpus{service="host"}"#, Kind::Gauge, "imported").unwrap();
        assert_eq!(k.to_string(), r#"system.cpu.logical.count{service="host"}"#);
        assert_eq!(k.unit, "{cpu}");
        let k = key_of(r#"queue.depth{queue="a"}"#, Kind::Gauge, "imported").unwrap();
        assert_eq!(k.to_string(), r#"queue.depth{queue="a",service="imported"}"#);
        assert!(key_of("op.*", Kind::Gauge, "x").unwrap_err().starts_with("invalid series 'op.*'"));
        assert_eq!(time_ms("1795327200").unwrap(), 1_795_327_200_000);
        assert!(time_ms("soon").is_err());
    }
}
