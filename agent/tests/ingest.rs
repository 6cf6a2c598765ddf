//! StatsD datagrams → aggregator → a real store file → queries: what a user of
//! `perfctl stats` would see for what their client sent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use perfagent::statsd::aggregate::{Aggregator, AggregatorConfig};
use perfagent::writer::write_flush;
use perfstore::sketch::RELATIVE_ACCURACY;
use perfstore::{Reader, Selector, StoreOptions, TimeRange, Writer};

const T0: i64 = 1_767_225_600_000;

#[test]
fn statsd_lines_become_exact_store_contents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.db");
    let mut w = Writer::open(&path, StoreOptions { max_series_per_name: 3, ..StoreOptions::default() }).unwrap();
    let mut agg =
        Aggregator::new(AggregatorConfig { service: "cli".into(), ..AggregatorConfig::default() }, T0, 10_000);
    let mut latencies = Vec::new();
    for interval in 0..30 {
        let mut datagram = String::new();
        for i in 0..50 {
            let ms = 20 + (interval * 50 + i) % 300;
            latencies.push(ms as f64 / 1000.0);
            datagram.push_str(&format!("op.duration:{ms}|ms|#op:vm.list,outcome:ok\n"));
        }
        datagram.push_str("op.retries:1|c|@0.25|#op:vm.list\npool.size:+1|g|#pool:arm\n");
        // A fourth op name over the store's per-name limit of 3.
        datagram.push_str(&format!("op.calls:1|c|#op:op{}\n", interval % 4));
        agg.ingest_datagram(datagram.as_bytes());
        if interval == 3 {
            agg.ingest_datagram(b"_e{7,19}:vm.list|ThrottlingException|t:error|#op:vm.list");
        }
        let flush = agg.flush();
        let out = write_flush(&mut w, flush, T0).unwrap();
        assert_eq!(
            out.rejected.get(&perfstore::RejectReason::PerNameLimit).copied().unwrap_or(0),
            usize::from(interval % 4 == 3)
        );
    }
    drop(w);

    let mut r = Reader::open(&path).unwrap();
    let snap = r.snapshot().unwrap();
    let range = TimeRange::new(T0, T0 + 3_600_000);
    let dur = snap.series(&Selector::parse(r#"op.duration{op="vm.list",service="cli"}"#).unwrap()).unwrap();
    assert_eq!(dur.len(), 1);
    assert_eq!(dur[0].key.unit, "s");
    let p = snap.aggregate(&dur[0], range).unwrap().unwrap();
    assert_eq!(p.count, 1500.0, "one event per line");
    latencies.sort_by(f64::total_cmp);
    for q in [0.5, 0.95, 0.99] {
        let exact = latencies[perfstore::sketch::nearest_rank(q, 1500.0) as usize - 1];
        let got = p.quantile(q).unwrap();
        assert!((got - exact).abs() <= exact * RELATIVE_ACCURACY, "p{}: {got} vs {exact}", q * 100.0);
    }
    let retries = snap.series(&Selector::name("op.retries")).unwrap();
    assert_eq!(snap.aggregate(&retries[0], range).unwrap().unwrap().sum, 30.0 * 4.0, "1/rate weighting");
    let pool = snap.series(&Selector::name("pool.size")).unwrap();
    let g = snap.aggregate(&pool[0], range).unwrap().unwrap();
    assert_eq!((g.last, g.max), (30.0, 30.0), "deltas accumulate across intervals");
    assert_eq!(snap.series(&Selector::name("op.calls")).unwrap().len(), 3);
    let errors = snap.last_events(perfstore::EventKind::Error, range).unwrap();
    assert_eq!((errors[0].op.as_str(), errors[0].message.as_str()), ("vm.list", "ThrottlingException"));
}
