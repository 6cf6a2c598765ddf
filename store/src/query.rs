//! Read queries: series lookup, whole-range and per-step aggregates, profiles, events.
//!
//! ## Which tier answers
//! Raw chunks (and heads) hold data that has not been rolled up; the one-minute and one-hour
//! tiers hold the same rolled-up data at two resolutions. A query therefore reads every raw
//! chunk in range plus the rolled data, which it takes from one-hour points for the whole
//! hours inside the range and from one-minute points at the edges. Chunks that lie wholly
//! inside the range (or inside one step) are answered from their summary columns without
//! decoding. Sketches merge exactly, so the answer is the same whichever tier served it.
//! Where one-minute points have expired, edges fall back to whole hours that start in range.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, Row, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::chunk;
use crate::error::{Error, Result};
use crate::migrate::{self, Found, SCHEMA_VERSION};
use crate::model::{Kind, Point, SeriesId, SeriesInfo, SeriesKey, merge_into};
use crate::open;
use crate::rows::{CHUNK_COLS, Meta, Source, meta, read_summary};
use crate::select::Selector;
use crate::tier::{HOUR_MS, Tier, ceil, floor};

/// A half-open time range `[start_ms, end_ms)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    /// Inclusive start.
    pub start_ms: i64,
    /// Exclusive end.
    pub end_ms: i64,
}

impl TimeRange {
    /// `[start_ms, end_ms)`.
    pub fn new(start_ms: i64, end_ms: i64) -> Self {
        Self { start_ms, end_ms }
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64 / 1000.0
    }
}

/// An aggregation over a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    /// Sum of values (counter deltas).
    Sum,
    /// Sum per second over the window.
    Rate,
    /// Count (intervals for scalars, events for distributions).
    Count,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Mean (`sum / count`).
    Avg,
    /// Latest value.
    Last,
    /// Nearest-rank quantile, 0–1 (distributions).
    Quantile(f64),
}

impl Agg {
    /// Parse `sum`, `rate`, `count`, `min`, `max`, `avg`, `last`, `p95`, `p99.9`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "sum" => Agg::Sum,
            "rate" => Agg::Rate,
            "count" => Agg::Count,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "avg" | "mean" => Agg::Avg,
            "last" => Agg::Last,
            _ => match s.strip_prefix('p').and_then(|q| q.parse::<f64>().ok()) {
                Some(q) if (0.0..=100.0).contains(&q) => Agg::Quantile(q / 100.0),
                _ => {
                    return Err(format!(
                        "invalid aggregation '{s}': expected sum, rate, count, min, max, avg, last or pNN like p95"
                    ));
                }
            },
        })
    }

    /// The value of this aggregation for a merged point over `seconds`.
    pub fn apply(&self, p: &Point, seconds: f64) -> Option<f64> {
        let nonempty = p.count > 0.0 || p.sketch.is_none();
        match self {
            Agg::Sum => Some(p.sum),
            Agg::Rate => (seconds > 0.0).then(|| p.sum / seconds),
            Agg::Count => Some(p.count),
            Agg::Min => nonempty.then_some(p.min),
            Agg::Max => nonempty.then_some(p.max),
            Agg::Avg => p.avg(),
            Agg::Last => Some(p.last),
            Agg::Quantile(q) => p.quantile(*q),
        }
    }
}

/// One series' per-step points.
#[derive(Debug, Clone)]
pub struct SeriesRange {
    /// The series.
    pub series: SeriesInfo,
    /// `(step start, aggregate of that step)`, only steps with data, in time order.
    pub steps: Vec<(i64, Point)>,
}

/// A series and how many points it stores (for cardinality reports).
#[derive(Debug, Clone, Serialize)]
pub struct SeriesUsage {
    /// The series.
    pub series: SeriesInfo,
    /// Stored points across tiers.
    pub points: i64,
    /// Newest data, Unix ms.
    pub newest_ms: Option<i64>,
}

