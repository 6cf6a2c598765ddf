//! Every command answers for every window a store holds: two years of history (one point an
//! hour, the last 100 days one every 10 minutes) with circuit breakers, phases, pools, caches,
//! host figures and profiles, maintained as the agent would (raw for 7 days, one-minute
//! rollups for 90, one-hour rollups beyond), read through `perfctl` for windows from 1 h to
//! 730 d. Totals over a long window equal the sums over its parts and the counts written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests fail loudly

use std::path::Path;

use perf_e2e::perfctl;
use perfstore::convention::{self as conv, tag};
use perfstore::{
    DAY_MS, Distribution, HOUR_MS, ProfileWindow, Registration, Sample, SeriesKey, Stack, StoreOptions, Write, Writer,
};

const NOW: &str = "2026-11-23T00:00:00Z";
const NOW_MS: i64 = 1_795_392_000_000;
/// The history starts a day inside the one-hour tier's 2-year retention.
const START_MS: i64 = NOW_MS - 729 * DAY_MS;
/// From here on, a point every 10 minutes (before the one-minute tier's 90 days, so each
/// tier holds one spacing).
const FINE_MS: i64 = NOW_MS - 100 * DAY_MS;
const WINDOWS: [&str; 7] = ["1h", "24h", "7d", "30d", "90d", "365d", "730d"];

fn times() -> impl Iterator<Item = i64> {
    (START_MS..FINE_MS).step_by(HOUR_MS as usize).chain((FINE_MS..NOW_MS).step_by(600_000))
}

/// Whether the `db` breaker is open at `t`: 03:00–03:30 every day (in the hourly part, the
/// whole 03:00 point, which stands for that hour).
fn open_at(t: i64) -> bool {
    let of_day = t.rem_euclid(DAY_MS);
    (3 * HOUR_MS..3 * HOUR_MS + 1_800_000).contains(&of_day)
}

/// Seconds the breaker was open in `[a, b)`: 3600 per hourly point, 600 per fine point.
fn expected_open_s(a: i64, b: i64) -> f64 {
    times().filter(|t| *t >= a && *t < b && open_at(*t)).map(|t| if t < FINE_MS { 3600.0 } else { 600.0 }).sum()
}

/// Calls of vm.list written in `[a, b)`: 3 ok and 1 error per point.
fn expected_calls(a: i64, b: i64) -> f64 {
    times().filter(|t| *t >= a && *t < b).count() as f64 * 4.0
}

fn build(db: &Path) {
    let mut w = Writer::open(db, StoreOptions::default()).unwrap();
    let svc = "fleet";
    let keys: Vec<SeriesKey> = vec![
        conv::OP_DURATION.key(svc).label(tag::OP, "vm.list").label(tag::OUTCOME, "ok").label(tag::CACHE, "hit"),
        conv::OP_DURATION.key(svc).label(tag::OP, "vm.list").label(tag::OUTCOME, "error"),
        conv::OP_DURATION.key(svc).label(tag::OP, "vm.start").label(tag::OUTCOME, "ok").label(tag::BATCHED, "true"),
        conv::OP_RETRIES.key(svc).label(tag::OP, "vm.start"),
        conv::OP_PHASE_DURATION.key(svc).label(tag::OP, "vm.start").label(tag::PHASE, "poll"),
        conv::POOL_ACQUIRE.key(svc).label(tag::POOL, "http").label(tag::RESULT, "hit"),
        conv::POOL_SIZE.key(svc).label(tag::POOL, "http"),
        conv::CACHE_REQUESTS.key(svc).label(tag::CACHE, "vms").label(tag::RESULT, "hit"),
        conv::CACHE_REQUESTS.key(svc).label(tag::CACHE, "vms").label(tag::RESULT, "miss"),
        conv::CIRCUIT_STATE.key(svc).label(tag::CIRCUIT, "db"),
        conv::CIRCUIT_TRANSITIONS.key(svc).label(tag::CIRCUIT, "db").label(tag::TO, "open"),
        conv::SYSTEM_CPU_UTILIZATION.key(conv::HOST_SERVICE),
        conv::SYSTEM_CPU_LOGICAL_COUNT.key(conv::HOST_SERVICE),
        conv::SYSTEM_MEMORY_USAGE.key(conv::HOST_SERVICE),
        conv::SYSTEM_MEMORY_LIMIT.key(conv::HOST_SERVICE),
    ];
    let ids: Vec<_> = w
        .register_all(&keys, START_MS)
        .unwrap()
        .into_iter()
        .map(|r| match r {
            Registration::Registered(id) => id,
            Registration::Rejected(why) => panic!("{why:?}"),
        })
        .collect();
    let gauge = |v: f64| Sample::Gauge { last: v, min: v, max: v };
    let dist = |v: &[f64]| Sample::Distribution(Box::new(Distribution::from_values(v)));
    let mut batch = Vec::new();
    for t in times() {
        let open = open_at(t);
        let day = (t - START_MS) as f64 / DAY_MS as f64;
        let samples = [
            dist(&[0.010, 0.012, 0.015]),
            dist(&[0.5]),
            dist(&[0.2, 0.25]),
            Sample::Counter(1.0),
            dist(&[0.15, 0.2]),
            Sample::Counter(5.0),
            gauge(8.0),
            Sample::Counter(3.0),
            Sample::Counter(1.0),
            gauge(if open { 2.0 } else { 0.0 }),
            Sample::Counter(if open && !open_at(t - 600_000) { 1.0 } else { 0.0 }),
            gauge(0.2 + 0.3 * day / 730.0),
            gauge(4.0),
            gauge(4e9 + 2e9 * day / 730.0),
            gauge(16e9),
        ];
        batch.extend(ids.iter().zip(samples).map(|(&series, sample)| Write { series, ts_ms: t, sample }));
        if batch.len() > 20_000 {
            w.write(&batch).unwrap();
            batch.clear();
        }
    }
    w.write(&batch).unwrap();
    // A profile every day for the profile retention's 30 days, every hour for the last two.
    let windows: Vec<ProfileWindow> = (0..30 * 24)
        .map(|h| NOW_MS - (h + 1) * HOUR_MS)
        .filter(|t| *t >= NOW_MS - 2 * DAY_MS || t.rem_euclid(DAY_MS) == 0)
        .map(|t| ProfileWindow {
            service: "fleet".into(),
            op: "vm.start".into(),
            start_ms: t,
            end_ms: t + 10_000,
            stacks: vec![Stack::new("main;vm_start;poll;sleep", 7), Stack::new("main;vm_start;encode", 3)],
        })
        .collect();
    w.write_profiles(&windows).unwrap();
    let report = w.maintain(NOW_MS).unwrap();
    assert!(report.rolled_chunks > 0, "the history is rolled up: {report:?}");
    w.close().unwrap();
}

