//! Finding, locking, checking and opening a store file.
//!
//! ## Concurrency
//! One writer per file, enforced with `flock` on `<db>.lock` (released by the kernel when the
//! process dies, so a `kill -9` never leaves a stale lock). Readers open the file read-only
//! and never take the lock; WAL lets them read while the writer writes.
//!
//! ## Failure modes
//! Every check that can refuse a file (not SQLite, foreign schema, too new, corrupt) runs on
//! a read-only connection before anything is written, so a refused file is left untouched.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

const DAY_MS: i64 = 86_400_000;

/// Tunables of a store. [`StoreOptions::default`] gives DESIGN.md's defaults.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long raw flush-interval points are kept (7 days).
    pub raw_retention_ms: i64,
    /// How long one-minute rollups are kept (90 days).
    pub minute_retention_ms: i64,
    /// How long one-hour rollups are kept (2 years).
    pub hour_retention_ms: i64,
    /// How long profiles are kept (30 days).
    pub profile_retention_ms: i64,
    /// The store prunes its oldest data past this many bytes (1 GiB).
    pub disk_cap_bytes: u64,
    /// Most bytes profiles and events may take inside the cap; `None` is a quarter of
    /// [`disk_cap_bytes`](Self::disk_cap_bytes). See [`profile_budget`](Self::profile_budget).
    pub profile_budget_bytes: Option<u64>,
    /// A truncating checkpoint runs when the WAL passes this (64 MiB); also
    /// `journal_size_limit`.
    pub wal_limit_bytes: u64,
    /// Most series in the store (100 000).
    pub max_series: usize,
    /// Most series sharing one name (10 000).
    pub max_series_per_name: usize,
    /// Events kept per (service, operation, kind) (20).
    pub events_per_op: usize,
    /// How long a reader or the writer waits on a lock (5 s).
    pub busy_timeout: Duration,
    /// Run `PRAGMA quick_check` when the writer opens an existing file (true).
    pub check_on_open: bool,
    /// Hard page limit (`PRAGMA max_page_count`); for tests that simulate a full disk.
    pub max_page_count: Option<u64>,
    /// A write touching at least this many series goes to the recent log (256), as does
    /// every write while the log holds rows; smaller ones update the heads directly.
    pub log_min_series: usize,
    /// Past this many bytes in the recent log (64 MiB), a write first folds a slice of it
    /// into the heads ([`StoreOptions::log_fold_slice`]), and past twice this, all of it.
    pub log_max_bytes: u64,
    /// How long a write's fold, or one of [`crate::Writer::maintain_sliced`], may take
    /// (250 ms; at least one bucket is folded): a fold of the whole log took 2–4 s at
    /// 100 000 series, and an agent's flushes queued in memory meanwhile.
    pub log_fold_slice: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            raw_retention_ms: 7 * DAY_MS,
            minute_retention_ms: 90 * DAY_MS,
            hour_retention_ms: 730 * DAY_MS,
            profile_retention_ms: 30 * DAY_MS,
            disk_cap_bytes: 1 << 30,
            profile_budget_bytes: None,
            wal_limit_bytes: 64 << 20,
            max_series: 100_000,
            max_series_per_name: 10_000,
            events_per_op: 20,
            busy_timeout: Duration::from_secs(5),
            check_on_open: true,
            max_page_count: None,
            log_min_series: 256,
            log_max_bytes: 64 << 20,
            log_fold_slice: Duration::from_millis(250),
        }
    }
}

impl StoreOptions {
    /// The bytes profiles and events may take: [`profile_budget_bytes`](Self::profile_budget_bytes),
    /// at most the disk cap, else a quarter of the cap.
    pub fn profile_budget(&self) -> u64 {
        self.profile_budget_bytes.unwrap_or(self.disk_cap_bytes / 4).min(self.disk_cap_bytes)
    }
}

/// The default store path: `$PERFAGENT_DB`, else `$XDG_DATA_HOME/perfagent/perf.db`, else
/// `~/.local/share/perfagent/perf.db`.
pub fn default_path() -> Result<PathBuf> {
    default_path_from(|k| std::env::var_os(k))
}

/// [`default_path`] with an injected environment (for tests).
pub fn default_path_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(p) = set("PERFAGENT_DB") {
        return Ok(PathBuf::from(p));
    }
    let data = match set("XDG_DATA_HOME") {
        Some(d) => PathBuf::from(d),
        None => match set("HOME") {
            Some(h) => PathBuf::from(h).join(".local/share"),
            None => {
                return Err(Error::Invalid(
                    "cannot find a default store path: set PERFAGENT_DB, XDG_DATA_HOME or HOME".into(),
                ));
            }
        },
    };
    Ok(data.join("perfagent").join("perf.db"))
}

