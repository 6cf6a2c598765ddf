//! The daemon's log backend for the `log` facade: timestamped lines to standard error, or, for
//! a background agent, to a log file with a size cap (past it the file is renamed to
//! `<file>.1`, replacing the previous one). Libraries (the SDK inside an app) only use the
//! facade; the app decides where their messages go.

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

#[derive(Debug, Default)]
struct Logger {
    file: OnceLock<Mutex<FileSink>>,
}

static LOGGER: Logger = Logger { file: OnceLock::new() };

/// Open for appending (created 0600), never through a symbolic link.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = format!("{} perfagent: {}\n", humantime::format_rfc3339_seconds(SystemTime::now()), record.args());
        let Some(sink) = self.file.get() else {
            let _ = std::io::stderr().write_all(text.as_bytes());
            return;
        };
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

    fn flush(&self) {}
}

/// Send log lines to standard error (the default once installed).
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Send log lines to `path` (created 0600) instead of standard error, rotating past `cap`
/// bytes.
pub fn to_file(path: &Path, cap: u64) -> std::io::Result<()> {
    let file = open_append(path)?;
    let written = file.metadata()?.len();
    let _ = LOGGER.file.set(Mutex::new(FileSink { path: path.to_owned(), file, written, cap }));
    init();
    Ok(())
}
