//! The disk cap, and the profile budget inside it.
//!
//! History is what a store is for, so space is reclaimed from what costs the least to lose:
//!
//! 1. Profiles (with the stacks only they used) never take more than their budget
//!    ([`StoreOptions::profile_budget`](crate::StoreOptions::profile_budget), a quarter of the
//!    cap by default); the oldest go first.
//! 2. Over the cap, profiles older than the newest hour go next, before any metric.
//! 3. Then the oldest raw chunks are rolled up early: their points move to the one-minute and
//!    one-hour tiers, so the history stays and only its resolution drops.
//! 4. Then the oldest one-minute rollups (the one-hour tier still answers for them), and only
//!    when no finer data is left, the oldest one-hour rollups.
//! 5. Last, the newest hour of profiles.
//!
//! Every step deletes in small transactions and re-measures, so pruning stops close to the
//! target (5 % under the cap) rather than at a batch boundary far below it.

use rusqlite::{TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::rollup::MaintenanceReport;
use crate::rows::{Meta, set_meta_max};
use crate::tier::{HOUR_MS, Tier};
use crate::write::Writer;

/// Chunks deleted (or rolled up early) per step.
const PRUNE_BATCH: i64 = 32;
/// Profile rows deleted per step.
const PROFILE_BATCH: i64 = 1024;
/// The tables and indexes that hold profiles and events: what the profile budget counts.
const SIDE_OBJECTS: &str = "'stack', 'stack_by_hash', 'profile', 'profile_by_op', 'profile_by_age', \
                            'profile_by_stack', 'event', 'event_by_op'";

impl Writer {
    /// Bytes of pages holding profiles, their stacks and events.
    pub fn profile_bytes(&self) -> Result<u64> {
        let q =
            format!("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE aggregate = TRUE AND name IN ({SIDE_OBJECTS})");
        let bytes: i64 = self.conn.query_row(&q, [], |r| r.get(0)).map_err(|e| self.sql(e))?;
        Ok(bytes.max(0) as u64)
    }

    /// Keep profiles within their budget, then the whole store within its cap.
    pub(crate) fn enforce_cap(&mut self, now_ms: i64, report: &mut MaintenanceReport) -> Result<()> {
        self.enforce_profile_budget(report)?;
        let cap = self.opts.disk_cap_bytes;
        if self.used_bytes()? <= cap {
            return Ok(());
        }
        let target = cap - cap / 20;
        let newest_hour = now_ms - HOUR_MS;
        while self.used_bytes()? > target && self.prune_profiles(Some(newest_hour), PROFILE_BATCH, report)? {}
        while self.used_bytes()? > target && self.roll_up_oldest(report)? {}
        for tier in [Tier::Minute, Tier::Hour] {
            while self.used_bytes()? > target && self.prune_tier(tier, report)? {}
        }
        while self.used_bytes()? > target && self.prune_profiles(None, PROFILE_BATCH, report)? {}
        Ok(())
    }

    /// Delete the oldest profiles while they take more than their budget. Pages are only
    /// measured once (a `dbstat` walk of the profile tables); the rows to delete are estimated
    /// from the average row's share, and the next run corrects the estimate.
    fn enforce_profile_budget(&mut self, report: &mut MaintenanceReport) -> Result<()> {
        let budget = self.opts.profile_budget();
        if self.used_bytes()? <= budget {
            return Ok(()); // cannot be over: skip the page walk
        }
        let side = self.profile_bytes()?;
        if side <= budget {
            return Ok(());
        }
        let rows: i64 =
            self.conn.query_row("SELECT count(*) FROM profile", [], |r| r.get(0)).map_err(|e| self.sql(e))?;
        if rows == 0 {
            return Ok(());
        }
        let excess = side - (budget - budget / 20);
        let per_row = (side / rows as u64).max(1);
        let mut left = i64::try_from(excess.div_ceil(per_row)).unwrap_or(i64::MAX).min(rows);
        while left > 0 && self.prune_profiles(None, left.min(PROFILE_BATCH), report)? {
            left -= PROFILE_BATCH;
        }
        self.vacuum()?;
        Ok(())
    }

    /// Delete the `n` oldest profile rows that ended before `before_ms` (any when `None`), and
    /// the stacks no other row uses, in one transaction. Returns whether anything was deleted.
    fn prune_profiles(&mut self, before_ms: Option<i64>, n: i64, report: &mut MaintenanceReport) -> Result<bool> {
        let path = self.path.clone();
        let sql = |e| Error::sql(&path, e);
        let before = before_ms.unwrap_or(i64::MAX);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        // The `n` oldest rows, widened to whole windows: a window cut in half would show a
        // flame graph that never happened.
        let until: Option<i64> = tx
            .query_row(
                "SELECT MAX(end_ms) FROM (SELECT end_ms FROM profile WHERE end_ms < ?1 ORDER BY end_ms LIMIT ?2)",
                params![before, n],
                |r| r.get(0),
            )
            .map_err(sql)?;
        let Some(until) = until else { return Ok(false) };
        let doomed: Vec<(i64, i64)> = tx
            .prepare_cached("SELECT rowid, stack_id FROM profile WHERE end_ms <= ?1")
            .and_then(|mut s| s.query_map([until], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|r| r.collect()))
            .map_err(sql)?;
        for (rowid, _) in &doomed {
            report.pruned_profiles += tx
                .prepare_cached("DELETE FROM profile WHERE rowid = ?1")
                .and_then(|mut s| s.execute([rowid]))
                .map_err(sql)?;
        }
        let mut stacks: Vec<i64> = doomed.iter().map(|d| d.1).collect();
        stacks.sort_unstable();
        stacks.dedup();
        for id in stacks {
            report.pruned_stacks += tx
                .prepare_cached(
                    "DELETE FROM stack WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM profile WHERE stack_id = ?1)",
                )
                .and_then(|mut s| s.execute([id]))
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        report.profiles_pruned_until_ms = report.profiles_pruned_until_ms.max(Some(until));
        self.vacuum()?;
        Ok(true)
    }

    /// Roll the oldest raw chunks into the rollup tiers ahead of their time. Returns whether
    /// there were any.
    fn roll_up_oldest(&mut self, report: &mut MaintenanceReport) -> Result<bool> {
        let nth_oldest: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(end_ms) FROM (SELECT end_ms FROM chunk WHERE tier = 0 ORDER BY end_ms LIMIT ?1)",
                [PRUNE_BATCH],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))?;
        let Some(until) = nth_oldest else { return Ok(false) };
        let before = report.rolled_chunks;
        self.roll_up(until.saturating_add(1), report)?;
        report.rolled_early_chunks += report.rolled_chunks - before;
        self.vacuum()?;
        Ok(report.rolled_chunks > before)
    }

    /// Delete the oldest chunks of a rollup tier. Returns whether there were any.
    fn prune_tier(&mut self, tier: Tier, report: &mut MaintenanceReport) -> Result<bool> {
        let path = self.path.clone();
        let sql = |e| Error::sql(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let until: Option<i64> = tx
            .query_row(
                "SELECT MAX(end_ms) FROM (SELECT end_ms FROM chunk WHERE tier = ?1 ORDER BY end_ms LIMIT ?2)",
                params![tier.code(), PRUNE_BATCH],
                |r| r.get(0),
            )
            .map_err(sql)?;
        let Some(until) = until else { return Ok(false) };
        report.pruned_chunks += tx
            .execute(
                "DELETE FROM chunk WHERE id IN (SELECT id FROM chunk WHERE tier = ?1 ORDER BY end_ms LIMIT ?2)",
                params![tier.code(), PRUNE_BATCH],
            )
            .map_err(sql)?;
        if tier == Tier::Minute {
            // Below this the hour tier answers.
            set_meta_max(&tx, Meta::MinuteFloor, until + 1).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        report.pruned_until_ms = report.pruned_until_ms.max(Some(until));
        self.vacuum()?;
        Ok(true)
    }
}
