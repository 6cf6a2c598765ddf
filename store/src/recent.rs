//! The recent log: a flush that touches many series is written as a few rows of the
//! `recent` table, one per [`BUCKET_SERIES`] series ids, instead of one head row rewritten per
//! series. Rewriting 100 000 heads a second cost the writer a whole core (about 15 µs a
//! series, most of it SQLite finding, reading and rewriting a row and the WAL taking every
//! touched page); appending one row per bucket costs a few bytes a point.
//!
//! The writer folds the log into the heads (the usual per-series path, with many points per
//! series at once) at maintenance and when the log passes its size budget, one bucket per
//! transaction, so a crash leaves every point either in the log or in a head, never both
//! and never neither. Readers merge the log's points with the heads'.
//!
//! Readers merge a logged point as they merge overlapping chunks, with [`Point::merge`]; the
//! fold applies the head path's merge of one interval written twice. So an interval written
//! twice (a `|T` backfill of an interval already flushed) reads as two intervals until the
//! fold, then as one: a counter's sum is the same either way, its interval count, a gauge's
//! mean and a set's value are not.
//!
//! ## Row format (version 1)
//! A version byte, the row's base timestamp as a zigzag varint, then entries sorted by
//! series (each series' points in the order written): the series id as a varint delta from
//! the previous entry's (the first one whole), the timestamp as a zigzag varint offset from
//! the base, the kind's code as one byte, then the fields as little-endian doubles: counters
//! and sets one value, gauges last, min and max, distributions count, sum, min and max then
//! the sketch's length as a varint and its bytes ([`Sketch::encode`]).

use rusqlite::{Transaction, TransactionBehavior, params};

use crate::codec::{Truncated, get_varint, put_varint, unzigzag, zigzag};
use crate::entry::{Entry, sort_and_merge};
use crate::error::{Error, Result};
use crate::model::{Kind, Point, SeriesId};
use crate::query::{Snapshot, TimeRange};
use crate::sketch::Sketch;
use crate::write::{LogSize, Writer, write_each_series};

/// Series ids per log row: readers of one series decode one bucket's rows, and a fold
/// holds one bucket's points in memory at a time.
pub(crate) const BUCKET_SERIES: i64 = 1024;
/// Series of a bucket folded at a time ([`Writer::fold_recent`]).
const FOLD_PART_SERIES: i64 = 256;
const FORMAT: u8 = 1;

/// The log bucket of a series.
pub(crate) fn bucket(series: SeriesId) -> i64 {
    series.0.div_euclid(BUCKET_SERIES)
}

/// Encode points ([`Entry`]: a flush's borrowed samples or decoded points) in ascending
/// series order, each series' points in the order they are to be applied.
pub(crate) fn encode<E: Entry>(entries: &[E], base_ms: i64) -> Vec<u8> {
    let mut out = vec![FORMAT];
    put_varint(&mut out, zigzag(base_ms));
    let mut prev = 0i64;
    let mut sketch = Vec::new();
    for e in entries {
        let (series, kind, p) = (e.series(), e.kind(), e.fields());
        put_varint(&mut out, (series.0 - prev) as u64);
        prev = series.0;
        put_varint(&mut out, zigzag(e.ts_ms().wrapping_sub(base_ms)));
        out.push(kind.code() as u8);
        let mut f = |v: f64| out.extend_from_slice(&v.to_le_bytes());
        match kind {
            Kind::Counter | Kind::Set => f(p.last),
            Kind::Gauge => {
                f(p.last);
                f(p.min);
                f(p.max);
            }
            Kind::Distribution => {
                f(p.count);
                f(p.sum);
                f(p.min);
                f(p.max);
                sketch.clear();
                if let Some(s) = p.sketch {
                    s.encode_into(&mut sketch);
                }
                put_varint(&mut out, sketch.len() as u64);
                out.extend_from_slice(&sketch);
            }
        }
    }
    out
}

