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

#[cfg(test)]
mod tests {
    #[test]
    fn fnv_is_stable() {
        // Reference value of FNV-1a 64 for "a".
        assert_eq!(super::fnv1a("a") as u64, 0xaf63_dc4c_8601_ec8c);
    }
}
