//! perfstore against real files: round trips, tiers, refusals, crashes, concurrency, limits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use perfstore::sketch::RELATIVE_ACCURACY;
use perfstore::{
    Agg, Distribution, Error, Event, EventKind, Kind, MatchOp, ProfileWindow, ProfiledOp, Reader, Registration,
    RejectReason, Sample, Selector, SeriesId, SeriesKey, Stack, StoreOptions, TimeRange, Write, Writer,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data").join("perf.db");
    (dir, path)
}

fn reg(w: &mut Writer, key: &SeriesKey) -> SeriesId {
    match w.register(key, T0).expect("register") {
        Registration::Registered(id) => id,
        Registration::Rejected(r) => panic!("{key} rejected: {r:?}"),
    }
}

/// [`reg`] for a batch of keys, registered in one call.
fn reg_all(w: &mut Writer, keys: &[SeriesKey]) -> Vec<SeriesId> {
    let registered = w.register_all(keys, T0).expect("register_all");
    let ids = registered.into_iter().zip(keys).map(|(r, key)| match r {
        Registration::Registered(id) => id,
        Registration::Rejected(r) => panic!("{key} rejected: {r:?}"),
    });
    ids.collect()
}

/// Label sets stored in the database at `path`.
fn labelsets(path: &Path) -> i64 {
    let db = rusqlite::Connection::open(path).unwrap();
    db.query_row("SELECT count(*) FROM labelset", [], |r| r.get(0)).unwrap()
}

fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).expect("read file")
}

fn exact_quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let r = perfstore::sketch::nearest_rank(q, values.len() as f64) as usize;
    values[r - 1]
}

#[test]
fn counters_gauges_sets_and_distributions_round_trip() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let c = reg(&mut w, &SeriesKey::new("api", "op.retries", Kind::Counter).label("op", "vm.list"));
    let g = reg(&mut w, &SeriesKey::new("api", "pool.size", Kind::Gauge).label("pool", "arm"));
    let s = reg(&mut w, &SeriesKey::new("api", "users", Kind::Set));
    let d = reg(&mut w, &SeriesKey::new("api", "op.duration", Kind::Distribution).unit("s").label("op", "vm.list"));
    let mut rng = StdRng::seed_from_u64(1);
    let mut all_latencies = Vec::new();
    let mut counter_total = 0.0;
    for i in 0..500 {
        let ts = T0 + i * 10_000;
        let delta = if i % 7 == 0 { -1.5 } else { f64::from(rng.random_range(0..40)) + 0.25 };
        counter_total += delta;
        let lat: Vec<f64> = (0..rng.random_range(1..30)).map(|_| rng.random_range(0.005..2.0)).collect();
        all_latencies.extend(&lat);
        w.write(&[
            Write { series: c, ts_ms: ts, sample: Sample::Counter(delta) },
            Write {
                series: g,
                ts_ms: ts,
                sample: Sample::Gauge { last: i as f64, min: i as f64 - 2.0, max: i as f64 + 3.0 },
            },
            Write { series: s, ts_ms: ts, sample: Sample::Set(f64::from(i as u32 % 11)) },
            Write { series: d, ts_ms: ts, sample: Sample::Distribution(Box::new(Distribution::from_values(&lat))) },
        ])
        .unwrap();
    }
    drop(w);
    let mut r = Reader::open(&path).unwrap();
    let snap = r.snapshot().unwrap();
    let all = TimeRange::new(T0, T0 + DAY);
    let one = |name: &str| snap.series(&Selector::name(name)).unwrap().remove(0);
    let cp = snap.aggregate(&one("op.retries"), all).unwrap().unwrap();
    assert_eq!(cp.sum, counter_total, "counter deltas are exact, negative and fractional included");
    assert_eq!(cp.count, 500.0);
    let gp = snap.aggregate(&one("pool.size"), all).unwrap().unwrap();
    assert_eq!((gp.last, gp.min, gp.max), (499.0, -2.0, 502.0));
    let sp = snap.aggregate(&one("users"), all).unwrap().unwrap();
    assert_eq!(sp.max, 10.0);
    let dp = snap.aggregate(&one("op.duration"), all).unwrap().unwrap();
    assert_eq!(dp.count, all_latencies.len() as f64);
    for q in [0.5, 0.95, 0.99] {
        let want = exact_quantile(&mut all_latencies, q);
        let got = dp.quantile(q).unwrap();
        assert!((got - want).abs() <= want * RELATIVE_ACCURACY, "p{} want {want} got {got}", q * 100.0);
    }
    // Per-step sums add up to the whole.
    let steps = snap.range(&one("op.retries"), all, 5 * MIN).unwrap();
    assert_eq!(steps.steps.iter().map(|(_, p)| p.sum).sum::<f64>(), counter_total);
    assert!(steps.steps.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(Agg::Rate.apply(&cp, 100.0), Some(counter_total / 100.0));
}

#[test]
fn late_duplicate_and_backfilled_points_merge() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let c = reg(&mut w, &SeriesKey::new("api", "calls", Kind::Counter));
    let g = reg(&mut w, &SeriesKey::new("api", "level", Kind::Gauge));
    // Five hours at 10 s, written in a shuffled order, each interval twice (two halves).
    let mut ts: Vec<i64> = (0..1800).map(|i| T0 + i * 10_000).collect();
    let mut rng = StdRng::seed_from_u64(7);
    for i in (1..ts.len()).rev() {
        ts.swap(i, rng.random_range(0..=i));
    }
    for chunk in ts.chunks(97) {
        let mut batch = Vec::new();
        for &t in chunk {
            batch.push(Write { series: c, ts_ms: t, sample: Sample::Counter(1.0) });
            batch.push(Write { series: c, ts_ms: t, sample: Sample::Counter(2.0) });
            let v = ((t - T0) / 10_000) as f64;
            batch.push(Write { series: g, ts_ms: t, sample: Sample::Gauge { last: v, min: v, max: v } });
        }
        w.write(&batch).unwrap();
    }
    // A second, late write of one interval adds to its counter.
    w.write(&[Write { series: c, ts_ms: T0 + 50 * 10_000, sample: Sample::Counter(10.0) }]).unwrap();
    let snap = w.snapshot().unwrap();
    let cs = snap.series(&Selector::name("calls")).unwrap().remove(0);
    let range = TimeRange::new(T0, T0 + 5 * HOUR);
    assert_eq!(snap.aggregate(&cs, range).unwrap().unwrap().sum, 1800.0 * 3.0 + 10.0);
    let steps = snap.range(&cs, range, 10_000).unwrap();
    assert_eq!(steps.steps.len(), 1800, "every interval present once");
    assert_eq!(steps.steps[50].1.sum, 13.0);
    assert!(steps.steps.iter().enumerate().all(|(i, (_, p))| i == 50 || p.sum == 3.0));
    let gs = snap.series(&Selector::name("level")).unwrap().remove(0);
    let gp = snap.aggregate(&gs, range).unwrap().unwrap();
    assert_eq!((gp.min, gp.max, gp.last), (0.0, 1799.0, 1799.0), "gauge last is the latest interval's");
}

