//! A sans-IO StatsD / DogStatsD line parser: bytes in, borrowed fields out, no allocation.
//!
//! ```text
//! name[,k=v…]:value[:value…]|type[|@rate][|#k:v,k2…][|c:container][|T<unix seconds>]
//! _e{<title len>,<text len>}:<title>|<text>[|d:ts][|h:host][|p:priority][|t:alert_type][|#tags]
//! _sc|<name>|<status>[|d:ts][|h:host][|#tags][|m:message]
//! ```
//!
//! Types: `c` counter, `g` gauge (a leading `+`/`-` makes it a delta), `ms` timer, `h`
//! histogram, `d` distribution, `s` set. Every rejected line gets one bounded
//! [`ParseError`] reason for the drop counters; the parser never panics (property-tested on
//! arbitrary bytes).

use std::fmt;

/// Why a line was rejected. Bounded, so it can label a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Not valid UTF-8.
    NotUtf8,
    /// No `:` separating name and value.
    MissingValue,
    /// No `|type`.
    MissingType,
    /// A type other than c, g, ms, h, d, s.
    UnknownType,
    /// The name is empty or contains control characters.
    BadName,
    /// A value that is not a finite number (or an empty set member).
    BadValue,
    /// `@rate` outside (0, 1] or not a number.
    BadSampleRate,
    /// `|T` not an integer.
    BadTimestamp,
    /// A malformed tag section.
    BadTags,
    /// An `_e{…}` event whose lengths do not match its text.
    BadEvent,
    /// An `_sc|…` service check without a name or a status 0–3.
    BadServiceCheck,
    /// A field after the type that is none of the known ones.
    UnknownField,
}

impl ParseError {
    /// Short label for counters (`not_utf8`, `missing_value`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ParseError::NotUtf8 => "not_utf8",
            ParseError::MissingValue => "missing_value",
            ParseError::MissingType => "missing_type",
            ParseError::UnknownType => "unknown_type",
            ParseError::BadName => "bad_name",
            ParseError::BadValue => "bad_value",
            ParseError::BadSampleRate => "bad_sample_rate",
            ParseError::BadTimestamp => "bad_timestamp",
            ParseError::BadTags => "bad_tags",
            ParseError::BadEvent => "bad_event",
            ParseError::BadServiceCheck => "bad_service_check",
            ParseError::UnknownField => "unknown_field",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// StatsD metric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `c`
    Counter,
    /// `g`
    Gauge,
    /// `ms` (milliseconds)
    Timer,
    /// `h`
    Histogram,
    /// `d`
    Distribution,
    /// `s`
    Set,
}

impl MetricType {
    fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "c" => MetricType::Counter,
            "g" => MetricType::Gauge,
            "ms" => MetricType::Timer,
            "h" => MetricType::Histogram,
            "d" => MetricType::Distribution,
            "s" => MetricType::Set,
            _ => return Err(ParseError::UnknownType),
        })
    }

    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "c",
            MetricType::Gauge => "g",
            MetricType::Timer => "ms",
            MetricType::Histogram => "h",
            MetricType::Distribution => "d",
            MetricType::Set => "s",
        }
    }
}

/// One value of a metric line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A number (a gauge value without a sign, a counter increment, a timing).
    Number(f64),
    /// A gauge delta (`+3`, `-2.5`).
    Delta(f64),
    /// A set member.
    Member(&'a str),
}

/// A parsed metric line; fields borrow from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine<'a> {
    /// Name without Influx-style tags.
    pub name: &'a str,
    /// Influx-style tags from the name (`k=v,k2=v2`), or empty.
    pub influx_tags: &'a str,
    /// The first value, parsed.
    first: Value<'a>,
    /// The values after the first (`:`-separated, validated), or empty.
    rest: &'a str,
    /// Type.
    pub kind: MetricType,
    /// Sample rate in (0, 1]; 1 when absent.
    pub sample_rate: f64,
    /// DogStatsD tags (`k:v,k2`), or empty.
    pub tags: &'a str,
    /// `|T` timestamp, Unix seconds.
    pub timestamp: Option<i64>,
    /// `|c:` container id.
    pub container: Option<&'a str>,
}

