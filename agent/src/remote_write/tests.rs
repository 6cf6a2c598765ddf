//! The sender against a fake receiver, and the batches it builds.

use super::*;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};

/// A receiver that refuses batches of more than one step as out of order, holds the first
/// `held` single steps already (refuses them the same way) and takes the rest; it returns
/// the timestamps it took. A new series' explicit 0 at `start` rides with the first step.
fn receiver(held: usize, start: i64) -> (String, std::thread::JoinHandle<Vec<i64>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let mut took = Vec::new();
        let mut singles = 0;
        for conn in l.incoming() {
            let mut conn = conn.unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
            let req: WriteRequest = prost::Message::decode(raw.as_slice()).unwrap();
            let mut ts: Vec<i64> = req.timeseries.iter().flat_map(|t| t.samples.iter().map(|s| s.timestamp)).collect();
            ts.sort_unstable();
            ts.dedup();
            ts.retain(|t| *t != start);
            if ts.len() > 1 || singles < held {
                singles += usize::from(ts.len() == 1);
                let msg = "out of order sample";
                let _ = write!(conn, "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{msg}", msg.len());
            } else {
                took.extend(ts);
                let _ = write!(conn, "HTTP/1.1 204 No Content\r\n\r\n");
            }
            if took.len() + held >= 10 {
                break;
            }
        }
        took
    });
    (addr, h)
}

#[test]
fn a_batch_refused_as_out_of_order_goes_again_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    let t0 = 1_800_000_000_000;
    let mut w = perfstore::Writer::open(&db, perfstore::StoreOptions::default()).unwrap();
    let key = perfstore::SeriesKey::new("svc", "op.retries", Kind::Counter).label("op", "vm.list");
    let perfstore::Registration::Registered(id) = w.register(&key, t0).unwrap() else { panic!("refused") };
    let writes: Vec<perfstore::Write> = (0..10)
        .map(|i| perfstore::Write { series: id, ts_ms: t0 + i * 1000, sample: perfstore::Sample::Counter(1.0) })
        .collect();
    w.write(&writes).unwrap();
    w.close().unwrap();
    let (addr, rx) = receiver(3, t0);
    let cfg = RemoteWriteConfig {
        name: "test".into(),
        endpoint: http::Endpoint {
            target: perfprobe::parse_target(&format!("http://{addr}/api/v1/write")).unwrap(),
            tls: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
        },
        select: Selector::default(),
        step: Duration::from_secs(1),
        max_lag: Duration::from_secs(3600),
        external_labels: vec![("host".into(), "h".into())],
        buckets: RemoteWriteConfig::default_buckets(),
        batch_wait: Duration::from_secs(5),
    };
    // Ten steps are complete.
    let env = Env {
        db,
        clock: Clock::manual(t0 + 10_000 + 3000),
        flush_ms: 1000,
        pending: PendingState::default(),
        shared: Shared::default(),
        metrics: None,
    };
    let mut p = Progress { next_ms: Some(t0), ..Progress::default() };
    assert_eq!(once(&cfg, &env, &mut p, 1000), Ok(true));
    let took = rx.join().unwrap();
    // The first three steps were already held; the other seven arrive, in order, with
    // their cumulative values.
    assert_eq!(took, (4..=10).map(|i| t0 + i * 1000).collect::<Vec<_>>());
    // Held: the three steps' samples and the series' explicit 0 sent with the first.
    assert_eq!((p.duplicates, p.samples_sent, p.dropped), (4, 7, 0));
    assert_eq!(p.next_ms, Some(t0 + 10_000));
    assert_eq!(p.totals[&id.0].count, 10.0);
    assert!(env.pending.lock().unwrap().contains_key("remote_write.test"), "the progress goes to the store");
    // Caught up.
    assert_eq!(once(&cfg, &env, &mut p, 1000), Ok(false));
}

#[test]
fn totals_kept_under_another_bucket_layout_start_again_without_a_panic() {
    let key = perfstore::SeriesKey::new("svc", "op.duration", Kind::Distribution).unit("s");
    let s = SeriesInfo { id: perfstore::SeriesId(7), key };
    let cfg = RemoteWriteConfig {
        name: "t".into(),
        endpoint: http::Endpoint {
            target: perfprobe::parse_target("http://127.0.0.1:9/w").unwrap(),
            tls: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
        },
        select: Selector::default(),
        step: Duration::from_secs(1),
        max_lag: Duration::from_secs(60),
        external_labels: Vec::new(),
        buckets: (vec![0.1, 1.0], vec![1.0]),
        batch_wait: Duration::from_secs(1),
    };
    // Kept with three buckets, now two; one step with a point, one repeated.
    let old = Totals { count: 5.0, sum: 1.0, buckets: vec![1.0, 2.0, 3.0], last_ms: 1_000 };
    let totals = BTreeMap::from([(7, old)]);
    let p = Point::from_sample(
        1_000,
        &perfstore::Sample::Distribution(Box::new(perfstore::Distribution::from_values(&[0.05, 0.5]))),
    );
    let b = build(&cfg, &[(s, vec![(1_000, p)])], TimeRange::new(1_000, 3_000), 1000, &totals);
    let t = &b.totals[&7];
    assert_eq!((t.count, t.buckets.clone()), (7.0, vec![1.0, 2.0]));
    // count, sum, two buckets and +Inf, two steps each.
    assert_eq!((b.series.len(), b.samples), (5, 10));
}
