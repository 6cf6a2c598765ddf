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
    /// Keep every frame: the runtime's below the operation, and the `[operation]` frame
    /// where it begins (`--full-stacks`). By default stacks start at the operation.
    pub full_stacks: bool,
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

/// The merged stacks as one JSON document (`perfctl flamegraph --json`, the dashboard's
/// `/api/v1/flamegraph`): what was asked, and the stacks root first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Document<'a> {
    /// The operation.
    pub op: &'a str,
    /// Only this service's samples.
    pub service: Option<&'a str>,
    /// The window.
    pub window: crate::time::Window,
    /// The baseline window, when diffing.
    pub baseline_window: Option<crate::time::Window>,
    /// Whether the runtime's frames below the operation were kept.
    pub full_stacks: bool,
    /// Samples in the window.
    pub samples: u64,
    /// Merged stacks, frames joined by `;`, root first.
    pub stacks: &'a [Stack],
    /// The baseline's merged stacks, when diffing.
    pub baseline: Option<&'a [Stack]>,
}

impl<'a> Document<'a> {
    /// The document for `stacks`, gathered with `opts`.
    pub fn new(opts: &'a Options, stacks: &'a Stacks) -> Self {
        Self {
            op: &opts.op,
            service: opts.service.as_deref(),
            window: opts.range.into(),
            baseline_window: opts.baseline.map(Into::into),
            full_stacks: opts.full_stacks,
            samples: stacks.samples(),
            stacks: &stacks.stacks,
            baseline: stacks.baseline.as_deref(),
        }
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
    let shaped = |v: Vec<Stack>| shape(v, opts.full_stacks);
    Ok(Stacks { stacks: shaped(stacks), baseline: baseline.map(shaped) })
}

/// The frames of a stack from where its operation begins: after its `[operation]` frame (the
/// runtime's frames below and the marker itself hidden). A stack recorded without the
/// marker (folded stacks imported, or an older agent's) is kept whole; CPU in the marker
/// itself stays as `[operation]`.
pub fn from_operation(frames: &str) -> &str {
    match frames.rsplit_once(conv::OPERATION_FRAME) {
        Some((_, rest)) => match rest.strip_prefix(';') {
            Some(rest) if !rest.is_empty() => rest,
            _ => conv::OPERATION_FRAME,
        },
        None => frames,
    }
}

/// A frame as people read it: a Rust closure is its enclosing function's name and
/// `{closure}` (`app::main::{closure#0}` and `app::main::{{closure}}` are both
/// `app::main {closure}`, `{closure#0}<…>` included), and turbofish generic arguments
/// (`::<T>`) go. Other text is kept as it is.
pub fn simplify(frame: &str) -> String {
    let mut out = String::with_capacity(frame.len());
    let mut rest = frame;
    while !rest.is_empty() {
        // Rust's own spellings only (frames of imported stacks, Java's `List<String>` say,
        // keep their text): turbofish arguments, and arguments right after a closure.
        let generics =
            rest.strip_prefix("::<").or_else(|| rest.strip_prefix('<').filter(|_| out.ends_with("{closure}")));
        if let Some(r) = generics {
            // Skip the balanced generic arguments.
            let mut depth = 1;
            let mut end = r.len();
            for (i, c) in r.char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &r[end..];
            continue;
        }
        let closure = ["::{{closure}}", "{{closure}}"].iter().find_map(|p| rest.strip_prefix(p)).or_else(|| {
            let r = rest.strip_prefix("::").unwrap_or(rest).strip_prefix("{closure#")?;
            let digits = r.bytes().take_while(u8::is_ascii_digit).count();
            r[digits..].strip_prefix('}')
        });
        if let Some(r) = closure {
            // Nested closures read as one.
            if !out.ends_with("{closure}") {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
                out.push_str("{closure}");
            }
            rest = r;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Stacks as drawn: from the operation on (unless `full`), frames simplified, equal stacks
/// merged, in order.
fn shape(stacks: Vec<Stack>, full: bool) -> Vec<Stack> {
    let mut merged: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for s in stacks {
        let frames = if full { s.frames.as_str() } else { from_operation(&s.frames) };
        let frames: Vec<String> = frames.split(';').map(simplify).collect();
        *merged.entry(frames.join(";")).or_default() += s.samples;
    }
    merged.into_iter().map(|(frames, samples)| Stack { frames, samples }).collect()
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
    use super::*;

    #[test]
    fn stacks_start_at_the_operation_and_closures_read_as_their_function() {
        assert_eq!(
            from_operation("clone3;start_thread;tokio::run;[operation];app::list;app::parse"),
            "app::list;app::parse"
        );
        assert_eq!(from_operation("main;[operation]"), "[operation]", "CPU in the marker itself");
        assert_eq!(from_operation("main;app::list"), "main;app::list", "no marker: whole");
        assert_eq!(simplify("app::main::{closure#0}"), "app::main {closure}");
        assert_eq!(simplify("app::main::{{closure}}"), "app::main {closure}");
        assert_eq!(simplify("app::main::{closure#0}::{closure#1}"), "app::main {closure}");
        assert_eq!(simplify("{closure#0}"), "{closure}");
        assert_eq!(simplify("core::iter::adapters::map::map_fold::<u8, u8>"), "core::iter::adapters::map::map_fold");
        assert_eq!(simplify("app::run::<app::Job<u8>>::{closure#2}"), "app::run {closure}");
        assert_eq!(
            simplify("<alloc::vec::Vec<T> as core::Clone>::clone"),
            "<alloc::vec::Vec<T> as core::Clone>::clone"
        );
        assert_eq!(simplify("spec_next<u64>"), "spec_next<u64>", "not Rust's own spelling: kept");
        assert_eq!(simplify("app::f::{closure#0}<u8>"), "app::f {closure}");
        let stacks = vec![
            Stack::new("clone3;rt::spawn::{closure#0};[operation];app::work::{closure#0}", 2),
            Stack::new("clone3;rt::spawn::{closure#1};[operation];app::work::{closure#3}", 3),
        ];
        assert_eq!(shape(stacks.clone(), false), vec![Stack::new("app::work {closure}", 5)], "merged once simplified");
        assert_eq!(shape(stacks, true).len(), 1, "full stacks keep the runtime, simplified alike");
    }

    #[test]
    fn distance() {
        assert_eq!(super::distance("vm.lsit", "vm.list"), 2);
        assert_eq!(super::distance("", "abc"), 3);
    }
}