impl<'a> MetricLine<'a> {
    /// The values (DogStatsD 1.1 packs several: `name:1:2:3|d`).
    pub fn values(&self) -> impl Iterator<Item = Value<'a>> + '_ {
        let kind = self.kind;
        let rest = if self.rest.is_empty() { None } else { Some(self.rest.split(':')) };
        // The rest was validated in `parse_line`, so parsing again cannot fail.
        std::iter::once(self.first)
            .chain(rest.into_iter().flatten().map(move |v| parse_value(v, kind).unwrap_or(Value::Number(0.0))))
    }

    /// Number of values.
    pub fn value_count(&self) -> usize {
        1 + if self.rest.is_empty() { 0 } else { self.rest.split(':').count() }
    }

    /// All tags as `(key, value)`: Influx-style from the name first, then DogStatsD ones
    /// (a bare `k` is `(k, "")`). Later duplicates should win; the caller decides.
    pub fn tag_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        let influx = split_nonempty(self.influx_tags, ',').map(|t| t.split_once('=').unwrap_or((t, "")));
        let dog = split_nonempty(self.tags, ',').map(|t| t.split_once(':').unwrap_or((t, "")));
        influx.chain(dog)
    }
}

/// A DogStatsD event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine<'a> {
    /// Title.
    pub title: &'a str,
    /// Text (`\\n` escapes left as they are).
    pub text: &'a str,
    /// `d:` timestamp.
    pub timestamp: Option<i64>,
    /// `h:` host.
    pub hostname: Option<&'a str>,
    /// `p:` priority.
    pub priority: Option<&'a str>,
    /// `t:` alert type (`error`, `warning`, `info`, `success`).
    pub alert_type: Option<&'a str>,
    /// Tags.
    pub tags: &'a str,
}

impl<'a> EventLine<'a> {
    /// Tags as `(key, value)`.
    pub fn tag_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        split_nonempty(self.tags, ',').map(|t| t.split_once(':').unwrap_or((t, "")))
    }
}

/// A DogStatsD service check.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCheckLine<'a> {
    /// Check name.
    pub name: &'a str,
    /// 0 ok, 1 warning, 2 critical, 3 unknown.
    pub status: u8,
    /// `d:` timestamp.
    pub timestamp: Option<i64>,
    /// `h:` host.
    pub hostname: Option<&'a str>,
    /// Tags.
    pub tags: &'a str,
    /// `m:` message (always last).
    pub message: Option<&'a str>,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    /// A metric.
    Metric(MetricLine<'a>),
    /// An event.
    Event(EventLine<'a>),
    /// A service check.
    ServiceCheck(ServiceCheckLine<'a>),
}

/// The non-empty lines of a datagram or TCP buffer (`\n`-separated, a trailing `\r`
/// dropped).
pub fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let end = super::fast::find(rest, b'\n').unwrap_or(rest.len());
            let line = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                return Some(line);
            }
        }
        None
    })
}

fn split_nonempty(s: &str, sep: char) -> impl Iterator<Item = &str> {
    s.split(sep).filter(|t| !t.is_empty())
}

fn parse_number(s: &str) -> Result<f64, ParseError> {
    // Integer fast path: most StatsD values are small integers.
    let bytes = s.as_bytes();
    if !bytes.is_empty() && bytes.len() <= 15 && bytes.iter().all(u8::is_ascii_digit) {
        return Ok(bytes.iter().fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0')) as f64);
    }
    // Rust's parser accepts "inf" and "nan"; StatsD values must be finite.
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(ParseError::BadValue),
    }
}

fn parse_value(v: &str, kind: MetricType) -> Result<Value<'_>, ParseError> {
    match kind {
        MetricType::Set => {
            if v.is_empty() {
                Err(ParseError::BadValue)
            } else {
                Ok(Value::Member(v))
            }
        }
        MetricType::Gauge if v.starts_with(['+', '-']) => parse_number(v).map(Value::Delta),
        _ => parse_number(v).map(Value::Number),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}

fn parse_int(s: &str, err: ParseError) -> Result<i64, ParseError> {
    s.parse::<i64>().map_err(|_| err)
}

/// Split `s` at the first `b` (an ASCII delimiter, so both halves are valid `str`s). A plain
/// scan: StatsD fields are a few bytes long, too short for SIMD search to pay for its setup.
fn split_at_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    s.as_bytes().iter().position(|&c| c == b).map(|i| (&s[..i], &s[i + 1..]))
}