/// Write `days` of 10 s data for a counter, a gauge and a timer ending at `T0 + days`.
fn write_days(w: &mut Writer, days: i64) -> [SeriesId; 3] {
    let c = reg(w, &SeriesKey::new("api", "op.retries", Kind::Counter));
    let g = reg(w, &SeriesKey::new("api", "cache.size", Kind::Gauge));
    let d = reg(w, &SeriesKey::new("api", "op.duration", Kind::Distribution).unit("s"));
    let mut rng = StdRng::seed_from_u64(3);
    let per_hour = 360;
    for h in 0..days * 24 {
        let mut batch = Vec::with_capacity(per_hour * 3);
        for i in 0..per_hour as i64 {
            let ts = T0 + h * HOUR + i * 10_000;
            let v = f64::from(rng.random_range(0..50u32));
            batch.push(Write { series: c, ts_ms: ts, sample: Sample::Counter(v) });
            batch.push(Write { series: g, ts_ms: ts, sample: Sample::Gauge { last: v, min: v - 1.0, max: v + 1.0 } });
            let lat: Vec<f64> = (0..3).map(|_| rng.random_range(0.001..1.0)).collect();
            batch.push(Write {
                series: d,
                ts_ms: ts,
                sample: Sample::Distribution(Box::new(Distribution::from_values(&lat))),
            });
        }
        w.write(&batch).unwrap();
    }
    [c, g, d]
}

#[test]
fn rollups_agree_with_raw_and_expire_by_tier() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    write_days(&mut w, 10);
    let ranges = [
        TimeRange::new(T0, T0 + 10 * DAY),
        TimeRange::new(T0 + 17 * MIN, T0 + 2 * DAY + 5 * HOUR + 43 * MIN),
        TimeRange::new(T0 + 3 * HOUR + 10 * MIN, T0 + 3 * HOUR + 50 * MIN),
    ];
    let answers = |w: &mut Writer| {
        let snap = w.snapshot().unwrap();
        let mut out = Vec::new();
        for s in snap.series(&Selector::default()).unwrap() {
            for r in ranges {
                let p = snap.aggregate(&s, r).unwrap().unwrap();
                let batched = snap.aggregate_scan(std::slice::from_ref(&s), r).unwrap().remove(0).unwrap();
                assert_eq!(
                    (batched.count, batched.sum, batched.min, batched.max, batched.last, batched.quantile(0.99)),
                    (p.count, p.sum, p.min, p.max, p.last, p.quantile(0.99)),
                    "batched scan agrees with the per-series query"
                );
                // Split at cuts inside the range (one on an hour, two not): each segment
                // equals the aggregate over that segment alone.
                let len = r.end_ms - r.start_ms;
                let mut cuts = vec![r.start_ms + len / 3, floor_hour(r.start_ms + len / 2), r.end_ms - len / 7];
                cuts.retain(|c| *c > r.start_ms && *c < r.end_ms);
                cuts.sort_unstable();
                let split = snap.aggregate_split(std::slice::from_ref(&s), r, &cuts).unwrap();
                let bounds: Vec<i64> =
                    std::iter::once(r.start_ms).chain(cuts.iter().copied()).chain([r.end_ms]).collect();
                for (k, w) in bounds.windows(2).enumerate() {
                    let alone = snap.aggregate(&s, TimeRange::new(w[0], w[1])).unwrap();
                    let part = split[k][0].as_ref();
                    let f = |p: Option<&perfstore::Point>| {
                        p.map(|p| (p.count, (p.sum * 1e6).round(), p.min, p.max, p.last, p.quantile(0.99)))
                    };
                    assert_eq!(f(part), f(alone.as_ref()), "{} segment {k} of {r:?}", s.key.name);
                }
                let q = [0.5, 0.99].map(|q| p.quantile(q));
                out.push((s.key.name.clone(), p.count, p.sum, p.min, p.max, p.last, q));
            }
            let steps = snap.range(&s, ranges[0], HOUR).unwrap();
            out.push((
                s.key.name.clone(),
                steps.steps.len() as f64,
                steps.steps.iter().map(|x| x.1.sum).sum(),
                0.0,
                0.0,
                0.0,
                [None, None],
            ));
        }
        out
    };
    let before = answers(&mut w);
    // Eight days later than the data's start: the first days' raw data is past 7 days.
    let report = w.maintain(T0 + 10 * DAY + 7 * DAY - 3 * DAY).unwrap();
    assert!(report.rolled_chunks > 100, "{report:?}");
    let raw_left: i64 = w.snapshot().unwrap().series_usage().unwrap().iter().map(|u| u.points).sum();
    assert!(raw_left > 0);
    let after = answers(&mut w);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.0, a.0);
        assert_eq!(b.1, a.1, "{} count", b.0);
        assert!((b.2 - a.2).abs() <= 1e-9 * b.2.abs().max(1.0), "{} sum {} vs {}", b.0, b.2, a.2);
        assert_eq!((b.3, b.4, b.5), (a.3, a.4, a.5), "{} min/max/last", b.0);
        assert_eq!(b.6, a.6, "{} quantiles come from merged sketches, so they match exactly", b.0);
    }
    // Far in the future: everything raw is rolled; minute rollups expire after 90 days and
    // hourly ones after 2 years.
    let r = w.maintain(T0 + 100 * DAY).unwrap();
    assert!(r.expired_chunks[1] > 0, "{r:?}");
    let snap = w.snapshot().unwrap();
    let s = snap.series(&Selector::name("op.retries")).unwrap().remove(0);
    let hourly = snap.aggregate(&s, ranges[0]).unwrap().unwrap();
    assert_eq!(hourly.sum, before[0].2, "hour tier still answers whole hours");
    drop(snap);
    w.maintain(T0 + 800 * DAY).unwrap();
    let snap = w.snapshot().unwrap();
    assert!(snap.aggregate(&s, ranges[0]).unwrap().is_none(), "past two years everything is gone");
}

fn floor_hour(ms: i64) -> i64 {
    ms.div_euclid(HOUR) * HOUR
}

/// Count, sum, min and max of every series over `range`.
fn totals(w: &mut Writer, range: TimeRange) -> Vec<(String, f64, f64, f64, f64)> {
    let snap = w.snapshot().unwrap();
    let mut out = Vec::new();
    for s in snap.series(&Selector::default()).unwrap() {
        let p = snap.aggregate(&s, range).unwrap().unwrap();
        out.push((s.key.name.to_string(), p.count, p.sum, p.min, p.max));
    }
    out
}

fn assert_same_totals(a: &[(String, f64, f64, f64, f64)], b: &[(String, f64, f64, f64, f64)]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x.0, x.1, x.3, x.4), (&y.0, y.1, y.3, y.4), "{} count/min/max", x.0);
        assert!((x.2 - y.2).abs() <= 1e-9 * x.2.abs().max(1.0), "{} sum {} vs {}", x.0, x.2, y.2);
    }
}

fn stack_rows(path: &Path) -> (i64, i64) {
    let c = rusqlite::Connection::open(path).unwrap();
    let all = c.query_row("SELECT count(*) FROM stack", [], |r| r.get(0)).unwrap();
    let orphans = c
        .query_row("SELECT count(*) FROM stack WHERE id NOT IN (SELECT stack_id FROM profile)", [], |r| r.get(0))
        .unwrap();
    (all, orphans)
}

