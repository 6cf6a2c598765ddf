//! The recent log: flushes of many series are appended as a few rows instead of rewriting
//! every head. Whatever a reader asks sees the same data whether the points are still in the
//! log, folded into the heads, or were written to the heads directly; a reopen keeps the
//! log's order; a row that does not decode is refused, not rewritten.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::path::Path;

use perfstore::{
    Distribution, Kind, Point, Reader, Registration, Sample, SeriesId, SeriesKey, StoreOptions, TimeRange, Write,
    Writer,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, an hour boundary
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const KINDS: [Kind; 4] = [Kind::Counter, Kind::Gauge, Kind::Set, Kind::Distribution];

fn register(w: &mut Writer, n: usize) -> Vec<(SeriesId, Kind)> {
    (0..n)
        .map(|i| {
            let kind = KINDS[i % 4];
            let key = SeriesKey::new("api", &format!("m{}", i % 4), kind).label("i", &i.to_string());
            match w.register(&key, T0).unwrap() {
                Registration::Registered(id) => (id, kind),
                Registration::Rejected(r) => panic!("{key} rejected: {r:?}"),
            }
        })
        .collect()
}

/// Values with few significant bits, so sums are exact in any order.
fn sample(rng: &mut StdRng, kind: Kind) -> Sample {
    let v = |rng: &mut StdRng| f64::from(rng.random_range(-400i32..400)) / 4.0;
    match kind {
        Kind::Counter => Sample::Counter(f64::from(rng.random_range(0u32..50))),
        Kind::Set => Sample::Set(f64::from(rng.random_range(0u32..9))),
        Kind::Gauge => {
            let (a, b) = (v(rng), v(rng));
            Sample::Gauge { last: a, min: a.min(b), max: a.max(b) }
        }
        Kind::Distribution => {
            let vals: Vec<f64> =
                (0..rng.random_range(1..6)).map(|_| f64::from(rng.random_range(1u32..4000)) / 1024.0).collect();
            Sample::Distribution(Box::new(Distribution::from_values(&vals)))
        }
    }
}

/// 20 minutes of 10 s flushes over `series`, each touching a random part of them, some
/// with a late point for an interval not written before, some with two points of one
/// interval (merged in the flush). Each interval of a series is written in one flush only.
fn flushes(series: &[(SeriesId, Kind)], seed: u64) -> Vec<Vec<Write>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for f in 0..120i64 {
        let ts = T0 + f * 10 * SEC;
        let mut batch = Vec::new();
        for &(id, kind) in series {
            if rng.random_range(0..4) == 0 {
                continue;
            }
            batch.push(Write { series: id, ts_ms: ts, sample: sample(&mut rng, kind) });
            if rng.random_range(0..20) == 0 {
                batch.push(Write { series: id, ts_ms: ts, sample: sample(&mut rng, kind) });
            }
            // A late point: 31 s back, a second no other flush uses.
            if f > 6 && rng.random_range(0..30) == 0 {
                let late = ts - 31 * SEC;
                batch.push(Write { series: id, ts_ms: late, sample: sample(&mut rng, kind) });
            }
        }
        out.push(batch);
    }
    out
}

/// What a user sees of a point: its numbers and, for distributions, three quantiles.
type View = (i64, f64, f64, f64, f64, f64, i64, Option<[f64; 3]>);
fn view(p: &Point) -> View {
    let q = p.sketch.as_ref().map(|_| [0.5, 0.9, 0.99].map(|q| p.quantile(q).unwrap()));
    (p.ts_ms, p.count, p.sum, p.min, p.max, p.last, p.last_ts_ms, q)
}