/// A consistent, read-only view of the store: one read transaction.
#[derive(Debug)]
pub struct Snapshot<'c> {
    pub(crate) tx: Transaction<'c>,
    path: PathBuf,
    /// Tier-1 data is complete from this time on (older has expired or was pruned).
    minute_floor_ms: i64,
    /// Newest rolled-up point (tiers 1 and 2), if any: ranges after it skip those tiers.
    rolled_max_ms: Option<i64>,
}

/// A read-only handle on a store (what `perfctl` uses). Never takes the writer lock and
/// never writes.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
    path: PathBuf,
}

impl Reader {
    /// Open the store at `path` read-only, refusing files that are missing, not SQLite,
    /// foreign, too new or too old.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let busy = crate::StoreOptions::default().busy_timeout;
        if !open::check_header(&path)? {
            return Err(Error::NotFound { path });
        }
        let conn = open::open_read_only(&path, busy)?;
        match migrate::inspect(&conn, &path)? {
            Found::Empty => {
                return Err(Error::ForeignSchema { path, detail: "empty database".into() });
            }
            Found::Store(v) if v < SCHEMA_VERSION => {
                return Err(Error::TooOld { path, found: v, supported: SCHEMA_VERSION });
            }
            Found::Store(_) => {}
        }
        Ok(Self { conn, path })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Begin a read transaction; everything read through it is one consistent view.
    pub fn snapshot(&mut self) -> Result<Snapshot<'_>> {
        Snapshot::begin(&mut self.conn, &self.path)
    }
}

/// The rows of `source` overlapping `?1..?2`, with the series id first. Parameters: `?1`
/// start, `?2` end, then for chunks `?3` tier; with `one_series`, the series (`?3` for heads,
/// `?4` for chunks, with `?5` the tier's chunk window to use the index's start bound).
fn range_sql(source: Source, one_series: bool) -> String {
    match (source, one_series) {
        (Source::Chunk(_), false) => {
            format!("SELECT series_id, {CHUNK_COLS} FROM chunk WHERE tier = ?3 AND end_ms >= ?1 AND start_ms < ?2")
        }
        (Source::Chunk(_), true) => format!(
            "SELECT series_id, {CHUNK_COLS} FROM chunk WHERE series_id = ?4 AND tier = ?3 \
             AND start_ms > ?1 - ?5 AND start_ms < ?2 AND end_ms >= ?1"
        ),
        // The open head and the pieces of its window sealed so far.
        (_, false) => format!(
            "SELECT series_id, {CHUNK_COLS} FROM head WHERE end_ms >= ?1 AND start_ms < ?2 \
             UNION ALL SELECT series_id, {CHUNK_COLS} FROM head_piece WHERE end_ms >= ?1 AND start_ms < ?2"
        ),
        (_, true) => format!(
            "SELECT series_id, {CHUNK_COLS} FROM head WHERE series_id = ?3 AND start_ms < ?2 AND end_ms >= ?1 \
             UNION ALL SELECT series_id, {CHUNK_COLS} FROM head_piece WHERE series_id = ?3 AND start_ms < ?2 AND end_ms >= ?1"
        ),
    }
}

impl<'c> Snapshot<'c> {
    pub(crate) fn begin(conn: &'c mut Connection, path: &Path) -> Result<Self> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(|e| Error::sql(path, e))?;
        // The first read pins the snapshot.
        let minute_floor_ms = meta(&tx, Meta::MinuteFloor).map_err(|e| Error::sql(path, e))?.unwrap_or(i64::MIN);
        let rolled_max_ms = meta(&tx, Meta::RolledMax).map_err(|e| Error::sql(path, e))?;
        Ok(Self { tx, path: path.to_owned(), minute_floor_ms, rolled_max_ms })
    }

    pub(crate) fn sql(&self, e: rusqlite::Error) -> Error {
        Error::sql(&self.path, e)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Schema version of the file.
    pub fn schema_version(&self) -> Result<i64> {
        self.tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.sql(e))
    }

    /// When `perfctl demo` made this store, if it did ([`crate::Writer::mark_demo`]).
    pub fn demo_created_ms(&self) -> Result<Option<i64>> {
        meta(&self.tx, Meta::Demo).map_err(|e| self.sql(e))
    }

