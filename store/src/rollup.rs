//! Maintenance: sealing idle heads, rolling expired raw data into the one-minute and
//! one-hour tiers, retention per tier, the disk cap, and page reclamation.
//!
//! Rollups are made when raw data expires, not as it arrives: until then the raw chunks
//! (whose summary columns already answer whole-hour questions) hold the same information,
//! so building the one-minute tier early would only cost disk. Each run does bounded work
//! per transaction, so the writer never holds the lock for long.

use std::collections::BTreeMap;

use rusqlite::{Transaction, TransactionBehavior, params};

use crate::chunk;
use crate::error::{Error, Result};
use crate::model::{Kind, Point, SeriesId};
use crate::rows::{
    Meta, Source, corrupt_blob, encode_rollup, insert_chunk, set_meta_max, split_encode, summarize_hour,
};
use crate::tier::{HOUR_MS, Tier, floor, raw_window_ms};
use crate::write::{Writer, close_window};

const BATCH: i64 = 256;

/// What one [`Writer::maintain`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Points moved from the recent log into the heads.
    pub folded_points: usize,
    /// Heads whose window was over (an hour for distributions, a day for other series)
    /// sealed into chunks.
    pub sealed_heads: usize,
    /// Raw chunks rolled into the one-minute and one-hour tiers and removed.
    pub rolled_chunks: usize,
    /// Of those, chunks rolled up before their time to respect the disk cap.
    pub rolled_early_chunks: usize,
    /// Chunks deleted by retention, per tier (raw, 1 m, 1 h).
    pub expired_chunks: [usize; 3],
    /// Profile rows deleted by retention.
    pub expired_profiles: usize,
    /// Rollup chunks deleted to respect the disk cap.
    pub pruned_chunks: usize,
    /// Profile rows deleted to respect the profile budget or the disk cap.
    pub pruned_profiles: usize,
    /// Stacks deleted with the last profile rows that used them.
    pub pruned_stacks: usize,
    /// After pruning rollups, the oldest metric data kept ends here (Unix ms): one-minute
    /// detail up to here is gone, and one-hour too if the hour tier was pruned.
    pub pruned_until_ms: Option<i64>,
    /// After pruning profiles, the oldest profile kept ends here (Unix ms).
    pub profiles_pruned_until_ms: Option<i64>,
    /// Pages returned to the file system by incremental vacuum.
    pub vacuumed_pages: i64,
    /// Database bytes in use after the run.
    pub used_bytes: u64,
}

impl Writer {
    fn kind_of(&self, series: SeriesId) -> Result<Kind> {
        let kind: i64 = self
            .conn
            .prepare_cached("SELECT kind FROM series WHERE id = ?1")
            .and_then(|mut s| s.query_row([series], |r| r.get(0)))
            .map_err(|e| self.sql(e))?;
        self.kind_from_code(series, kind)
    }

    fn kind_from_code(&self, series: SeriesId, code: i64) -> Result<Kind> {
        Kind::from_code(code)
            .ok_or_else(|| Error::Corrupt { path: self.path.clone(), detail: format!("series {series}: kind {code}") })
    }

    /// Run maintenance as of `now_ms`, the whole recent log folded first. Safe to call at
    /// any time; does nothing when nothing is due. (The agent calls
    /// [`Writer::maintain_sliced`] every minute.)
    pub fn maintain(&mut self, now_ms: i64) -> Result<MaintenanceReport> {
        // Everything below reads and rewrites heads: they must hold every point first.
        let folded_points = self.fold_recent()?;
        let mut report = self.maintain_folded(now_ms)?;
        report.folded_points = folded_points;
        Ok(report)
    }