/// `n` distinct stacks of about 1 KiB each, in one window ending at `end_ms`.
fn big_profile(op: &str, end_ms: i64, n: usize, seed: usize) -> ProfileWindow {
    let stacks = (0..n)
        .map(|i| {
            let frames: Vec<String> = (0..40).map(|f| format!("crate::module_{seed}::function_{i}_{f}")).collect();
            Stack::new(frames.join(";"), 1 + i as u64 % 7)
        })
        .collect();
    ProfileWindow { service: "api".into(), op: op.into(), start_ms: end_ms - MIN, end_ms, stacks }
}

#[test]
fn disk_cap_rolls_raw_data_up_early_before_losing_any_history() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    write_days(&mut w, 4);
    let all = TimeRange::new(T0, T0 + 4 * DAY);
    let before = totals(&mut w, all);
    let used_before = w.used_bytes().unwrap();
    drop(w);
    // Reopen with a cap at two thirds of what the data takes: rolling the oldest raw chunks
    // up is enough, so nothing is lost but resolution.
    let cap = used_before * 2 / 3;
    let mut w = Writer::open(&path, StoreOptions { disk_cap_bytes: cap, ..StoreOptions::default() }).unwrap();
    let report = w.maintain(T0 + 4 * DAY).unwrap();
    assert!(report.rolled_early_chunks > 0, "{report:?}");
    assert_eq!((report.pruned_chunks, report.pruned_until_ms), (0, None), "no rollup pruned: {report:?}");
    assert!(report.used_bytes <= cap, "{report:?} cap {cap}");
    assert!(w.db_bytes() <= cap + 256 * 1024, "pages returned to the file system: {} bytes, cap {cap}", w.db_bytes());
    assert_same_totals(&before, &totals(&mut w, all));
    let snap = w.snapshot().unwrap();
    let s = snap.series(&Selector::name("op.retries")).unwrap().remove(0);
    let first_hour = snap.range(&s, TimeRange::new(T0, T0 + HOUR), 10_000).unwrap();
    assert_eq!(first_hour.steps.len(), 60, "the oldest hour is kept at one-minute resolution");
    let last_hour = snap.range(&s, TimeRange::new(T0 + 4 * DAY - HOUR, T0 + 4 * DAY), 10_000).unwrap();
    assert_eq!(last_hour.steps.len(), 360, "the newest hour keeps its 10 s points");
    snap.integrity_check().unwrap();
}

#[test]
fn disk_cap_prunes_minute_rollups_before_hour_rollups() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    write_days(&mut w, 6);
    // Everything rolled: 6 days of one-minute and one-hour rollups.
    w.maintain(T0 + 13 * DAY).unwrap();
    let all = TimeRange::new(T0, T0 + 6 * DAY);
    let snap = w.snapshot().unwrap();
    let s = snap.series(&Selector::name("op.retries")).unwrap().remove(0);
    let hourly_before = snap.range(&s, all, HOUR).unwrap();
    drop(snap);
    let used = w.used_bytes().unwrap();
    drop(w);
    // Well under what the data takes, with room for the schema's fixed pages (a 16 KiB root
    // page per table and index) on this tiny store.
    let cap = used * 3 / 5;
    let mut w = Writer::open(&path, StoreOptions { disk_cap_bytes: cap, ..StoreOptions::default() }).unwrap();
    let report = w.maintain(T0 + 13 * DAY).unwrap();
    assert!(report.pruned_chunks > 0 && report.used_bytes <= cap, "{report:?} cap {cap}");
    let until = report.pruned_until_ms.expect("says up to when one-minute detail went");
    assert!(until > T0 && until < T0 + 6 * DAY, "{until}");
    let snap = w.snapshot().unwrap();
    // The one-hour tier still answers for every hour, the pruned ones included.
    assert_eq!(snap.range(&s, all, HOUR).unwrap().steps, hourly_before.steps);
    let fine_old = snap.range(&s, TimeRange::new(T0, T0 + HOUR), MIN).unwrap();
    assert!(fine_old.steps.len() <= 1, "one-minute detail of the oldest hour is gone: {}", fine_old.steps.len());
    let fine_new = snap.range(&s, TimeRange::new(T0 + 6 * DAY - HOUR, T0 + 6 * DAY), MIN).unwrap();
    assert_eq!(fine_new.steps.len(), 60, "the newest hour keeps one-minute detail");
    snap.integrity_check().unwrap();
}

#[test]
fn profiles_stay_within_their_budget_and_never_cost_metric_history() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    write_days(&mut w, 3);
    let all = TimeRange::new(T0, T0 + 3 * DAY);
    let before = totals(&mut w, all);
    let metrics = w.used_bytes().unwrap();
    drop(w);
    // A cap of twice what the metrics take (so a quarter of it for profiles); then three
    // uploads that together exceed that quarter.
    let cap = metrics * 2;
    let opts = StoreOptions { disk_cap_bytes: cap, ..StoreOptions::default() };
    let mut w = Writer::open(&path, opts.clone()).unwrap();
    let now = T0 + 3 * DAY;
    for i in 0..3 {
        w.write_profiles(&[big_profile("vm.list", now - (3 - i) * 10 * MIN, 250, i as usize)]).unwrap();
    }
    assert!(w.profile_bytes().unwrap() > opts.profile_budget(), "the uploads exceed the budget");
    let report = w.maintain(now).unwrap();
    assert!(report.pruned_profiles > 0, "{report:?}");
    assert_eq!(report.pruned_chunks, 0, "no metric rollup pruned: {report:?}");
    assert_eq!(report.rolled_early_chunks, 0, "no metric resolution lost: {report:?}");
    assert!(
        w.profile_bytes().unwrap() <= opts.profile_budget(),
        "{} > {}",
        w.profile_bytes().unwrap(),
        opts.profile_budget()
    );
    assert!(report.used_bytes <= cap, "{report:?} cap {cap}");
    assert_same_totals(&before, &totals(&mut w, all));
    let (stacks, orphans) = stack_rows(&path);
    assert_eq!(orphans, 0, "stacks go with the last profile row using them");
    assert!(stacks > 0, "the newest upload is kept");
    let snap = w.snapshot().unwrap();
    let newest = snap.profile("vm.list", None, TimeRange::new(now - 11 * MIN, now)).unwrap();
    assert_eq!(newest.len(), 250, "the newest upload is whole");
    snap.integrity_check().unwrap();
}

