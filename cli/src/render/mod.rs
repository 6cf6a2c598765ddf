//! Turning reports into text: one table helper (widths, alignment, and sanitising of every
//! cell), JSON, CSV through the `csv` crate, flame graphs, and one renderer per report.
//!
//! Every piece of text from the store (operation names, tags, error messages, frames) reaches
//! a terminal only through [`clean`], which replaces control characters, so a name carrying
//! an escape sequence prints as text instead of driving the terminal.

pub mod capacity;
pub mod csv;
pub mod flamegraph;
pub mod openmetrics;
pub mod profile;
pub mod query;
pub mod slo;
pub mod stats;
mod table;

use std::io::{IsTerminal as _, Write};

use serde::Serialize;

pub use table::{Align, Column, Table};

/// Whether to colour standard output: a terminal, and no `NO_COLOR`.
pub fn color_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    fn wrap(self, code: &str, s: &str) -> String {
        if self.0 { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() }
    }
    /// Violations.
    pub fn red(self, s: &str) -> String {
        self.wrap("31", s)
    }
    /// Headings.
    pub fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }
    /// Secondary text.
    pub fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
}

pub use perfanalysis::human::clean;

/// [`clean`] text cut with an ellipsis at `max` characters.
pub fn cell(s: &str, max: usize) -> String {
    let clean = clean(s);
    if clean.chars().count() <= max {
        clean
    } else {
        let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// One JSON document, pretty, with a final line break.
pub fn json<T: Serialize + ?Sized>(value: &T, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// `v`, or `-` when absent.
pub fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cleaned_and_cut() {
        assert_eq!(cell("a\u{1b}[31mb\nc", 20), "a?[31mb?c");
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(clean("\u{1b}]0;owned\u{7}"), "?]0;owned?");
        assert_eq!(Paint(false).red("x"), "x");
        assert_eq!(Paint(true).red("x"), "\x1b[31mx\x1b[0m");
    }
}