/// Everything the readers answer about the store, per series and over all of them.
fn answers(path: &Path, series: &[(SeriesId, Kind)]) -> Vec<String> {
    let mut r = Reader::open(path).unwrap();
    let snap = r.snapshot().unwrap();
    let infos = snap.series(&perfstore::Selector::default()).unwrap();
    let mut out = Vec::new();
    let ranges = [
        TimeRange::new(T0, T0 + 30 * MIN),
        TimeRange::new(T0 + 3 * MIN + 7 * SEC, T0 + 11 * MIN),
        TimeRange::new(T0 + 19 * MIN, T0 + 19 * MIN + 30 * SEC),
    ];
    for range in ranges {
        let many = snap.aggregate_many(&infos, range).unwrap();
        out.push(format!("{range:?} many {:?}", many.iter().map(|p| p.as_ref().map(view)).collect::<Vec<_>>()));
    }
    for info in infos.iter().filter(|i| series.iter().step_by(97).any(|s| s.0 == i.id)) {
        for range in ranges {
            let one = snap.aggregate(info, range).unwrap();
            out.push(format!("{} {range:?} one {:?}", info.id, one.as_ref().map(view)));
            let steps = snap.range(info, range, MIN).unwrap();
            out.push(format!("{} steps {:?}", info.id, steps.steps.iter().map(|(_, p)| view(p)).collect::<Vec<_>>()));
        }
        let mut pts = Vec::new();
        snap.points(info, TimeRange::new(T0 - MIN, T0 + 40 * MIN), &mut |tier, p| pts.push((tier, view(&p)))).unwrap();
        pts.sort_by_key(|p| p.1.0);
        out.push(format!("{} points {pts:?}", info.id));
    }
    let usage: Vec<(SeriesId, i64, Option<i64>)> =
        snap.series_usage().unwrap().into_iter().map(|u| (u.series.id, u.points, u.newest_ms)).collect();
    out.push(format!("usage {usage:?}"));
    out
}

/// Equal answers, or a failure showing the first that differs (the whole lists are long).
fn same(got: &[String], want: &[String], when: &str) {
    assert_eq!(got.len(), want.len(), "{when}: answers");
    if let Some((g, w)) = got.iter().zip(want).find(|(g, w)| g != w) {
        let at = g.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count().saturating_sub(120);
        panic!("{when}: got\n…{}\nwant\n…{}", &g[at..(at + 400).min(g.len())], &w[at..(at + 400).min(w.len())]);
    }
}

/// The store at `path`, for a look at its tables beside the writer.
fn read_only(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn log_rows(path: &Path) -> i64 {
    let conn = read_only(path);
    conn.query_row("SELECT count(*) FROM recent", [], |r| r.get(0)).unwrap()
}

fn head_rows(path: &Path) -> i64 {
    let conn = read_only(path);
    conn.query_row("SELECT count(*) FROM head", [], |r| r.get(0)).unwrap()
}

#[test]
fn readers_see_the_same_data_in_the_log_folded_or_written_to_the_heads() {
    let dir = tempfile::tempdir().unwrap();
    let (direct_path, logged_path) = (dir.path().join("direct.db"), dir.path().join("logged.db"));
    let mut direct =
        Writer::open(&direct_path, StoreOptions { log_min_series: usize::MAX, ..StoreOptions::default() }).unwrap();
    let mut logged = Writer::open(&logged_path, StoreOptions { log_min_series: 1, ..StoreOptions::default() }).unwrap();
    // Over a thousand series: ids in two log buckets.
    let series = register(&mut direct, 1100);
    assert_eq!(register(&mut logged, 1100), series);
    for (i, batch) in flushes(&series, 7).iter().enumerate() {
        let a = direct.write(batch).unwrap();
        let b = logged.write(batch).unwrap();
        assert_eq!((a.points, a.series), (b.points, b.series), "flush {i}: the same points are reported written");
        if i == 60 {
            // A fold midway: later flushes land in the log again, on top of folded heads.
            let report = logged.maintain(T0 + 10 * MIN + SEC).unwrap();
            assert!(report.folded_points > 50_000, "folded {}", report.folded_points);
            assert_eq!(log_rows(&logged_path), 0);
        }
    }
    assert_eq!(head_rows(&direct_path), 1100);
    assert_eq!(log_rows(&logged_path), 2 * 59, "each flush after the fold logged a row per bucket");
    assert!(log_rows(&direct_path) == 0);
    let want = answers(&direct_path, &series);
    same(&answers(&logged_path, &series), &want, "log on top of folded heads");
    // Maintenance folds the log into the heads, and nothing a reader sees changes.
    logged.maintain(T0 + 20 * MIN).unwrap();
    assert_eq!(log_rows(&logged_path), 0);
    assert_eq!(head_rows(&logged_path), 1100);
    same(&answers(&logged_path, &series), &want, "after the fold");
    // An hour and a day later every head is sealed into chunks, in both stores alike.
    for w in [&mut direct, &mut logged] {
        w.maintain(T0 + 25 * 60 * MIN).unwrap();
    }
    assert_eq!(head_rows(&logged_path), 0);
    same(&answers(&logged_path, &series), &answers(&direct_path, &series), "after sealing");
}

/// `batch` in a random order that keeps each series' own points in the order written (a
/// gauge's later value of an interval must stay the later one).
fn interleaved(batch: &[Write], rng: &mut StdRng) -> Vec<Write> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    // The places the shuffle gave each series, filled with its points in their first order.
    let mut places: std::collections::HashMap<SeriesId, Vec<usize>> = std::collections::HashMap::new();
    for (place, &i) in order.iter().enumerate() {
        places.entry(batch[i].series).or_default().push(place);
    }
    let mut out: Vec<Option<Write>> = vec![None; batch.len()];
    let mut next: std::collections::HashMap<SeriesId, usize> = std::collections::HashMap::new();
    for w in batch {
        let k = next.entry(w.series).or_default();
        out[places[&w.series][*k]] = Some(w.clone());
        *k += 1;
    }
    out.into_iter().map(Option::unwrap).collect()
}

