//! Row helpers shared by the writer, maintenance and queries: encoding points into chunk rows,
//! reading a row's summary columns, a distribution's hour summary, and the `meta` table.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::chunk;
use crate::model::{Kind, Point, SeriesId};
use crate::sketch::Sketch;
use crate::tier::{HOUR_MS, Tier};

/// Chunks are sealed before their blob passes this, far below the overflow threshold of a
/// row on a page (16 349 bytes at 16 KiB), and small enough that the open chunk rewritten
/// at every flush stays cheap.
pub const CHUNK_MAX_BYTES: usize = 3_000;

/// The columns every chunk-like row (`chunk`, `head`) is read with, in this order.
pub(crate) const CHUNK_COLS: &str = "start_ms, end_ms, count, sum, min, max, last, last_ts_ms, sketch, data";

/// Where a chunk-like row lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The open raw chunk of a series (`head`).
    Head,
    /// A sealed chunk of a tier (`chunk`).
    Chunk(Tier),
    /// The summary columns of a chunk or an hour (their merged sketch).
    Summary,
}

impl Source {
    /// For error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Source::Head => "head",
            Source::Chunk(Tier::Raw) => "raw chunk",
            Source::Chunk(Tier::Minute) => "1m rollup",
            Source::Chunk(Tier::Hour) => "1h rollup",
            Source::Summary => "summary sketch",
        }
    }
}

/// Encode points of a series of `kind` into a raw chunk blob.
pub(crate) fn encode(kind: Kind, points: &[Point]) -> Vec<u8> {
    match kind {
        Kind::Distribution => chunk::encode_agg(points),
        _ => chunk::encode_scalar(points),
    }
}

/// Encode rolled-up points (any kind keeps count, sum, min, max and last).
pub(crate) fn encode_rollup(_kind: Kind, points: &[Point]) -> Vec<u8> {
    chunk::encode_agg(points)
}

/// Aggregate of a non-empty run of points.
pub(crate) fn summarize(points: &[Point]) -> Point {
    let mut acc = points[0].clone();
    for p in &points[1..] {
        acc.merge(p);
    }
    acc
}

/// Split points into runs whose encodings fit [`CHUNK_MAX_BYTES`] (a single point may not):
/// `(from, to, blob)`.
pub(crate) fn split_encode(
    kind: Kind,
    points: &[Point],
    encoder: fn(Kind, &[Point]) -> Vec<u8>,
) -> Vec<(usize, usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![(0, points.len())];
    while let Some((a, b)) = todo.pop() {
        let blob = encoder(kind, &points[a..b]);
        if blob.len() <= CHUNK_MAX_BYTES || b - a == 1 {
            out.push((a, b, blob));
            continue;
        }
        let parts = blob.len().div_ceil(CHUNK_MAX_BYTES * 9 / 10).max(2);
        let step = (b - a).div_ceil(parts);
        let mut at = b;
        while at > a {
            let from = at.saturating_sub(step).max(a);
            todo.push((from, at));
            at = from;
        }
    }
    out.sort_by_key(|&(a, _, _)| a);
    out
}

/// Insert one sealed chunk of `tier` holding `points` (non-empty) as `blob`.
pub(crate) fn insert_chunk(
    tx: &Transaction<'_>,
    series: SeriesId,
    tier: Tier,
    points: &[Point],
    blob: &[u8],
) -> rusqlite::Result<()> {
    insert_row(
        tx,
        "INSERT INTO chunk (series_id, tier, start_ms, end_ms, points, count, sum, min, max, last, last_ts_ms, sketch, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        series,
        tier,
        points,
        blob,
    )
}

/// Insert a sealed piece of a series' open window (`head_piece`): part of its head until the
/// pieces are packed into a chunk (they fill one, or the window closes).
pub(crate) fn insert_piece(
    tx: &Transaction<'_>,
    series: SeriesId,
    points: &[Point],
    blob: &[u8],
) -> rusqlite::Result<()> {
    insert_row(
        tx,
        "INSERT INTO head_piece (series_id, start_ms, end_ms, points, count, sum, min, max, last, last_ts_ms, sketch, data) \
         VALUES (?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        series,
        Tier::Raw,
        points,
        blob,
    )
}