    /// Maintenance after the fold: seal, roll up, expire, keep under the cap, vacuum.
    fn maintain_folded(&mut self, now_ms: i64) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        self.seal_idle_heads(now_ms, &mut report)?;
        self.roll_up(now_ms - self.opts.raw_retention_ms, &mut report)?;
        self.expire(now_ms, &mut report)?;
        self.enforce_cap(now_ms, &mut report)?;
        report.vacuumed_pages = self.vacuum()?;
        report.used_bytes = self.used_bytes()?;
        self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).map_err(|e| self.sql(e))?;
        Ok(report)
    }

    /// [`Writer::maintain`] without stopping long: the buckets of the recent log that hold
    /// points of heads due to be sealed are folded (the whole log once an hour, when the
    /// distributions' windows close), then a slice of the others
    /// ([`crate::StoreOptions::log_fold_slice`]; the next one at the next call, or at a write
    /// once the log is full). A head is sealed once its bucket (where all its series'
    /// logged points are) holds no rows. A bucket that cannot be folded (corrupt) does not
    /// stop the rest of maintenance: its error comes after it. The agent's writer calls
    /// this every minute.
    pub fn maintain_sliced(&mut self, now_ms: i64) -> Result<MaintenanceReport> {
        let (mut folded_points, mut corrupt) = (0, None);
        let mut fold = |result: Result<usize>| match result {
            Ok(n) => {
                folded_points += n;
                Ok(())
            }
            Err(e @ Error::Corrupt { .. }) => {
                corrupt.get_or_insert(e);
                Ok(())
            }
            Err(e) => Err(e),
        };
        if self.log.rows > 0 {
            let logged = self.logged_buckets()?;
            let mut due: Vec<i64> = self.due_heads(now_ms)?.iter().map(|h| crate::recent::bucket(h.0)).collect();
            due.sort_unstable();
            due.dedup();
            due.retain(|b| logged.binary_search(b).is_ok());
            if !due.is_empty() {
                fold(self.fold_buckets(due, None))?;
            }
            fold(self.fold_recent_within(Some(self.opts.log_fold_slice)))?;
        }
        let mut report = self.maintain_folded(now_ms)?;
        report.folded_points = folded_points;
        corrupt.map_or(Ok(report), Err)
    }

    /// Heads whose window ([`raw_window_ms`]) is over: none can be if it is not an hour.
    /// The kind comes with the head: one query, not one per head.
    fn due_heads(&self, now_ms: i64) -> Result<Vec<(SeriesId, Kind)>> {
        let started: Vec<(SeriesId, i64, i64)> = self
            .conn
            .prepare(
                "SELECT h.series_id, h.start_ms, s.kind FROM head h JOIN series s ON s.id = h.series_id \
                 WHERE h.start_ms < ?1",
            )
            .and_then(|mut s| {
                s.query_map([floor(now_ms, HOUR_MS)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .and_then(|r| r.collect())
            })
            .map_err(|e| self.sql(e))?;
        let mut due = Vec::with_capacity(started.len());
        for (series, start_ms, code) in started {
            let kind = self.kind_from_code(series, code)?;
            let window = raw_window_ms(kind);
            if floor(start_ms, window) < floor(now_ms, window) {
                due.push((series, kind));
            }
        }
        Ok(due)
    }

    fn seal_idle_heads(&mut self, now_ms: i64, report: &mut MaintenanceReport) -> Result<()> {
        // A head with points still in the recent log waits for them.
        let logged = if self.log.rows == 0 { Vec::new() } else { self.logged_buckets()? };
        let mut idle = self.due_heads(now_ms)?;
        idle.retain(|h| logged.binary_search(&crate::recent::bucket(h.0)).is_err());
        for batch in idle.chunks(BATCH as usize) {
            let path = self.path.clone();
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| Error::sql(&path, e))?;
            for &(series, kind) in batch {
                let blob: Vec<u8> = tx
                    .query_row("SELECT data FROM head WHERE series_id = ?1", [series], |r| r.get(0))
                    .map_err(|e| Error::sql(&path, e))?;
                let points = chunk::decode(&blob).map_err(|_| Error::sql(&path, corrupt_blob(Source::Head, series)))?;
                close_window(&tx, series, kind, &points).map_err(|e| Error::sql(&path, e))?;
                tx.execute("DELETE FROM head WHERE series_id = ?1", [series]).map_err(|e| Error::sql(&path, e))?;
                // A distribution's window is its hour; other kinds have no hour summary.
                let window_start = floor(points[0].ts_ms, raw_window_ms(kind));
                summarize_hour(&tx, series, kind, window_start).map_err(|e| Error::sql(&path, e))?;
                report.sealed_heads += 1;
            }
            tx.commit().map_err(|e| Error::sql(&path, e))?;
        }
        Ok(())
    }

    /// Roll raw chunks that ended before `cutoff_ms` into tiers 1 and 2, then delete them.
    pub(crate) fn roll_up(&mut self, cutoff_ms: i64, report: &mut MaintenanceReport) -> Result<()> {
        loop {
            let path = self.path.clone();
            let batch: Vec<(i64, SeriesId, Vec<u8>)> = self
                .conn
                .prepare_cached(
                    "SELECT id, series_id, data FROM chunk WHERE tier = 0 AND end_ms < ?1 ORDER BY end_ms LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![cutoff_ms, BATCH], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .and_then(|r| r.collect())
                })
                .map_err(|e| Error::sql(&path, e))?;
            if batch.is_empty() {
                return Ok(());
            }
            // Group per series, then per tier point timestamp.
            let mut per_series: BTreeMap<SeriesId, Vec<Point>> = BTreeMap::new();
            for (_, series, blob) in &batch {
                let points = chunk::decode(blob)
                    .map_err(|_| Error::sql(&path, corrupt_blob(Source::Chunk(Tier::Raw), *series)))?;
                per_series.entry(*series).or_default().extend(points);
            }
            let kinds: Vec<(SeriesId, Kind)> =
                per_series.keys().map(|&s| Ok((s, self.kind_of(s)?))).collect::<Result<_>>()?;
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| Error::sql(&path, e))?;
            for (series, kind) in kinds {
                let points = &per_series[&series];
                for tier in Tier::ROLLED {
                    let step = tier.step_ms().unwrap_or(HOUR_MS);
                    let mut rolled: BTreeMap<i64, Point> = BTreeMap::new();
                    for p in points {
                        let ts = floor(p.ts_ms, step);
                        let mut q = p.clone();
                        q.ts_ms = ts;
                        match rolled.get_mut(&ts) {
                            Some(acc) => acc.merge(&q),
                            None => {
                                rolled.insert(ts, q);
                            }
                        }
                    }
                    let rolled: Vec<Point> = rolled.into_values().collect();
                    if let Some(last) = rolled.last() {
                        set_meta_max(&tx, Meta::RolledMax, last.ts_ms).map_err(|e| Error::sql(&path, e))?;
                    }
                    append_rollup(&tx, series, kind, tier, &rolled).map_err(|e| Error::sql(&path, e))?;
                }
            }
            for (id, _, _) in &batch {
                tx.prepare_cached("DELETE FROM chunk WHERE id = ?1")
                    .and_then(|mut s| s.execute([id]))
                    .map_err(|e| Error::sql(&path, e))?;
            }
            // Hours that started before the cutoff may have lost raw chunks: their
            // summaries no longer describe what is raw.
            tx.prepare_cached("DELETE FROM hour_summary WHERE hour_ms < ?1")
                .and_then(|mut s| s.execute([cutoff_ms]))
                .map_err(|e| Error::sql(&path, e))?;
            tx.commit().map_err(|e| Error::sql(&path, e))?;
            report.rolled_chunks += batch.len();
        }
    }

    fn expire(&mut self, now_ms: i64, report: &mut MaintenanceReport) -> Result<()> {
        let path = self.path.clone();
        let cut1 = now_ms - self.opts.minute_retention_ms;
        let cut2 = now_ms - self.opts.hour_retention_ms;
        let cutp = now_ms - self.opts.profile_retention_ms;
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| Error::sql(&path, e))?;
        let sql = |e| Error::sql(&path, e);
        report.expired_chunks[1] =
            tx.execute("DELETE FROM chunk WHERE tier = 1 AND end_ms < ?1", [cut1]).map_err(sql)?;
        report.expired_chunks[2] =
            tx.execute("DELETE FROM chunk WHERE tier = 2 AND end_ms < ?1", [cut2]).map_err(sql)?;
        set_meta_max(&tx, Meta::MinuteFloor, cut1).map_err(sql)?;
        report.expired_profiles = tx.execute("DELETE FROM profile WHERE end_ms < ?1", [cutp]).map_err(sql)?;
        if report.expired_profiles > 0 {
            tx.execute("DELETE FROM stack WHERE id NOT IN (SELECT stack_id FROM profile)", []).map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Bytes of database pages in use (excluding free pages).
    pub fn used_bytes(&self) -> Result<u64> {
        let q = |sql: &str| self.conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map_err(|e| self.sql(e));
        let used = q("PRAGMA page_count")? - q("PRAGMA freelist_count")?;
        Ok(used.max(0) as u64 * q("PRAGMA page_size")?.max(0) as u64)
    }

    /// Return free pages to the file system. Returns how many were freed.
    pub(crate) fn vacuum(&mut self) -> Result<i64> {
        let free: i64 = self.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).map_err(|e| self.sql(e))?;
        if free == 0 {
            return Ok(0);
        }
        let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum").map_err(|e| Error::sql(&self.path, e))?;
        let mut rows = stmt.query([]).map_err(|e| Error::sql(&self.path, e))?;
        while rows.next().map_err(|e| Error::sql(&self.path, e))?.is_some() {}
        Ok(free)
    }
}