#[test]
fn a_flush_out_of_series_order_is_logged_as_the_same_flush_in_order() {
    // The log takes a write in series order a bucket's stretch at a time, and any other
    // whole and put in order: two points of one series and interval, apart in the input,
    // are merged all the same.
    let dir = tempfile::tempdir().unwrap();
    let (sorted_path, mixed_path) = (dir.path().join("sorted.db"), dir.path().join("mixed.db"));
    let opts = StoreOptions { log_min_series: 1, ..StoreOptions::default() };
    let mut sorted = Writer::open(&sorted_path, opts.clone()).unwrap();
    let mut mixed = Writer::open(&mixed_path, opts).unwrap();
    // Three log buckets.
    let series = register(&mut sorted, 2100);
    assert_eq!(register(&mut mixed, 2100), series);
    let mut rng = StdRng::seed_from_u64(11);
    for (i, batch) in flushes(&series, 5).iter().take(40).enumerate() {
        let a = sorted.write(batch).unwrap();
        let b = mixed.write(&interleaved(batch, &mut rng)).unwrap();
        assert_eq!((a.points, a.series), (b.points, b.series), "flush {i}: the same points and series written");
    }
    assert_eq!(log_rows(&sorted_path), 3 * 40, "one row per bucket and flush");
    assert_eq!(log_rows(&mixed_path), 3 * 40, "one row per bucket and flush");
    let want = answers(&sorted_path, &series);
    same(&answers(&mixed_path, &series), &want, "both in the log");
    mixed.maintain(T0 + 10 * MIN).unwrap();
    assert_eq!(log_rows(&mixed_path), 0);
    same(&answers(&mixed_path, &series), &want, "one folded");
}