fn insert_row(
    tx: &Transaction<'_>,
    sql: &str,
    series: SeriesId,
    tier: Tier,
    points: &[Point],
    blob: &[u8],
) -> rusqlite::Result<()> {
    let s = summarize(points);
    let sketch = s.sketch.as_ref().map(Sketch::encode);
    tx.prepare_cached(sql)?.execute(params![
        series,
        tier.code(),
        points[0].ts_ms,
        points[points.len() - 1].ts_ms,
        points.len() as i64,
        s.count,
        s.sum,
        s.min,
        s.max,
        s.last,
        s.last_ts_ms,
        sketch,
        blob
    ])?;
    Ok(())
}

/// The error SQLite would give for a blob that does not decode, naming where it was.
pub(crate) fn corrupt_blob(source: Source, series: SeriesId) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        Some(format!("undecodable {} of series {series}", source.name())),
    )
}

/// A chunk's (or hour summary's) aggregate from its columns `count, sum, min, max, last,
/// last_ts_ms, sketch`, starting at column `first`.
pub(crate) fn read_summary(
    r: &rusqlite::Row<'_>,
    first: usize,
    ts_ms: i64,
    series: SeriesId,
) -> rusqlite::Result<Point> {
    let sketch = match r.get_ref(first + 6)?.as_blob_or_null()? {
        Some(b) => Some(Sketch::decode(b).map_err(|_| corrupt_blob(Source::Summary, series))?),
        None => None,
    };
    Ok(Point {
        ts_ms,
        count: r.get(first)?,
        sum: r.get(first + 1)?,
        min: r.get(first + 2)?,
        max: r.get(first + 3)?,
        last: r.get(first + 4)?,
        last_ts_ms: r.get(first + 5)?,
        sketch,
    })
}

/// Keys of the `meta` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meta {
    /// Newest data timestamp written.
    Newest,
    /// Newest rolled-up point (tiers 1 and 2).
    RolledMax,
    /// One-minute rollups are complete from this time on.
    MinuteFloor,
    /// When `perfctl demo` made this store (it holds simulated data only).
    Demo,
}

impl Meta {
    fn key(self) -> &'static str {
        match self {
            Meta::Newest => "newest_ms",
            Meta::RolledMax => "rolled_max_ms",
            Meta::MinuteFloor => "floor.1",
            Meta::Demo => "demo_created_ms",
        }
    }
}

/// Raise an integer in the meta table to at least `value`.
pub(crate) fn set_meta_max(tx: &Transaction<'_>, key: Meta, value: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = \
         CASE WHEN CAST(excluded.value AS INTEGER) > CAST(value AS INTEGER) THEN excluded.value ELSE value END",
    )?
    .execute(params![key.key(), value.to_string()])?;
    Ok(())
}

/// An integer of the meta table.
pub(crate) fn meta(conn: &rusqlite::Connection, key: Meta) -> rusqlite::Result<Option<i64>> {
    let v: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key.key()], |r| r.get(0)).optional()?;
    Ok(v.and_then(|v| v.parse().ok()))
}

/// (Re)write the hour summary of a distribution's sealed raw chunks in `[hour_ms, +1 h)`.
pub(crate) fn summarize_hour(tx: &Transaction<'_>, series: SeriesId, kind: Kind, hour_ms: i64) -> rusqlite::Result<()> {
    if kind != Kind::Distribution {
        return Ok(());
    }
    let mut acc: Option<Point> = None;
    {
        let mut stmt = tx.prepare_cached(
            "SELECT start_ms, count, sum, min, max, last, last_ts_ms, sketch FROM chunk \
             WHERE series_id = ?1 AND tier = 0 AND start_ms >= ?2 AND start_ms < ?3",
        )?;
        let mut rows = stmt.query(params![series, hour_ms, hour_ms + HOUR_MS])?;
        while let Some(r) = rows.next()? {
            let p = read_summary(r, 1, r.get(0)?, series)?;
            match &mut acc {
                Some(a) => a.merge(&p),
                None => acc = Some(p),
            }
        }
    }
    let Some(s) = acc else {
        tx.prepare_cached("DELETE FROM hour_summary WHERE hour_ms = ?1 AND series_id = ?2")?
            .execute(params![hour_ms, series])?;
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO hour_summary (hour_ms, series_id, count, sum, min, max, last, last_ts_ms, sketch) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        hour_ms,
        series,
        s.count,
        s.sum,
        s.min,
        s.max,
        s.last,
        s.last_ts_ms,
        s.sketch.map(|k| k.encode())
    ])?;
    Ok(())
}
