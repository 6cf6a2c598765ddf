//! Append-only schema migrations tracked with `PRAGMA user_version`, applied in one exclusive
//! transaction, and the checks that refuse files this binary must not touch.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// The steps, in order; step `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_otel_host_names.sql"),
    include_str!("migrations/0003_profile_by_stack.sql"),
    include_str!("migrations/0004_segmented_heads.sql"),
    include_str!("migrations/0005_float_delta_chunks.sql"),
    include_str!("migrations/0006_recent_log.sql"),
];

/// The schema version this binary writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of a perfstore file ("pfst").
pub const APPLICATION_ID: i64 = 0x7066_7374;

/// What [`inspect`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// An empty database: ready for the first migration.
    Empty,
    /// A perfstore of this version or older.
    Store(i64),
}

/// Read the header fields and refuse a foreign or too-new file. Reads only.
pub(crate) fn inspect(conn: &Connection, path: &Path) -> Result<Found> {
    let q = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map_err(|e| Error::sql(path, e));
    let app_id = q("PRAGMA application_id")?;
    let version = q("PRAGMA user_version")?;
    let tables = q("SELECT count(*) FROM sqlite_schema")?;
    if app_id == APPLICATION_ID {
        if version > SCHEMA_VERSION {
            return Err(Error::TooNew { path: path.to_owned(), found: version, supported: SCHEMA_VERSION });
        }
        return Ok(Found::Store(version));
    }
    if app_id == 0 && version == 0 && tables == 0 {
        return Ok(Found::Empty);
    }
    Err(Error::ForeignSchema {
        path: path.to_owned(),
        detail: format!("application_id {app_id:#x}, user_version {version}, {tables} schema objects"),
    })
}

/// Bring the schema to [`SCHEMA_VERSION`] in one exclusive transaction.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive).map_err(|e| Error::sql(path, e))?;
    // Re-read under the lock: another process may have migrated meanwhile.
    let current = match inspect(&tx, path)? {
        Found::Empty => 0,
        Found::Store(v) => v,
    };
    for (i, step) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(step).map_err(|e| Error::sql(path, e))?;
        tx.pragma_update(None, "user_version", i as i64 + 1).map_err(|e| Error::sql(path, e))?;
    }
    if current == 0 {
        tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(|e| Error::sql(path, e))?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('created_by', ?1)",
            [concat!("perfstore ", env!("CARGO_PKG_VERSION"))],
        )
        .map_err(|e| Error::sql(path, e))?;
    }
    tx.commit().map_err(|e| Error::sql(path, e))
}
