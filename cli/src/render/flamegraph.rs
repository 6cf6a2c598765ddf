//! Flame graphs drawn by inferno (SVG), or printed as folded stacks.

use std::io::Write;
use std::path::PathBuf;

use perfanalysis::flame::{Options, Stacks};
use perfanalysis::time::rfc3339;
use perfstore::Stack;

use super::{cell, clean};

/// How to draw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Icicle: root at the top.
    pub icicle: bool,
    /// Reverse stack order (leaves at the root: who calls the hot functions).
    pub reverse: bool,
}

fn folded(stacks: &[Stack]) -> String {
    let mut s = String::new();
    for st in stacks {
        s.push_str(&clean(&st.frames));
        s.push(' ');
        s.push_str(&st.samples.to_string());
        s.push('\n');
    }
    s
}

/// Print the merged stacks as folded text (control characters in frames cleaned).
pub fn write_folded(stacks: &Stacks, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(folded(&stacks.stacks).as_bytes())
}

/// Draw the SVG.
pub fn write_svg(stacks: &Stacks, opts: &Options, style: Style, out: &mut dyn Write) -> anyhow::Result<()> {
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
    if style.reverse {
        sub.push("reversed: leaves at the root".into());
    }
    o.subtitle = (!sub.is_empty()).then(|| sub.join("; "));
    o.count_name = "samples".into();
    o.hash = true;
    o.deterministic = true;
    o.reverse_stack_order = style.reverse;
    if style.icicle {
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
    fn output_names_are_safe() {
        assert_eq!(default_output("vm.list"), PathBuf::from("vm.list.svg"));
        assert_eq!(default_output("../etc/passwd"), PathBuf::from("_etc_passwd.svg"));
        assert_eq!(default_output("a<b>&\"c"), PathBuf::from("a_b___c.svg"));
        assert_eq!(folded(&[Stack::new("a\u{1}b;c", 3)]), "a?b;c 3\n");
    }
}