/// Parse one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    if line.starts_with("_e{") {
        return parse_event(line).map(Line::Event);
    }
    if line.starts_with("_sc|") {
        return parse_service_check(line).map(Line::ServiceCheck);
    }
    let Some((head, after)) = split_at_byte(line, b'|') else {
        return Err(if line.contains(':') { ParseError::MissingType } else { ParseError::MissingValue });
    };
    let (name_part, values) = split_at_byte(head, b':').ok_or(ParseError::MissingValue)?;
    let (type_str, mut fields) = match split_at_byte(after, b'|') {
        Some((t, f)) => (t, Some(f)),
        None => (after, None),
    };
    let kind = MetricType::parse(type_str)?;
    let (name, influx_tags) = split_at_byte(name_part, b',').unwrap_or((name_part, ""));
    if !valid_name(name) {
        return Err(ParseError::BadName);
    }
    if !influx_tags.is_empty() && split_nonempty(influx_tags, ',').any(|t| !t.contains('=') || t.starts_with('=')) {
        return Err(ParseError::BadTags);
    }
    let (first, rest) = split_at_byte(values, b':').unwrap_or((values, ""));
    let first = parse_value(first, kind)?;
    if !rest.is_empty() || values.ends_with(':') {
        for v in rest.split(':') {
            parse_value(v, kind)?;
        }
    }
    let mut m = MetricLine {
        name,
        influx_tags,
        first,
        rest,
        kind,
        sample_rate: 1.0,
        tags: "",
        timestamp: None,
        container: None,
    };
    while let Some(f) = fields {
        let (field, next) = match split_at_byte(f, b'|') {
            Some((a, b)) => (a, Some(b)),
            None => (f, None),
        };
        fields = next;
        match field.as_bytes().first() {
            Some(b'@') => match field[1..].parse::<f64>() {
                Ok(r) if r > 0.0 && r <= 1.0 => m.sample_rate = r,
                _ => return Err(ParseError::BadSampleRate),
            },
            Some(b'#') => {
                let tags = &field[1..];
                if tags.starts_with(':') || memchr::memmem::find(tags.as_bytes(), b",:").is_some() {
                    return Err(ParseError::BadTags);
                }
                m.tags = tags;
            }
            Some(b'c') if field.as_bytes().get(1) == Some(&b':') => m.container = Some(&field[2..]),
            Some(b'T') => m.timestamp = Some(parse_int(&field[1..], ParseError::BadTimestamp)?),
            None => {}
            Some(_) => return Err(ParseError::UnknownField),
        }
    }
    Ok(Line::Metric(m))
}

/// `_e{title_len,text_len}:title|text|…` — lengths are in bytes (UTF-8).
fn parse_event(line: &str) -> Result<EventLine<'_>, ParseError> {
    let rest = &line[3..];
    let (lens, rest) = rest.split_once("}:").ok_or(ParseError::BadEvent)?;
    let (tl, xl) = lens.split_once(',').ok_or(ParseError::BadEvent)?;
    let tl: usize = tl.parse().map_err(|_| ParseError::BadEvent)?;
    let xl: usize = xl.parse().map_err(|_| ParseError::BadEvent)?;
    let title = rest.get(..tl).ok_or(ParseError::BadEvent)?;
    let after = rest.get(tl..).ok_or(ParseError::BadEvent)?;
    let after = after.strip_prefix('|').ok_or(ParseError::BadEvent)?;
    let text = after.get(..xl).ok_or(ParseError::BadEvent)?;
    let tail = after.get(xl..).ok_or(ParseError::BadEvent)?;
    if title.is_empty() {
        return Err(ParseError::BadEvent);
    }
    let mut ev = EventLine { title, text, timestamp: None, hostname: None, priority: None, alert_type: None, tags: "" };
    if tail.is_empty() {
        return Ok(ev);
    }
    let tail = tail.strip_prefix('|').ok_or(ParseError::BadEvent)?;
    for field in tail.split('|') {
        if let Some(v) = field.strip_prefix("d:") {
            ev.timestamp = Some(parse_int(v, ParseError::BadTimestamp)?);
        } else if let Some(v) = field.strip_prefix("h:") {
            ev.hostname = Some(v);
        } else if let Some(v) = field.strip_prefix("p:") {
            ev.priority = Some(v);
        } else if let Some(v) = field.strip_prefix("t:") {
            ev.alert_type = Some(v);
        } else if let Some(v) = field.strip_prefix("k:").or_else(|| field.strip_prefix("s:")) {
            let _ = v; // aggregation key, source type: accepted and ignored
        } else if let Some(v) = field.strip_prefix('#') {
            ev.tags = v;
        } else if !field.is_empty() {
            return Err(ParseError::UnknownField);
        }
    }
    Ok(ev)
}

