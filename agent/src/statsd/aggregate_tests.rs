//! The aggregator's unit tests.

use super::*;
use perfstore::Sample;

const T0: i64 = 1_767_225_600_000;

fn agg() -> Aggregator {
    Aggregator::new(AggregatorConfig { service: "api".into(), ..AggregatorConfig::default() }, T0, 10_000)
}

fn by_name(f: &Flush, name: &str) -> Vec<(SeriesKey, i64, Sample)> {
    f.points.iter().filter(|p| p.0.name == name).map(|(k, t, s)| ((**k).clone(), *t, s.clone())).collect()
}

fn one(f: &Flush, name: &str) -> Sample {
    let mut v = by_name(f, name);
    assert_eq!(v.len(), 1, "{name}: {:?}", f.points);
    v.remove(0).2
}

#[test]
fn counters_sum_weighted_by_one_over_rate() {
    let mut a = agg();
    a.ingest_datagram(b"op.retries:1|c\nop.retries:2|c|@0.5\nop.retries:-0.5|c\nop.retries:1:1|c");
    let f = a.flush();
    assert_eq!(one(&f, "op.retries"), Sample::Counter(1.0 + 4.0 - 0.5 + 2.0));
    assert!(by_name(&a.flush(), "op.retries").is_empty(), "an idle counter writes nothing");
}

#[test]
fn gauges_keep_their_value_and_take_deltas() {
    let mut a = agg();
    a.ingest_datagram(b"pool.size:10|g\npool.size:+5|g\npool.size:-12|g");
    assert_eq!(one(&a.flush(), "pool.size"), Sample::Gauge { last: 3.0, min: 3.0, max: 15.0 });
    assert_eq!(one(&a.flush(), "pool.size"), Sample::Gauge { last: 3.0, min: 3.0, max: 3.0 }, "persists");
    a.ingest_datagram(b"pool.size:-1|g");
    assert_eq!(one(&a.flush(), "pool.size"), Sample::Gauge { last: 2.0, min: 2.0, max: 3.0 });
}

#[test]
fn durations_are_seconds_and_rates_weight_counts_not_values() {
    let mut a = agg();
    a.ingest_datagram(
        b"op.duration:250|ms|@0.1|#op:vm.list\nop.duration:750|d|#op:vm.list\nop.batch.size:12|h|#op:vm.list",
    );
    let f = a.flush();
    let Sample::Distribution(d) = one(&f, "op.duration") else { panic!() };
    assert_eq!((d.count, d.min, d.max), (11.0, 0.25, 0.75));
    assert!((d.sum - (2.5 + 0.75)).abs() < 1e-12);
    let keys = by_name(&f, "op.duration");
    assert_eq!(keys[0].0.unit, "s");
    let Sample::Distribution(b) = one(&f, "op.batch.size") else { panic!() };
    assert_eq!((b.count, b.max), (1.0, 12.0), "non-duration histograms keep their values");
}