    /// The document kept under `name` by [`crate::Writer::put_state`], if any.
    pub fn state(&self, name: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension as _;
        self.tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [format!("state.{name}")], |r| r.get(0))
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Every document kept under a name starting with `prefix`, by name.
    pub fn states(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut like = String::from("state.");
        for c in prefix.chars() {
            if matches!(c, '%' | '_' | '\\') {
                like.push('\\');
            }
            like.push(c);
        }
        like.push('%');
        let mut stmt = self
            .tx
            .prepare("SELECT substr(key, 7), value FROM meta WHERE key LIKE ?1 ESCAPE '\\' ORDER BY key")
            .map_err(|e| self.sql(e))?;
        let rows = stmt.query_map([like], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.sql(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.sql(e))
    }

    /// Whether the store holds any series.
    pub fn has_series(&self) -> Result<bool> {
        self.tx.query_row("SELECT EXISTS (SELECT 1 FROM series)", [], |r| r.get(0)).map_err(|e| self.sql(e))
    }

    /// Newest data timestamp written (Unix ms), if any.
    pub fn newest_ms(&self) -> Result<Option<i64>> {
        meta(&self.tx, Meta::Newest).map_err(|e| self.sql(e))
    }

    /// Series matching `sel`, ordered by name then labels.
    pub fn series(&self, sel: &Selector) -> Result<Vec<SeriesInfo>> {
        let exact = !sel.name.is_empty() && !sel.name.contains(['*', '?']);
        let sql = format!(
            "SELECT s.id, s.name, s.kind, s.unit, l.labels FROM series s JOIN labelset l ON l.id = s.labelset_id {}",
            if exact { "WHERE s.name = ?1" } else { "" }
        );
        let mut stmt = self.tx.prepare_cached(&sql).map_err(|e| self.sql(e))?;
        let map = |r: &Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?));
        let rows: Vec<(SeriesId, String, i64, String, String)> = if exact {
            stmt.query_map([&sel.name], map).and_then(|r| r.collect())
        } else {
            stmt.query_map([], map).and_then(|r| r.collect())
        }
        .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for (id, name, kind, unit, labels) in rows {
            let kind = Kind::from_code(kind).ok_or_else(|| Error::Corrupt {
                path: self.path.clone(),
                detail: format!("series {id}: kind {kind}"),
            })?;
            let labels: Vec<(String, String)> = serde_json::from_str(&labels)
                .map_err(|e| Error::Corrupt { path: self.path.clone(), detail: format!("series {id}: labels: {e}") })?;
            let key = SeriesKey::from_parts(name, kind, unit, labels);
            if sel.matches(&key) {
                out.push(SeriesInfo { id, key });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Distinct values of label `key` among series matching `sel`.
    pub fn label_values(&self, sel: &Selector, key: &str) -> Result<Vec<String>> {
        let mut v: Vec<String> =
            self.series(sel)?.into_iter().filter_map(|s| s.key.get(key).map(str::to_owned)).collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// Every series with its stored point count, most points first.
    pub fn series_usage(&self) -> Result<Vec<SeriesUsage>> {
        let mut stmt = self
            .tx
            .prepare(
                "SELECT series_id, SUM(points), MAX(end_ms) FROM \
                 (SELECT series_id, points, end_ms FROM chunk UNION ALL SELECT series_id, points, end_ms FROM head \
                 UNION ALL SELECT series_id, points, end_ms FROM head_piece) \
                 GROUP BY series_id",
            )
            .map_err(|e| self.sql(e))?;
        let mut counts: std::collections::HashMap<SeriesId, (i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .and_then(|r| r.collect())
            .map_err(|e| self.sql(e))?;
        self.scan_recent(None, TimeRange::new(i64::MIN, i64::MAX), &|_| true, &mut |id, p| {
            let c = counts.entry(id).or_insert((0, p.ts_ms));
            c.0 += 1;
            c.1 = c.1.max(p.ts_ms);
        })?;
        let mut out: Vec<SeriesUsage> = self
            .series(&Selector::default())?
            .into_iter()
            .map(|s| {
                let c = counts.get(&s.id).copied();
                SeriesUsage { points: c.map_or(0, |c| c.0), newest_ms: c.map(|c| c.1), series: s }
            })
            .collect();
        out.sort_by(|a, b| b.points.cmp(&a.points).then_with(|| a.series.key.cmp(&b.series.key)));
        Ok(out)
    }

    /// Aggregate of one series over `range` (None when it has no data there).
    pub fn aggregate(&self, series: &SeriesInfo, range: TimeRange) -> Result<Option<Point>> {
        let mut acc: Option<Point> = None;
        let mut sink = |p: Point| merge_into(&mut acc, &p);
        let inside = |s: i64, e: i64| s >= range.start_ms && e < range.end_ms;
        self.scan_raw(series.id, range, &inside, &mut sink)?;
        for (tier, part) in self.rolled_plan(range, None) {
            let whole = |s: i64, e: i64| s >= part.start_ms && e < part.end_ms;
            self.scan(series.id, Source::Chunk(tier), part, &whole, &|_| false, &mut sink)?;
        }
        Ok(acc)
    }

    /// Aggregates of many series over one range, in the order given. For more than a few
    /// series this reads each tier's chunks of the range in one pass over the time index
    /// instead of one query per series (what `perfctl stats` does for a whole store).
    pub fn aggregate_many(&self, series: &[SeriesInfo], range: TimeRange) -> Result<Vec<Option<Point>>> {
        if series.len() < 32 {
            return series.iter().map(|s| self.aggregate(s, range)).collect();
        }
        self.aggregate_scan(series, range)
    }

    /// [`Snapshot::aggregate_many`]'s batched path, whatever the number of series: one pass
    /// per tier over the chunks of the range.
    pub fn aggregate_scan(&self, series: &[SeriesInfo], range: TimeRange) -> Result<Vec<Option<Point>>> {
        Ok(self.aggregate_split(series, range, &[])?.pop().unwrap_or_default())
    }

    /// Aggregates of many series over consecutive segments of `range` cut at `cuts` (ascending,
    /// inside the range): `out[k][i]` is series `i` over segment `k`, the segments being
    /// `[range.start, cuts[0])`, `[cuts[0], cuts[1])`, …, `[cuts[last], range.end)`, each equal
    /// to [`Snapshot::aggregate_scan`] over that segment alone. Raw data is read in one pass:
    /// a chunk (or an hour's summary) inside one segment is taken whole, one across a cut is
    /// decoded once and its points go to their segments; rolled-up data is planned per segment. What nested windows ending at the same time need (an SLO's window and its
    /// burn-rate spans) without reading the newest data once per window.
    pub fn aggregate_split(
        &self,
        series: &[SeriesInfo],
        range: TimeRange,
        cuts: &[i64],
    ) -> Result<Vec<Vec<Option<Point>>>> {
        let index: std::collections::HashMap<SeriesId, usize> =
            series.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        let cuts: Vec<i64> = cuts.iter().copied().filter(|c| *c > range.start_ms && *c < range.end_ms).collect();
        let seg = |ts: i64| cuts.partition_point(|c| *c <= ts);
        let mut out: Vec<Vec<Option<Point>>> = vec![vec![None; series.len()]; cuts.len() + 1];
        let inside = |s: i64, e: i64| s >= range.start_ms && e < range.end_ms && seg(s) == seg(e);
        let covered = self.hour_summaries(None, range, &inside, &mut |id, p| {
            if let Some(&i) = index.get(&id) {
                merge_into(&mut out[seg(p.ts_ms)][i], &p);
            }
        })?;
        let mut feed = |source: Source, part: TimeRange| -> Result<()> {
            let mut stmt = self.tx.prepare_cached(&range_sql(source, false)).map_err(|e| self.sql(e))?;
            let mut rows = match source {
                Source::Chunk(tier) => stmt.query(params![part.start_ms, part.end_ms, tier.code()]),
                _ => stmt.query(params![part.start_ms, part.end_ms]),
            }
            .map_err(|e| self.sql(e))?;
            while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
                let id: SeriesId = r.get(0).map_err(|e| self.sql(e))?;
                let Some(&i) = index.get(&id) else { continue };
                if source == Source::Chunk(Tier::Raw) {
                    let start: i64 = r.get(1).map_err(|e| self.sql(e))?;
                    if covered.contains(&(id, floor(start, HOUR_MS))) {
                        continue;
                    }
                }
                let whole = |s: i64, e: i64| s >= part.start_ms && e < part.end_ms && seg(s) == seg(e);
                self.read_chunk_row(r, 1, id, source, part, &whole, &mut |p| {
                    merge_into(&mut out[seg(p.ts_ms)][i], &p)
                })?;
            }
            Ok(())
        };
        feed(Source::Chunk(Tier::Raw), range)?;
        feed(Source::Head, range)?;
        // Rolled-up points cannot be cut finer than their tier: plan each segment on its own,
        // as an aggregate over that segment alone would.
        let bounds: Vec<i64> =
            std::iter::once(range.start_ms).chain(cuts.iter().copied()).chain([range.end_ms]).collect();
        for w in bounds.windows(2) {
            for (tier, part) in self.rolled_plan(TimeRange::new(w[0], w[1]), None) {
                feed(Source::Chunk(tier), part)?;
            }
        }
        self.scan_recent(None, range, &|id| index.contains_key(&id), &mut |id, p| {
            if let Some(&i) = index.get(&id) {
                merge_into(&mut out[seg(p.ts_ms)][i], &p);
            }
        })?;
        Ok(out)
    }

    /// Aggregate of several series merged into one (e.g. every `op.duration` series of an
    /// operation): counts and sums add, sketches merge.
    pub fn aggregate_merged(&self, series: &[SeriesInfo], range: TimeRange) -> Result<Option<Point>> {
        let mut acc = None;
        for s in series {
            if let Some(p) = self.aggregate(s, range)? {
                merge_into(&mut acc, &p);
            }
        }
        Ok(acc)
    }

    /// Per-step aggregates of one series: steps start at `range.start_ms` and are
    /// `step_ms` long. Only steps with data are kept, so the cost follows the points stored in
    /// the window, never the number of steps: a 1-second step over two years answers from the
    /// one-hour tier where that is all the store holds, at the tier's own resolution.
    pub fn range(&self, series: &SeriesInfo, range: TimeRange, step_ms: i64) -> Result<SeriesRange> {
        if step_ms <= 0 {
            return Err(Error::Invalid(format!("step must be positive, got {step_ms} ms")));
        }
        let mut steps: std::collections::BTreeMap<i64, Point> = std::collections::BTreeMap::new();
        let step_of = |ts: i64| (ts - range.start_ms).div_euclid(step_ms);
        {
            let mut sink = |p: Point| {
                let i = step_of(p.ts_ms);
                match steps.entry(i) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(p);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(&p),
                }
            };
            let one_step = |s: i64, e: i64| s >= range.start_ms && e < range.end_ms && step_of(s) == step_of(e);
            self.scan_raw(series.id, range, &one_step, &mut sink)?;
            for (tier, part) in self.rolled_plan(range, Some(step_ms)) {
                let ok = |s: i64, e: i64| s >= part.start_ms && e < part.end_ms && step_of(s) == step_of(e);
                self.scan(series.id, Source::Chunk(tier), part, &ok, &|_| false, &mut sink)?;
            }
        }
        let steps = steps
            .into_iter()
            .map(|(i, mut p)| {
                p.ts_ms = range.start_ms + i * step_ms;
                (p.ts_ms, p)
            })
            .collect();
        Ok(SeriesRange { series: series.clone(), steps })
    }

    /// Every stored point of one series in `range` at the finest resolution the store still
    /// holds for each part of it, in no particular order, each with the tier it came from:
    /// raw points (one per flush interval) where raw data is kept, one-minute or one-hour
    /// points where it has been rolled up. For questions that need each interval on its own
    /// (how long a breaker was open), not a sum.
    pub fn points(&self, series: &SeriesInfo, range: TimeRange, sink: &mut dyn FnMut(Tier, Point)) -> Result<()> {
        let never = |_: i64, _: i64| false;
        self.scan(series.id, Source::Chunk(Tier::Raw), range, &never, &|_| false, &mut |p| sink(Tier::Raw, p))?;
        self.scan(series.id, Source::Head, range, &never, &|_| false, &mut |p| sink(Tier::Raw, p))?;
        let (a, b) = (range.start_ms, range.end_ms);
        if a >= b || self.rolled_max_ms.is_none_or(|m| m < a) {
            return Ok(());
        }
        // One-minute points from the floor on, one-hour points before it.
        let floor_ms = self.minute_floor_ms;
        let mut plan = Vec::new();
        if a < floor_ms {
            plan.push((Tier::Hour, TimeRange::new(a, b.min(floor_ms))));
        }
        if b > floor_ms {
            plan.push((Tier::Minute, TimeRange::new(a.max(floor_ms), b)));
        }
        for (tier, part) in plan {
            self.scan(series.id, Source::Chunk(tier), part, &never, &|_| false, &mut |p| sink(tier, p))?;
        }
        Ok(())
    }

    /// Which tier answers which part of `range` for rolled-up data.
    fn rolled_plan(&self, range: TimeRange, step_ms: Option<i64>) -> Vec<(Tier, TimeRange)> {
        let (a, b) = (range.start_ms, range.end_ms);
        if a >= b || self.rolled_max_ms.is_none_or(|m| m < a) {
            return Vec::new();
        }
        let mut plan = Vec::new();
        let floor_ms = self.minute_floor_ms;
        let minute_part = |x: i64, y: i64, plan: &mut Vec<(Tier, TimeRange)>| {
            if x >= y {
                return;
            }
            if x < floor_ms {
                plan.push((Tier::Hour, TimeRange::new(x, y.min(floor_ms))));
            }
            if y > floor_ms {
                plan.push((Tier::Minute, TimeRange::new(x.max(floor_ms), y)));
            }
        };
        let hourly_steps = step_ms.is_none_or(|s| s % HOUR_MS == 0 && a.rem_euclid(HOUR_MS) == 0);
        let (ha, hb) = (ceil(a, HOUR_MS), floor(b, HOUR_MS));
        if hourly_steps && ha < hb {
            plan.push((Tier::Hour, TimeRange::new(ha, hb)));
            minute_part(a, ha, &mut plan);
            minute_part(hb, b, &mut plan);
        } else {
            minute_part(a, b, &mut plan);
        }
        plan
    }

    fn scan_raw(
        &self,
        series: SeriesId,
        range: TimeRange,
        whole: &dyn Fn(i64, i64) -> bool,
        sink: &mut dyn FnMut(Point),
    ) -> Result<()> {
        let covered = self.hour_summaries(Some(series), range, whole, &mut |_, p| sink(p))?;
        let skip = |start: i64| covered.contains(&(series, floor(start, HOUR_MS)));
        self.scan(series, Source::Chunk(Tier::Raw), range, whole, &skip, sink)?;
        self.scan(series, Source::Head, range, whole, &|_| false, sink)
    }

    /// Feed the hour summaries of whole hours inside `range` (and, per `whole`, inside one
    /// step) and return the (series, hour) pairs whose sealed raw chunks they stand for.
    fn hour_summaries(
        &self,
        series: Option<SeriesId>,
        range: TimeRange,
        whole: &dyn Fn(i64, i64) -> bool,
        sink: &mut dyn FnMut(SeriesId, Point),
    ) -> Result<HashSet<(SeriesId, i64)>> {
        let mut covered = HashSet::new();
        let (ha, hb) = (ceil(range.start_ms, HOUR_MS), floor(range.end_ms, HOUR_MS));
        if ha >= hb {
            return Ok(covered);
        }
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT hour_ms, series_id, count, sum, min, max, last, last_ts_ms, sketch FROM hour_summary \
                 WHERE hour_ms >= ?1 AND hour_ms < ?2 AND (?3 IS NULL OR series_id = ?3)",
            )
            .map_err(|e| self.sql(e))?;
        let mut rows = stmt.query(params![ha, hb, series]).map_err(|e| self.sql(e))?;
        while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
            let (hour, id): (i64, SeriesId) = (r.get(0).map_err(|e| self.sql(e))?, r.get(1).map_err(|e| self.sql(e))?);
            if !whole(hour, hour + HOUR_MS - 1) {
                continue;
            }
            let p = read_summary(r, 2, hour, id).map_err(|e| self.sql(e))?;
            sink(id, p);
            covered.insert((id, hour));
        }
        Ok(covered)
    }