#[test]
fn over_the_cap_old_profiles_go_before_metrics_and_the_newest_hour_last() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    write_days(&mut w, 2);
    let now = T0 + 2 * DAY;
    // Profiles within a generous budget: one old (yesterday), one in the newest hour.
    w.write_profiles(&[big_profile("old.op", now - DAY, 600, 1)]).unwrap();
    w.write_profiles(&[big_profile("new.op", now - 5 * MIN, 600, 2)]).unwrap();
    let all = TimeRange::new(T0, now);
    let before = totals(&mut w, all);
    let used = w.used_bytes().unwrap();
    let profiles = w.profile_bytes().unwrap();
    drop(w);
    // Over the cap by about a third of the profiles' size.
    let cap = used - profiles / 3;
    let opts = StoreOptions { disk_cap_bytes: cap, profile_budget_bytes: Some(cap), ..StoreOptions::default() };
    let mut w = Writer::open(&path, opts).unwrap();
    let report = w.maintain(now).unwrap();
    assert!(report.used_bytes <= cap, "{report:?} cap {cap}");
    assert_eq!((report.rolled_early_chunks, report.pruned_chunks), (0, 0), "metrics untouched: {report:?}");
    assert_same_totals(&before, &totals(&mut w, all));
    let snap = w.snapshot().unwrap();
    let ops: Vec<String> = snap.profiled_ops(all).unwrap().into_iter().map(|o| o.op).collect();
    assert_eq!(ops, ["new.op"], "the old profile went, the newest hour's stayed");
    drop(snap);
    assert_eq!(stack_rows(&path).1, 0, "no orphaned stacks");
}

#[test]
fn refuses_a_file_that_is_not_sqlite_and_leaves_it_alone() {
    let (_d, path) = tmp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"id,name\n1,not a database at all, just a CSV somebody saved here\n").unwrap();
    let before = file_bytes(&path);
    let want = format!(
        "{}: not an SQLite database (wrong file header); refusing to open it, the file was left untouched",
        path.display()
    );
    let e = Writer::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(e, Error::NotSqlite { .. }));
    assert_eq!(e.to_string(), want);
    assert_eq!(Reader::open(&path).unwrap_err().to_string(), want);
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn refuses_another_programs_database() {
    let (_d, path) = tmp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'ada');")
        .unwrap();
    drop(c);
    let before = file_bytes(&path);
    let e = Writer::open(&path, StoreOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: an SQLite database, but not a perfagent store (application_id 0x0, user_version 0, 1 schema objects); \
             refusing to open it, the file was left untouched",
            path.display()
        )
    );
    assert!(matches!(Reader::open(&path).unwrap_err(), Error::ForeignSchema { .. }));
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn refuses_a_newer_schema_naming_both_versions() {
    let (_d, path) = tmp();
    Writer::open(&path, StoreOptions::default()).unwrap().close().unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let before = file_bytes(&path);
    let want = format!(
        "{}: store schema version 99 is newer than this binary supports (version {}); upgrade perfagent/perfctl; \
         the file was left untouched",
        path.display(),
        perfstore::SCHEMA_VERSION
    );
    assert_eq!(Writer::open(&path, StoreOptions::default()).unwrap_err().to_string(), want);
    assert_eq!(Reader::open(&path).unwrap_err().to_string(), want);
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn a_version_1_store_is_upgraded_to_the_opentelemetry_host_names_keeping_its_data() {
    use perfstore::convention::{SYSTEM_CPU_LOGICAL_COUNT, SYSTEM_MEMORY_LINUX_AVAILABLE};
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    for (m, v) in [(SYSTEM_CPU_LOGICAL_COUNT, 8.0), (SYSTEM_MEMORY_LINUX_AVAILABLE, 1e9)] {
        let id = reg(&mut w, &m.key("host"));
        w.write(&[Write { series: id, ts_ms: T0, sample: Sample::Gauge { last: v, min: v, max: v } }]).unwrap();
    }
    w.close().unwrap();
    // What version 1 wrote: the old names, and user_version 1.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "UPDATE series SET name = 'system.cpu.logical_cpus' WHERE name = 'system.cpu.logical.count'; \
         UPDATE series SET name = 'system.memory.available' WHERE name = 'system.memory.linux.available'; \
         DROP INDEX profile_by_stack; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(c);
    let e = Reader::open(&path).unwrap_err().to_string();
    assert!(e.contains("store schema version 1 is older than this binary's"), "{e}");
    Writer::open(&path, StoreOptions::default()).unwrap().close().unwrap();
    let mut r = Reader::open(&path).unwrap();
    let snap = r.snapshot().unwrap();
    assert_eq!(snap.schema_version().unwrap(), perfstore::SCHEMA_VERSION);
    for (m, v) in [(SYSTEM_CPU_LOGICAL_COUNT, 8.0), (SYSTEM_MEMORY_LINUX_AVAILABLE, 1e9)] {
        let series = snap.series(&Selector::name(m.name)).unwrap();
        assert_eq!(series.len(), 1, "{}", m.name);
        let p = snap.aggregate(&series[0], TimeRange::new(T0, T0 + HOUR)).unwrap().unwrap();
        assert_eq!(p.last, v, "{}", m.name);
    }
    assert!(snap.series(&Selector::name("system.cpu.logical_cpus")).unwrap().is_empty());
}

#[test]
fn refuses_a_corrupt_file_and_leaves_it_alone() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    write_days(&mut w, 1);
    w.close().unwrap();
    let mut bytes = file_bytes(&path);
    assert!(bytes.len() > 20 * 16384);
    // Scribble over pages 3..12 (b-tree pages of the tables), keeping the header intact.
    for b in &mut bytes[2 * 16384..12 * 16384] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let e = Writer::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.starts_with(&format!("{}: the database is corrupt (", path.display())), "{text}");
    assert!(text.ends_with("); refusing to use it, the file was left untouched"), "{text}");
    assert_eq!(file_bytes(&path), bytes);
    // Readers skip the up-front check but still say "corrupt" when they hit the damage.
    let r = Reader::open(&path).and_then(|mut r| {
        let snap = r.snapshot()?;
        snap.integrity_check()
    });
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
    assert_eq!(file_bytes(&path), bytes);
}

#[test]
fn a_missing_store_is_named() {
    let (_d, path) = tmp();
    let e = Reader::open(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: no perfagent store here (start `perfagent start`, or pass --db PATH)", path.display())
    );
    assert!(!path.exists(), "readers never create a store");
}

#[test]
fn a_full_disk_is_a_typed_error_and_leaves_the_store_consistent() {
    let (_d, path) = tmp();
    let opts = StoreOptions { max_page_count: Some(48), ..StoreOptions::default() };
    let mut w = Writer::open(&path, opts).unwrap();
    let ids: Vec<SeriesId> =
        (0..40).map(|i| reg(&mut w, &SeriesKey::new("api", &format!("gauge.{i}"), Kind::Gauge))).collect();
    let mut rng = StdRng::seed_from_u64(9);
    let mut acked = 0;
    let err = loop {
        let ts = T0 + acked * 10_000;
        let batch: Vec<Write> = ids
            .iter()
            .map(|&id| {
                let v: f64 = rng.random();
                Write { series: id, ts_ms: ts, sample: Sample::Gauge { last: v, min: v, max: v } }
            })
            .collect();
        match w.write(&batch) {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 100_000, "never filled up");
    };
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: disk full or store size limit reached; the write was rolled back and the store is unchanged",
            path.display()
        )
    );
    drop(w);
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let snap = w.snapshot().unwrap();
    snap.integrity_check().unwrap();
    for s in snap.series(&Selector::name("gauge.*")).unwrap() {
        let p = snap.aggregate(&s, TimeRange::new(T0, T0 + DAY)).unwrap().unwrap();
        assert_eq!(p.count, acked as f64, "every acknowledged flush is there, the failed one is not");
    }
}

