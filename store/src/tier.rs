//! The resolutions points are stored at, and how their chunks are windowed.

/// One minute, ms.
pub const MINUTE_MS: i64 = 60_000;
/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, ms.
pub const DAY_MS: i64 = 86_400_000;

/// The times a store accepts, Unix ms: 1970-01-01 to the end of year 9998. Anything outside is
/// refused at the edge (the agent, the importers) and, as a last defence, by the writer: one
/// absurd timestamp would otherwise become every reader's idea of "now".
pub const TIME_RANGE_MS: std::ops::RangeInclusive<i64> = 0..=253_370_764_799_999;

/// Refuse a time outside [`TIME_RANGE_MS`], naming `what`.
pub(crate) fn check_time(what: impl FnOnce() -> String, ts_ms: i64) -> crate::Result<()> {
    if TIME_RANGE_MS.contains(&ts_ms) {
        Ok(())
    } else {
        Err(crate::Error::Invalid(format!(
            "{}: time {ts_ms} ms is outside what a store keeps (1970-01-01 to 9998-12-31)",
            what()
        )))
    }
}

/// A resolution at which points are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Flush-interval points as the agent wrote them.
    Raw,
    /// One-minute rollups.
    Minute,
    /// One-hour rollups.
    Hour,
}

impl Tier {
    /// The rolled-up tiers, finest first.
    pub const ROLLED: [Tier; 2] = [Tier::Minute, Tier::Hour];

    /// The code stored in `chunk.tier`.
    pub(crate) fn code(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::Minute => 1,
            Tier::Hour => 2,
        }
    }

    /// A chunk of this tier never spans more than this: a day of raw points (an hour for
    /// distributions, see [`raw_window_ms`]), a day of minutes, thirty days of hours. Readers
    /// look this far back for chunks that overlap a range.
    pub(crate) fn chunk_window_ms(self) -> i64 {
        match self {
            Tier::Raw => DAY_MS,
            Tier::Minute => DAY_MS,
            Tier::Hour => 30 * DAY_MS,
        }
    }

    /// The step of a rolled-up tier's points (`None` for raw points).
    pub fn step_ms(self) -> Option<i64> {
        match self {
            Tier::Raw => None,
            Tier::Minute => Some(MINUTE_MS),
            Tier::Hour => Some(HOUR_MS),
        }
    }

    /// `raw`, `1m` or `1h`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "1m",
            Tier::Hour => "1h",
        }
    }
}

/// The start of the window of `window_ms` holding `ts_ms`.
pub(crate) fn floor(ts_ms: i64, window_ms: i64) -> i64 {
    ts_ms.div_euclid(window_ms) * window_ms
}

/// The start of the first window of `window_ms` at or after `ts_ms`.
pub(crate) fn ceil(ts_ms: i64, window_ms: i64) -> i64 {
    let f = floor(ts_ms, window_ms);
    if f == ts_ms { f } else { f + window_ms }
}

/// The window a raw chunk of `kind` is sealed within: its head closes when a point of the next
/// window arrives (or maintenance finds it idle). Its pieces are packed into chunks of up to
/// [`crate::CHUNK_MAX_BYTES`] when it closes, and before that as soon as they fill one
/// (except a distribution's: see `write_series`).
///
/// Distributions close by the hour, where their hour summaries are made. Other series take up
/// to a day: an hour of a counter at 10 s is about 400 bytes, and hour-sized chunks spent more
/// on their row, index entries and header than on their points.
pub(crate) fn raw_window_ms(kind: crate::Kind) -> i64 {
    match kind {
        crate::Kind::Distribution => HOUR_MS,
        _ => DAY_MS,
    }
}
