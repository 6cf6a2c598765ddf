//! Bounds on a new series' identity, checked once at the edge: what a name and its tags may
//! be before they reach the store, `/metrics` and a terminal. Each refusal has its own
//! counted reason.

use super::parser::MetricLine;

/// Longest metric name, bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// Longest tag text of a line (DogStatsD and Influx-style together), bytes.
pub const MAX_TAGS_BYTES: usize = 1024;
/// How far ahead of now a `|T` timestamp may be (clock skew between hosts).
pub const MAX_FUTURE_MS: i64 = 10 * 60_000;

/// A tag key: letters, digits and `_ . - /`, at most 100 bytes.
fn valid_tag_key(k: &str) -> bool {
    !k.is_empty() && k.len() <= 100 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
}

/// A new series' name and tags, checked once: bounded lengths, tag keys of the usual
/// characters, no control characters anywhere (they would reach terminals and expositions).
pub(crate) fn check_identity(m: &MetricLine<'_>) -> Result<(), &'static str> {
    if m.name.len() > MAX_NAME_BYTES {
        return Err("name_too_long");
    }
    if m.name.chars().any(char::is_control) {
        return Err("bad_name");
    }
    if m.influx_tags.len() + m.tags.len() > MAX_TAGS_BYTES {
        return Err("tags_too_long");
    }
    for (k, v) in m.tag_pairs() {
        if !valid_tag_key(k) {
            return Err("bad_tag_key");
        }
        if v.chars().any(char::is_control) {
            return Err("bad_tags");
        }
    }
    Ok(())
}
