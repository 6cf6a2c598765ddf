//! StatsD / DogStatsD captures (`.statsd`, one line per metric, as `tcpdump` or a client's
//! debug log gives them), aggregated by the agent's own parser and aggregator into intervals
//! of [`INTERVAL_MS`]: lines with a `|T` timestamp land in the interval of their time, lines
//! without one in the interval of `--at` (default now). Sample rates, tags, every metric type
//! and the cardinality limits are the agent's. Lines the parser refuses are counted by reason
//! with the first line numbers; events are kept (an operation's last errors), service checks
//! are counted and skipped.

use std::io::BufRead;

use perfagent::statsd::aggregate::{Aggregator, AggregatorConfig, Flush};
use perfagent::statsd::parser::{Line, parse_line};

use super::sink::Sink;
use super::{BadLines, Options, Summary};

/// Interval length: the agent's default flush interval.
pub(crate) const INTERVAL_MS: i64 = 10_000;

/// Lines aggregated before the intervals so far are written (bounds memory: the aggregator
/// holds one state per series and interval seen).
const LINES_PER_BATCH: usize = 200_000;

/// Longest line taken (the agent's largest datagram).
const MAX_LINE: usize = 64 * 1024;

pub(crate) fn import(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut Sink,
    bad: &mut BadLines,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let cfg = AggregatorConfig {
        service: opts.service.clone(),
        // One batch may hold every interval of a long capture.
        max_backfill: usize::MAX,
        ..AggregatorConfig::default()
    };
    let start = opts.at_ms.div_euclid(INTERVAL_MS) * INTERVAL_MS;
    let fresh = || Aggregator::new(cfg.clone(), start, INTERVAL_MS);
    let mut agg = fresh();
    let mut buf = Vec::new();
    let (mut number, mut in_batch) = (0usize, 0usize);
    loop {
        buf.clear();
        let n = std::io::Read::take(&mut *input, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        number += 1;
        summary.lines += 1;
        summary.bytes += n as u64;
        if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            bad.push((number, format!("longer than {MAX_LINE} bytes")));
            // Skip the rest of the line.
            let mut rest = Vec::new();
            input.read_until(b'\n', &mut rest)?;
            continue;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        match parse_line(line) {
            Ok(Line::Metric(m)) => agg.ingest_metric(&m),
            Ok(Line::Event(e)) => agg.ingest_event(&e),
            Ok(Line::ServiceCheck(_)) => {
                *summary.skipped.entry("service checks (not stored)".into()).or_default() += 1;
            }
            Err(e) => bad.push((number, e.to_string())),
        }
        in_batch += 1;
        if in_batch >= LINES_PER_BATCH {
            write(std::mem::replace(&mut agg, fresh()), sink, summary)?;
            in_batch = 0;
            summary.progress();
        }
    }
    write(agg, sink, summary)
}

/// Write what an aggregator holds, and count what it refused.
fn write(mut agg: Aggregator, sink: &mut Sink, summary: &mut Summary) -> anyhow::Result<()> {
    let Flush { points, events, .. } = agg.flush();
    for (key, ts_ms, sample) in points {
        sink.push(&key, ts_ms, sample, summary)?;
    }
    sink.events(&events, summary)?;
    for (reason, n) in &agg.stats().dropped {
        *summary.skipped.entry(format!("lines refused by the aggregator ({reason})")).or_default() += *n as usize;
    }
    Ok(())
}
