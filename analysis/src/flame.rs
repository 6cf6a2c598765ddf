//! Flame graphs: an operation's stored folded stacks over a window, merged (and a baseline
//! window's, to diff against), or precisely why there are none.

use std::path::Path;

use perfstore::convention::{self as conv, tag};
use perfstore::{MatchOp, Selector, Snapshot, Stack, TimeRange};

use crate::error::{Error, NoProfile};

/// What to draw.
#[derive(Debug, Clone)]
pub struct Options {
    /// The operation.
    pub op: String,
    /// Only this service's samples.
    pub service: Option<String>,
    /// The window.
    pub range: TimeRange,
    /// Draw the difference from this window (`--diff`).
    pub baseline: Option<TimeRange>,
}

/// Merged stacks of the window (and of the baseline when diffing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stacks {
    /// The merged stacks.
    pub stacks: Vec<Stack>,
    /// The baseline's, with `--diff`.
    pub baseline: Option<Vec<Stack>>,
}

impl Stacks {
    /// Samples in the window.
    pub fn samples(&self) -> u64 {
        self.stacks.iter().map(|s| s.samples).sum()
    }
}

/// Edit distance, for "closest first".
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Read the stacks, or say precisely why there are none.
pub fn gather(snap: &Snapshot<'_>, db: &Path, opts: &Options) -> crate::Result<Stacks> {
    let stacks = snap.profile(&opts.op, opts.service.as_deref(), opts.range)?;
    if stacks.is_empty() {
        return Err(Error::NoProfile(why_none(snap, db, opts)?));
    }
    let baseline = match opts.baseline {
        Some(b) => {
            let base = snap.profile(&opts.op, opts.service.as_deref(), b)?;
            if base.is_empty() {
                return Err(Error::NoProfile(NoProfile::EmptyBaseline { op: opts.op.clone(), range: b }));
            }
            Some(base)
        }
        None => None,
    };
    Ok(Stacks { stacks, baseline })
}

fn why_none(snap: &Snapshot<'_>, db: &Path, opts: &Options) -> crate::Result<NoProfile> {
    let (op, db) = (opts.op.clone(), db.to_owned());
    let profiled = snap.profiled_ops(TimeRange::new(i64::MIN / 2, i64::MAX / 2))?;
    let ever: u64 = profiled.iter().filter(|p| p.op == opts.op).map(|p| p.samples).sum();
    if ever > 0 {
        return Ok(NoProfile::OutsideWindow { op, range: opts.range, db, samples: ever });
    }
    let calls = Selector::name(conv::OP_DURATION.name).with(tag::OP, MatchOp::Eq, &opts.op);
    if !snap.series(&calls)?.is_empty() {
        return Ok(NoProfile::NeverSampled { op, db });
    }
    // Samples outside any operation are filed under `(none)`: not a name to suggest.
    let mut known: Vec<String> = profiled.into_iter().map(|p| p.op).filter(|op| op != conv::NO_OP).collect();
    known.sort_by_key(|k| (distance(k, &opts.op), k.clone()));
    known.dedup();
    Ok(NoProfile::Unknown { op, db, known })
}

#[cfg(test)]
mod tests {
    #[test]
    fn distance() {
        assert_eq!(super::distance("vm.lsit", "vm.list"), 2);
        assert_eq!(super::distance("", "abc"), 3);
    }
}
