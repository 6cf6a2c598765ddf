//! Folded-stack profiles: parsing folded text, storing windows of stacks (stack text stored
//! once in `stack` and referenced by id), and reading them back merged per operation.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::model::{ProfileWindow, Stack};
use crate::query::{Snapshot, TimeRange};
use crate::write::Writer;

/// FNV-1a, 64-bit: a stable hash of stack text (std's hasher may change between releases,
/// and the value is stored in the file).
pub(crate) fn fnv1a(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// The id of `frames` in the stack table, inserting it if new.
pub(crate) fn intern_stack(tx: &Transaction<'_>, frames: &str) -> rusqlite::Result<i64> {
    let hash = fnv1a(frames);
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM stack WHERE hash = ?1 AND frames = ?2")?
        .query_row(params![hash, frames], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO stack (hash, frames) VALUES (?1, ?2)")?.execute(params![hash, frames])?;
    Ok(tx.last_insert_rowid())
}

/// A line of folded-stack text that is not `frame;frame;… COUNT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct FoldedError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, and the expected form.
    pub reason: String,
}

/// Parse folded stacks (`inferno-collapse-*`, `py-spy record --format raw`, Brendan Gregg's
/// `stackcollapse`): one `frame;frame;frame COUNT` per line, root first. Frames may contain
/// spaces (the count is after the last one); blank lines, `# ` comments and samples with no
/// frames (` 3`, as py-spy writes for idle threads) are skipped;
/// repeated stacks add up. The first bad line refuses the whole input, so nothing partial is
/// ever stored.
pub fn parse_folded(text: &str) -> std::result::Result<Vec<Stack>, FoldedError> {
    let mut merged: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim_end();
        if line.trim_start().is_empty() || line.trim_start().starts_with("# ") {
            continue;
        }
        let bad = |reason: &str| FoldedError { line: i + 1, reason: reason.to_owned() };
        let (frames, count) = line
            .rsplit_once(' ')
            .ok_or_else(|| bad("expected `frame;frame;… COUNT` (no sample count after the stack)"))?;
        let count: u64 = count
            .parse()
            .map_err(|_| bad(&format!("expected a whole sample count after the last space, found '{count}'")))?;
        let frames = frames.trim();
        if frames.is_empty() {
            // A sample with no frames at all (py-spy writes these for idle threads): nothing
            // to attribute.
            continue;
        }
        if frames.split(';').any(str::is_empty) {
            return Err(bad("empty frame (expected `frame;frame;… COUNT`)"));
        }
        if frames.chars().any(char::is_control) {
            return Err(bad("control character in a frame"));
        }
        if count > 0 {
            let slot = merged.entry(frames.to_owned()).or_default();
            *slot = slot.saturating_add(count);
        }
    }
    Ok(merged.into_iter().map(|(frames, samples)| Stack { frames, samples }).collect())
}

impl Writer {
    /// Store folded stacks, de-duplicating stack text.
    pub fn write_profiles(&mut self, windows: &[ProfileWindow]) -> Result<()> {
        for w in windows {
            crate::tier::check_time(|| format!("profile of {}", w.op), w.start_ms)?;
            crate::tier::check_time(|| format!("profile of {}", w.op), w.end_ms)?;
        }
        let path = self.path.clone();
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| Error::sql(&path, e))?;
        for w in windows {
            for stack in w.stacks.iter().filter(|s| s.samples > 0) {
                let id = intern_stack(&tx, &stack.frames).map_err(|e| Error::sql(&path, e))?;
                tx.prepare_cached(
                    "INSERT INTO profile (service, op, start_ms, end_ms, stack_id, samples) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        w.service,
                        w.op,
                        w.start_ms,
                        w.end_ms,
                        id,
                        i64::try_from(stack.samples).unwrap_or(i64::MAX)
                    ])
                })
                .map_err(|e| Error::sql(&path, e))?;
            }
        }
        tx.commit().map_err(|e| Error::sql(&path, e))?;
        self.after_commit();
        Ok(())
    }
}

/// An operation with profile samples in a window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProfiledOp {
    /// Its service.
    pub service: String,
    /// The operation.
    pub op: String,
    /// Samples in the window.
    pub samples: u64,
}

impl Snapshot<'_> {
    /// Folded stacks of `op` (optionally one service) from profile windows overlapping
    /// `range`, merged, sorted by frames.
    pub fn profile(&self, op: &str, service: Option<&str>, range: TimeRange) -> Result<Vec<Stack>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT s.frames, SUM(p.samples) FROM profile p JOIN stack s ON s.id = p.stack_id \
                 WHERE p.op = ?1 AND p.start_ms < ?3 AND p.end_ms > ?2 AND (?4 IS NULL OR p.service = ?4) \
                 GROUP BY p.stack_id ORDER BY s.frames",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map(params![op, range.start_ms, range.end_ms, service], |r| {
            Ok(Stack { frames: r.get(0)?, samples: r.get::<_, i64>(1)?.max(0) as u64 })
        })
        .and_then(|r| r.collect())
        .map_err(|e| self.sql(e))
    }

    /// Operations with profile samples in `range`, most samples first.
    pub fn profiled_ops(&self, range: TimeRange) -> Result<Vec<ProfiledOp>> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT service, op, SUM(samples) AS n FROM profile WHERE start_ms < ?2 AND end_ms > ?1 \
                 GROUP BY service, op ORDER BY n DESC, service, op",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map(params![range.start_ms, range.end_ms], |r| {
            Ok(ProfiledOp { service: r.get(0)?, op: r.get(1)?, samples: r.get::<_, i64>(2)?.max(0) as u64 })
        })
        .and_then(|r| r.collect())
        .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn folded_text_parses_with_spaces_in_frames_and_refuses_bad_lines() {
        let text = "# a comment\n 3\nmain;work (app.py:12);leaf 3\n\nmain;other 2\r\nmain;work (app.py:12);leaf 4\n";
        assert_eq!(
            super::parse_folded(text).unwrap(),
            vec![super::Stack::new("main;other", 2), super::Stack::new("main;work (app.py:12);leaf", 7)]
        );
        let e = |t: &str| super::parse_folded(t).unwrap_err().to_string();
        assert_eq!(e("a;b 1\na b;c\n"), "line 2: expected a whole sample count after the last space, found 'b;c'");
        assert_eq!(e("a;b -1"), "line 1: expected a whole sample count after the last space, found '-1'");
        assert_eq!(e("a;;b 1"), "line 1: empty frame (expected `frame;frame;… COUNT`)");
        assert_eq!(e("ab"), "line 1: expected `frame;frame;… COUNT` (no sample count after the stack)");
        assert_eq!(e("a;b\u{7}c 1"), "line 1: control character in a frame");
    }

    #[test]
    fn fnv_is_stable() {
        // Reference value of FNV-1a 64 for "a".
        assert_eq!(super::fnv1a("a") as u64, 0xaf63_dc4c_8601_ec8c);
    }
}
