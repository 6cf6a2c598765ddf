//! The writer: the one connection that changes a store.
//!
//! ## Concurrency
//! A `Writer` holds the `<db>.lock` flock for its lifetime and is `Send` but not `Sync`: the
//! agent gives it to one dedicated thread. Every public call is one transaction.
//!
//! ## Failure modes
//! The writer keeps no point data in memory: open chunks live in the `head` table, and a
//! flush either updates them or (when it touches many series) goes to the recent log
//! ([`crate::recent`]) that maintenance folds into them, so a crash loses at most the flush
//! in flight. A failed transaction (disk full, I/O error) rolls back and leaves the store as
//! it was; the caller may retry the same batch.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior, params};

use crate::chunk;
use crate::entry::{Entry, Flushed, flushed, in_series_order, series_in, sort_and_merge};
use crate::error::{Error, Result};
use crate::migrate::{self, Found};
use crate::model::{Kind, Point, Sample, SeriesId, Write};
use crate::open::{self, StoreOptions};
use crate::query::Snapshot;
use crate::recent::bucket;
use crate::registry::Registry;
use crate::rows::{
    Meta, Source, corrupt_blob, encode, insert_chunk, insert_piece, read_summary, set_meta_max, split_encode,
    summarize, summarize_hour,
};
use crate::sketch::Sketch;
use crate::tier::{Tier, floor, raw_window_ms};

/// Database page size. Chunk rows of 1–3 KB pack 5–16 to a 16 KiB page; on 4 KiB pages a
/// 2.7 KB row (an hour of full-precision floats) took a page of its own, wasting a third.
pub const PAGE_SIZE: usize = 16_384;

/// The writer's page cache, KiB. A write appends to the recent log and a fold walks the heads
/// in id order, so the cache holds little more than the B-trees' inner pages: 60 writes of
/// 90 000 series with folds every few writes took 27–28 s with 2 MiB and 32 s with 8 MiB
/// (the default before), which was a tenth of the agent's memory at 100 000 series. With
/// 1 MiB, 3 simulated minutes of 90 000 series (`flush-cost`, side by side) cost the writer
/// 72.3 / 69.2 / 69.3 ms a flush against 71.8 / 69.7 with 2 MiB, and 1.1 MB less RSS; 512 KiB
/// took 70.4 / 70.8.
const CACHE_KIB: u32 = 1024;
/// An open head is sealed once its row would pass this many bytes. Every flush rewrites the
/// page holding each touched head, so small heads keep the WAL a flush writes small (16 KiB
/// pages of 3 KB heads made a flush of 10,000 series write 30 MB); the pieces are packed into
/// full chunks of up to [`crate::CHUNK_MAX_BYTES`] once they fill one.
pub const HEAD_MAX_BYTES: usize = 512;
/// The writer checkpoints the WAL into the database once it holds this many bytes (4 MiB)…
pub const CHECKPOINT_BYTES: u64 = 4 << 20;
/// …or once the last checkpoint is this old (60 s).
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// What one [`Writer::write`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Points written (after merging duplicates of one interval within the batch).
    pub points: usize,
    /// Series touched.
    pub series: usize,
    /// Chunks sealed.
    pub sealed: usize,
}

/// What the recent log holds ([`crate::recent`]), kept in step with the table.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LogSize {
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
}

impl LogSize {
    fn add(&mut self, more: LogSize) {
        self.rows += more.rows;
        self.bytes += more.bytes;
    }
}

/// The store's single writer. See the module docs.
#[derive(Debug)]
pub struct Writer {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) opts: StoreOptions,
    pub(crate) registry: Registry,
    pub(crate) log: LogSize,
    /// The last bucket a fold slice took: the next slice goes on after it.
    pub(crate) folded_to: i64,
    last_checkpoint: Instant,
    /// (device, inode) of the file opened: a different one at the path means it was replaced.
    identity: Option<(u64, u64)>,
    /// The writer lock (an flock on the database file); dropped after the connection.
    _lock: File,
}