#[test]
fn cardinality_limits_and_kind_conflicts_are_rejected_not_errors() {
    let (_d, path) = tmp();
    let opts = StoreOptions { max_series: 5, max_series_per_name: 3, ..StoreOptions::default() };
    let mut w = Writer::open(&path, opts.clone()).unwrap();
    let keys: Vec<SeriesKey> = (0..4)
        .map(|i| SeriesKey::new("api", "op.duration", Kind::Distribution).label("op", &format!("op{i}")))
        .collect();
    let r = w.register_all(&keys, T0).unwrap();
    assert!(matches!(r[..3], [Registration::Registered(_), Registration::Registered(_), Registration::Registered(_)]));
    assert_eq!(r[3], Registration::Rejected(RejectReason::PerNameLimit));
    let conflict = SeriesKey::new("api", "op.duration", Kind::Counter).label("op", "op0");
    assert_eq!(w.register(&conflict, T0).unwrap(), Registration::Rejected(RejectReason::KindConflict));
    reg(&mut w, &SeriesKey::new("api", "a", Kind::Counter));
    reg(&mut w, &SeriesKey::new("api", "b", Kind::Counter));
    assert_eq!(
        w.register(&SeriesKey::new("api", "c", Kind::Counter), T0).unwrap(),
        Registration::Rejected(RejectReason::TotalLimit)
    );
    // Limits survive a restart (counts come from the file).
    drop(w);
    let mut w = Writer::open(&path, opts).unwrap();
    assert_eq!(w.series_count(), 5);
    assert_eq!(
        w.register(&SeriesKey::new("api", "d", Kind::Counter), T0).unwrap(),
        Registration::Rejected(RejectReason::TotalLimit)
    );
    // A known series is still registered (same id) at the limit.
    assert!(matches!(w.register(&keys[0], T0).unwrap(), Registration::Registered(_)));
}

#[test]
fn a_series_keeps_its_id_within_a_batch_and_across_a_restart_and_no_two_keys_share_one() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    // Keys whose strings run together the same way: only the boundaries differ.
    let keys = [
        SeriesKey::new("api", "ab", Kind::Counter).label("c", "d"),
        SeriesKey::new("api", "a", Kind::Counter).label("bc", "d"),
        SeriesKey::new("api", "a", Kind::Counter).label("b", "cd"),
        SeriesKey::new("api", "abcd", Kind::Counter),
        SeriesKey::new("api", "ab", Kind::Counter).label("c", "d"),
    ];
    let ids = reg_all(&mut w, &keys);
    assert_eq!(ids[4], ids[0], "a key given twice in one batch is one series");
    let distinct: std::collections::BTreeSet<_> = ids[..4].iter().collect();
    assert_eq!(distinct.len(), 4, "{ids:?}");
    assert_eq!(w.series_count(), 4);
    drop(w);
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    for (key, id) in keys.iter().zip(&ids) {
        assert_eq!(reg(&mut w, key), *id, "{key:?} after a restart");
    }
    assert_eq!(w.series_count(), 4, "nothing registered twice");
}

#[test]
fn a_batch_that_fails_registers_none_of_its_series() {
    let (_d, path) = tmp();
    // Room for the schema and a few series, not for a batch of 2 000 with long labels.
    let opts = StoreOptions { max_page_count: Some(48), ..StoreOptions::default() };
    let mut w = Writer::open(&path, opts).unwrap();
    let first = reg(&mut w, &SeriesKey::new("api", "first", Kind::Counter));
    let long = "v".repeat(200);
    let batch: Vec<SeriesKey> = (0..2000)
        .map(|i| SeriesKey::new("api", &format!("m{i}"), Kind::Counter).label("note", &format!("{long}{i}")))
        .collect();
    let Err(err) = w.register_all(&batch, T0) else { panic!("the batch fitted") };
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    assert_eq!(w.series_count(), 1, "none of the batch is held");
    // SQLite gives the next series the id the batch's first one had: that key must not be
    // found under it.
    let next = reg(&mut w, &SeriesKey::new("api", "next", Kind::Counter));
    assert_eq!(next, SeriesId(first.0 + 1));
    let again = reg(&mut w, &batch[0]);
    assert_ne!(again, next, "a key of the failed batch is a new series");
    assert_eq!(w.series_count(), 3);
}

#[test]
fn series_with_ids_far_from_the_others_load_and_take_points() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let near = reg(&mut w, &SeriesKey::new("api", "near", Kind::Counter));
    drop(w);
    // Rows another tool wrote: a negative id, and one past 32 bits (after which SQLite
    // numbers new series on from it).
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO labelset (id, labels) VALUES (900, '[[\"service\",\"far\"]]');
         INSERT INTO series (id, name, kind, unit, labelset_id, created_ms) VALUES (-5, 'below', 0, '', 900, 0);
         INSERT INTO series (id, name, kind, unit, labelset_id, created_ms) VALUES (8589934592, 'beyond', 0, '', 900, 0);",
    )
    .unwrap();
    drop(conn);
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(w.series_count(), 3);
    let below = reg(&mut w, &SeriesKey::new("far", "below", Kind::Counter));
    let beyond = reg(&mut w, &SeriesKey::new("far", "beyond", Kind::Counter));
    assert_eq!((below, beyond), (SeriesId(-5), SeriesId(8589934592)));
    assert_eq!(reg(&mut w, &SeriesKey::new("api", "near", Kind::Counter)), near);
    let after = reg(&mut w, &SeriesKey::new("api", "after", Kind::Counter));
    assert_eq!(after, SeriesId(8589934593));
    let writes: Vec<Write> = [near, below, beyond, after]
        .iter()
        .map(|&series| Write { series, ts_ms: T0, sample: Sample::Counter(2.0) })
        .collect();
    w.write(&writes).unwrap();
    drop(w);
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(reg(&mut w, &SeriesKey::new("api", "after", Kind::Counter)), after, "after a restart");
    assert_eq!(w.series_count(), 4);
}

#[test]
fn labels_are_sorted_interned_and_matchable() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let a = SeriesKey::new("api", "cache.requests", Kind::Counter).label("result", "hit").label("cache", "vms");
    let b = SeriesKey::new("api", "cache.requests", Kind::Counter).label("cache", "vms").label("result", "hit");
    assert_eq!(reg(&mut w, &a), reg(&mut w, &b), "label order does not make a new series");
    reg(&mut w, &SeriesKey::new("api", "cache.requests", Kind::Counter).label("cache", "vms").label("result", "miss"));
    reg(
        &mut w,
        &SeriesKey::new("batch", "cache.requests", Kind::Counter).label("cache", "blobs").label("result", "hit"),
    );
    let snap = w.snapshot().unwrap();
    let sel = Selector::name("cache.requests").with("result", MatchOp::Eq, "hit");
    assert_eq!(snap.series(&sel).unwrap().len(), 2);
    let sel = Selector::parse(r#"cache.requests{service="api",result!="hit"}"#).unwrap();
    let found = snap.series(&sel).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key.labels().next().map(|(k, _)| k).unwrap_or_default(), "cache", "labels come back sorted");
    assert_eq!(snap.label_values(&Selector::default(), "service").unwrap(), ["api", "batch"]);
    assert_eq!(labelsets(&path), 3);
}