fn ok(db: &Path, args: &[&str]) -> String {
    let out = perfctl(db, args);
    assert!(out.status.success(), "perfctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn stats(db: &Path, window: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(db, &[&["stats", "--now", NOW, "--format", "json"][..], window].concat())).unwrap()
}

fn op<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["ops"].as_array().unwrap().iter().find(|o| o["op"] == name).unwrap_or_else(|| panic!("{name}: {report}"))
}

fn open_s(report: &serde_json::Value) -> f64 {
    report["circuits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["circuit"] == "db")
        .map_or(0.0, |c| c["open_s"].as_f64().unwrap())
}

/// RFC 3339 of whole seconds: days since 1970 to a civil date.
fn iso(ms: i64) -> String {
    let (days, secs) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS) / 1000);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[test]
fn every_command_answers_for_every_window_and_long_totals_add_up() {
    assert_eq!(iso(NOW_MS), NOW);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perf.db");
    build(&db);

    for w in WINDOWS {
        let last = ["--last", w];
        let s = stats(&db, &last);
        let days: i64 = if let Some(d) = w.strip_suffix('d') { d.parse().unwrap() } else { 0 };
        let span = if days > 0 {
            days * DAY_MS
        } else if w == "24h" {
            DAY_MS
        } else {
            HOUR_MS
        };
        let start = NOW_MS - span;
        assert_eq!(op(&s, "vm.list")["calls"].as_f64().unwrap(), expected_calls(start, NOW_MS), "calls over {w}");
        let open = open_s(&s);
        assert!((open - expected_open_s(start, NOW_MS)).abs() < 1e-6, "breaker open over {w}: {open} s");
        ok(&db, &[&["profile", "vm.start", "--now", NOW][..], &last].concat());
        let q = ok(
            &db,
            &[&["query", "op.duration{op=\"vm.list\"}", "--agg", "count", "--format", "csv", "--now", NOW][..], &last]
                .concat(),
        );
        let counted: f64 = q.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap()).sum();
        assert_eq!(counted, expected_calls(start, NOW_MS), "query's auto steps over {w} add up to the calls");
        let step = if days > 7 { "1d" } else { "1m" };
        let exported = ok(&db, &[&["export", "--format", "csv", "--step", step, "--now", NOW][..], &last].concat());
        assert!(exported.lines().count() > 1, "export over {w}");
        let peak = format!("{}d", (span / DAY_MS).max(1));
        ok(&db, &["capacity", "--growth", "0.3", "--now", NOW, "--peak-window", &peak]);
        if days <= 30 {
            // Profiles are kept 30 days.
            let svg = dir.path().join(format!("vm.start-{w}.svg"));
            ok(&db, &[&["flamegraph", "vm.start", "--now", NOW, "-o", svg.to_str().unwrap()][..], &last].concat());
            assert!(std::fs::read_to_string(&svg).unwrap().contains("vm_start"), "flame graph over {w}");
        }
    }
    assert!(ok(&db, &["series"]).contains("circuit.state"));

    // Over two years, the parts add up to the whole, at both a tier-aligned and an unaligned cut.
    let whole = stats(&db, &["--last", "730d"]);
    for cut in [NOW_MS - 365 * DAY_MS, NOW_MS - 20 * DAY_MS - 7 * 60_000] {
        let from = iso(NOW_MS - 730 * DAY_MS);
        let (a, b) = (stats(&db, &["--since", &from, "--until", &iso(cut)]), stats(&db, &["--since", &iso(cut)]));
        for k in ["calls", "errors", "retries"] {
            let sum = op(&a, "vm.list")[k].as_f64().unwrap_or(0.0) + op(&b, "vm.list")[k].as_f64().unwrap_or(0.0);
            assert_eq!(sum, op(&whole, "vm.list")[k].as_f64().unwrap_or(0.0), "vm.list {k} split at {}", iso(cut));
        }
        let parts = open_s(&a) + open_s(&b);
        assert!(
            (parts - open_s(&whole)).abs() < 1e-6,
            "open time split at {}: {parts} vs {}",
            iso(cut),
            open_s(&whole)
        );
    }
    assert!((open_s(&whole) - expected_open_s(START_MS, NOW_MS)).abs() < 1e-6);
}