/// Decode a row, feeding `sink` the points of the series `want` accepts, in the order
/// written; the others are skipped without decoding their sketches.
pub(crate) fn decode(
    blob: &[u8],
    want: &dyn Fn(SeriesId) -> bool,
    sink: &mut dyn FnMut(SeriesId, Kind, Point),
) -> Result<(), Truncated> {
    if blob.first() != Some(&FORMAT) {
        return Err(Truncated);
    }
    let mut at = 1;
    let base = unzigzag(get_varint(blob, &mut at)?);
    let mut series = 0i64;
    while at < blob.len() {
        let delta = i64::try_from(get_varint(blob, &mut at)?).map_err(|_| Truncated)?;
        series = series.checked_add(delta).ok_or(Truncated)?;
        let ts_ms = base.wrapping_add(unzigzag(get_varint(blob, &mut at)?));
        let code = *blob.get(at).ok_or(Truncated)?;
        at += 1;
        let kind = Kind::from_code(i64::from(code)).ok_or(Truncated)?;
        let fields = match kind {
            Kind::Counter | Kind::Set => 1,
            Kind::Gauge => 3,
            Kind::Distribution => 4,
        };
        let mut v = [0.0f64; 4];
        for slot in v.iter_mut().take(fields) {
            let bytes = blob.get(at..at + 8).ok_or(Truncated)?;
            *slot = f64::from_le_bytes(bytes.try_into().map_err(|_| Truncated)?);
            at += 8;
        }
        let sketch = if kind == Kind::Distribution {
            let len = usize::try_from(get_varint(blob, &mut at)?).map_err(|_| Truncated)?;
            let end = at.checked_add(len).ok_or(Truncated)?;
            let bytes = blob.get(at..end).ok_or(Truncated)?;
            at = end;
            Some(bytes)
        } else {
            None
        };
        let id = SeriesId(series);
        if !want(id) {
            continue;
        }
        let point = match kind {
            Kind::Distribution => Point {
                ts_ms,
                count: v[0],
                sum: v[1],
                min: v[2],
                max: v[3],
                last: 0.0,
                last_ts_ms: ts_ms,
                sketch: Some(Sketch::decode(sketch.unwrap_or_default())?),
            },
            _ => {
                let (last, min, max) = if kind == Kind::Gauge { (v[0], v[1], v[2]) } else { (v[0], v[0], v[0]) };
                Point { ts_ms, count: 1.0, sum: last, min, max, last, last_ts_ms: ts_ms, sketch: None }
            }
        };
        sink(id, kind, point);
    }
    Ok(())
}

/// Append points (sorted and merged by [`crate::write::sort_and_merge`]: a write, or one
/// bucket's stretch of it) as one row per bucket. Returns what was added.
pub(crate) fn append<E: Entry>(tx: &Transaction<'_>, points: &[E]) -> rusqlite::Result<LogSize> {
    let mut added = LogSize::default();
    let mut stmt =
        tx.prepare_cached("INSERT INTO recent (bucket, start_ms, end_ms, points, data) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for group in points.chunk_by(|a, b| bucket(a.series()) == bucket(b.series())) {
        let start = group.iter().map(E::ts_ms).min().unwrap_or_default();
        let end = group.iter().map(E::ts_ms).max().unwrap_or_default();
        let blob = encode(group, start);
        stmt.execute(params![bucket(group[0].series()), start, end, group.len() as i64, blob])?;
        added.rows += 1;
        added.bytes += blob.len() as u64;
    }
    Ok(added)
}

impl Writer {
    /// Rows and bytes of the recent log, as stored.
    pub(crate) fn log_size(&self) -> Result<LogSize> {
        self.conn
            .query_row("SELECT count(*), coalesce(sum(length(data)), 0) FROM recent", [], |r| {
                Ok(LogSize { rows: r.get::<_, i64>(0)?.max(0) as u64, bytes: r.get::<_, i64>(1)?.max(0) as u64 })
            })
            .map_err(|e| self.sql(e))
    }

    /// Fold the recent log into the heads: per bucket, in one transaction, every logged point
    /// goes through the usual per-series write (in the order written) and the bucket's rows
    /// go. [`Writer::maintain`] runs this first. Returns the points folded. A bucket that
    /// cannot be folded (an undecodable row) is left as it is and the others are folded;
    /// the first such error is returned after them.
    pub fn fold_recent(&mut self) -> Result<usize> {
        self.fold_recent_within(None)
    }