/// `_sc|name|status|d:ts|h:host|#tags|m:message` (the message is last and may hold `|`).
fn parse_service_check(line: &str) -> Result<ServiceCheckLine<'_>, ParseError> {
    let rest = &line[4..];
    let (body, message) = match rest.find("|m:") {
        Some(i) => (&rest[..i], Some(&rest[i + 3..])),
        None => (rest, None),
    };
    let mut fields = body.split('|');
    let name = fields.next().filter(|n| valid_name(n)).ok_or(ParseError::BadServiceCheck)?;
    let status = match fields.next() {
        Some("0") => 0,
        Some("1") => 1,
        Some("2") => 2,
        Some("3") => 3,
        _ => return Err(ParseError::BadServiceCheck),
    };
    let mut sc = ServiceCheckLine { name, status, timestamp: None, hostname: None, tags: "", message };
    for field in fields {
        if let Some(v) = field.strip_prefix("d:") {
            sc.timestamp = Some(parse_int(v, ParseError::BadTimestamp)?);
        } else if let Some(v) = field.strip_prefix("h:") {
            sc.hostname = Some(v);
        } else if let Some(v) = field.strip_prefix('#') {
            sc.tags = v;
        } else if !field.is_empty() {
            return Err(ParseError::UnknownField);
        }
    }
    Ok(sc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn metric(line: &str) -> MetricLine<'_> {
        match parse_line(line.as_bytes()) {
            Ok(Line::Metric(m)) => m,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn the_whole_dialect() {
        let m = metric("op.retries:3|c");
        assert_eq!(
            (m.name, m.kind, m.sample_rate, m.values().collect::<Vec<_>>()),
            ("op.retries", MetricType::Counter, 1.0, vec![Value::Number(3.0)])
        );
        let m = metric("pool.size:-2.5|c|@0.1");
        assert_eq!((m.sample_rate, m.values().next()), (0.1, Some(Value::Number(-2.5))));
        assert_eq!(metric("cache.size:+4|g").values().next(), Some(Value::Delta(4.0)));
        assert_eq!(metric("cache.size:-4|g").values().next(), Some(Value::Delta(-4.0)));
        assert_eq!(metric("cache.size:4|g").values().next(), Some(Value::Number(4.0)));
        let m = metric("op.duration:12:15.5:20|d|#op:vm.list,outcome:ok,canary|T1767225600|c:abc123");
        assert_eq!(m.values().collect::<Vec<_>>(), [12.0, 15.5, 20.0].map(Value::Number));
        assert_eq!(m.tag_pairs().collect::<Vec<_>>(), [("op", "vm.list"), ("outcome", "ok"), ("canary", "")]);
        assert_eq!((m.timestamp, m.container), (Some(1_767_225_600), Some("abc123")));
        let m = metric("op.duration,op=vm.list,outcome=ok:250|ms|@0.5");
        assert_eq!((m.name, m.kind), ("op.duration", MetricType::Timer));
        assert_eq!(m.tag_pairs().collect::<Vec<_>>(), [("op", "vm.list"), ("outcome", "ok")]);
        assert_eq!(metric("users:alice|s").values().next(), Some(Value::Member("alice")));
        assert_eq!(metric("h:1|h").kind, MetricType::Histogram);
        assert_eq!(metric("tag.value.with.colon:1|c|#url:http://x").tag_pairs().next(), Some(("url", "http://x")));
    }

    #[test]
    fn events_and_service_checks() {
        let Ok(Line::Event(e)) = parse_line(b"_e{5,14}:vm.up|QuotaExceeded!|t:error|#op:vm.start,service:api") else {
            panic!()
        };
        assert_eq!((e.title, e.text, e.alert_type), ("vm.up", "QuotaExceeded!", Some("error")));
        assert_eq!(e.tag_pairs().collect::<Vec<_>>(), [("op", "vm.start"), ("service", "api")]);
        // Lengths count bytes, and the text may contain '|'.
        let Ok(Line::Event(e)) = parse_line("_e{2,5}:é|a|b|c|d:17".as_bytes()) else { panic!() };
        assert_eq!((e.title, e.text, e.timestamp), ("é", "a|b|c", Some(17)));
        let Ok(Line::ServiceCheck(sc)) = parse_line(b"_sc|db.up|2|d:10|#env:prod|m:down | really") else { panic!() };
        assert_eq!(
            (sc.name, sc.status, sc.timestamp, sc.tags, sc.message),
            ("db.up", 2, Some(10), "env:prod", Some("down | really"))
        );
    }

    #[test]
    fn malformed_lines_name_their_reason() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"\xff\xfe:1|c", ParseError::NotUtf8),
            (b"no.value|c", ParseError::MissingValue),
            (b"no.type:1", ParseError::MissingType),
            (b"x:1|q", ParseError::UnknownType),
            (b"x:1|", ParseError::UnknownType),
            (b":1|c", ParseError::BadName),
            (b"a\x07b:1|c", ParseError::BadName),
            (b"x:abc|c", ParseError::BadValue),
            (b"x:|c", ParseError::BadValue),
            (b"x:1::2|d", ParseError::BadValue),
            (b"x:nan|g", ParseError::BadValue),
            (b"x:inf|ms", ParseError::BadValue),
            (b"x:|s", ParseError::BadValue),
            (b"x:1|c|@0", ParseError::BadSampleRate),
            (b"x:1|c|@1.5", ParseError::BadSampleRate),
            (b"x:1|c|@abc", ParseError::BadSampleRate),
            (b"x:1|c|Tsoon", ParseError::BadTimestamp),
            (b"x,novalue:1|c", ParseError::BadTags),
            (b"x:1|c|#:v", ParseError::BadTags),
            (b"x:1|c|zzz", ParseError::UnknownField),
            (b"_e{10,2}:short|ab", ParseError::BadEvent),
            (b"_e{x,2}:t|ab", ParseError::BadEvent),
            (b"_e{1,2}:t", ParseError::BadEvent),
            (b"_sc|name|7", ParseError::BadServiceCheck),
            (b"_sc||0", ParseError::BadServiceCheck),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line).err(), Some(*want), "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn datagrams_split_into_lines() {
        let got: Vec<&[u8]> = lines(b"a:1|c\nb:2|c\r\n\n\nc:3|c").collect();
        assert_eq!(got, [&b"a:1|c"[..], b"b:2|c", b"c:3|c"]);
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,30}"
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for l in lines(&bytes) {
                let _ = parse_line(l);
            }
        }

        #[test]
        fn never_panics_on_near_miss_lines(s in "[_a-z.:|@#,=eTcs{}0-9+-]{0,60}") {
            let _ = parse_line(s.as_bytes());
        }

        #[test]
        fn valid_lines_round_trip(
            n in name(),
            kind in prop_oneof![Just("c"), Just("g"), Just("ms"), Just("h"), Just("d")],
            values in proptest::collection::vec(-1e9f64..1e9, 1..5),
            rate in proptest::option::of(0.001f64..=1.0),
            tags in proptest::collection::vec((name(), proptest::option::of("[a-z0-9._/-]{1,10}")), 0..5),
            ts in proptest::option::of(0i64..4_000_000_000),
        ) {
            let vals: Vec<String> = values.iter().map(|v| {
                // Gauges without a sign are absolute; write positive values for them.
                if kind == "g" { format!("{}", v.abs()) } else { format!("{v}") }
            }).collect();
            let mut line = format!("{n}:{}|{kind}", vals.join(":"));
            if let Some(r) = rate { line.push_str(&format!("|@{r}")); }
            if !tags.is_empty() {
                let t: Vec<String> = tags.iter().map(|(k, v)| match v { Some(v) => format!("{k}:{v}"), None => k.clone() }).collect();
                line.push_str(&format!("|#{}", t.join(",")));
            }
            if let Some(ts) = ts { line.push_str(&format!("|T{ts}")); }
            let m = metric(&line);
            prop_assert_eq!(m.name, n.as_str());
            prop_assert_eq!(m.kind.as_str(), kind);
            prop_assert_eq!(m.sample_rate, rate.unwrap_or(1.0));
            prop_assert_eq!(m.timestamp, ts);
            let got: Vec<f64> = m.values().map(|v| match v { Value::Number(x) | Value::Delta(x) => x, Value::Member(_) => f64::NAN }).collect();
            let want: Vec<f64> = vals.iter().map(|v| v.parse().unwrap()).collect();
            prop_assert_eq!(got, want);
            let got_tags: Vec<(String, String)> = m.tag_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let want_tags: Vec<(String, String)> = tags.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect();
            prop_assert_eq!(got_tags, want_tags);
        }
    }
}