/// Whether the file at the store's path is still the one this writer opened, and writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// The same file, writable.
    Ok,
    /// Nothing at the path any more: writes go to a deleted file.
    Deleted,
    /// Another file at the path: writes go to the old one.
    Replaced,
    /// The file or its folder is no longer writable by this process.
    ReadOnly,
}

impl Writer {
    /// Open (creating if needed) the store at `path` for writing: takes the writer lock,
    /// refuses files it must not touch, migrates, and loads the series registry.
    pub fn open(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Self> {
        open::create_parent(path.as_ref())?;
        let path = open::canonical(path.as_ref())?;
        // Before the lock, which opens the file for writing: a read-only store is refused by
        // name, not by the open's "permission denied".
        if !open::writable(&path) {
            return Err(Error::ReadOnly { path });
        }
        let lock = open::acquire_lock(&path)?;
        let mut fresh = true;
        if open::check_header(&path)? {
            let ro = open::open_read_only(&path, opts.busy_timeout)?;
            fresh = migrate::inspect(&ro, &path)? == Found::Empty;
            if !fresh && opts.check_on_open {
                open::quick_check(&ro, &path)?;
            }
        }
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Error::sql(&path, e))?;
        let sql = |e| Error::sql(&path, e);
        conn.busy_timeout(opts.busy_timeout).map_err(sql)?;
        if fresh {
            // Both must precede the first table (and page_size the switch to WAL).
            conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}; PRAGMA auto_vacuum = INCREMENTAL;"))
                .map_err(sql)?;
        }
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Invalid(format!("{}: cannot switch to WAL mode (got {mode})", path.display())));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {}; \
             PRAGMA foreign_keys = OFF; PRAGMA cache_size = -{CACHE_KIB};",
            opts.wal_limit_bytes
        ))
        .map_err(sql)?;
        if let Some(max) = opts.max_page_count {
            conn.query_row(&format!("PRAGMA max_page_count = {max}"), [], |_| Ok(())).map_err(sql)?;
        }
        migrate::migrate(&mut conn, &path)?;
        let identity = open::identity(&path);
        let mut w = Writer {
            conn,
            path,
            opts,
            registry: Registry::default(),
            log: LogSize::default(),
            folded_to: i64::MIN,
            last_checkpoint: Instant::now(),
            identity,
            _lock: lock,
        };
        w.load_registry()?;
        w.log = w.log_size()?;
        Ok(w)
    }

    /// Mark this store as made by `perfctl demo` (simulated data only), so a later demo can
    /// recognise it and replace it, and refuse any other store.
    pub fn mark_demo(&mut self, now_ms: i64) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| Error::sql(&path, e))?;
        set_meta_max(&tx, Meta::Demo, now_ms).map_err(|e| Error::sql(&path, e))?;
        tx.commit().map_err(|e| Error::sql(&path, e))
    }

    /// Keep a small document of the store's owner under `name` (the agent's alert state), in
    /// the `meta` table as `state.<name>`, replacing what was there, in one transaction: a
    /// crash leaves the old one or the new one. Read back with [`crate::Snapshot::state`].
    pub fn put_state(&mut self, name: &str, value: &str) -> Result<()> {
        let path = self.path.clone();
        self.conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut st| st.execute(rusqlite::params![format!("state.{name}"), value]))
            .map(drop)
            .map_err(|e| Error::sql(&path, e))
    }

    /// The store file (its real path: symbolic links resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file at [`Writer::path`] is still this writer's, and writable: two
    /// `stat`-like calls, cheap enough for every flush.
    pub fn file_state(&self) -> FileState {
        match open::identity(&self.path) {
            None => FileState::Deleted,
            Some(id) if Some(id) != self.identity => FileState::Replaced,
            Some(_) if !open::writable(&self.path) => FileState::ReadOnly,
            Some(_) => FileState::Ok,
        }
    }

    /// Checkpoint the WAL completely, returning its space to the file system (after a
    /// failure, when space is scarce). Readers holding the WAL make it stop short; that is
    /// not an error.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.last_checkpoint = Instant::now();
        self.conn.busy_timeout(Duration::from_millis(200)).map_err(|e| self.sql(e))?;
        let r = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        self.conn.busy_timeout(self.opts.busy_timeout).map_err(|e| self.sql(e))?;
        r.map_err(|e| self.sql(e))
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    pub(crate) fn sql(&self, e: rusqlite::Error) -> Error {
        Error::sql(&self.path, e)
    }

    /// Write one flush: many series, one transaction. Points may carry any timestamp
    /// (backfill) and arrive in any order; two points of one series at the same timestamp
    /// are merged (counter deltas add, gauges keep the later value, see [`Point`]).
    ///
    /// A flush of at least [`StoreOptions::log_min_series`] series (and any flush while the
    /// recent log holds rows, so each series' points are applied in the order written) goes
    /// to the recent log; see [`Writer::fold_recent`].
    pub fn write(&mut self, writes: &[Write]) -> Result<WriteReport> {
        self.write_samples(writes.iter().map(|w| (w.series, w.ts_ms, &w.sample)))
    }

    /// When the recent log is past its limit ([`StoreOptions::log_max_bytes`]), fold a slice
    /// of it ([`StoreOptions::log_fold_slice`]), or all of it past twice the limit (slices
    /// not keeping up); the points folded. Every write does this first; a caller that holds
    /// a write's data in memory (an agent's flush) can do it between writes instead, so that
    /// the fold's memory and the flush's are not held at once. A bucket that cannot be folded
    /// (corrupt) does not stop the writes: maintenance reports it.
    pub fn fold_when_full(&mut self) -> Result<usize> {
        if self.log.bytes < self.opts.log_max_bytes {
            return Ok(0);
        }
        let slice = (self.log.bytes < self.opts.log_max_bytes.saturating_mul(2)).then_some(self.opts.log_fold_slice);
        match self.fold_recent_within(slice) {
            Ok(n) => Ok(n),
            Err(Error::Corrupt { .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// [`Writer::write`] of borrowed samples: `(series, ts_ms, sample)`.
    ///
    /// A write to the recent log goes a bucket's stretch at a time
    /// ([`crate::recent::BUCKET_SERIES`] series), not as one view of the whole write (32
    /// bytes a point, 2.9 MB for a flush of 100 000 series, on top of the flush itself). The
    /// samples are read an extra time first, for those out of series order (an agent's
    /// flush usually has a few: the host sample at its end, a series that came back after
    /// it expired); only those are held, put in order, and merged in. Past an eighth out of
    /// order, every sample is held and put in order, as before.
    pub fn write_samples<'s, I>(&mut self, samples: I) -> Result<WriteReport>
    where
        I: IntoIterator<Item = (SeriesId, i64, &'s Sample)>,
        I::IntoIter: Clone,
    {
        // Before the write (which goes to the log: it holds rows). A failed fold fails this
        // call with nothing of it written.
        self.fold_when_full()?;
        // The samples that come in series order after those before them, and the others
        // (held, put in order, and merged in). When more than an eighth are out of order
        // (an agent restarted on a store whose ids its series arrive out of order with),
        // all are held, as every write was before.
        let samples = samples.into_iter();
        let registry = &self.registry;
        let (mut rest, mut rest_at, mut prev, mut hold_all) = (Vec::new(), Vec::new(), None, false);
        for (i, s) in samples.clone().enumerate() {
            if prev.is_none_or(|p| p <= (s.0, s.1)) {
                prev = Some((s.0, s.1));
            } else if rest.len() >= 64 + i / 8 {
                hold_all = true;
                break;
            } else {
                rest_at.push(i);
                rest.push(flushed(registry, s)?);
            }
        }
        if hold_all {
            drop(std::mem::take(&mut rest)); // before the whole is read
            rest_at = Vec::new();
            rest = samples.clone().map(|s| flushed(registry, s)).collect::<Result<_>>()?;
        }
        sort_and_merge(&mut rest);
        let mut skip = rest_at.into_iter().peekable();
        let sorted = samples
            .take(if hold_all { 0 } else { usize::MAX })
            .enumerate()
            .filter(move |(i, _)| skip.next_if_eq(i).is_none());
        let mut points = in_series_order(sorted.map(|(_, s)| flushed(registry, s)), rest);
        // Read until the write is sure to go to the log (it holds rows, or the write
        // touches `min_series` series: they only add up) or the input ends.
        let min_series = self.opts.log_min_series.max(1);
        let mut to_log = self.log.rows > 0;
        let mut first: Vec<Flushed<'s>> = Vec::new();
        let mut series = 0;
        while !to_log && let Some(p) = points.next() {
            let p = p?;
            series += usize::from(first.last().is_none_or(|last| last.series() != p.series()));
            first.push(p);
            to_log = series >= min_series;
        }
        let path = self.path.clone();
        let sql = |e| Error::sql(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let mut report = WriteReport::default();
        let mut newest = None;
        let mut logged = LogSize::default();
        if to_log {
            // A stretch of one bucket at a time.
            let mut run = first;
            let mut take = |run: &mut Vec<Flushed<'s>>| -> Result<()> {
                sort_and_merge(run);
                report.series += series_in(run);
                report.points += run.len();
                newest = newest.max(run.iter().map(Entry::ts_ms).max());
                logged.add(crate::recent::append(&tx, run).map_err(sql)?);
                run.clear();
                Ok(())
            };
            for p in points {
                let p = p?;
                if run.last().is_some_and(|last| bucket(last.series()) != bucket(p.series())) {
                    take(&mut run)?;
                }
                run.push(p);
            }
            take(&mut run)?;
        } else {
            drop(points); // read to its end
            sort_and_merge(&mut first);
            report.series = series_in(&first);
            report.points = first.len();
            newest = first.iter().map(Entry::ts_ms).max();
            let points = first.into_iter().map(|p| (p.series(), p.kind(), p.point())).collect();
            report.sealed = write_each_series(&tx, points).map_err(sql)?;
        }
        if let Some(newest) = newest {
            set_meta_max(&tx, Meta::Newest, newest).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        self.log.add(logged);
        self.after_commit();
        Ok(report)
    }

    /// A passive checkpoint when the WAL holds more than [`CHECKPOINT_BYTES`] or the last one
    /// is [`CHECKPOINT_EVERY`] old; a truncating one (short timeout) when the WAL has grown past
    /// its limit because readers held it.
    ///
    /// Not after every commit: each checkpoint costs two fsyncs (WAL and database) plus one for
    /// the WAL header when the next commit restarts the log, which was most of an idle agent's
    /// CPU at a 1 s flush. A commit is durable against a process crash without a checkpoint
    /// (the frames are in the WAL); `synchronous = NORMAL` already accepts losing the last
    /// commits on power loss.
    ///
    /// Runs after the commit, so it never fails the write: a checkpoint that cannot run (a
    /// full disk, a reader holding the WAL) is tried again after the next commit. Reporting
    /// it as the write's error would make a caller retry a write that is already stored.
    pub(crate) fn after_commit(&mut self) {
        let wal = self.wal_bytes();
        // On a nearly full disk the WAL must not be what fills it: checkpoint once it holds a
        // quarter of the free space, so its frames are reused instead of appended.
        let threshold = CHECKPOINT_BYTES.min(Self::free_bytes(&self.path) / 4);
        if wal > threshold || self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            self.last_checkpoint = Instant::now();
            let _ = self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
        if wal > self.opts.wal_limit_bytes {
            let _ = self.conn.busy_timeout(Duration::from_millis(200));
            let _ = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            let _ = self.conn.busy_timeout(self.opts.busy_timeout);
        }
    }

    /// Bytes free for this process on the file system holding `db` (`u64::MAX` when unknown).
    fn free_bytes(db: &Path) -> u64 {
        use std::os::unix::ffi::OsStrExt as _;
        let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return u64::MAX };
        // SAFETY: statvfs only writes into the zeroed struct we pass; `c` is a valid C string.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(c.as_ptr(), &mut st) != 0 {
                return u64::MAX;
            }
            (st.f_bavail as u64).saturating_mul(st.f_frsize as u64)
        }
    }

    /// Size of the `-wal` file in bytes (0 when absent).
    pub fn wal_bytes(&self) -> u64 {
        wal_path(&self.path).metadata().map(|m| m.len()).unwrap_or(0)
    }

    /// Size of the database file in bytes.
    pub fn db_bytes(&self) -> u64 {
        self.path.metadata().map(|m| m.len()).unwrap_or(0)
    }

    /// A consistent read view through the writer's own connection.
    pub fn snapshot(&mut self) -> Result<Snapshot<'_>> {
        Snapshot::begin(&mut self.conn, &self.path)
    }

    /// Checkpoint the WAL completely and close. Dropping a writer also closes it, but
    /// without reporting errors.
    pub fn close(self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(|e| self.sql(e))?;
        self.conn.close().map_err(|(_, e)| Error::sql(&self.path, e))
    }
}

/// `<db>-wal`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push("-wal");
    db.with_file_name(name)
}