#[test]
fn a_batch_of_series_sharing_label_sets_keeps_each_ones_labels() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    // Three label sets over twelve series, registered in one call, as a flush's new series are.
    let keys: Vec<SeriesKey> = (0..12)
        .map(|i| SeriesKey::new("api", &format!("op.{}", i / 3), Kind::Counter).label("t", &format!("v{}", i % 3)))
        .collect();
    let ids = reg_all(&mut w, &keys);
    {
        let snap = w.snapshot().unwrap();
        for v in 0..3 {
            let sel = Selector::parse(&format!(r#"{{t="v{v}"}}"#)).unwrap();
            let mut names: Vec<String> = snap.series(&sel).unwrap().iter().map(|s| s.key.name.to_string()).collect();
            names.sort();
            assert_eq!(names, ["op.0", "op.1", "op.2", "op.3"], "t=v{v}");
        }
    }
    // Registering the same keys again, one by one, finds the same series.
    for (key, id) in keys.iter().zip(&ids) {
        assert_eq!(reg(&mut w, key), *id, "{key}");
    }
    assert_eq!(labelsets(&path), 3);
}

#[test]
fn profiles_dedupe_stacks_and_merge_over_windows() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let stacks =
        |n: u64| vec![Stack::new("main;run;vm_list;parse_json", n), Stack::new("main;run;vm_list;http send", 2 * n)];
    for i in 0..3 {
        w.write_profiles(&[ProfileWindow {
            service: "api".into(),
            op: "vm.list".into(),
            start_ms: T0 + i * MIN,
            end_ms: T0 + (i + 1) * MIN,
            stacks: stacks(i as u64 + 1),
        }])
        .unwrap();
    }
    let snap = w.snapshot().unwrap();
    let merged = snap.profile("vm.list", None, TimeRange::new(T0, T0 + HOUR)).unwrap();
    assert_eq!(
        merged,
        vec![Stack::new("main;run;vm_list;http send", 12), Stack::new("main;run;vm_list;parse_json", 6)]
    );
    let only_first = snap.profile("vm.list", Some("api"), TimeRange::new(T0, T0 + MIN)).unwrap();
    assert_eq!(only_first.iter().map(|s| s.samples).sum::<u64>(), 3);
    assert_eq!(
        snap.profiled_ops(TimeRange::new(T0, T0 + HOUR)).unwrap(),
        vec![ProfiledOp { service: "api".into(), op: "vm.list".into(), samples: 18 }]
    );
    drop(snap);
    let stacks_stored: i64 =
        rusqlite::Connection::open(&path).unwrap().query_row("SELECT count(*) FROM stack", [], |r| r.get(0)).unwrap();
    assert_eq!(stacks_stored, 2, "stack text is stored once");
}

#[test]
fn events_keep_the_newest_few_per_operation() {
    let (_d, path) = tmp();
    let opts = StoreOptions { events_per_op: 5, ..StoreOptions::default() };
    let mut w = Writer::open(&path, opts).unwrap();
    let ev = |i: i64, op: &str, msg: String| Event {
        ts_ms: T0 + i * 1000,
        service: "api".into(),
        op: op.into(),
        kind: EventKind::Error,
        message: msg,
    };
    for i in 0..30 {
        w.record_events(&[ev(i, "vm.start", format!("QuotaExceeded #{i}"))]).unwrap();
    }
    w.record_events(&[ev(3, "ssm.send", "x".repeat(5000))]).unwrap();
    let snap = w.snapshot().unwrap();
    let last = snap.last_events(EventKind::Error, TimeRange::new(T0, T0 + HOUR)).unwrap();
    assert_eq!(last.len(), 2);
    assert_eq!(last[0].op, "ssm.send");
    assert_eq!(last[0].message.len(), perfstore::EVENT_MESSAGE_MAX_CHARS, "long messages are truncated");
    assert_eq!(last[1].message, "QuotaExceeded #29");
    drop(snap);
    let kept: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM event WHERE op = 'vm.start'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 5);
}

#[test]
fn files_are_private_and_chunks_stay_on_their_page() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    // Full-precision random floats at 1 s: chunks must split to stay below the cap.
    let g = reg(&mut w, &SeriesKey::new("api", "noise", Kind::Gauge));
    let mut rng = StdRng::seed_from_u64(5);
    for i in 0..3000 {
        let v: f64 = rng.random::<f64>() * 1e6;
        w.write(&[Write { series: g, ts_ms: T0 + i * 1000, sample: Sample::Gauge { last: v, min: v, max: v } }])
            .unwrap();
    }
    for p in [path.clone(), perfstore::wal_path(&path), perfstore::lock_path(&path)] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let c = rusqlite::Connection::open(&path).unwrap();
    // The open hour's sealed pieces (in `head_piece` until the hour closes) count too.
    let (n, biggest): (i64, i64) = c
        .query_row(
            "SELECT count(*), max(length(data)) FROM \
             (SELECT points, data FROM chunk UNION ALL SELECT points, data FROM head_piece) WHERE points > 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(n >= 5, "3000 random doubles need several chunks, got {n}");
    assert!(biggest as usize <= perfstore::CHUNK_MAX_BYTES, "{biggest}");
    let head: i64 = c.query_row("SELECT max(length(data)) FROM head", [], |r| r.get(0)).unwrap();
    assert!(head as usize <= perfstore::CHUNK_MAX_BYTES);
    let pragmas: (i64, String, i64) = c
        .query_row("SELECT (SELECT auto_vacuum FROM pragma_auto_vacuum), (SELECT journal_mode FROM pragma_journal_mode), (SELECT page_size FROM pragma_page_size)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(pragmas, (2, "wal".to_string(), 16384), "incremental auto-vacuum, WAL, 16 KiB pages");
}

#[test]
fn a_reader_never_sees_busy_while_the_writer_writes_and_the_wal_stays_bounded() {
    let (_d, path) = tmp();
    let limit = 512 * 1024;
    let opts = StoreOptions { wal_limit_bytes: limit, ..StoreOptions::default() };
    let mut w = Writer::open(&path, opts).unwrap();
    let ids: Vec<SeriesId> = (0..200)
        .map(|i| reg(&mut w, &SeriesKey::new("api", "load", Kind::Counter).label("i", &i.to_string())))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (done, path) = (done.clone(), path.clone());
        std::thread::spawn(move || {
            let mut r = Reader::open(&path).unwrap();
            let (mut reads, mut errors) = (0u64, Vec::new());
            while !done.load(Ordering::Relaxed) {
                let res = r.snapshot().and_then(|snap| {
                    let series = snap.series(&Selector::name("load"))?;
                    for s in series.iter().take(20) {
                        snap.aggregate(s, TimeRange::new(T0, T0 + DAY))?;
                    }
                    Ok(())
                });
                match res {
                    Ok(()) => reads += 1,
                    Err(e) => errors.push(e.to_string()),
                }
                // Back-to-back perfctl runs: each one short read transaction.
                std::thread::sleep(Duration::from_millis(2));
            }
            (reads, errors)
        })
    };
    let mut max_wal = 0;
    let mut largest_flush = 0;
    let mut slowest = Duration::ZERO;
    for i in 0..400 {
        let batch: Vec<Write> =
            ids.iter().map(|&id| Write { series: id, ts_ms: T0 + i * 10_000, sample: Sample::Counter(1.0) }).collect();
        let (t, wal_before) = (Instant::now(), w.wal_bytes());
        w.write(&batch).unwrap();
        slowest = slowest.max(t.elapsed());
        let wal_after = w.wal_bytes();
        largest_flush = largest_flush.max(wal_after.saturating_sub(wal_before));
        max_wal = max_wal.max(wal_after);
    }
    done.store(true, Ordering::Relaxed);
    let (reads, errors) = reader.join().unwrap();
    eprintln!(
        "reader made {reads} snapshots; slowest write {slowest:?}; largest WAL {max_wal} bytes; one flush adds up to {largest_flush}"
    );
    assert!(errors.is_empty(), "reader errors: {errors:?}");
    assert!(reads > 0);
    // The flush that crosses the limit lands before the truncating checkpoint runs, so the
    // bound is the limit plus one flush; a WAL that kept growing would blow well past it.
    assert!(max_wal <= limit + largest_flush, "WAL reached {max_wal} bytes, limit {limit} + one flush {largest_flush}");
}