#[test]
fn tags_from_both_dialects_last_duplicate_wins_service_from_tag() {
    let mut a = agg();
    a.ingest_datagram(b"cache.requests,cache=vms,result=miss:1|c|#result:hit,canary,service:batch");
    a.ingest_datagram(b"cache.requests:1|c");
    let f = a.flush();
    let keys: Vec<String> = by_name(&f, "cache.requests").iter().map(|p| p.0.to_string()).collect();
    assert_eq!(
        keys,
        [r#"cache.requests{cache="vms",canary="",result="hit",service="batch"}"#, r#"cache.requests{service="api"}"#]
    );
}

#[test]
fn sets_count_exactly_then_estimate() {
    let mut a = Aggregator::new(AggregatorConfig { set_exact_limit: 100, ..AggregatorConfig::default() }, T0, 10_000);
    a.ingest_datagram(b"users:alice|s\nusers:bob|s\nusers:alice|s");
    assert_eq!(one(&a.flush(), "users"), Sample::Set(2.0));
    for i in 0..20_000 {
        a.ingest_datagram(format!("users:user{i}|s").as_bytes());
    }
    let Sample::Set(n) = one(&a.flush(), "users") else { panic!() };
    assert!((n - 20_000.0).abs() / 20_000.0 < 0.05, "HLL estimate {n} for 20000 (4 sigma)");
}

#[test]
fn timestamped_lines_land_in_their_own_interval() {
    let mut a = agg();
    let past_s = (T0 - 3_600_000) / 1000 + 3;
    a.ingest_datagram(format!("op.retries:5|c|T{past_s}\nop.retries:1|c\nop.retries:2|c|T{}", T0 / 1000).as_bytes());
    let f = a.flush();
    let pts = by_name(&f, "op.retries");
    assert_eq!(pts.len(), 2);
    assert_eq!((pts[0].1, &pts[0].2), (T0 - 3_600_000, &Sample::Counter(5.0)));
    assert_eq!((pts[1].1, &pts[1].2), (T0, &Sample::Counter(3.0)), "a |T in the current interval is just current");
}

#[test]
fn cardinality_limits_and_parse_errors_are_counted_not_fatal() {
    let mut a = Aggregator::new(
        AggregatorConfig { max_series: 3, max_series_per_name: 2, ..AggregatorConfig::default() },
        T0,
        10_000,
    );
    a.ingest_datagram(b"a:1|c|#i:1\na:1|c|#i:2\na:1|c|#i:3\nb:1|c\nc:1|c\nbroken\nx:nan|c\n\xff:1|c");
    let s = a.stats();
    assert_eq!(s.lines, 3);
    assert_eq!(s.dropped.get("cardinality_per_name"), Some(&1));
    assert_eq!(s.dropped.get("cardinality_total"), Some(&1));
    assert_eq!(s.dropped.get("missing_value"), Some(&1));
    assert_eq!(s.dropped.get("bad_value"), Some(&1));
    assert_eq!(s.dropped.get("not_utf8"), Some(&1));
    let f = a.flush();
    assert_eq!(f.points.len(), 3);
    assert_eq!(f.over_limit, Some((2, "a{i:3}".to_string())), "the first refused series is named");
    assert_eq!(a.flush().over_limit, None, "once per interval");
}

#[test]
fn idle_series_expire_and_free_their_slot() {
    let mut a =
        Aggregator::new(AggregatorConfig { idle_flushes: 2, max_series: 1, ..AggregatorConfig::default() }, T0, 10_000);
    a.ingest_datagram(b"g:1|g");
    assert_eq!(a.flush().points.len(), 1, "the interval it was set in");
    assert_eq!(a.flush().points.len(), 1, "idle for one interval: still flushed");
    assert_eq!(a.series(), 1);
    assert_eq!(a.flush().points.len(), 1, "idle for two: flushed a last time, then expired");
    assert_eq!(a.series(), 0);
    assert_eq!(a.stats().expired, 1);
    a.ingest_datagram(b"other:1|c");
    assert_eq!(a.stats().dropped_total(), 0, "the slot was freed");
}

#[test]
fn error_events_become_last_errors() {
    let mut a = agg();
    a.ingest_datagram(
        b"_e{8,22}:vm.start|QuotaExceeded: cores=8|t:error|#op:vm.start\n_e{2,2}:hi|yo|t:info|#op:x\n_sc|db|0",
    );
    let f = a.flush();
    assert_eq!(f.events.len(), 1);
    assert_eq!((f.events[0].op.as_str(), f.events[0].message.as_str()), ("vm.start", "QuotaExceeded: cores=8"));
    assert_eq!((a.stats().events, a.stats().service_checks), (2, 1));
}

#[test]
fn series_of_one_name_share_its_name_and_unit() {
    let mut a = agg();
    a.ingest_datagram(b"op.duration:1|ms|#op:a\nop.duration:2|ms|#op:b\nop.duration:3|ms|#op:c\nother:1|ms");
    let f = a.flush();
    let keys = by_name(&f, "op.duration");
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k.0.name.is_shared_with(&keys[0].0.name) && k.0.unit.is_shared_with(&keys[0].0.unit)));
    let other = &by_name(&f, "other")[0].0;
    assert!(other.unit.is_shared_with(&keys[0].0.unit), "one `s` for every duration");
    assert!(!other.name.is_shared_with(&keys[0].0.name));
    // A name whose series all expired is not held.
    let mut a = Aggregator::new(AggregatorConfig { idle_flushes: 1, ..AggregatorConfig::default() }, T0, 10_000);
    a.ingest_datagram(b"gone:1|c");
    a.flush();
    assert_eq!(a.per_name.len(), 1);
    a.flush();
    assert!(a.per_name.is_empty(), "no live series of the name: not held");
}

#[test]
fn backfilled_series_give_back_their_place_under_the_name_limit() {
    let cfg = AggregatorConfig { max_series_per_name: 2, ..AggregatorConfig::default() };
    let mut a = Aggregator::new(cfg, T0, 10_000);
    // Five flushes, each with a point of another past interval: each is a series of the
    // name until it is flushed, never more than one at a time.
    for k in 1..=5 {
        let past_s = (T0 - k * 60_000) / 1000;
        a.ingest_datagram(format!("late:1|c|T{past_s}").as_bytes());
        assert_eq!(by_name(&a.flush(), "late").len(), 1, "flush {k}");
    }
    assert!(a.per_name.is_empty(), "flushed backfill holds no place under its name");
    a.ingest_datagram(b"late:1|c|#a:1\nlate:1|c|#a:2");
    assert_eq!(by_name(&a.flush(), "late").len(), 2, "both live series taken");
    assert_eq!(a.stats().dropped.get("cardinality_per_name"), None);
}

