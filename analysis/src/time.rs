//! Times in reports: RFC 3339 UTC at one-second precision, and the window a report covers.

use std::time::{Duration, UNIX_EPOCH};

use perfstore::TimeRange;
use serde::Serialize;

/// RFC 3339 (UTC, seconds) of a Unix-ms time.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The window a report covers, as RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Start (inclusive).
    pub since: String,
    /// End (exclusive).
    pub until: String,
}

impl From<TimeRange> for Window {
    fn from(r: TimeRange) -> Self {
        Self { since: rfc3339(r.start_ms), until: rfc3339(r.end_ms) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_print_as_rfc3339() {
        let w = Window::from(TimeRange::new(1_795_392_000_000, 1_795_478_400_000));
        assert_eq!((w.since.as_str(), w.until.as_str()), ("2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z"));
    }
}