    /// Feed `sink` the points of `series` from `source` with timestamps in `range`, using a
    /// chunk's summary columns when `whole(start, end)` says the chunk needs no splitting.
    fn scan(
        &self,
        series: SeriesId,
        source: Source,
        range: TimeRange,
        whole: &dyn Fn(i64, i64) -> bool,
        skip: &dyn Fn(i64) -> bool,
        sink: &mut dyn FnMut(Point),
    ) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(&range_sql(source, true)).map_err(|e| self.sql(e))?;
        let mut rows = match source {
            Source::Chunk(tier) => {
                stmt.query(params![range.start_ms, range.end_ms, tier.code(), series, tier.chunk_window_ms()])
            }
            _ => stmt.query(params![range.start_ms, range.end_ms, series]),
        }
        .map_err(|e| self.sql(e))?;
        while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
            if skip(r.get(1).map_err(|e| self.sql(e))?) {
                continue;
            }
            self.read_chunk_row(r, 1, series, source, range, whole, sink)?;
        }
        if source == Source::Head {
            self.scan_recent(Some(series), range, &|_| true, &mut |_, p| sink(p))?;
        }
        Ok(())
    }

    /// Feed the points of one chunk row (columns [`CHUNK_COLS`] from `first`) that fall in
    /// `range`: its summary when `whole(start, end)`, else its decoded points.
    #[allow(clippy::too_many_arguments)]
    fn read_chunk_row(
        &self,
        r: &Row<'_>,
        first: usize,
        series: SeriesId,
        source: Source,
        range: TimeRange,
        whole: &dyn Fn(i64, i64) -> bool,
        sink: &mut dyn FnMut(Point),
    ) -> Result<()> {
        let col = |i: usize| first + i;
        let (start, end): (i64, i64) =
            (r.get(col(0)).map_err(|e| self.sql(e))?, r.get(col(1)).map_err(|e| self.sql(e))?);
        if whole(start, end) {
            let p = read_summary(r, col(2), start, series).map_err(|e| self.sql(e))?;
            sink(p);
        } else {
            let blob = r.get_ref(col(9)).and_then(|v| Ok(v.as_blob()?)).map_err(|e| self.sql(e))?;
            let points = chunk::decode(blob).map_err(|_| self.corrupt(series, source))?;
            for p in points {
                if p.ts_ms >= range.start_ms && p.ts_ms < range.end_ms {
                    sink(p);
                }
            }
        }
        Ok(())
    }

    fn corrupt(&self, series: SeriesId, source: Source) -> Error {
        Error::Corrupt { path: self.path.clone(), detail: format!("undecodable {} of series {series}", source.name()) }
    }

    /// Run `PRAGMA integrity_check`; `Ok(())` when it says "ok".
    pub fn integrity_check(&self) -> Result<()> {
        let rows: Vec<String> = self
            .tx
            .prepare("PRAGMA integrity_check")
            .and_then(|mut s| s.query_map([], |r| r.get(0)).and_then(|r| r.collect()))
            .map_err(|e| self.sql(e))?;
        if rows == ["ok"] { Ok(()) } else { Err(Error::Corrupt { path: self.path.clone(), detail: rows.join("; ") }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agg_parse() {
        assert_eq!(Agg::parse("p95"), Ok(Agg::Quantile(0.95)));
        assert!(matches!(Agg::parse("p99.9"), Ok(Agg::Quantile(q)) if (q - 0.999).abs() < 1e-12));
        assert!(Agg::parse("p101").unwrap_err().contains("expected"));
    }
}
