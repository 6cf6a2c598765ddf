//! The store's typed error. Callers branch on it (the agent refuses to start, `perfctl`
//! explains what to do), so every variant names the file or versions involved.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong opening, writing or reading a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No store at the path (readers never create one).
    #[error("{}: no perfagent store here (start `perfagent start`, or pass --db PATH)", path.display())]
    NotFound {
        /// The store path.
        path: PathBuf,
    },
    /// The file exists but is not an SQLite database.
    #[error("{}: not an SQLite database (wrong file header); refusing to open it, the file was left untouched", path.display())]
    NotSqlite {
        /// The file.
        path: PathBuf,
    },
    /// An SQLite database that some other program owns.
    #[error("{}: an SQLite database, but not a perfagent store ({detail}); refusing to open it, the file was left untouched", path.display())]
    ForeignSchema {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        detail: String,
    },
    /// Written by a newer perfagent.
    #[error("{}: store schema version {found} is newer than this binary supports (version {supported}); upgrade perfagent/perfctl; the file was left untouched", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// Written by an older perfagent and not yet upgraded (readers never migrate).
    #[error("{}: store schema version {found} is older than this binary's (version {supported}); run `perfagent start` once to upgrade it", path.display())]
    TooOld {
        /// The file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The version this binary needs.
        supported: i64,
    },
    /// SQLite reports corruption.
    #[error("{}: the database is corrupt ({detail}); refusing to use it, the file was left untouched", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// Another process holds the writer lock.
    #[error("{}: the store is already open for writing by another process (pid {}); only one perfagent may write a store", path.display(), pid.map_or_else(|| "unknown".to_string(), |p| p.to_string()))]
    Locked {
        /// The store (its real path).
        path: PathBuf,
        /// The holder's pid, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    /// The store, or its folder, cannot be written by this process.
    #[error("{}: the store is read-only for this process (the file or its folder is not writable); fix the permissions or pass another --db", path.display())]
    ReadOnly {
        /// The store.
        path: PathBuf,
    },
    /// The disk (or the configured page limit) is full; the write was rolled back.
    #[error("{}: disk full or store size limit reached; the write was rolled back and the store is unchanged", path.display())]
    DiskFull {
        /// The file.
        path: PathBuf,
    },
    /// A write failed at the process's file-size limit (`ulimit -f`).
    #[error("{}: the file-size limit (ulimit -f, {limit} bytes) is reached; the write was rolled back", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, bytes.
        limit: u64,
    },
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Any other SQLite failure.
    #[error("{}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The caller passed something the store cannot take.
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// The file-size limit when the store or its WAL is within a page of it: an I/O error then
/// is that limit (EFBIG), which SQLite reports as a plain I/O error.
fn size_limit_reached(db: &std::path::Path) -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) } != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let limit = lim.rlim_cur;
    let near = |p: &std::path::Path| p.metadata().is_ok_and(|m| m.len() + 2 * crate::write::PAGE_SIZE as u64 >= limit);
    (near(db) || near(&crate::write::wal_path(db))).then_some(limit)
}

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Map an SQLite error for `path` onto the typed variants callers branch on.
    pub(crate) fn sql(path: &std::path::Path, source: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        if let rusqlite::Error::SqliteFailure(e, msg) = &source {
            match e.code {
                ErrorCode::DiskFull => return Error::DiskFull { path: path.to_owned() },
                ErrorCode::SystemIoFailure => {
                    if let Some(limit) = size_limit_reached(path) {
                        return Error::FileTooLarge { path: path.to_owned(), limit };
                    }
                }
                ErrorCode::ReadOnly => return Error::ReadOnly { path: path.to_owned() },
                ErrorCode::NotADatabase => return Error::NotSqlite { path: path.to_owned() },
                ErrorCode::DatabaseCorrupt => {
                    return Error::Corrupt {
                        path: path.to_owned(),
                        detail: msg.clone().unwrap_or_else(|| "database disk image is malformed".into()),
                    };
                }
                _ => {}
            }
        }
        Error::Sqlite { path: path.to_owned(), source }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}