// ---- crash safety: a child process writes flushes and is SIGKILLed at random moments ----

const CHILD_ENV: &str = "PERFSTORE_CRASH_CHILD_DB";
const CRASH_SERIES: usize = 50;

/// Not a test by itself: the body of the child process that `sigkill_*` runs.
#[test]
#[ignore = "runs only as the child process of sigkill_at_random_moments_loses_nothing_acknowledged"]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else { return };
    let mut w = Writer::open(&path, StoreOptions { check_on_open: false, ..StoreOptions::default() }).unwrap();
    let ids: Vec<SeriesId> = (0..CRASH_SERIES)
        .map(|i| reg(&mut w, &SeriesKey::new("crash", "flushes", Kind::Counter).label("i", &i.to_string())))
        .collect();
    let d = reg(&mut w, &SeriesKey::new("crash", "lat", Kind::Distribution));
    let first = committed_flushes(&mut w);
    // Straight to the file descriptor: the test harness captures println!.
    let mut out = std::io::stdout();
    let mut say = |line: String| {
        use std::io::Write as _;
        out.write_all(line.as_bytes()).and_then(|()| out.flush()).expect("parent reads stdout");
    };
    say(format!("ready {first}\n"));
    for n in first.. {
        let ts = T0 + n * 60_000;
        let mut batch: Vec<Write> =
            ids.iter().map(|&id| Write { series: id, ts_ms: ts, sample: Sample::Counter(1.0) }).collect();
        batch.push(Write {
            series: d,
            ts_ms: ts,
            sample: Sample::Distribution(Box::new(Distribution::from_values(&[0.1, 0.2]))),
        });
        w.write(&batch).unwrap();
        say(format!("flushed {n}\n"));
        if n % 25 == 0 {
            w.maintain(ts).unwrap();
        }
    }
}

fn committed_flushes(w: &mut Writer) -> i64 {
    let snap = w.snapshot().unwrap();
    let series = snap.series(&Selector::name("flushes")).unwrap();
    let sums: Vec<f64> = series
        .iter()
        .map(|s| snap.aggregate(s, TimeRange::new(T0 - DAY, T0 + 1000 * DAY)).unwrap().map_or(0.0, |p| p.sum))
        .collect();
    assert!(sums.windows(2).all(|w| w[0] == w[1]), "a flush was half written: {sums:?}");
    sums.first().copied().unwrap_or(0.0) as i64
}

fn spawn_child(path: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let (_d, path) = tmp();
    let mut rng = StdRng::seed_from_u64(11);
    let mut acked_total = -1i64;
    for round in 0..24 {
        let (mut child, rx) = spawn_child(&path);
        loop {
            let line = rx.recv_timeout(Duration::from_secs(60)).expect("child started");
            // The harness prints "test crash_child ... " on the same line first.
            if line.contains("ready ") {
                break;
            }
        }
        if round == 0 {
            // While a writer runs, a second writer is refused with its pid.
            let e = Writer::open(&path, StoreOptions::default()).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "{}: the store is already open for writing by another process (pid {}); only one perfagent may write a store",
                    perfstore::canonical(&path).unwrap().display(),
                    child.id()
                )
            );
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        assert_eq!(rc, 0);
        child.wait().unwrap();
        // The pipe closes with the child; read everything it acknowledged.
        for line in rx.iter() {
            if let Some(n) = line.strip_prefix("flushed ") {
                acked_total = acked_total.max(n.parse().unwrap());
            }
        }
        let mut w = Writer::open(&path, StoreOptions::default()).expect("reopens after SIGKILL (quick_check passes)");
        w.snapshot().unwrap().integrity_check().unwrap();
        let committed = committed_flushes(&mut w);
        assert!(
            committed == acked_total + 1 || committed == acked_total + 2,
            "round {round}: {committed} flushes in the store, {} acknowledged",
            acked_total + 1
        );
        acked_total = committed - 1;
    }
    assert!(acked_total > 24, "the children made progress: {acked_total}");
}

#[test]
fn newest_data_and_usage_are_reported() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let ids = write_days(&mut w, 1);
    let snap = w.snapshot().unwrap();
    assert_eq!(snap.newest_ms().unwrap(), Some(T0 + DAY - 10_000));
    let usage = snap.series_usage().unwrap();
    assert_eq!(usage.len(), 3);
    assert!(usage.iter().all(|u| u.points == 8640), "{usage:?}");
    let mut by_id = BTreeMap::new();
    for u in &usage {
        by_id.insert(u.series.id, u.points);
    }
    assert_eq!(by_id.len(), ids.len());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Latencies spread over random intervals, written through the store and merged back
        /// over the whole range: every quantile is within 1 % of the exact nearest-rank one.
        #[test]
        fn stored_quantiles_are_within_the_sketch_bound(
            intervals in proptest::collection::vec(proptest::collection::vec(1e-5f64..100.0, 1..40), 1..60),
            q in 0.0f64..=1.0,
        ) {
            let (_d, path) = tmp();
            let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
            let id = reg(&mut w, &SeriesKey::new("api", "op.duration", Kind::Distribution));
            let mut all = Vec::new();
            for (i, values) in intervals.iter().enumerate() {
                all.extend(values);
                let sample = Sample::Distribution(Box::new(Distribution::from_values(values)));
                w.write(&[Write { series: id, ts_ms: T0 + i as i64 * 10_000, sample }]).unwrap();
            }
            let snap = w.snapshot().unwrap();
            let s = snap.series(&Selector::name("op.duration")).unwrap().remove(0);
            let p = snap.aggregate(&s, TimeRange::new(T0, T0 + DAY)).unwrap().unwrap();
            prop_assert_eq!(p.count, all.len() as f64);
            let want = exact_quantile(&mut all, q);
            let got = p.quantile(q).unwrap();
            prop_assert!((got - want).abs() <= want * RELATIVE_ACCURACY * (1.0 + 1e-9), "q={} want={} got={}", q, want, got);
        }
    }
}

