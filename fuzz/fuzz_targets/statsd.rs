//! StatsD/DogStatsD datagrams through the parser and the aggregator: never a panic, and
//! nothing non-finite ever leaves a flush.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfagent::statsd::aggregate::{Aggregator, AggregatorConfig};
use perfstore::Sample;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let _ = perfagent::statsd::parser::parse_line(line);
    }
    let mut agg = Aggregator::new(AggregatorConfig::default(), 1_795_428_000_000, 10_000);
    agg.ingest_datagram(data);
    agg.ingest_datagram(data);
    for (key, _, sample) in agg.flush().points {
        let finite = match &sample {
            Sample::Counter(v) | Sample::Set(v) => v.is_finite(),
            Sample::Gauge { last, min, max } => last.is_finite() && min.is_finite() && max.is_finite(),
            Sample::Distribution(d) => d.sum.is_finite() && d.count.is_finite(),
        };
        assert!(finite, "{key:?}: {sample:?}");
        assert!(!key.name.chars().any(char::is_control), "{key:?}");
    }
});
