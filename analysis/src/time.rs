//! Times in reports: RFC 3339 UTC at one-second precision, the window a report covers, and
//! reading the times people type.

use perfstore::TimeRange;
use serde::Serialize;

/// RFC 3339 (UTC, seconds) of a Unix-ms time. Never panics: times outside what a store keeps
/// are shown at its bounds' years with the raw value.
pub fn rfc3339(ms: i64) -> String {
    let range = perfstore::TIME_RANGE_MS;
    if !range.contains(&ms) {
        return format!("(out of range: {ms} ms)");
    }
    match jiff::Timestamp::from_second(ms.div_euclid(1000)) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("(out of range: {ms} ms)"),
    }
}

/// The forms [`parse_time`] reads, for error messages.
pub const TIME_FORMS: &str =
    "RFC 3339 like 2026-11-23T10:00:00Z or 2026-11-23T12:00:00.5+02:00, or a date like 2026-11-23 (UTC)";

/// A typed time as Unix ms: RFC 3339 with `Z` or an offset (`+02:00`) and optional fractions;
/// a date and time without an offset, or a plain date (midnight), read as UTC. Refuses times
/// outside what a store keeps.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    // An offset or zone after the date: only the full RFC 3339 parse may read it (the civil
    // parsers would drop an offset they cannot use, e.g. +25:00, and read the rest as UTC).
    let zoned = s.get(10..).is_some_and(|t| t.contains(['Z', 'z', '+', '-', '[']));
    let ms = if let Ok(t) = s.parse::<jiff::Timestamp>() {
        t.as_millisecond()
    } else if zoned {
        return Err(format!("expected {TIME_FORMS}"));
    } else if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        dt.to_zoned(jiff::tz::TimeZone::UTC).map_err(|e| e.to_string())?.timestamp().as_millisecond()
    } else if let Ok(d) = s.parse::<jiff::civil::Date>() {
        d.to_zoned(jiff::tz::TimeZone::UTC).map_err(|e| e.to_string())?.timestamp().as_millisecond()
    } else {
        return Err(format!("expected {TIME_FORMS}"));
    };
    if !perfstore::TIME_RANGE_MS.contains(&ms) {
        return Err("outside 1970-01-01 to 9998-12-31".into());
    }
    Ok(ms)
}

/// The step `--step auto` takes for `range`: the first round length (1 s … 30 d) giving at
/// most about 100 steps (1m for 1h, 15m for 24h, 14d for two years).
pub fn auto_step_ms(range: TimeRange) -> i64 {
    const ROUND_S: [i64; 19] = [
        1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 1_209_600,
        2_592_000,
    ];
    let want = (range.end_ms - range.start_ms) / 100;
    ROUND_S.iter().map(|s| s * 1000).find(|s| *s >= want).unwrap_or(2_592_000_000)
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
    fn typed_times_keep_their_offsets_and_fractions() {
        let utc10 = 1_795_428_000_000; // 2026-11-23T10:00:00Z
        for (text, ms) in [
            ("2026-11-23T10:00:00Z", utc10),
            ("2026-11-23T12:00:00+02:00", utc10),
            ("2026-11-23T12:00:00.5+02:00", utc10 + 500),
            ("2026-11-23T05:30:00-04:30", utc10),
            ("2026-11-23T10:00:00", utc10),
            ("2026-11-23 10:00:00Z", utc10),
            ("2026-11-23", utc10 - 10 * 3_600_000),
        ] {
            assert_eq!(parse_time(text), Ok(ms), "{text}");
        }
        for bad in ["yesterday", "2026-13-01", "1969-12-31T23:59:59Z", "2026-11-23T10:00:00+99:00", ""] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(rfc3339(utc10 + 999), "2026-11-23T10:00:00Z");
        assert_eq!(rfc3339(i64::MAX), format!("(out of range: {} ms)", i64::MAX));
        assert_eq!(rfc3339(253_370_764_799_999), "9998-12-31T23:59:59Z");
    }

    #[test]
    fn windows_print_as_rfc3339() {
        let w = Window::from(TimeRange::new(1_795_392_000_000, 1_795_478_400_000));
        assert_eq!((w.since.as_str(), w.until.as_str()), ("2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z"));
    }
}