#[test]
fn hour_summaries_follow_late_data_and_expiry() {
    let (_d, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let id = reg(&mut w, &SeriesKey::new("api", "op.duration", Kind::Distribution));
    let dist = |v: &[f64]| Sample::Distribution(Box::new(Distribution::from_values(v)));
    for i in 0..(3 * 360) {
        w.write(&[Write { series: id, ts_ms: T0 + i * 10_000, sample: dist(&[0.1, 0.2, 0.3, 0.4]) }]).unwrap();
    }
    let count = |w: &mut Writer| {
        let snap = w.snapshot().unwrap();
        let s = snap.series(&Selector::name("op.duration")).unwrap().remove(0);
        let whole = snap.aggregate(&s, TimeRange::new(T0, T0 + 3 * HOUR)).unwrap().unwrap();
        let steps: f64 =
            snap.range(&s, TimeRange::new(T0, T0 + 3 * HOUR), 10 * MIN).unwrap().steps.iter().map(|x| x.1.count).sum();
        (whole.count, steps, whole.quantile(1.0).unwrap())
    };
    let summaries = |p: &Path| -> i64 {
        rusqlite::Connection::open(p).unwrap().query_row("SELECT count(*) FROM hour_summary", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(count(&mut w).0, 4.0 * 3.0 * 360.0);
    assert_eq!(summaries(&path), 2, "two closed hours are summarised, the open one is the head");
    // A late interval in the first hour, with a new maximum.
    w.write(&[Write { series: id, ts_ms: T0 + 5_000, sample: dist(&[9.0]) }]).unwrap();
    let (whole, steps, max) = count(&mut w);
    assert_eq!(whole, 4.0 * 3.0 * 360.0 + 1.0, "the hour summary was rebuilt");
    assert_eq!(steps, whole, "per-step queries read the raw chunks and agree");
    assert!((max - 9.0).abs() <= 9.0 * RELATIVE_ACCURACY);
    // Sealing the last hour summarises it; expiring raw data drops the summaries.
    w.maintain(T0 + 4 * HOUR).unwrap();
    assert_eq!(summaries(&path), 3);
    assert_eq!(count(&mut w).0, whole);
    w.maintain(T0 + 8 * DAY).unwrap();
    assert_eq!(summaries(&path), 0);
    assert_eq!(count(&mut w).0, whole, "rolled-up tiers give the same count");
}

#[test]
fn one_writer_per_file_whatever_its_name_or_lock_file() {
    let (d, path) = tmp();
    let w = Writer::open(&path, StoreOptions::default()).unwrap();
    // Another name for the same file.
    let alias = d.path().join("alias.db");
    std::os::unix::fs::symlink(&path, &alias).unwrap();
    let e = Writer::open(&alias, StoreOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Locked { pid: Some(p), .. } if p == std::process::id()), "{e}");
    // Its folder by another name.
    let dir_alias = d.path().join("data-alias");
    std::os::unix::fs::symlink(path.parent().unwrap(), &dir_alias).unwrap();
    assert!(matches!(Writer::open(dir_alias.join("perf.db"), StoreOptions::default()), Err(Error::Locked { .. })));
    // The pid file deleted: the lock is on the database file itself.
    std::fs::remove_file(perfstore::lock_path(&path)).unwrap();
    let e = Writer::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Locked { pid: None, .. }), "{e}");
    assert!(e.to_string().contains("already open for writing by another process (pid unknown)"), "{e}");
    drop(w);
    Writer::open(&alias, StoreOptions::default()).unwrap();
}

/// Make `path` read-only for this process: by its mode for a normal user, and with the
/// immutable attribute for root (who writes through any mode bits).
fn set_read_only(path: &Path, read_only: bool) {
    // SAFETY: geteuid has no preconditions and touches no memory of ours.
    if unsafe { libc::geteuid() } == 0 {
        let flag = if read_only { "+i" } else { "-i" };
        let out = Command::new("chattr").arg(flag).arg(path).output().expect("chattr (e2fsprogs)");
        assert!(out.status.success(), "chattr {flag}: {}", String::from_utf8_lossy(&out.stderr));
    } else {
        let mode = if read_only { 0o400 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[test]
fn a_read_only_store_is_refused_untouched_and_a_changed_file_is_noticed() {
    use perfstore::FileState;
    let (d, path) = tmp();
    Writer::open(&path, StoreOptions::default()).unwrap().close().unwrap();
    set_read_only(&path, true);
    let before = file_bytes(&path);
    let e = Writer::open(&path, StoreOptions::default()).unwrap_err();
    set_read_only(&path, false);
    assert!(matches!(e, Error::ReadOnly { .. }), "{e}");
    assert!(e.to_string().ends_with("is not writable); fix the permissions or pass another --db"), "{e}");
    assert_eq!(file_bytes(&path), before);

    let w = Writer::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(w.file_state(), FileState::Ok);
    set_read_only(&path, true);
    let state = w.file_state();
    set_read_only(&path, false);
    assert_eq!(state, FileState::ReadOnly);
    let moved = d.path().join("moved.db");
    std::fs::rename(&path, &moved).unwrap();
    assert_eq!(w.file_state(), FileState::Deleted);
    std::fs::copy(&moved, &path).unwrap();
    assert_eq!(w.file_state(), FileState::Replaced);
}

#[test]
fn lock_holder_names_the_running_writer_only() {
    let (_d, path) = tmp();
    assert_eq!(perfstore::lock_holder(&path).unwrap(), None, "no lock file yet");
    let w = Writer::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(perfstore::lock_holder(&path).unwrap(), Some(Some(std::process::id())));
    drop(w);
    assert_eq!(perfstore::lock_holder(&path).unwrap(), None, "a lock file without a holder is stale");
    // Probing does not get in a writer's way.
    Writer::open(&path, StoreOptions::default()).unwrap();
}

#[test]
fn an_owners_state_survives_a_reopen_and_is_replaced_whole() {
    let (_dir, path) = tmp();
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(w.snapshot().unwrap().state("alerts").unwrap(), None);
    w.put_state("alerts", r#"{"alerts":{"a":1}}"#).unwrap();
    w.put_state("alerts", r#"{"alerts":{}}"#).unwrap();
    w.put_state("other", "x").unwrap();
    w.close().unwrap();
    let mut r = Reader::open(&path).unwrap();
    let snap = r.snapshot().unwrap();
    assert_eq!(snap.state("alerts").unwrap().as_deref(), Some(r#"{"alerts":{}}"#));
    assert_eq!(snap.state("other").unwrap().as_deref(), Some("x"));
    // The store's own bookkeeping is not an owner's state.
    assert_eq!(snap.state("newest_ms").unwrap(), None);
    assert_eq!(snap.states("al").unwrap(), vec![("alerts".to_owned(), r#"{"alerts":{}}"#.to_owned())]);
    assert_eq!(snap.states("").unwrap().len(), 2);
    assert!(snap.states("a_").unwrap().is_empty(), "_ is a character, not a wildcard");
}
