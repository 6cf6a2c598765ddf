//! The open head: a flush appends its points as the head's newest segment without decoding
//! or encoding the older ones, and every point reads back exactly, before and after the head
//! is sealed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // tests, benchmarks and examples fail loudly

use perfstore::{
    Distribution, Kind, Reader, Registration, Sample, SeriesId, SeriesKey, StoreOptions, TimeRange, Write, Writer,
};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, an hour boundary
const SEC: i64 = 1_000;

fn reg(w: &mut Writer, key: &SeriesKey) -> SeriesId {
    match w.register(key, T0).unwrap() {
        Registration::Registered(id) => id,
        Registration::Rejected(r) => panic!("{key} rejected: {r:?}"),
    }
}

/// The first byte (the chunk format) of the series' head row.
fn head_format(path: &std::path::Path, series: SeriesId) -> Option<u8> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.query_row("SELECT data FROM head WHERE series_id = ?1", [series.0], |r| r.get::<_, Vec<u8>>(0))
        .ok()
        .map(|d| d[0])
}

fn chunk_formats(path: &std::path::Path, series: SeriesId) -> Vec<u8> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut st = conn.prepare("SELECT data FROM chunk WHERE series_id = ?1 AND tier = 0 ORDER BY start_ms").unwrap();
    st.query_map([series.0], |r| r.get::<_, Vec<u8>>(0)).unwrap().map(|d| d.unwrap()[0]).collect()
}

