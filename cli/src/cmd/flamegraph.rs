//! `perfctl flamegraph <op>`: the operation's stored folded stacks over a window, merged and
//! drawn by inferno (or printed as folded text, or diffed against a baseline window).

use std::io::Write;
use std::path::{Path, PathBuf};

use perfstore::{Reader, Selector, TimeRange};

use crate::style::cell;
use crate::window::rfc3339;

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
    /// Icicle: root at the top.
    pub icicle: bool,
    /// Reverse stack order (leaves at the root: who calls the hot functions).
    pub reverse: bool,
}

/// Merged stacks of the window (and of the baseline when diffing).
#[derive(Debug, Clone)]
pub struct Stacks {
    /// The merged stacks.
    pub stacks: Vec<perfstore::Stack>,
    /// The baseline's, with `--diff`.
    pub baseline: Option<Vec<perfstore::Stack>>,
}

impl Stacks {
    /// Samples in the window.
    pub fn samples(&self) -> u64 {
        self.stacks.iter().map(|s| s.samples).sum()
    }
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
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
pub fn collect(db: &Path, opts: &Options) -> anyhow::Result<Stacks> {
    let mut reader = Reader::open(db)?;
    let snap = reader.snapshot()?;
    let stacks = snap.profile(&opts.op, opts.service.as_deref(), opts.range)?;
    let window = format!("between {} and {}", rfc3339(opts.range.start_ms), rfc3339(opts.range.end_ms));
    if stacks.is_empty() {
        let all = TimeRange::new(i64::MIN / 2, i64::MAX / 2);
        let profiled = snap.profiled_ops(all)?;
        let ever: u64 = profiled.iter().filter(|p| p.op == opts.op).map(|p| p.samples).sum();
        if ever > 0 {
            anyhow::bail!(
                "no CPU profile samples of '{}' {window} in {}; it has {ever} samples outside this window \
                 (widen it with --last or --since)",
                opts.op,
                db.display()
            );
        }
        let called =
            !snap.series(&Selector::name("op.duration").with("op", perfstore::MatchOp::Eq, &opts.op))?.is_empty();
        if called {
            anyhow::bail!(
                "'{}' has calls recorded in {} but no CPU profile samples: profiles come from apps that run \
                 operations through the perfagent SDK with the profiler on (default 99 Hz), or from folded \
                 stacks uploaded for the operation (`perfctl import --format folded --op {}`); an operation \
                 that mostly waits on the network may also be too short on CPU to be sampled",
                opts.op,
                db.display(),
                opts.op
            );
        }
        let mut known: Vec<&str> = profiled.iter().map(|p| p.op.as_str()).collect();
        known.sort_by_key(|k| (distance(k, &opts.op), *k));
        known.dedup();
        if known.is_empty() {
            anyhow::bail!("unknown operation '{}': {} holds no CPU profiles yet", opts.op, db.display());
        }
        let list: Vec<&str> = known.iter().take(10).copied().collect();
        anyhow::bail!(
            "unknown operation '{}'; operations with CPU profiles in {}, closest first: {}{}",
            opts.op,
            db.display(),
            list.join(", "),
            if known.len() > list.len() { format!(" (and {} more)", known.len() - list.len()) } else { String::new() }
        );
    }
    let baseline = match opts.baseline {
        Some(b) => {
            let base = snap.profile(&opts.op, opts.service.as_deref(), b)?;
            if base.is_empty() {
                anyhow::bail!(
                    "no CPU profile samples of '{}' in the baseline window {} to {}",
                    opts.op,
                    rfc3339(b.start_ms),
                    rfc3339(b.end_ms)
                );
            }
            Some(base)
        }
        None => None,
    };
    Ok(Stacks { stacks, baseline })
}

/// Frames as SVG-safe text: XML forbids most control characters even escaped.
fn clean(frames: &str) -> String {
    frames.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

fn folded(stacks: &[perfstore::Stack]) -> String {
    let mut s = String::new();
    for st in stacks {
        s.push_str(&clean(&st.frames));
        s.push(' ');
        s.push_str(&st.samples.to_string());
        s.push('\n');
    }
    s
}

/// Print the merged stacks as folded text.
pub fn write_folded(stacks: &Stacks, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(folded(&stacks.stacks).as_bytes())
}

/// Draw the SVG.
pub fn write_svg(stacks: &Stacks, opts: &Options, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut o = inferno::flamegraph::Options::default();
    let what = if stacks.baseline.is_some() { "CPU change" } else { "CPU" };
    o.title = cell(
        &format!(
            "{} ({what}): {} → {}, {} samples",
            opts.op,
            rfc3339(opts.range.start_ms),
            rfc3339(opts.range.end_ms),
            stacks.samples()
        ),
        300,
    );
    let mut sub = Vec::new();
    if let Some(s) = &opts.service {
        sub.push(format!("service {}", cell(s, 100)));
    }
    if let (Some(b), Some(base)) = (opts.baseline, &stacks.baseline) {
        sub.push(format!(
            "vs baseline {} → {} ({} samples, normalized): red grew, blue shrank",
            rfc3339(b.start_ms),
            rfc3339(b.end_ms),
            base.iter().map(|s| s.samples).sum::<u64>()
        ));
    }
    if opts.reverse {
        sub.push("reversed: leaves at the root".into());
    }
    o.subtitle = (!sub.is_empty()).then(|| sub.join("; "));
    o.count_name = "samples".into();
    o.hash = true;
    o.deterministic = true;
    o.reverse_stack_order = opts.reverse;
    if opts.icicle {
        o.direction = inferno::flamegraph::Direction::Inverted;
    }
    let text = match &stacks.baseline {
        Some(base) => {
            let mut diff = Vec::new();
            let d = inferno::differential::Options { normalize: true, strip_hex: false };
            inferno::differential::from_readers(
                d,
                folded(base).as_bytes(),
                folded(&stacks.stacks).as_bytes(),
                &mut diff,
            )?;
            String::from_utf8(diff)?
        }
        None => folded(&stacks.stacks),
    };
    inferno::flamegraph::from_lines(&mut o, text.lines(), out)?;
    Ok(())
}

/// The default output file: `<op>.svg`, with characters unsafe in file names replaced.
pub fn default_output(op: &str) -> PathBuf {
    let safe: String = op.chars().map(|c| if c.is_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let safe = safe.trim_start_matches('.');
    PathBuf::from(format!("{}.svg", if safe.is_empty() { "flamegraph" } else { safe }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_distance() {
        assert_eq!(default_output("vm.list"), PathBuf::from("vm.list.svg"));
        assert_eq!(default_output("../etc/passwd"), PathBuf::from("_etc_passwd.svg"));
        assert_eq!(default_output("a<b>&\"c"), PathBuf::from("a_b___c.svg"));
        assert_eq!(distance("vm.lsit", "vm.list"), 2);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(clean("a\u{1}b;c"), "a?b;c");
    }
}
