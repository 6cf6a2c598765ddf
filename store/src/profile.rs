//! Folded-stack profiles: stack text is stored once in `stack` and referenced by id.

use rusqlite::{OptionalExtension, Transaction, params};

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
pub fn parse_folded(text: &str) -> Result<Vec<(String, u64)>, FoldedError> {
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
    Ok(merged.into_iter().collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn folded_text_parses_with_spaces_in_frames_and_refuses_bad_lines() {
        let text = "# a comment\n 3\nmain;work (app.py:12);leaf 3\n\nmain;other 2\r\nmain;work (app.py:12);leaf 4\n";
        assert_eq!(
            super::parse_folded(text).unwrap(),
            vec![("main;other".to_owned(), 2), ("main;work (app.py:12);leaf".to_owned(), 7)]
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
