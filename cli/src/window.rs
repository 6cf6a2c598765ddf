//! The time window every subcommand takes: `--last 24h`, or `--since` / `--until` (RFC 3339
//! or a duration ago, like `2h`), relative to now or to a fixed `--now` (hidden, for exact
//! tests).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use perfanalysis::time::TIME_FORMS;

use perfstore::TimeRange;

/// Window flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WindowArgs {
    /// How far back from now, e.g. 1h, 24h, 7d [default: 1h]
    #[arg(long, value_name = "DUR", value_parser = parse_duration, conflicts_with = "since")]
    pub last: Option<Duration>,
    /// Start: RFC 3339 (2026-11-23T10:00:00Z, 2026-11-23T12:00:00+02:00), a date (2026-11-23,
    /// UTC) or a duration ago (2h)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// End: RFC 3339, a date (UTC) or a duration ago [default: now]
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Pretend it is this time (RFC 3339); for reproducible output.
    #[arg(long, value_name = "TIME", hide = true)]
    pub now: Option<String>,
}

/// Parse `1h`, `24h`, `7d`, `90s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|_| "expected a duration like 1h, 24h or 7d".to_string())
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A point in time: RFC 3339 (any offset), a date, or a duration before `now_ms`.
pub fn parse_time(flag: &str, s: &str, now_ms: i64) -> anyhow::Result<i64> {
    let shown = perfanalysis::human::clean(s);
    if let Ok(d) = humantime::parse_duration(s) {
        return i64::try_from(d.as_millis())
            .ok()
            .and_then(|d| now_ms.checked_sub(d))
            .filter(|t| perfstore::TIME_RANGE_MS.contains(t))
            .ok_or_else(|| crate::usage_err!("invalid value '{shown}' for '{flag}': reaches before 1970"));
    }
    match perfanalysis::time::parse_time(s) {
        Ok(t) => Ok(t),
        Err(e) if e.starts_with("expected") => {
            crate::usage!("invalid value '{shown}' for '{flag}': expected {TIME_FORMS}, or a duration ago like 2h")
        }
        Err(e) => crate::usage!("invalid value '{shown}' for '{flag}': {e}"),
    }
}

/// A step length: a duration, or `auto` (about 100 steps over the window, rounded up to a
/// round length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Chosen from the window.
    Auto,
    /// As given.
    Fixed(Duration),
}

/// Parse `auto` or a duration.
pub fn parse_step(s: &str) -> Result<Step, String> {
    if s == "auto" {
        return Ok(Step::Auto);
    }
    match humantime::parse_duration(s) {
        Ok(d) if d.as_millis() >= 1 => Ok(Step::Fixed(d)),
        _ => Err("expected `auto` or a duration of at least 1ms like 1m, 1h or 1d".into()),
    }
}

impl Step {
    /// The step for `range`, ms.
    pub fn ms(self, range: TimeRange) -> i64 {
        match self {
            Step::Fixed(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1),
            Step::Auto => perfanalysis::time::auto_step_ms(range),
        }
    }
}

impl WindowArgs {
    /// `now` as Unix ms (the real clock unless `--now`).
    pub fn now_ms(&self) -> anyhow::Result<i64> {
        match &self.now {
            Some(s) => perfanalysis::time::parse_time(s)
                .map_err(|e| crate::usage_err!("invalid value '{}' for '--now': {e}", perfanalysis::human::clean(s))),
            None => Ok(ms(SystemTime::now())),
        }
    }

    /// The window as a half-open range.
    pub fn range(&self) -> anyhow::Result<TimeRange> {
        let now = self.now_ms()?;
        let end = match &self.until {
            Some(s) => parse_time("--until", s, now)?,
            None => now,
        };
        let start = match (&self.since, self.last) {
            (Some(s), _) => parse_time("--since", s, now)?,
            (None, Some(d)) => i64::try_from(d.as_millis())
                .ok()
                .and_then(|d| end.checked_sub(d))
                .ok_or_else(|| crate::usage_err!("invalid value for '--last': longer than the store's time range"))?
                .max(0),
            (None, None) => end - 3_600_000,
        };
        if start >= end {
            crate::usage!("the window is empty: --since must be before --until");
        }
        Ok(TimeRange::new(start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(last: Option<&str>, since: Option<&str>, until: Option<&str>) -> WindowArgs {
        WindowArgs {
            last: last.map(|l| parse_duration(l).unwrap()),
            since: since.map(str::to_owned),
            until: until.map(str::to_owned),
            now: Some("2026-11-23T12:00:00Z".into()),
        }
    }

    #[test]
    fn auto_steps_are_round_and_about_a_hundred_per_window() {
        let day = 86_400_000;
        let step = |ms: i64| Step::Auto.ms(TimeRange::new(0, ms));
        assert_eq!(step(3_600_000), 60_000);
        assert_eq!(step(day), 900_000);
        assert_eq!(step(7 * day), 10_800_000);
        assert_eq!(step(30 * day), 43_200_000);
        assert_eq!(step(730 * day), 14 * day);
        assert_eq!(step(100_000 * day), 30 * day, "never more than a 30-day step");
        assert_eq!(parse_step("auto"), Ok(Step::Auto));
        assert_eq!(parse_step("90s"), Ok(Step::Fixed(Duration::from_secs(90))));
        assert!(parse_step("0s").unwrap_err().contains("expected `auto` or a duration"));
    }

    #[test]
    fn windows() {
        let now = w(None, None, None).now_ms().unwrap();
        assert_eq!(w(Some("24h"), None, None).range().unwrap(), TimeRange::new(now - 86_400_000, now));
        assert_eq!(w(None, None, None).range().unwrap(), TimeRange::new(now - 3_600_000, now), "default 1h");
        let r = w(None, Some("2026-11-23T10:00:00Z"), Some("30m")).range().unwrap();
        assert_eq!(r, TimeRange::new(now - 7_200_000, now - 1_800_000));
        let e = w(None, Some("yesterday-ish"), None).range().unwrap_err().to_string();
        assert!(e.starts_with("invalid value 'yesterday-ish' for '--since': expected RFC 3339"), "{e}");
        assert!(w(None, Some("1h"), Some("2h")).range().is_err());
        let r = w(None, Some("2026-11-23T10:00:00.5+02:00"), None).range().unwrap();
        assert_eq!(r.start_ms, now - 4 * 3_600_000 + 500, "the offset is honoured, the fraction kept");
        assert_eq!(w(None, Some("2026-11-23T12:00:00+02:00"), None).range().unwrap().start_ms, now - 2 * 3_600_000);
        assert_eq!(w(None, Some("2026-11-23"), None).range().unwrap().start_ms, now - 12 * 3_600_000);
        let e = w(None, Some("20000000d"), None).range().unwrap_err().to_string();
        assert_eq!(e, "invalid value '20000000d' for '--since': reaches before 1970");
        let e = w(Some("20000000d"), None, None).range().unwrap().start_ms;
        assert_eq!(e, 0, "a --last longer than all time starts at the epoch");
        assert_eq!(perfanalysis::time::rfc3339(now), "2026-11-23T12:00:00Z");
    }
}