#[test]
fn a_batch_counts_a_truncated_datagram_and_takes_the_others_around_it() {
    for grouped in [false, true] {
        let mut a = agg();
        if grouped {
            a.always_grouped();
        }
        // More lines than the groups in flight hold, on both sides of the cut datagram.
        let before: String = (0..70).map(|i| format!("before.{}:1|c\n", i % 7)).collect();
        let after: String = (0..70).map(|i| format!("after:{i}|g\n")).collect();
        a.ingest_batch([Some(before.as_bytes()), None, Some(after.as_bytes()), None].into_iter());
        assert_eq!(a.stats().dropped.get("truncated"), Some(&2), "grouped: {grouped}");
        assert_eq!(a.stats().lines, 140, "grouped: {grouped}");
        let f = a.flush();
        assert_eq!(one(&f, "before.3"), Sample::Counter(10.0), "grouped: {grouped}");
        // The last value in the order received.
        assert_eq!(one(&f, "after"), Sample::Gauge { last: 69.0, min: 0.0, max: 69.0 }, "grouped: {grouped}");
    }
}

/// Distribution values wait in a log applied a batch at a time (when it fills, at the flush,
/// and before any other line of a distribution). The log fills twice in one interval; then
/// other lines come now and then: weighted and several-valued ones, ones only the reference
/// parser takes (with an exponent), and sums pushed past the largest float (through the
/// reference: a logged value has at most 15 digits). Timers share series with histograms
/// whose name says nothing of milliseconds, so a timer's value is scaled by 0.001 and the
/// histogram's not. Every flushed point and every count comes out as the reference parser
/// makes them, line by line, whether lines are looked up one at a time or in groups.
#[test]
fn distributions_come_out_as_line_by_line_when_their_log_fills_mid_interval() {
    let total = 3 * dist_log::LOG_VALUES + 17;
    let mut lines = Vec::with_capacity(total);
    // Series in no order (each comes back at random, not every 1 500 lines).
    let series_of = |i: usize| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % 1500;
    for i in 0..total {
        let other = if i > 2 * dist_log::LOG_VALUES + 4000 { i % 499 } else { 0 };
        // The other lines go to the series of the line before, whose value waits in the log.
        let series = series_of(if matches!(other, 5 | 100 | 250) { i - 1 } else { i });
        let (name, kind) = match (series % 3, i % 2) {
            (0, _) => ("op.duration", "ms"),
            (1, _) => ("op.duration", "h"),
            (_, 0) => ("batch.size", "h"),
            _ => ("batch.size", "ms"),
        };
        let value = (i * 2_654_435_761) % 100_003;
        // Large values, so that where they fall in a sum changes its last bits.
        lines.push(match other {
            5 => format!("{name}:{value}987654.321|{kind}|@0.25|#t:v{series}"),
            100 => format!("{name}:{value}987654.321:1.5|{kind}|#t:v{series}"),
            250 => format!("{name}:9.876543217e11|{kind}|#t:v{series}"),
            400 => "batch.size:1e308|h|#t:v2".to_string(),
            _ => format!("{name}:{value}.123|{kind}|#t:v{series}"),
        });
    }
    let (mut one_by_one, mut grouped, mut slow) = (agg(), agg(), agg());
    one_by_one.never_grouped();
    grouped.always_grouped();
    for chunk in lines.chunks(40) {
        let datagram = chunk.join("\n");
        one_by_one.ingest_datagram(datagram.as_bytes());
        grouped.ingest_datagram(datagram.as_bytes());
        slow.ingest_datagram_reference(datagram.as_bytes());
    }
    let points = |f: &Flush| {
        let mut p: Vec<String> = f.points.iter().map(|p| format!("{p:?}")).collect();
        p.sort();
        p
    };
    let want = slow.flush();
    assert_eq!(want.points.len(), 1500);
    for a in [&mut one_by_one, &mut grouped] {
        let got = a.flush();
        assert_eq!(points(&got), points(&want));
        assert_eq!(a.stats(), slow.stats());
    }
    assert!(slow.stats().dropped.get("value_overflow").copied().unwrap_or(0) > 0, "an overflow was refused");
}