/// Delete a store and the files kept beside it (SQLite's `-wal` and `-shm`, and the agent's
/// `.lock`, `.status` and `.token`), those that exist. For a store the caller made or owns
/// (the demo's, or one a failed start just created): it never checks what the file holds.
pub fn remove_store(db: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm", ".lock", ".status", ".token"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match fs::remove_file(&name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(std::io::Error::new(e.kind(), format!("removing {}: {e}", Path::new(&name).display())));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `<db>.lock`: holds the writer's pid (for messages and `perfagent stop`).
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

/// The store's real path: symbolic links (of the file and its folders) resolved, so two
/// names of one file are one store. A file that does not exist yet keeps its name in its
/// folder's real path.
pub fn canonical(db: &Path) -> Result<PathBuf> {
    if let Ok(p) = fs::canonicalize(db) {
        return Ok(p);
    }
    let parent = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = fs::canonicalize(parent).map_err(|e| Error::io(format!("finding folder {}", parent.display()), e))?;
    Ok(dir.join(db.file_name().unwrap_or_default()))
}

/// Open `path` for reading and writing, never following a symbolic link at the last step
/// (status, log, lock and token files: a link planted there must not redirect a write).
pub fn open_private(path: &Path, create: bool, append: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(!append)
        .append(append)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn read_pid(db: &Path) -> Option<u32> {
    let mut text = String::new();
    let mut f = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(lock_path(db)).ok()?;
    f.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The writer of `db`: `None` when no process writes it, else `Some(pid)` (`None` inside when
/// the holder's pid is unreadable). Never blocks; a lock left by a killed writer is gone
/// with it.
///
/// It opens the database file: do not call it from a process that has the same store open
/// through SQLite (closing a descriptor of a file drops that process's POSIX locks on it).
pub fn lock_holder(db: &Path) -> Result<Option<Option<u32>>> {
    let Ok(db) = canonical(db) else { return Ok(None) }; // no folder: no store, no writer
    let file = match OpenOptions::new().read(true).open(&db) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", db.display()), e)),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(fs::TryLockError::WouldBlock) => Ok(Some(read_pid(&db))),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(format!("checking the lock on {}", db.display()), e)),
    }
}

/// Take the writer lock: an exclusive `flock` on the database file itself (its inode, so
/// neither a second name for the file nor a deleted lock file lets a second writer in), and
/// our pid in `<db>.lock`. `db` must be [`canonical`]. The returned file must stay open until
/// the store's connection is closed.
pub(crate) fn acquire_lock(db: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db)
        .map_err(|e| Error::io(format!("opening {}", db.display()), e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: db.to_owned(), pid: read_pid(db) }),
        Err(fs::TryLockError::Error(e)) => return Err(Error::io(format!("locking {}", db.display()), e)),
    }
    let path = lock_path(db);
    let write_pid = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        writeln!(f, "{}", std::process::id())?;
        f.flush()
    };
    open_private(&path, true, false)
        .and_then(|mut f| write_pid(&mut f))
        .map_err(|e| Error::io(format!("writing pid to {}", path.display()), e))?;
    Ok(file)
}

/// The identity of a file: (device, inode).
pub(crate) fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether this process may write `db` and create files (the WAL) in its folder.
pub(crate) fn writable(db: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let ok = |p: &Path| {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { return false };
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
    };
    let dir = db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // A store not created yet only needs its folder.
    (!db.exists() || ok(db)) && ok(dir)
}

/// Create missing parent folders (mode 0700).
pub(crate) fn create_parent(db: &Path) -> Result<()> {
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| Error::io(format!("creating folder {}", parent.display()), e))?;
    }
    Ok(())
}

/// Refuse a non-SQLite file by its header, before SQLite sees it. Returns whether the file
/// exists with content.
pub(crate) fn check_header(db: &Path) -> Result<bool> {
    let mut f = match File::open(db) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(format!("opening {}", db.display()), e)),
    };
    let mut header = [0u8; 100];
    let mut got = 0;
    while got < header.len() {
        match f.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(Error::io(format!("reading {}", db.display()), e)),
        }
    }
    if got == 0 {
        return Ok(false);
    }
    if got < 16 || &header[..16] != b"SQLite format 3\0" {
        return Err(Error::NotSqlite { path: db.to_owned() });
    }
    if got < 100 {
        return Err(Error::Corrupt { path: db.to_owned(), detail: format!("file is only {got} bytes long") });
    }
    Ok(true)
}

/// A read-only connection with the busy timeout set.
pub(crate) fn open_read_only(db: &Path, busy: Duration) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| Error::sql(db, e))?;
    conn.busy_timeout(busy).map_err(|e| Error::sql(db, e))?;
    Ok(conn)
}

/// `PRAGMA quick_check`: anything but "ok" is corruption.
pub(crate) fn quick_check(conn: &Connection, db: &Path) -> Result<()> {
    let mut stmt = conn.prepare("PRAGMA quick_check").map_err(|e| Error::sql(db, e))?;
    let rows: Vec<String> =
        stmt.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(|e| Error::sql(db, e))?;
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    Err(Error::Corrupt { path: db.to_owned(), detail: rows.into_iter().take(3).collect::<Vec<_>>().join("; ") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn default_path_follows_the_documented_order() {
        let all = [("PERFAGENT_DB", "/x/custom.db"), ("XDG_DATA_HOME", "/data"), ("HOME", "/home/u")];
        assert_eq!(default_path_from(env(&all)).unwrap(), PathBuf::from("/x/custom.db"));
        assert_eq!(default_path_from(env(&all[1..])).unwrap(), PathBuf::from("/data/perfagent/perf.db"));
        assert_eq!(default_path_from(env(&all[2..])).unwrap(), PathBuf::from("/home/u/.local/share/perfagent/perf.db"));
        // Empty values count as unset, as XDG says.
        let empty = [("PERFAGENT_DB", ""), ("XDG_DATA_HOME", ""), ("HOME", "/h")];
        assert_eq!(default_path_from(env(&empty)).unwrap(), PathBuf::from("/h/.local/share/perfagent/perf.db"));
        let err = default_path_from(env(&[])).unwrap_err().to_string();
        assert_eq!(err, "invalid input: cannot find a default store path: set PERFAGENT_DB, XDG_DATA_HOME or HOME");
    }

    #[test]
    fn lock_file_sits_beside_the_database() {
        assert_eq!(lock_path(Path::new("/a/b/perf.db")), PathBuf::from("/a/b/perf.db.lock"));
    }
}