/// [`write_series`] for each series of sorted, merged points. Returns chunks sealed.
pub(crate) fn write_each_series(tx: &Transaction<'_>, points: Vec<(SeriesId, Kind, Point)>) -> rusqlite::Result<usize> {
    let mut sealed = 0;
    let mut it = points.into_iter().peekable();
    while let Some((series, kind, first)) = it.next() {
        let mut own = vec![first];
        while let Some((_, _, p)) = it.next_if(|x| x.0 == series) {
            own.push(p);
        }
        sealed += write_series(tx, series, kind, own)?;
    }
    Ok(sealed)
}

/// Merge points of one series that share a timestamp (input sorted by time).
fn merge_duplicates(points: Vec<Point>, kind: Kind) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::with_capacity(points.len());
    for p in points {
        match out.last_mut() {
            Some(last) if last.ts_ms == p.ts_ms => last.merge_same_interval(&p, kind),
            _ => out.push(p),
        }
    }
    out
}

/// The head's points and its stored summary.
fn load_head(tx: &Transaction<'_>, series: SeriesId) -> rusqlite::Result<Option<(Vec<Point>, Point)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT data, count, sum, min, max, last, last_ts_ms, sketch, start_ms FROM head WHERE series_id = ?1",
    )?;
    let mut rows = stmt.query([series])?;
    let Some(r) = rows.next()? else { return Ok(None) };
    let points = chunk::decode(r.get_ref(0)?.as_blob()?).map_err(|_| corrupt_blob(Source::Head, series))?;
    Ok(Some((points, read_summary(r, 1, r.get(8)?, series)?)))
}