#[test]
fn a_flush_appends_to_the_head_and_every_point_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.db");
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let c = reg(&mut w, &SeriesKey::new("api", "calls", Kind::Counter));
    let g = reg(&mut w, &SeriesKey::new("api", "level", Kind::Gauge));
    let d = reg(&mut w, &SeriesKey::new("api", "op.duration", Kind::Distribution).unit("s"));
    let (mut counts, mut levels, mut durations) = (Vec::new(), Vec::new(), Vec::new());
    let mut segmented = [false; 3];
    // 1 s flushes for 70 minutes: the first hour's head grows past many segments (and is
    // sealed when it outgrows a chunk or the hour ends).
    for i in 0..4200i64 {
        let ts = T0 + i * SEC;
        let n = ((i * 7919) % 97) as f64;
        let level = (i as f64 * 0.37).sin() * 100.0;
        let lat = [0.001 * (1 + i % 50) as f64, 0.002 * (1 + i % 13) as f64];
        w.write(&[
            Write { series: c, ts_ms: ts, sample: Sample::Counter(n) },
            Write { series: g, ts_ms: ts, sample: Sample::Gauge { last: level, min: level - 1.0, max: level + 0.5 } },
            Write { series: d, ts_ms: ts, sample: Sample::Distribution(Box::new(Distribution::from_values(&lat))) },
        ])
        .unwrap();
        counts.push(n);
        levels.push(level);
        durations.push(lat);
        // Past 64 points a head is segments: a flush wrote only the newest one.
        if i % 7 == 0 {
            for (seen, s) in segmented.iter_mut().zip([c, g, d]) {
                *seen |= head_format(&path, s) == Some(3);
            }
        }
    }
    assert_eq!(segmented, [true; 3], "every head was appended to as segments");
    // A late point (older than the head's last) still merges, through the whole-head path.
    w.write(&[Write { series: c, ts_ms: T0 + 4100 * SEC, sample: Sample::Counter(1000.0) }]).unwrap();
    counts[4100] += 1000.0;
    drop(w);
    // The closed hour's pieces (heads are sealed at 512 bytes) were packed into full chunks.
    let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let first_hour = |s: SeriesId| -> (i64, i64) {
        conn.query_row(
            "SELECT count(*), max(length(data)) FROM chunk WHERE series_id = ?1 AND tier = 0 AND start_ms < ?2",
            [s.0, T0 + 3_600_000],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (pieces, largest) = first_hour(c);
    assert!(pieces <= 3 && largest > 1000, "counter hour in {pieces} chunks of up to {largest} bytes");
    for s in [c, g, d] {
        let formats = chunk_formats(&path, s);
        assert!(!formats.is_empty(), "the first hour was sealed");
        assert!(formats.iter().all(|&f| f == 4 || f == 5), "sealed chunks are plain (formats 4, 5): {formats:?}");
    }

    let mut r = Reader::open(&path).unwrap();
    let snap = r.snapshot().unwrap();
    let all = TimeRange::new(T0, T0 + 4200 * SEC);
    let one = |name: &str| snap.series(&perfstore::Selector::name(name)).unwrap().remove(0);
    let steps = snap.range(&one("calls"), all, SEC).unwrap().steps;
    assert_eq!(steps.len(), counts.len());
    for (i, (ts, p)) in steps.iter().enumerate() {
        assert_eq!((*ts, p.sum), (T0 + i as i64 * SEC, counts[i]), "counter step {i}");
    }
    let steps = snap.range(&one("level"), all, SEC).unwrap().steps;
    for (i, (_, p)) in steps.iter().enumerate() {
        assert_eq!((p.last, p.min, p.max), (levels[i], levels[i] - 1.0, levels[i] + 0.5), "gauge step {i}");
    }
    let steps = snap.range(&one("op.duration"), all, SEC).unwrap().steps;
    for (i, (_, p)) in steps.iter().enumerate() {
        let want = Distribution::from_values(&durations[i]);
        assert_eq!((p.count, p.sum, p.min, p.max), (want.count, want.sum, want.min, want.max), "distribution step {i}");
        assert_eq!(p.sketch.as_ref(), Some(&want.sketch), "sketch of step {i}");
    }
}

/// Counters and gauges fill chunks across hours (a window is a day); distributions still
/// close by the hour, where their hour summaries are made. Every point reads back, and
/// maintenance seals a head once its window is over, not before.
#[test]
fn small_series_fill_chunks_across_hours_and_heads_close_with_their_window() {
    const HOUR: i64 = 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perf.db");
    let mut w = Writer::open(&path, StoreOptions::default()).unwrap();
    let c = reg(&mut w, &SeriesKey::new("api", "calls", Kind::Counter));
    let d = reg(&mut w, &SeriesKey::new("api", "op.duration", Kind::Distribution).unit("s"));
    let steps = 25 * 360; // 25 hours at 10 s
    let mut total = 0.0;
    for i in 0..steps {
        let ts = T0 + i * 10 * SEC;
        let n = (i % 5) as f64;
        total += n;
        let lat = [0.001 * (1 + i % 7) as f64];
        w.write(&[
            Write { series: c, ts_ms: ts, sample: Sample::Counter(n) },
            Write { series: d, ts_ms: ts, sample: Sample::Distribution(Box::new(Distribution::from_values(&lat))) },
        ])
        .unwrap();
    }
    let spans = |s: SeriesId| -> Vec<(i64, i64)> {
        let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut st = conn.prepare("SELECT start_ms, end_ms FROM chunk WHERE series_id = ?1 AND tier = 0").unwrap();
        st.query_map([s.0], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    let counter = spans(c);
    assert!(!counter.is_empty() && counter.len() < 12, "25 hours of a counter in {} chunks", counter.len());
    assert!(counter.iter().any(|(a, b)| b - a > 2 * HOUR), "counter chunks span hours: {counter:?}");
    let dist = spans(d);
    assert!(dist.len() >= 24, "distributions close every hour: {} chunks", dist.len());
    assert!(dist.iter().all(|(a, b)| a / HOUR == b / HOUR), "no distribution chunk crosses an hour");

    let read_total = |w: &mut Writer| {
        w.maintain(T0 + steps * 10 * SEC).unwrap();
        let mut r = Reader::open(&path).unwrap();
        let snap = r.snapshot().unwrap();
        let s = snap.series(&perfstore::Selector::name("calls")).unwrap().remove(0);
        let got = snap.range(&s, TimeRange::new(T0, T0 + steps * 10 * SEC), 10 * SEC).unwrap();
        assert_eq!(got.steps.len() as i64, steps, "every step");
        got.steps.iter().map(|(_, p)| p.sum).sum::<f64>()
    };
    assert_eq!(read_total(&mut w), total);
    // The counter's head holds day two: maintenance an hour into it leaves it open ...
    let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let head_of = |s: SeriesId| -> Option<i64> {
        conn.query_row("SELECT start_ms FROM head WHERE series_id = ?1", [s.0], |r| r.get(0)).ok()
    };
    assert_eq!(head_of(c), Some(T0 + 24 * HOUR), "the counter's open head starts day two");
    assert_eq!(head_of(d), None, "the distribution's last hour is over: sealed");
    // ... and a day later it is sealed, with nothing lost.
    w.maintain(T0 + 49 * HOUR).unwrap();
    assert_eq!(head_of(c), None, "sealed once its day is over");
    assert_eq!(read_total(&mut w), total);
}