#[test]
fn a_large_flush_goes_to_the_log_and_keeps_its_order_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.db");
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let series = register(&mut w, 400);
    let gauge = series[1].0;
    let flush = |ts: i64, last: f64| -> Vec<Write> {
        series
            .iter()
            .map(|&(id, kind)| Write {
                series: id,
                ts_ms: ts,
                sample: match kind {
                    Kind::Gauge => Sample::Gauge { last, min: last, max: last },
                    Kind::Distribution => Sample::Distribution(Box::new(Distribution::from_values(&[0.25]))),
                    Kind::Set => Sample::Set(1.0),
                    Kind::Counter => Sample::Counter(1.0),
                },
            })
            .collect()
    };
    w.write(&flush(T0, 1.0)).unwrap();
    assert_eq!((log_rows(&path), head_rows(&path)), (1, 0), "400 series (the default is 256 or more) are logged");
    // A crash: the writer goes without closing; the log stays and readers see it.
    drop(w);
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    // A small flush while the log holds rows is logged too, after what is there: the gauge's
    // later value of the same interval wins when the log is folded.
    w.write(&[Write { series: gauge, ts_ms: T0, sample: Sample::Gauge { last: 5.0, min: 5.0, max: 5.0 } }]).unwrap();
    assert_eq!(log_rows(&path), 2);
    let read = |path: &Path| {
        let mut r = Reader::open(path).unwrap();
        let snap = r.snapshot().unwrap();
        let infos = snap.series(&perfstore::Selector::default()).unwrap();
        let g = infos.iter().find(|i| i.id == gauge).unwrap();
        let p = snap.aggregate(g, TimeRange::new(T0, T0 + MIN)).unwrap().unwrap();
        let total: f64 = snap
            .aggregate_many(&infos, TimeRange::new(T0, T0 + MIN))
            .unwrap()
            .iter()
            .zip(&infos)
            .filter(|(_, i)| i.key.kind == Kind::Counter)
            .map(|(p, _)| p.as_ref().unwrap().sum)
            .sum();
        (p.last, p.min, p.max, total)
    };
    assert_eq!(read(&path), (5.0, 1.0, 5.0, 100.0));
    w.maintain(T0 + MIN).unwrap();
    assert_eq!((log_rows(&path), head_rows(&path)), (0, 400));
    assert_eq!(read(&path), (5.0, 1.0, 5.0, 100.0), "folded: the later value of the interval is its last");
    // With the log empty, a small flush updates its head directly again.
    w.write(&[Write { series: gauge, ts_ms: T0 + 10 * SEC, sample: Sample::Gauge { last: 2.0, min: 2.0, max: 2.0 } }])
        .unwrap();
    assert_eq!(log_rows(&path), 0);
}

#[test]
fn an_undecodable_log_row_is_refused_and_left_as_it_is_and_stops_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.db");
    let mut w = Writer::open(&path, StoreOptions { log_min_series: 1, ..StoreOptions::default() }).unwrap();
    // Series in two log buckets (ids 1..1024 and 1025..).
    let series = register(&mut w, 1100);
    let (low, high) = (series[0], series[1097]);
    let counter = |(id, _): (SeriesId, Kind), ts: i64| Write { series: id, ts_ms: ts, sample: Sample::Counter(3.0) };
    assert_eq!(high.1, Kind::Gauge);
    w.write(&[counter(low, T0)]).unwrap();
    w.write(&[Write { series: high.0, ts_ms: T0, sample: Sample::Gauge { last: 2.0, min: 2.0, max: 2.0 } }]).unwrap();
    drop(w);
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(conn.execute("UPDATE recent SET data = x'01020304ff' WHERE bucket = 0", []).unwrap(), 1);
    drop(conn);
    let mut r = Reader::open(&path).unwrap();
    let snap = r.snapshot().unwrap();
    let infos = snap.series(&perfstore::Selector::default()).unwrap();
    let low_info = infos.iter().find(|i| i.id == low.0).unwrap();
    let err = snap.aggregate(low_info, TimeRange::new(T0, T0 + MIN)).unwrap_err().to_string();
    assert!(err.contains("recent log"), "{err}");
    drop(snap);
    // Every write folds first (a budget of 0 bytes): the bad bucket does not stop writes.
    let mut w = Writer::open(&path, StoreOptions { log_max_bytes: 0, ..StoreOptions::default() }).unwrap();
    w.write(&[Write { series: high.0, ts_ms: T0 + 10 * SEC, sample: Sample::Gauge { last: 4.0, min: 4.0, max: 4.0 } }])
        .unwrap();
    let err = w.maintain(T0 + MIN).unwrap_err().to_string();
    assert!(err.contains("recent log"), "{err}");
    assert_eq!(log_rows(&path), 1, "the bad row is kept for a look, not dropped; the other bucket was folded");
    let mut r = Reader::open(&path).unwrap();
    let snap = r.snapshot().unwrap();
    let high_info = infos.iter().find(|i| i.id == high.0).unwrap();
    let p = snap.aggregate(high_info, TimeRange::new(T0, T0 + MIN)).unwrap().unwrap();
    assert_eq!((p.count, p.last, p.min, p.max), (2.0, 4.0, 2.0, 4.0), "both gauge points, in the heads");
}

