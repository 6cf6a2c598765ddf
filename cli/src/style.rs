//! Human output: number formats shared by the tables, and colour (only on a terminal, never
//! with `NO_COLOR`).

use std::io::IsTerminal as _;

/// Whether to colour standard output.
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

/// Milliseconds, short: `0.42ms`, `45.1ms`, `180ms`, `1.23s`, `2m05s`.
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v < 1.0 {
        format!("{v:.2}ms")
    } else if v < 100.0 {
        format!("{v:.1}ms")
    } else if v < 1000.0 {
        format!("{v:.0}ms")
    } else if v < 60_000.0 {
        format!("{:.2}s", v / 1000.0)
    } else {
        let s = (v / 1000.0).round() as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Seconds of total time: `950ms`, `12.3s`, `1h02m`.
pub fn seconds(s: f64) -> String {
    if s < 60.0 {
        return ms(s * 1000.0);
    }
    let m = (s / 60.0).round() as u64;
    if m < 60 { format!("{}m{:02}s", m, (s as u64) % 60) } else { format!("{}h{:02}m", m / 60, m % 60) }
}

/// A percentage: `98.1%`, `100%`, `0%`, `0.02%`.
pub fn pct(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}%")
    } else if v.abs() < 0.1 {
        format!("{v:.2}%")
    } else {
        format!("{v:.1}%")
    }
}

/// A count, whole when it is (counts weighted by 1/rate can be fractional).
pub fn count(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{}", v.round() as i64) } else { format!("{v:.1}") }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", UNITS[i]) }
}

/// One CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// Make text safe for one table cell: control characters become `?`, and long text is cut
/// with an ellipsis at `max` characters.
pub fn cell(s: &str, max: usize) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if clean.chars().count() <= max {
        clean
    } else {
        let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ms(0.423), "0.42ms");
        assert_eq!(ms(45.06), "45.1ms");
        assert_eq!(ms(180.2), "180ms");
        assert_eq!(ms(1234.0), "1.23s");
        assert_eq!(ms(125_000.0), "2m05s");
        assert_eq!(seconds(3725.0), "1h02m");
        assert_eq!(pct(98.123), "98.1%");
        assert_eq!(pct(100.0), "100%");
        assert_eq!(pct(0.02), "0.02%");
        assert_eq!(count(12.0), "12");
        assert_eq!(count(2.5), "2.5");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(cell("a\u{1b}[31mb\nc", 20), "a?[31mb?c");
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(Paint(false).red("x"), "x");
        assert_eq!(Paint(true).red("x"), "\x1b[31mx\x1b[0m");
    }
}
