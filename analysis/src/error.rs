//! Why an analysis has no answer. Each variant's message names what was asked, the window,
//! the store and what the store does hold, so the person reading it knows what to try next.

use std::fmt;
use std::path::PathBuf;

use perfstore::TimeRange;

use crate::time::rfc3339;

/// An analysis that could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] perfstore::Error),
    /// The store holds nothing for the question in the window.
    #[error("{0}")]
    NoData(NoData),
    /// No such operation.
    #[error("{0}")]
    UnknownOp(UnknownOp),
    /// The operation has no CPU profile samples to draw.
    #[error("{0}")]
    NoProfile(NoProfile),
    /// The question itself is malformed (a bad selector).
    #[error("{0}")]
    Invalid(String),
}

/// Result with the analysis [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// "No data" is never an empty table: it names what was asked, the window, the store, how
/// many series matched, and the newest data the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoData {
    /// What was asked, as a phrase after "no data" (`" for op.duration"`), or empty.
    pub subject: String,
    /// The window.
    pub range: TimeRange,
    /// The store.
    pub db: PathBuf,
    /// Series that matched the question, when that is known.
    pub matched: Option<usize>,
    /// The newest data in the store.
    pub newest_ms: Option<i64>,
}

impl fmt::Display for NoData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let newest = self.newest_ms.map_or_else(
            || "the store holds no data yet".to_string(),
            |t| format!("its newest data is from {}", rfc3339(t)),
        );
        let matched = self.matched.map_or(String::new(), |n| format!("{n} matching series; "));
        write!(
            f,
            "no data{} between {} and {} in {} ({matched}{newest})",
            self.subject,
            rfc3339(self.range.start_ms),
            rfc3339(self.range.end_ms),
            self.db.display()
        )
    }
}

/// An operation the store has no calls of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOp {
    /// What was asked.
    pub op: String,
    /// The store.
    pub db: PathBuf,
    /// Operations it does know, most likely first.
    pub known: Vec<String>,
}

impl fmt::Display for UnknownOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown operation '{}' in {}: no op.duration series", self.op, self.db.display())?;
        if !self.known.is_empty() {
            write!(f, "; operations: {}", self.known.join(", "))?;
        }
        Ok(())
    }
}

/// Why there is no flame graph for an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoProfile {
    /// It has samples, but not in the window.
    OutsideWindow {
        /// The operation.
        op: String,
        /// The window.
        range: TimeRange,
        /// The store.
        db: PathBuf,
        /// Samples it has outside the window.
        samples: u64,
    },
    /// It has calls but was never sampled.
    NeverSampled {
        /// The operation.
        op: String,
        /// The store.
        db: PathBuf,
    },
    /// Nothing is known of it; `known` are the profiled operations, closest first.
    Unknown {
        /// The operation.
        op: String,
        /// The store.
        db: PathBuf,
        /// Operations with profiles, closest name first.
        known: Vec<String>,
    },
    /// The baseline window of a diff has no samples.
    EmptyBaseline {
        /// The operation.
        op: String,
        /// The baseline window.
        range: TimeRange,
    },
}

impl fmt::Display for NoProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoProfile::OutsideWindow { op, range, db, samples } => write!(
                f,
                "no CPU profile samples of '{op}' between {} and {} in {}; it has {samples} samples outside this \
                 window (widen it with --last or --since)",
                rfc3339(range.start_ms),
                rfc3339(range.end_ms),
                db.display()
            ),
            NoProfile::NeverSampled { op, db } => write!(
                f,
                "'{op}' has calls recorded in {} but no CPU profile samples: profiles come from apps that run \
                 operations through the perfagent SDK with the profiler on (default 99 Hz), or from folded stacks \
                 uploaded for the operation (`perfctl import --format folded --op {op}`); an operation that mostly \
                 waits on the network may also be too short on CPU to be sampled",
                db.display()
            ),
            NoProfile::Unknown { op, db, known } if known.is_empty() => {
                write!(f, "unknown operation '{op}': {} holds no CPU profiles yet", db.display())
            }
            NoProfile::Unknown { op, db, known } => {
                let list: Vec<&str> = known.iter().take(10).map(String::as_str).collect();
                write!(
                    f,
                    "unknown operation '{op}'; operations with CPU profiles in {}, closest first: {}",
                    db.display(),
                    list.join(", ")
                )?;
                if known.len() > list.len() {
                    write!(f, " (and {} more)", known.len() - list.len())?;
                }
                Ok(())
            }
            NoProfile::EmptyBaseline { op, range } => write!(
                f,
                "no CPU profile samples of '{op}' in the baseline window {} to {}",
                rfc3339(range.start_ms),
                rfc3339(range.end_ms)
            ),
        }
    }
}