#[test]
fn a_write_refused_partway_leaves_the_log_as_it_was() {
    // The log takes a write a bucket at a time; a bad sample in a later bucket must undo the
    // buckets already appended.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.db");
    let mut w = Writer::open(&path, StoreOptions { log_min_series: 1, ..StoreOptions::default() }).unwrap();
    let series = register(&mut w, 2100);
    let batch = &flushes(&series, 3)[0];
    w.write(batch).unwrap();
    let rows = log_rows(&path);
    assert_eq!(rows, 3, "one row per bucket");
    let mut bad = batch.clone();
    let last = bad.last_mut().unwrap();
    last.sample = match last.sample {
        Sample::Counter(_) => Sample::Set(1.0),
        _ => Sample::Counter(1.0),
    };
    let err = w.write(&bad).unwrap_err().to_string();
    assert!(err.contains(&format!("series {}", bad.last().unwrap().series)), "{err}");
    assert_eq!(log_rows(&path), rows, "nothing of the refused write is kept");
    let mut later = batch.clone();
    for p in &mut later {
        p.ts_ms += 10 * SEC * 200;
    }
    w.write(&later).unwrap();
    assert_eq!(log_rows(&path), rows + 3);
}

#[test]
fn a_full_log_folded_between_writes_reads_the_same_and_the_next_write_just_logs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.db");
    let open = |max| {
        Writer::open(&path, StoreOptions { log_min_series: 1, log_max_bytes: max, ..StoreOptions::default() }).unwrap()
    };
    let mut w = open(u64::MAX);
    let series = register(&mut w, 1100);
    let batches = flushes(&series, 11);
    for batch in &batches[..3] {
        w.write(batch).unwrap();
    }
    assert_eq!(w.fold_when_full().unwrap(), 0, "under the limit nothing is folded");
    assert_eq!(log_rows(&path), 6, "three flushes, two buckets each");
    let want = answers(&path, &series);
    drop(w);
    // A limit the log is past (but not twice past): a slice, at least a bucket.
    let bytes: i64 = read_only(&path).query_row("SELECT sum(length(data)) FROM recent", [], |r| r.get(0)).unwrap();
    let mut w = open(bytes as u64 * 2 / 3);
    let folded = w.fold_when_full().unwrap();
    assert!(folded >= 3 * 700, "a bucket's three flushes at least: {folded} points");
    assert!(log_rows(&path) <= 3, "{} rows left", log_rows(&path));
    same(&answers(&path, &series), &want, "folded between writes");
    // The log is under its limit again: the next write does not fold, it only logs.
    let (rows, heads) = (log_rows(&path), head_rows(&path));
    w.write(&batches[3]).unwrap();
    assert_eq!((log_rows(&path), head_rows(&path)), (rows + 2, heads));
}

