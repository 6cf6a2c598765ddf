//! Names and labels in the Prometheus and OpenMetrics text formats.

use super::{ALL, Kind, Metric};

/// Label names a series' tags must never take: they belong to the exposition format.
pub const RESERVED_LABELS: &[&str] = &["le", "quantile"];

/// The Prometheus name of a series: characters outside `[a-zA-Z0-9_:]` become `_`, a
/// leading digit gets `_`, the base unit is appended unless already there (`s` →
/// `_seconds`, `By` → `_bytes`, `1` → `_ratio` except on counters), counters end in
/// `_total`.
pub fn metric_name(name: &str, kind: Kind, unit: &str) -> String {
    let mut n: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit()) {
        n.insert(0, '_');
    }
    let suffix = match unit {
        "s" => "_seconds",
        "By" => "_bytes",
        "1" if kind != Kind::Counter => "_ratio",
        _ => "",
    };
    if !suffix.is_empty() && !n.ends_with(suffix) {
        n.push_str(suffix);
    }
    if kind == Kind::Counter && !n.ends_with("_total") {
        n.push_str("_total");
    }
    // A gauge named like a histogram's or a counter's sample (`system.cpu.logical.count`)
    // would read as one: it gets `_value`.
    let reserved = ["_count", "_sum", "_bucket", "_total", "_created", "_info"];
    if kind != Kind::Counter && kind != Kind::Distribution && reserved.iter().any(|r| n.ends_with(r)) {
        n.push_str("_value");
    }
    n
}

/// The family name of a series in an OpenMetrics exposition: [`metric_name`] without a
/// counter's `_total` (OpenMetrics puts `_total` on the sample, not the family).
pub fn family_name(name: &str, kind: Kind, unit: &str) -> String {
    let n = metric_name(name, kind, unit);
    match (kind, n.strip_suffix("_total")) {
        (Kind::Counter, Some(family)) => family.to_owned(),
        _ => n,
    }
}

/// A Prometheus label name for a tag key: characters outside `[a-zA-Z0-9_]` become `_`; a
/// leading digit, a leading `__` (reserved) and the names of [`RESERVED_LABELS`] get an
/// `l` in front.
pub fn label_name(key: &str) -> String {
    let mut n: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if n.is_empty()
        || n.starts_with(|c: char| c.is_ascii_digit())
        || n.starts_with("__")
        || RESERVED_LABELS.contains(&n.as_str())
    {
        n.insert(0, 'l');
    }
    n
}

/// True when `key` is its own [`label_name`]: a Prometheus label name already, as most tag
/// keys are, so a renderer can write it as it is.
pub fn is_label_name(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && !key.starts_with("__")
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
        && !RESERVED_LABELS.contains(&key)
}

/// Label names for a series' tag keys (in order), made unique: two keys that sanitise to
/// the same name (`a.b` and `a-b`) get `a_b` and `a_b_2`, so an exposition never repeats a
/// label.
pub fn label_names<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        let base = label_name(k);
        let mut name = base.clone();
        let mut n = 2;
        while out.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        out.push(name);
    }
    out
}

/// A label value escaped for the text formats: `\`, `"` and line feeds; other control
/// characters become `?`.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    push_label_value(&mut out, v);
    out
}

/// [`escape_label_value`] onto the end of `out`, for a renderer writing a page: a value
/// with nothing to escape, the usual one, is copied whole.
pub fn push_label_value(out: &mut String, v: &str) {
    if !v.bytes().any(|b| b == b'\\' || b == b'"' || b.is_ascii_control() || b >= 0x80) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            // Other control characters have no escape in the format and would reach a
            // terminal or a scraper raw: they become `?`.
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
}

/// HELP text escaped for the text formats: `\` and line feeds (quotes stay as they are).
pub fn escape_help(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The convention's metric a Prometheus family of `kind` stands for: its name with the
/// unit suffix as the agent writes it, or without one (a StatsD client's gauge has no
/// unit, so `system.cpu.utilization` sent over StatsD exports as
/// `system_cpu_utilization`), or one of its former names. A counter family may be
/// given with or without `_total`.
pub fn from_family(family: &str, kind: Kind) -> Option<&'static Metric> {
    let prom =
        if kind == Kind::Counter && !family.ends_with("_total") { format!("{family}_total") } else { family.into() };
    ALL.iter().filter(|m| m.kind == kind).find(|m| {
        std::iter::once(m.name)
            .chain(m.formerly.iter().copied())
            .any(|name| metric_name(name, m.kind, m.unit) == prom || metric_name(name, m.kind, "") == prom)
    })
}