/// Merge rollup points (sorted, one per timestamp) into `tier`: into the series' newest chunk
/// of the same window when they follow it, else as new chunks.
fn append_rollup(
    tx: &Transaction<'_>,
    series: SeriesId,
    kind: Kind,
    tier: Tier,
    points: &[Point],
) -> rusqlite::Result<()> {
    let window = tier.chunk_window_ms();
    let mut groups: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
    for p in points {
        groups.entry(p.ts_ms.div_euclid(window)).or_default().push(p.clone());
    }
    for (bucket, mut pts) in groups {
        let (lo, hi) = (bucket * window, bucket * window + window);
        let existing: Option<(i64, Vec<u8>)> = rusqlite::OptionalExtension::optional(
            tx.prepare_cached(
                "SELECT id, data FROM chunk WHERE series_id = ?1 AND tier = ?2 AND start_ms >= ?3 AND start_ms < ?4 \
                 ORDER BY start_ms DESC LIMIT 1",
            )?
            .query_row(params![series, tier.code(), lo, hi], |r| Ok((r.get(0)?, r.get(1)?))),
        )?;
        if let Some((id, blob)) = existing {
            let mut old = chunk::decode(&blob).map_err(|_| corrupt_blob(Source::Chunk(tier), series))?;
            if old.len() < 4096 {
                for p in pts {
                    match old.binary_search_by_key(&p.ts_ms, |q| q.ts_ms) {
                        Ok(i) => old[i].merge(&p),
                        Err(i) => old.insert(i, p),
                    }
                }
                pts = old;
                tx.prepare_cached("DELETE FROM chunk WHERE id = ?1")?.execute([id])?;
            }
        }
        for (a, b, blob) in split_encode(kind, &pts, encode_rollup) {
            insert_chunk(tx, series, tier, &pts[a..b], &blob)?;
        }
    }
    Ok(())
}
