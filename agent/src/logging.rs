//! The agent's log: timestamped lines to stderr, or, for a background agent, to a log file
//! with a size cap (past it the file is renamed to `<file>.1`, replacing the previous one).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// Default cap of the log file.
pub const LOG_CAP_BYTES: u64 = 10 << 20;

#[derive(Debug)]
struct FileSink {
    path: PathBuf,
    file: File,
    written: u64,
    cap: u64,
}

static SINK: OnceLock<Mutex<FileSink>> = OnceLock::new();

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// Send log lines to `path` (created 0600) instead of stderr, rotating past `cap` bytes.
pub fn to_file(path: &Path, cap: u64) -> std::io::Result<()> {
    let file = open_append(path)?;
    let written = file.metadata()?.len();
    let _ = SINK.set(Mutex::new(FileSink { path: path.to_owned(), file, written, cap }));
    Ok(())
}

/// Write one line: `2026-11-23T17:10:00Z perfagent: <message>`.
pub fn line(args: std::fmt::Arguments<'_>) {
    let text = format!("{} perfagent: {args}\n", humantime::format_rfc3339_seconds(SystemTime::now()));
    match SINK.get() {
        None => {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
        Some(sink) => {
            let Ok(mut s) = sink.lock() else { return };
            if s.written + text.len() as u64 > s.cap {
                let old = s.path.with_extension("log.1");
                let _ = std::fs::rename(&s.path, old);
                if let Ok(f) = open_append(&s.path) {
                    s.file = f;
                    s.written = 0;
                }
            }
            if s.file.write_all(text.as_bytes()).is_ok() {
                s.written += text.len() as u64;
            }
        }
    }
}

/// `log!("format", args…)`: one line to the agent's log.
#[macro_export]
macro_rules! log {
    ($($t:tt)*) => { $crate::logging::line(format_args!($($t)*)) };
}