    /// [`Writer::fold_recent`] for about `budget` at most (at least one bucket), the buckets
    /// in turn from the one after where the last slice stopped; everything with `None`. A
    /// write past the log's limit folds a slice (twice the limit, all of it: the log stays
    /// bounded when slices cannot keep up), and so does [`Writer::maintain_sliced`].
    pub fn fold_recent_within(&mut self, budget: Option<std::time::Duration>) -> Result<usize> {
        if self.log.rows == 0 {
            return Ok(0);
        }
        let mut buckets = self.logged_buckets()?;
        if budget.is_some() {
            let after = buckets.partition_point(|&b| b <= self.folded_to);
            buckets.rotate_left(after);
        }
        self.fold_buckets(buckets, budget)
    }

    /// The buckets the recent log holds rows of, in order.
    pub(crate) fn logged_buckets(&self) -> Result<Vec<i64>> {
        self.conn
            .prepare("SELECT DISTINCT bucket FROM recent ORDER BY bucket")
            .and_then(|mut s| s.query_map([], |r| r.get(0)).and_then(|r| r.collect()))
            .map_err(|e| self.sql(e))
    }

    /// Fold `buckets` in that order, for about `budget` at most (at least one).
    pub(crate) fn fold_buckets(&mut self, buckets: Vec<i64>, budget: Option<std::time::Duration>) -> Result<usize> {
        let started = std::time::Instant::now();
        let (mut folded, mut first_error) = (0, None);
        for (i, b) in buckets.into_iter().enumerate() {
            if i > 0 && budget.is_some_and(|budget| started.elapsed() >= budget) {
                break;
            }
            let result = self.fold_bucket(b);
            let disk = matches!(
                result,
                Err(Error::DiskFull { .. } | Error::FileTooLarge { .. } | Error::Io { .. } | Error::Sqlite { .. })
            );
            if !disk {
                // A failed disk retries the same bucket first; a corrupt one is passed.
                self.folded_to = b;
            }
            match result {
                Ok(n) => folded += n,
                // The disk or the file failing: the next buckets would fail the same way. Any
                // other error (a corrupt row) concerns its bucket only.
                Err(
                    e @ (Error::DiskFull { .. } | Error::FileTooLarge { .. } | Error::Io { .. } | Error::Sqlite { .. }),
                ) => {
                    first_error = Some(e);
                    break;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // What is left (the rows' lengths are in their headers: no blob is read).
        self.log = self.log_size()?;
        first_error.map_or(Ok(folded), Err)
    }

    fn fold_bucket(&mut self, bucket: i64) -> Result<usize> {
        let path = self.path.clone();
        let sql = |e| Error::sql(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let (mut folded, mut last_row) = (0, i64::MIN);
        // A part of the bucket's series at a time: the rows are read once per part, and only
        // a part's points are held (a whole bucket's took 65–74 MiB of RSS at 100 000 series).
        for part in 0..BUCKET_SERIES / FOLD_PART_SERIES {
            let lo = bucket * BUCKET_SERIES + part * FOLD_PART_SERIES;
            // A series of another bucket would be in no part: refused, not dropped.
            let stray = std::cell::Cell::new(None);
            let want = |s: SeriesId| {
                if self::bucket(s) != bucket {
                    stray.set(Some(s));
                }
                (lo..lo + FOLD_PART_SERIES).contains(&s.0)
            };
            let mut points: Vec<(SeriesId, Kind, Point)> = Vec::new();
            {
                let mut stmt =
                    tx.prepare_cached("SELECT id, data FROM recent WHERE bucket = ?1 ORDER BY id").map_err(sql)?;
                let mut rows = stmt.query([bucket]).map_err(sql)?;
                while let Some(r) = rows.next().map_err(sql)? {
                    let id: i64 = r.get(0).map_err(sql)?;
                    let blob = r.get_ref(1).and_then(|v| Ok(v.as_blob()?)).map_err(sql)?;
                    decode(blob, &want, &mut |s, k, p| points.push((s, k, p))).map_err(|_| corrupt_row(&path, id))?;
                    last_row = last_row.max(id);
                }
            }
            if let Some(series) = stray.get() {
                return Err(Error::Corrupt {
                    path: path.clone(),
                    detail: format!("the recent log's bucket {bucket} holds series {series}, of another bucket"),
                });
            }
            if let Some((series, kind, _)) = points.iter().find(|(s, k, _)| self.registry.kind(*s) != Some(*k)) {
                return Err(Error::Corrupt {
                    path: path.clone(),
                    detail: format!("the recent log holds a {kind} point of series {series}, which is not one"),
                });
            }
            sort_and_merge(&mut points);
            folded += points.len();
            write_each_series(&tx, points).map_err(sql)?;
        }
        tx.execute("DELETE FROM recent WHERE bucket = ?1 AND id <= ?2", params![bucket, last_row]).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(folded)
    }
}

impl Snapshot<'_> {
    /// Feed the recent log's points in `range` ([`crate::recent`]): of `series` only, or of
    /// every series `want` accepts. In the order written, after the heads' points (older).
    pub(crate) fn scan_recent(
        &self,
        series: Option<SeriesId>,
        range: TimeRange,
        want: &dyn Fn(SeriesId) -> bool,
        sink: &mut dyn FnMut(SeriesId, Point),
    ) -> Result<()> {
        let sql = match series {
            Some(_) => "SELECT id, data FROM recent WHERE bucket = ?3 AND end_ms >= ?1 AND start_ms < ?2 ORDER BY id",
            None => "SELECT id, data FROM recent WHERE end_ms >= ?1 AND start_ms < ?2 ORDER BY id",
        };
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.sql(e))?;
        let mut rows = match series {
            Some(s) => stmt.query(params![range.start_ms, range.end_ms, bucket(s)]),
            None => stmt.query(params![range.start_ms, range.end_ms]),
        }
        .map_err(|e| self.sql(e))?;
        let wanted = |id: SeriesId| series.map_or_else(|| want(id), |s| s == id);
        while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
            let id: i64 = r.get(0).map_err(|e| self.sql(e))?;
            let blob = r.get_ref(1).and_then(|v| Ok(v.as_blob()?)).map_err(|e| self.sql(e))?;
            decode(blob, &wanted, &mut |s, _, p| {
                if p.ts_ms >= range.start_ms && p.ts_ms < range.end_ms {
                    sink(s, p);
                }
            })
            .map_err(|_| corrupt_row(self.path(), id))?;
        }
        Ok(())
    }
}

/// The error for a log row that does not decode.
pub(crate) fn corrupt_row(path: &std::path::Path, id: i64) -> Error {
    Error::Corrupt { path: path.to_owned(), detail: format!("undecodable row {id} of the recent log") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Distribution, Sample};

    fn sample_points() -> Vec<(SeriesId, Kind, Point)> {
        let mut sketch = Sketch::default();
        for v in [0.012, 0.5, 3.25] {
            sketch.add(v);
        }
        let dist =
            Sample::Distribution(Box::new(Distribution { count: 3.0, sum: 3.762, min: 0.012, max: 3.25, sketch }));
        vec![
            (SeriesId(3), Kind::Counter, Point::from_sample(1_000, &Sample::Counter(7.0))),
            (SeriesId(5), Kind::Gauge, Point::from_sample(1_000, &Sample::Gauge { last: -2.5, min: -9.0, max: 4.0 })),
            (SeriesId(5), Kind::Gauge, Point::from_sample(-40_000, &Sample::Gauge { last: 1.0, min: 1.0, max: 1.0 })),
            (SeriesId(900), Kind::Set, Point::from_sample(2_000, &Sample::Set(12.0))),
            (SeriesId(901), Kind::Distribution, Point::from_sample(1_000, &dist)),
        ]
    }

    #[test]
    fn every_kind_reads_back_as_the_point_written_in_order() {
        let input = sample_points();
        let blob = encode(&input, 1_000);
        let mut back = Vec::new();
        decode(&blob, &|_| true, &mut |s, k, p| back.push((s, k, p))).unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn a_reader_of_one_series_gets_only_its_points() {
        let input = sample_points();
        let blob = encode(&input, 0);
        let mut back = Vec::new();
        decode(&blob, &|s| s == SeriesId(901), &mut |s, _, p| back.push((s, p.count))).unwrap();
        assert_eq!(back, vec![(SeriesId(901), 3.0)]);
    }

    #[test]
    fn every_cut_of_a_row_is_refused_or_reads_a_prefix() {
        let input = sample_points();
        let blob = encode(&input, 1_000);
        for cut in 0..blob.len() {
            let mut n = 0;
            let r = decode(&blob[..cut], &|_| true, &mut |_, _, _| n += 1);
            assert!(r.is_err() || n < 5, "cut at {cut} read {n} points without an error");
        }
    }
}
