//! Query parameters as `perfctl` flags: the same forms, and errors that name the parameter.

use perfanalysis::time::{TIME_FORMS, parse_time};
use perfstore::TimeRange;
use serde::Deserialize;

/// `last`, `since`, `until`: the window every page shares.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Window {
    /// How far back from `until`, e.g. `24h` (default 1h).
    pub last: Option<String>,
    /// Start: RFC 3339, a date or a duration ago.
    pub since: Option<String>,
    /// End: RFC 3339, a date or a duration ago (default now).
    pub until: Option<String>,
}

/// A duration like `24h`, or an error naming `param`.
pub fn duration_ms(param: &str, s: &str) -> Result<i64, String> {
    humantime::parse_duration(s)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("invalid '{param}': expected a duration like 1h, 24h or 7d, got '{}'", clean(s)))
}

fn time_ms(param: &str, s: &str, now: i64) -> Result<i64, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return i64::try_from(d.as_millis())
            .ok()
            .and_then(|d| now.checked_sub(d))
            .filter(|t| perfstore::TIME_RANGE_MS.contains(t))
            .ok_or_else(|| format!("invalid '{param}': '{}' reaches before 1970", clean(s)));
    }
    parse_time(s).map_err(|e| {
        let why =
            if e.starts_with("expected") { format!("expected {TIME_FORMS}, or a duration ago like 2h") } else { e };
        format!("invalid '{param}': '{}': {why}", clean(s))
    })
}

/// Text from a request, safe to quote in an error (control characters replaced, cut short).
pub fn clean(s: &str) -> String {
    perfanalysis::human::clean(&s.chars().take(200).collect::<String>())
}

impl Window {
    /// The half-open range, relative to `now`.
    pub fn range(&self, now: i64) -> Result<TimeRange, String> {
        let end = match &self.until {
            Some(s) if !s.is_empty() => time_ms("until", s, now)?,
            _ => now,
        };
        let start = match (&self.since, &self.last) {
            (Some(s), _) if !s.is_empty() => time_ms("since", s, now)?,
            (_, Some(l)) if !l.is_empty() => (end - duration_ms("last", l)?).max(0),
            _ => end - 3_600_000,
        };
        if start >= end {
            return Err("the window is empty: 'since' must be before 'until'".into());
        }
        Ok(TimeRange::new(start, end))
    }
}

/// `auto` (about 100 steps over the window, rounded to a round length) or a duration.
pub fn step_ms(s: Option<&str>, range: TimeRange) -> Result<i64, String> {
    match s {
        None | Some("" | "auto") => Ok(perfanalysis::time::auto_step_ms(range)),
        Some(s) => duration_ms("step", s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(last: Option<&str>, since: Option<&str>, until: Option<&str>) -> Window {
        Window { last: last.map(Into::into), since: since.map(Into::into), until: until.map(Into::into) }
    }

    #[test]
    fn windows_read_like_perfctl_flags() {
        let now = 1_800_000_000_000;
        assert_eq!(w(None, None, None).range(now), Ok(TimeRange::new(now - 3_600_000, now)));
        assert_eq!(w(Some("24h"), None, None).range(now), Ok(TimeRange::new(now - 86_400_000, now)));
        assert_eq!(w(None, Some("2h"), Some("30m")).range(now), Ok(TimeRange::new(now - 7_200_000, now - 1_800_000)));
        assert_eq!(w(None, Some("2027-01-15"), None).range(now).map(|r| r.start_ms), parse_time("2027-01-15"));
        let e = w(Some("soon"), None, None).range(now).unwrap_err();
        assert!(e.contains("'last'") && e.contains("24h"), "{e}");
        let e = w(None, Some("<script>"), None).range(now).unwrap_err();
        assert!(e.contains("'since'") && e.contains("RFC 3339"), "{e}");
        assert!(w(None, Some("1h"), Some("2h")).range(now).unwrap_err().contains("empty"));
        assert_eq!(step_ms(None, TimeRange::new(0, 86_400_000)), Ok(900_000), "15m for 24h, as perfctl query");
        assert!(step_ms(Some("0s"), TimeRange::new(0, 1)).unwrap_err().contains("'step'"));
    }
}