fn store_head(tx: &Transaction<'_>, series: SeriesId, points: &[Point], blob: &[u8], s: Point) -> rusqlite::Result<()> {
    let sketch = s.sketch.as_ref().map(|k| k.encode());
    tx.prepare_cached(
        "INSERT OR REPLACE INTO head (series_id, start_ms, end_ms, points, count, sum, min, max, last, last_ts_ms, sketch, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        series,
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

/// The common case of a flush, in O(new points): every point is newer than the head's last
/// and in its window ([`raw_window_ms`]), and the head still has room. Only the head's
/// newest segment (at most [`chunk::SEGMENT_POINTS`] points) is decoded and encoded again;
/// older segments are copied as bytes, and the stored summary takes the new points. False
/// (nothing written) for every other case, which [`write_series`] handles whole.
fn append_to_head(tx: &Transaction<'_>, series: SeriesId, kind: Kind, points: &[Point]) -> rusqlite::Result<bool> {
    let (Some(first), Some(newest)) = (points.first(), points.last()) else { return Ok(true) };
    let mut stmt = tx.prepare_cached(
        "SELECT data, count, sum, min, max, last, last_ts_ms, sketch, start_ms, end_ms, points FROM head WHERE series_id = ?1",
    )?;
    let mut rows = stmt.query([series])?;
    let Some(r) = rows.next()? else { return Ok(false) };
    let (start_ms, end_ms, stored): (i64, i64, i64) = (r.get(8)?, r.get(9)?, r.get(10)?);
    let window = raw_window_ms(kind);
    if first.ts_ms <= end_ms || floor(newest.ts_ms, window) != floor(start_ms, window) {
        return Ok(false);
    }
    let blob = r.get_ref(0)?.as_blob()?;
    let corrupt = |_| corrupt_blob(Source::Head, series);
    let last = *chunk::segments(blob).map_err(corrupt)?.last().ok_or_else(|| corrupt(crate::codec::Truncated))?;
    let open_points = chunk::point_count(last).map_err(corrupt)?;
    let (replace_last, open) = if open_points < chunk::SEGMENT_POINTS {
        let mut open = chunk::decode(last).map_err(corrupt)?;
        open.extend_from_slice(points);
        (true, encode(kind, &open))
    } else {
        (false, encode(kind, points))
    };
    let data = chunk::append_segment(blob, replace_last, &open).map_err(corrupt)?;
    if data.len() > HEAD_MAX_BYTES {
        return Ok(false);
    }
    let mut summary = read_summary(r, 1, start_ms, series)?;
    drop(rows);
    drop(stmt);
    for p in points {
        summary.merge(p);
    }
    let sketch = summary.sketch.as_ref().map(Sketch::encode);
    tx.prepare_cached(
        "UPDATE head SET end_ms = ?2, points = ?3, count = ?4, sum = ?5, min = ?6, max = ?7, last = ?8, \
         last_ts_ms = ?9, sketch = ?10, data = ?11 WHERE series_id = ?1",
    )?
    .execute(params![
        series,
        newest.ts_ms,
        stored + points.len() as i64,
        summary.count,
        summary.sum,
        summary.min,
        summary.max,
        summary.last,
        summary.last_ts_ms,
        sketch,
        data
    ])?;
    Ok(true)
}

/// Close the head's window ([`raw_window_ms`]), or pack pieces that fill a chunk (`head`
/// empty): the pieces (sealed as the head filled) and `head` become full chunks of up to
/// [`crate::CHUNK_MAX_BYTES`], in time order, and the pieces go. Each point is packed once,
/// so this costs O(1) per point. A late point may have landed in the head before a piece's
/// end: points of one timestamp merge in the order written.
pub(crate) fn close_window(
    tx: &Transaction<'_>,
    series: SeriesId,
    kind: Kind,
    head: &[Point],
) -> rusqlite::Result<usize> {
    let pieces: Vec<Vec<u8>> = tx
        .prepare_cached("SELECT data FROM head_piece WHERE series_id = ?1 ORDER BY id")?
        .query_map([series], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut points = Vec::new();
    for blob in &pieces {
        points.extend(chunk::decode(blob).map_err(|_| corrupt_blob(Source::Head, series))?);
    }
    points.extend_from_slice(head);
    if !pieces.is_empty() {
        tx.prepare_cached("DELETE FROM head_piece WHERE series_id = ?1")?.execute([series])?;
        if points.windows(2).any(|w| w[0].ts_ms >= w[1].ts_ms) {
            points.sort_by_key(|p| p.ts_ms);
            points = merge_duplicates(points, kind);
        }
    }
    seal(tx, series, kind, &points)
}

/// Seal `points` (already one bucket) as one or more raw chunks.
fn seal(tx: &Transaction<'_>, series: SeriesId, kind: Kind, points: &[Point]) -> rusqlite::Result<usize> {
    let parts = split_encode(kind, points, encode);
    for (a, b, blob) in &parts {
        insert_chunk(tx, series, Tier::Raw, &points[*a..*b], blob)?;
    }
    Ok(parts.len())
}

/// Merge sorted, de-duplicated points into one series' raw tier. Returns chunks sealed.
///
/// The head holds the newest window ([`raw_window_ms`]) written. Points of that window merge
/// into it;
/// points of a newer bucket seal it and start a new one; points of an older bucket (late or
/// backfilled data) become sealed chunks of their own. Chunks may overlap in time: queries
/// merge whatever they find, so overlap never double counts an interval twice written only
/// once.
pub(crate) fn write_series(
    tx: &Transaction<'_>,
    series: SeriesId,
    kind: Kind,
    points: Vec<Point>,
) -> rusqlite::Result<usize> {
    if append_to_head(tx, series, kind, &points)? {
        return Ok(0);
    }
    let mut sealed = 0;
    let (mut head, old_summary) = match load_head(tx, series)? {
        Some((points, summary)) => (Some(points), Some(summary)),
        None => (None, None),
    };
    // Length of the stored head while only appends happen to it: if appending overflows
    // it, that prefix (which fit) is sealed whole, so sealed chunks stay near full size; if
    // it does not, the stored summary plus the new points is the new summary.
    let mut fitting_prefix = head.as_ref().map_or(0, Vec::len);
    let mut older: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
    for p in points {
        let b = floor(p.ts_ms, raw_window_ms(kind));
        match &mut head {
            None => head = Some(vec![p]),
            Some(h) => {
                let hb = floor(h[0].ts_ms, raw_window_ms(kind));
                if b == hb {
                    let last = h.last().map_or(i64::MIN, |l| l.ts_ms);
                    if p.ts_ms > last {
                        h.push(p);
                    } else {
                        fitting_prefix = 0;
                        match h.binary_search_by_key(&p.ts_ms, |q| q.ts_ms) {
                            Ok(i) => h[i].merge_same_interval(&p, kind),
                            Err(i) => h.insert(i, p),
                        }
                    }
                } else if b > hb {
                    sealed += close_window(tx, series, kind, h)?;
                    summarize_hour(tx, series, kind, hb)?;
                    *h = vec![p];
                    fitting_prefix = 0;
                } else {
                    older.entry(b).or_default().push(p);
                }
            }
        }
    }
    for (b, pts) in &older {
        sealed += seal(tx, series, kind, pts)?;
        summarize_hour(tx, series, kind, *b)?;
    }
    let Some(mut h) = head else { return Ok(sealed) };
    let blob = encode(kind, &h);
    if blob.len() <= HEAD_MAX_BYTES || h.len() == 1 {
        let summary = match old_summary {
            Some(mut s) if fitting_prefix > 0 => {
                for p in &h[fitting_prefix..] {
                    s.merge(p);
                }
                s
            }
            _ => summarize(&h),
        };
        store_head(tx, series, &h, &blob, summary)?;
        return Ok(sealed);
    }
    // Full: all but the newest point become a piece of the window, and the newest starts the
    // next head. Pieces become full chunks once they fill one, or when the window closes
    // ([`close_window`]).
    let newest = h.split_off(h.len() - 1);
    insert_piece(tx, series, &h, &encode(kind, &h))?;
    // Not distributions: their window is an hour, whose close splits all its points evenly
    // into chunks that fill 16 KiB pages six rows to a page. Packed piecemeal, their uneven
    // rows fitted five to a page (timers footprint 64.5 -> 71.7 bytes per sample).
    if kind != Kind::Distribution {
        let pieces: i64 = tx
            .prepare_cached("SELECT coalesce(sum(length(data)), 0) FROM head_piece WHERE series_id = ?1")?
            .query_row([series], |r| r.get(0))?;
        if pieces as usize >= crate::CHUNK_MAX_BYTES - HEAD_MAX_BYTES {
            sealed += close_window(tx, series, kind, &[])?;
        }
    }
    store_head(tx, series, &newest, &encode(kind, &newest), summarize(&newest))?;
    Ok(sealed)
}