fn logged_buckets(path: &Path) -> Vec<i64> {
    let conn = read_only(path);
    let mut stmt = conn.prepare("SELECT DISTINCT bucket FROM recent ORDER BY bucket").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn sliced_maintenance_folds_the_buckets_in_turn_and_everything_due_for_sealing() {
    // A fold of the whole log stopped the writer for seconds at 100 000 series. In slices
    // (here one bucket each) readers see the same data at every step; the slices take the
    // buckets in turn; heads due to be sealed get their buckets folded first.
    let dir = tempfile::tempdir().unwrap();
    let (direct_path, sliced_path) = (dir.path().join("direct.db"), dir.path().join("sliced.db"));
    let mut direct =
        Writer::open(&direct_path, StoreOptions { log_min_series: usize::MAX, ..StoreOptions::default() }).unwrap();
    let opts = StoreOptions { log_min_series: 1, log_fold_slice: std::time::Duration::ZERO, ..StoreOptions::default() };
    let mut sliced = Writer::open(&sliced_path, opts).unwrap();
    let series = register(&mut direct, 2100);
    assert_eq!(register(&mut sliced, 2100), series);
    let batches = flushes(&series, 9);
    for batch in &batches[..20] {
        direct.write(batch).unwrap();
        sliced.write(batch).unwrap();
    }
    // Within the hour nothing is due: a bucket a call, the next one each time.
    let mid = T0 + 30 * MIN;
    let r = sliced.maintain_sliced(mid).unwrap();
    assert_eq!((r.sealed_heads, logged_buckets(&sliced_path)), (0, vec![1, 2]));
    same(&answers(&sliced_path, &series), &answers(&direct_path, &series), "after the first slice");
    for batch in &batches[20..30] {
        direct.write(batch).unwrap();
        sliced.write(batch).unwrap();
    }
    assert_eq!(logged_buckets(&sliced_path), vec![0, 1, 2]);
    sliced.maintain_sliced(mid).unwrap();
    assert_eq!(logged_buckets(&sliced_path), vec![0, 2], "the slice after bucket 0 takes bucket 1");
    sliced.maintain_sliced(mid).unwrap();
    assert_eq!(logged_buckets(&sliced_path), vec![0], "then bucket 2");
    let want = answers(&direct_path, &series);
    same(&answers(&sliced_path, &series), &want, "after three slices");
    for batch in &batches[30..40] {
        direct.write(batch).unwrap();
        sliced.write(batch).unwrap();
    }
    assert_eq!(logged_buckets(&sliced_path), vec![0, 1, 2]);
    // A day later every head is due: their buckets are folded first, all of them in one
    // call however short the slice.
    let later = T0 + 25 * 60 * MIN;
    let r = sliced.maintain_sliced(later).unwrap();
    assert_eq!((log_rows(&sliced_path), head_rows(&sliced_path)), (0, 0), "all folded and sealed");
    assert_eq!(r.sealed_heads, 2100);
    direct.maintain(later).unwrap();
    same(&answers(&sliced_path, &series), &answers(&direct_path, &series), "both sealed");
}

#[test]
fn a_head_whose_bucket_cannot_be_folded_waits_and_the_rest_of_maintenance_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.db");
    let opts = StoreOptions { log_min_series: 1, log_fold_slice: std::time::Duration::ZERO, ..StoreOptions::default() };
    let mut w = Writer::open(&path, opts.clone()).unwrap();
    let series = register(&mut w, 2100);
    let batches = flushes(&series, 4);
    for batch in &batches[..10] {
        w.write(batch).unwrap();
    }
    w.fold_recent().unwrap();
    for batch in &batches[10..20] {
        w.write(batch).unwrap();
    }
    drop(w);
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert!(conn.execute("UPDATE recent SET data = x'01020304ff' WHERE bucket = 1", []).unwrap() > 0);
    drop(conn);
    let mut w = Writer::open(&path, opts).unwrap();
    let err = w.maintain_sliced(T0 + 25 * 60 * MIN).unwrap_err().to_string();
    assert!(err.contains("recent log"), "{err}");
    // Buckets 0 and 2 were folded and their heads sealed; bucket 1's heads wait with its rows.
    let in_bucket_1 = series.iter().filter(|s| s.0.0 / 1024 == 1).count() as i64;
    assert_eq!((logged_buckets(&path), head_rows(&path)), (vec![1], in_bucket_1));
}

#[test]
fn a_log_row_filed_under_another_bucket_is_refused_not_dropped() {
    // A bucket is folded a part of its series at a time; a point of a series outside the
    // bucket would be in no part, and the row deleted with it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.db");
    let opts = StoreOptions { log_min_series: 1, ..StoreOptions::default() };
    let mut w = Writer::open(&path, opts.clone()).unwrap();
    let series = register(&mut w, 10);
    w.write(&flushes(&series, 2)[0]).unwrap();
    drop(w);
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(conn.execute("UPDATE recent SET bucket = 1 WHERE bucket = 0", []).unwrap(), 1);
    drop(conn);
    let mut w = Writer::open(&path, opts).unwrap();
    let err = w.fold_recent().unwrap_err().to_string();
    assert!(err.contains("of another bucket"), "{err}");
    assert_eq!((log_rows(&path), head_rows(&path)), (1, 0), "the row is kept, nothing half-folded");
}
