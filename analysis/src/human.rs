//! Numbers for people: durations, percentages, counts and sizes as the tables, the dashboard
//! and the reports' own evidence text print them.

/// Milliseconds, short: `0.42ms`, `45.1ms`, `180ms`, `1.23s`, `2m05s`, `1h02m`.
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
        minutes((v / 1000.0).round() as u64)
    }
}

/// `2m05s` under an hour, else `1h02m`, from whole seconds.
fn minutes(s: u64) -> String {
    if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = (s as f64 / 60.0).round() as u64;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

/// Seconds of total time: `950ms`, `12.3s`, `9m43s`, `1h02m`.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() {
        return "-".into();
    }
    if s < 59.995 {
        return ms(s * 1000.0);
    }
    minutes(s.round() as u64)
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

/// Text safe for a terminal, a table cell or a log line: control characters (escape
/// sequences, carriage returns, line breaks, C1 codes) and the invisible bidirectional and
/// zero-width marks that can make text read differently than it is become `?`. Every string
/// from the store or the network that reaches a person goes through this.
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if unsafe_char(c) { '?' } else { c }).collect()
}

/// [`clean`] line by line: a message's own line breaks stay, nothing else does.
pub fn clean_lines(s: &str) -> String {
    s.split('\n').map(clean).collect::<Vec<_>>().join("\n")
}

/// Whether `c` is one [`clean`] replaces.
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_defuses_escapes_and_invisible_marks() {
        assert_eq!(clean("a\x1b[2Jb\x1b]0;pwned\x07c\rd\ne\u{9b}f"), "a?[2Jb?]0;pwned?c?d?e?f");
        assert_eq!(clean("vm\u{202E}tsil.\u{200B}op"), "vm?tsil.?op");
        assert_eq!(clean("vm.list ✓ äö"), "vm.list ✓ äö", "printable text is kept");
    }

    #[test]
    fn formats() {
        assert_eq!(ms(0.423), "0.42ms");
        assert_eq!(ms(45.06), "45.1ms");
        assert_eq!(ms(180.2), "180ms");
        assert_eq!(ms(1234.0), "1.23s");
        assert_eq!(ms(125_000.0), "2m05s");
        assert_eq!(seconds(3725.0), "1h02m");
        assert_eq!(seconds(582.6), "9m43s");
        assert_eq!(seconds(3392.7), "56m33s");
        assert_eq!(seconds(59.999), "1m00s");
        assert_eq!(seconds(12.34), "12.34s");
        assert_eq!(pct(98.123), "98.1%");
        assert_eq!(pct(100.0), "100%");
        assert_eq!(pct(0.02), "0.02%");
        assert_eq!(count(12.0), "12");
        assert_eq!(count(2.5), "2.5");
        assert_eq!(bytes(1536.0), "1.5 KiB");
    }

    #[test]
    fn durations_agree_with_exact_arithmetic() {
        // Every whole second up to ten hours prints its own minutes and seconds (or hours and
        // rounded minutes): the text read back is within rounding of the value.
        for s in (60..36_000).step_by(7) {
            let text = seconds(s as f64 + 0.4);
            let back = if let Some((m, rest)) = text.split_once('m') {
                if let Some((h, mm)) = text.split_once('h') {
                    h.parse::<u64>().unwrap() * 3600 + mm.trim_end_matches('m').parse::<u64>().unwrap() * 60
                } else {
                    m.parse::<u64>().unwrap() * 60 + rest.trim_end_matches('s').parse::<u64>().unwrap()
                }
            } else {
                panic!("{s}: {text}");
            };
            let tolerance = if s < 3600 { 0 } else { 30 };
            assert!(back.abs_diff(s) <= tolerance, "{s} s printed as {text}");
        }
    }
}
