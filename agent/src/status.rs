//! The status file, `<db>.status` (mode 0600): what `perfagent status` reads, and how an SDK
//! finds where a daemon holding the store listens. Rewritten by the writer thread after every
//! flush.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::listeners::Listeners;
use crate::telemetry::Telemetry;

/// The status file's contents.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StatusFile {
    /// Agent pid.
    pub pid: u32,
    /// Start time, Unix ms.
    pub started_ms: i64,
    /// Store path.
    pub db: String,
    /// Where it listens (nothing for an embedded SDK).
    #[serde(flatten)]
    pub listeners: Listeners,
    /// Flush interval, ms.
    pub flush_interval_ms: i64,
    /// Receive buffer granted by the kernel.
    pub receive_buffer_bytes: usize,
    /// When the last flush was written, Unix ms; none before the first.
    #[serde(default)]
    pub last_flush_ms: Option<i64>,
    /// Why the store is not taking writes, when it is not.
    #[serde(default)]
    pub degraded: Option<Degraded>,
    /// Its counters.
    #[serde(flatten)]
    pub telemetry: Telemetry,
}

/// The store is not taking writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Degraded {
    /// `disk full`, `store read-only`, `store file deleted`, …
    pub reason: String,
    /// Since when, Unix ms.
    pub since_ms: i64,
    /// The last error.
    pub error: String,
}

impl Degraded {
    /// `disk full since 2026-12-01T19:00:00Z; 1200 points waiting, 0 lost`.
    pub fn describe(&self, t: &Telemetry) -> String {
        let since = std::time::UNIX_EPOCH + Duration::from_millis(self.since_ms.max(0) as u64);
        format!(
            "{} since {}; {} points waiting, {} lost",
            self.reason,
            humantime::format_rfc3339_seconds(since),
            t.pending_points,
            t.lost.values().sum::<u64>()
        )
    }
}

/// `<db>.status`.
pub fn path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".status");
    db.with_file_name(name)
}

/// Write it in place, with no fsync and no rename: the file is advisory (readers retry a torn
/// read and tolerate a missing file), and both a sync and ext4's flush on rename-over cost
/// more CPU than the rest of an idle agent's work at a 1 s flush.
///
/// The text is padded with spaces (JSON allows them) to a multiple of [`STATUS_BLOCK`], so the
/// blocks are allocated while there is space and a rewrite on a full disk, when the status
/// matters most, needs none.
pub fn write(at: &Path, status: &StatusFile) -> std::io::Result<()> {
    let mut f = perfstore::open_private(at, true, false)?;
    let mut text = serde_json::to_string_pretty(status).map_err(std::io::Error::other)?;
    text.push('\n');
    let padded = text.len().div_ceil(STATUS_BLOCK) * STATUS_BLOCK;
    text.extend(std::iter::repeat_n(' ', padded - text.len()));
    f.write_all(text.as_bytes())?;
    f.set_len(text.len() as u64)
}

/// The status file's size is a multiple of this.
pub const STATUS_BLOCK: usize = 16 * 1024;

/// The status of the agent with `pid` on `db`, retrying a read that raced with a rewrite;
/// `None` when there is none (yet).
pub fn read(db: &Path, pid: Option<u32>, attempts: usize, pause: Duration) -> Option<StatusFile> {
    (0..attempts.max(1)).find_map(|attempt| {
        if attempt > 0 {
            std::thread::sleep(pause);
        }
        std::fs::read_to_string(path(db))
            .ok()
            .and_then(|t| serde_json::from_str::<StatusFile>(&t).ok())
            .filter(|s| pid.is_none_or(|p| s.pid == p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_finds_only_the_holders_status() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("perf.db");
        let s = StatusFile {
            pid: 42,
            listeners: Listeners { statsd_udp: Some("127.0.0.1:8125".parse().unwrap()), ..Listeners::default() },
            last_flush_ms: None,
            ..StatusFile::default()
        };
        write(&path(&db), &s).unwrap();
        assert_eq!(read(&db, Some(42), 1, Duration::ZERO), Some(s.clone()));
        assert_eq!(read(&db, Some(7), 1, Duration::ZERO), None, "another agent's leftover");
        let text = std::fs::read_to_string(path(&db)).unwrap();
        assert!(text.contains("\"statsd_udp\": \"127.0.0.1:8125\""), "{text}");
        assert!(text.contains("\"lines\": 0"), "{text}");
    }
}
