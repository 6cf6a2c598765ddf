//! The receive thread's fast path: the common line shapes split on bytes, with no UTF-8
//! pass over the datagram and no allocation.
//!
//! [`split`] takes `name[,k=v…]:value[:value…]|type[|@rate][|#tags]` for the numeric types and
//! answers `None` for anything else (events, service checks, sets, `|T`, `|c:`, exponents,
//! long decimals, invalid bytes…), which then goes through [`super::parser::parse_line`], the
//! reference. What `split` returns is what `parse_line` returns for the same line, with one
//! exception it leaves to its caller: the series' identity (name, Influx tags, DogStatsD
//! tags) is not validated here. The aggregator only takes a fast line for a series it
//! already holds, and it created that series from the same bytes through `parse_line`, so the
//! identity was validated once, when it was first seen. A property test checks both claims.

use super::parser::{MetricType, Value};

/// A metric line split on the fast path. Fields borrow from the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FastLine<'a> {
    /// The name with its Influx-style tags, `name[,k=v…]`, as received (not validated).
    pub name_part: &'a [u8],
    /// Type (never a set).
    pub kind: MetricType,
    /// The first value.
    pub first: Value<'static>,
    /// The values after the first (`:`-separated, each already checked to parse), or empty.
    pub rest: &'a [u8],
    /// Sample rate in (0, 1].
    pub sample_rate: f64,
    /// DogStatsD tags (`k:v,k2`), or empty (not validated).
    pub tags: &'a [u8],
}

impl FastLine<'_> {
    /// The values, in order.
    pub fn values(&self) -> impl Iterator<Item = Value<'static>> + '_ {
        let kind = self.kind;
        let rest = (!self.rest.is_empty()).then(|| self.rest.split(|&b| b == b':'));
        // `split` checked every value of `rest`, so none is dropped here.
        std::iter::once(self.first).chain(rest.into_iter().flatten().filter_map(move |v| value(v, kind)))
    }
}

/// Split `line` (no newline) if it has one of the common shapes; `None` sends it to the
/// reference parser.
pub fn split(line: &[u8]) -> Option<FastLine<'_>> {
    // The name ends at the first ':' before the first '|'; a line without both is
    // malformed and the reference names why.
    split_at(line, marks(line)?)
}

/// Where a metric line's fields start: the first `|`, the first `:` before it, and whether
/// another `:` follows that one before the `|` (several values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    /// The first `:` (the name's end).
    pub colon: usize,
    /// The first `|` (the values' end).
    pub bar: usize,
    /// Whether the values hold a `:`.
    pub several: bool,
}

/// [`split`] with the line's [`Marks`] already found (by [`scan`]).
#[inline(always)]
pub fn split_at(line: &[u8], Marks { colon, bar, several }: Marks) -> Option<FastLine<'_>> {
    // `_e{` events and `_sc|` service checks; other names starting with `_` are rare enough
    // to take the long way.
    if line.first() == Some(&b'_') {
        return None;
    }
    let name_part = &line[..colon];
    let values = &line[colon + 1..bar];
    let after = &line[bar + 1..];
    // The type by its first byte, from a table: a chain of tests on it mispredicted about
    // every other line, the types of a stream's lines following no pattern.
    let kind = KINDS[usize::from(*after.first()?)]?;
    let timer = kind == MetricType::Timer;
    // `ms` needs its `s` (tested with `&`, not `&&`: one branch, rarely taken).
    if timer & (after.get(1).copied().unwrap_or(0) != b's') {
        return None;
    }
    let mut fields = after.get(1 + usize::from(timer)..)?;
    if !(fields.is_empty() || fields[0] == b'|') {
        return None;
    }
    let (first, rest) = if several {
        let i = find(values, b':')?;
        let rest = &values[i + 1..];
        // Every later value is checked here, so `FastLine::values` drops none.
        for v in rest.split(|&b| b == b':') {
            value(v, kind)?;
        }
        (&values[..i], rest)
    } else {
        (values, &[][..])
    };
    let first = value(first, kind)?;
    let mut line = FastLine { name_part, kind, first, rest, sample_rate: 1.0, tags: &[] };
    while let [b'|', more @ ..] = fields {
        let end = find(more, b'|').unwrap_or(more.len());
        let field = &more[..end];
        fields = &more[end..];
        match field {
            [] => {}
            [b'@', rate @ ..] => match number(rate) {
                Some(r) if r > 0.0 && r <= 1.0 => line.sample_rate = r,
                _ => return None,
            },
            [b'#', tags @ ..] => line.tags = tags,
            _ => return None,
        }
    }
    Some(line)
}

/// The fast path's types by their first byte (`s`, sets, take the long way).
const KINDS: [Option<MetricType>; 256] = {
    let mut t = [None; 256];
    t[b'c' as usize] = Some(MetricType::Counter);
    t[b'g' as usize] = Some(MetricType::Gauge);
    t[b'm' as usize] = Some(MetricType::Timer);
    t[b'h' as usize] = Some(MetricType::Histogram);
    t[b'd' as usize] = Some(MetricType::Distribution);
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` equal to `b`, as the top bit of each byte. Only the lowest flag is
/// exact: a borrow can flag bytes above the first match, never below it.
#[inline]
fn matches(word: u64, b: u8) -> u64 {
    let x = word ^ (LO * u64::from(b));
    x.wrapping_sub(LO) & !x & HI
}

/// The end of the first line of `buf` (its `\n`, or the end) and, within it, its [`Marks`]
/// (`None` without a `:` before the first `|`): one pass, sixteen bytes at a time, three byte
/// compares each (a line of the usual 20 bytes takes two steps).
#[inline]
pub fn scan(buf: &[u8]) -> (usize, Option<Marks>) {
    let (mut colon, mut bar) = (None, None);
    // A second `:` before the `|`.
    let mut several = false;
    let marks = |colon: Option<usize>, bar: Option<usize>, several: bool| match (colon, bar) {
        (Some(colon), Some(bar)) => Some(Marks { colon, bar, several }),
        _ => None,
    };
    let mut at = 0;
    loop {
        let chunk = match buf.get(at..).and_then(<[u8]>::first_chunk::<16>) {
            Some(c) => Lanes::load(c),
            None => {
                // The last few bytes, padded with zeros, which match none of the three.
                let rest = buf.get(at..).unwrap_or_default();
                let mut tail = [0u8; 16];
                tail[..rest.len()].copy_from_slice(rest);
                Lanes::load(&tail)
            }
        };
        let nls = chunk.eq(b'\n');
        // The lanes before the line's end (all of them when the line goes on).
        let in_line = nls.wrapping_sub(1) & !nls;
        if bar.is_none() {
            let mut colons = chunk.eq(b':') & in_line;
            let bars = chunk.eq(b'|') & in_line;
            if bars != 0 {
                let b = bars.trailing_zeros();
                bar = Some(at + b as usize);
                colons &= (1 << b) - 1;
            }
            if colons != 0 {
                // Two in this chunk, or one more after an earlier chunk's.
                several |= colon.is_some() || colons & (colons - 1) != 0;
                if colon.is_none() {
                    colon = Some(at + colons.trailing_zeros() as usize);
                }
            }
        }
        if nls != 0 {
            return (at + nls.trailing_zeros() as usize, marks(colon, bar, several));
        }
        if at + 16 >= buf.len() {
            return (buf.len(), marks(colon, bar, several));
        }
        at += 16;
    }
}

/// Sixteen bytes compared at once with SSE2 (every x86-64 CPU has it; the targets that
/// disable it, such as kernels, take the portable loop below).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[derive(Clone, Copy)]
struct Lanes(std::arch::x86_64::__m128i);

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
impl Lanes {
    #[inline(always)]
    fn load(bytes: &[u8; 16]) -> Self {
        // SAFETY: `bytes` is 16 readable bytes, and an unaligned load (`loadu`) has no
        // alignment requirement; SSE2 is enabled for this build (the `cfg` above).
        Self(unsafe { std::arch::x86_64::_mm_loadu_si128(bytes.as_ptr().cast()) })
    }

    /// Bit `i` set where byte `i` is `b`.
    #[inline(always)]
    fn eq(self, b: u8) -> u32 {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set1_epi8};
        // SAFETY: these need SSE2 only, enabled for this build (the `cfg` above).
        unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(self.0, _mm_set1_epi8(b as i8))) as u32 }
    }
}

/// Sixteen bytes compared in a loop the compiler vectorises where it can.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[derive(Clone, Copy)]
struct Lanes([u8; 16]);

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
impl Lanes {
    #[inline(always)]
    fn load(bytes: &[u8; 16]) -> Self {
        Self(*bytes)
    }

    /// Bit `i` set where byte `i` is `b`.
    #[inline(always)]
    fn eq(self, b: u8) -> u32 {
        self.0.iter().enumerate().fold(0, |m, (i, &x)| m | (u32::from(x == b) << i))
    }
}

/// The [`Marks`] of a line (no newline).
fn marks(line: &[u8]) -> Option<Marks> {
    let (colon, bar) = colon_and_bar(line)?;
    Some(Marks { colon, bar, several: find(&line[colon + 1..bar], b':').is_some() })
}

/// The first `|` and the first `:` before it, in one pass eight bytes at a time.
#[inline]
fn colon_and_bar(s: &[u8]) -> Option<(usize, usize)> {
    let mut colon = None;
    let mut at = 0;
    while let Some(w) = s.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*w);
        let bars = matches(w, b'|');
        let bar = (bars != 0).then(|| at + (bars.trailing_zeros() / 8) as usize);
        if colon.is_none() {
            let colons = matches(w, b':');
            if colons != 0 {
                colon = Some(at + (colons.trailing_zeros() / 8) as usize);
            }
        }
        if let Some(bar) = bar {
            return colon.filter(|&c| c < bar).map(|c| (c, bar));
        }
        at += 8;
    }
    let bar = at + s[at..].iter().position(|&c| c == b'|')?;
    let colon = colon.or_else(|| s[at..bar].iter().position(|&c| c == b':').map(|i| at + i))?;
    Some((colon, bar))
}

/// The first `b` in `s`, eight bytes at a time: StatsD fields are a few bytes long, too short
/// for a SIMD search to pay for its setup, too long for a plain loop to be cheap.
#[inline]
pub fn find(s: &[u8], b: u8) -> Option<usize> {
    let mut at = 0;
    while let Some(word) = s.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let found = matches(u64::from_le_bytes(*word), b);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    // The last 0–7 bytes as one word, zeros past the end: a loop over them mispredicted its
    // exit about once a line (a tag field such as `#t:v24` is all tail).
    // Only the tail's own bytes' flags: the padding would match a search for 0.
    let n = s.len() - at;
    let found = matches(tail_word(&s[at..]), b) & ((1u64 << (8 * n)) - 1);
    (found != 0).then(|| at + (found.trailing_zeros() / 8) as usize)
}

/// The bytes of `s` (at most 7) as a little-endian word, zeros past its end: two
/// overlapping 4-byte loads from 4 bytes on, three single bytes below, never a loop.
#[inline(always)]
fn tail_word(s: &[u8]) -> u64 {
    let n = s.len();
    debug_assert!(n < 8);
    let byte = |i: usize| u64::from(s[i]) << (8 * i);
    match (s.first_chunk::<4>(), s.len().checked_sub(4).and_then(|at| s[at..].first_chunk::<4>())) {
        // Where the two overlap they read the same bytes.
        (Some(lo), Some(hi)) => {
            u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << (8 * (n - 4))
        }
        _ if n > 0 => byte(0) | byte(n / 2) | byte(n - 1),
        _ => 0,
    }
}

/// One value as the reference parses it, or `None` when the fast path cannot say.
#[inline(always)]
fn value(v: &[u8], kind: MetricType) -> Option<Value<'static>> {
    // The sign first: rarely there, so that test is well predicted, where a test of the
    // line's type (a gauge or not) mispredicted about one line in six.
    if matches!(v.first(), Some(b'+' | b'-')) && kind == MetricType::Gauge {
        return number(v).map(Value::Delta);
    }
    if kind == MetricType::Set {
        return None;
    }
    number(v).map(Value::Number)
}

/// Powers of ten exactly representable as `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `[+-]digits[.digits]` with at most 15 significant digits, as `str::parse::<f64>` reads it;
/// `None` for every other form (the caller then asks the reference parser).
///
/// Exact: the digits form an integer `m < 2^53` and `10^k` is exact for `k ≤ 22`, so
/// `m / 10^k` is one correctly rounded division, which is the correctly rounded value of the
/// decimal (Clinger's fast path), the same `f64` the standard library returns.
#[inline(always)]
pub fn number(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    // Most values are small integers.
    if !digits.is_empty() && digits.len() <= 15 {
        let mut m = 0u64;
        let mut all_digits = true;
        for &b in digits {
            let d = b.wrapping_sub(b'0');
            all_digits &= d <= 9;
            m = m * 10 + u64::from(d);
        }
        if all_digits {
            // `m < 10^15` fits an `i64`, whose conversion is one instruction (a `u64`'s is not).
            let x = m as i64 as f64;
            return Some(if neg { -x } else { x });
        }
    }
    let mut m: u64 = 0;
    let mut n = 0usize;
    let mut frac: Option<usize> = None;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(b - b'0');
                n += 1;
                if n > 15 {
                    return None;
                }
            }
            b'.' if frac.is_none() => frac = Some(n),
            _ => return None,
        }
    }
    // At least one digit on each side of a '.': "1." and ".5" go to the reference.
    let scale = match frac {
        None => 0,
        Some(at) if at > 0 && at < n => n - at,
        Some(_) => return None,
    };
    if n == 0 {
        return None;
    }
    let x = m as i64 as f64 / POW10[scale];
    Some(if neg { -x } else { x })
}

#[cfg(test)]
mod tests {
    use super::super::parser::{Line, ParseError, parse_line};
    use super::*;
    use proptest::prelude::*;

    /// The reference's reading of a line the fast path took, in the fast path's terms.
    fn reference(line: &[u8]) -> Result<FastLine<'_>, ParseError> {
        match parse_line(line)? {
            Line::Metric(m) => {
                let mut values = m.values();
                Ok(FastLine {
                    name_part: line
                        .get(..m.name.len() + usize::from(!m.influx_tags.is_empty()) + m.influx_tags.len())
                        .unwrap_or_default(),
                    kind: m.kind,
                    first: match values.next() {
                        Some(Value::Number(x)) => Value::Number(x),
                        Some(Value::Delta(x)) => Value::Delta(x),
                        other => panic!("{other:?}"),
                    },
                    rest: &[],
                    sample_rate: m.sample_rate,
                    tags: m.tags.as_bytes(),
                })
            }
            other => panic!("the fast path took a non-metric line: {other:?}"),
        }
    }

    fn check(line: &[u8]) -> Result<(), TestCaseError> {
        let Some(fast) = split(line) else { return Ok(()) };
        match reference(line) {
            Ok(slow) => {
                // The name and its Influx tags are one span of the line; the reference's
                // split of it is the fast path's (a trailing `,` with no tags aside).
                let Ok(Line::Metric(m)) = parse_line(line) else { unreachable!("the reference took it") };
                let (name, influx) = match find(fast.name_part, b',') {
                    Some(i) => (&fast.name_part[..i], &fast.name_part[i + 1..]),
                    None => (fast.name_part, &[][..]),
                };
                prop_assert_eq!((name, influx), (m.name.as_bytes(), m.influx_tags.as_bytes()));
                prop_assert_eq!(
                    FastLine { rest: &[], name_part: slow.name_part, ..fast },
                    slow,
                    "{:?}",
                    String::from_utf8_lossy(line)
                );
                let fast_values: Vec<Value<'_>> = fast.values().collect();
                let slow_values: Vec<Value<'_>> = m.values().collect();
                prop_assert_eq!(fast_values.len(), slow_values.len());
                for (a, b) in fast_values.iter().zip(&slow_values) {
                    // Bit for bit: -0 and 0 differ.
                    let bits = |v: &Value<'_>| match v {
                        Value::Number(x) => (0, x.to_bits()),
                        Value::Delta(x) => (1, x.to_bits()),
                        Value::Member(_) => (2, 0),
                    };
                    prop_assert_eq!(bits(a), bits(b));
                }
            }
            // Only the identity is left to the aggregator, which validates it on creation.
            Err(e) => prop_assert!(
                matches!(e, ParseError::NotUtf8 | ParseError::BadName | ParseError::BadTags),
                "fast path took {:?}, the reference refused it: {e:?}",
                String::from_utf8_lossy(line)
            ),
        }
        Ok(())
    }

    proptest! {
        /// `scan` cuts a datagram where `lines` does, and finds what `marks` finds.
        #[test]
        fn scan_cuts_lines_as_the_reference_does(s in "[a-z0-9:|\n\r\u{e9}]{0,90}") {
            let mut rest = s.as_bytes();
            let mut got = Vec::new();
            while !rest.is_empty() {
                let (end, cb) = scan(rest);
                let line = &rest[..end];
                prop_assert_eq!(cb, marks(line));
                // As the aggregator does: a `\r` before the `\n` is not part of the line.
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    got.push(line);
                }
                rest = rest.get(end + 1..).unwrap_or_default();
            }
            let want: Vec<&[u8]> = super::super::parser::lines(s.as_bytes()).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn colon_and_bar_find_the_name_and_the_type() {
        for pad in 0..20 {
            let name = "n".repeat(pad);
            for line in
                [format!("{name}:1|c"), format!("{name}:1:2|c|#a:b"), format!("{name}|c:1"), format!("{name}:1")]
            {
                let want = line.find('|').and_then(|bar| line[..bar].find(':').map(|c| (c, bar)));
                assert_eq!(colon_and_bar(line.as_bytes()), want, "{line}");
            }
        }
    }

    #[test]
    fn find_finds_the_first_byte_at_every_position() {
        // Fillers next to `|` (0x7c) in value, a zero byte, and one with the top bit set.
        for (len, filler) in (0..40).flat_map(|len| [b'a', 0, 0x7b, 0x7d, 0xfc].map(|f| (len, f))) {
            for at in 0..len {
                let mut s = vec![filler; len];
                s[at] = b'|';
                if at + 3 < len {
                    s[at + 3] = b'|';
                }
                assert_eq!(find(&s, b'|'), Some(at), "{len} {at} {filler}");
            }
            assert_eq!(find(&vec![filler; len], b'|'), None, "{len} {filler}");
            // A zero byte is found where it is, and the tail's padding is not one.
            let zero_at = if filler == 0 { (len > 0).then_some(0) } else { None };
            assert_eq!(find(&vec![filler; len], 0), zero_at, "{len} {filler}");
            assert_eq!(find(&vec![0x7c ^ 0x80; len], b'|'), None);
        }
    }

    #[test]
    fn numbers_read_as_the_standard_library_reads_them() {
        for s in ["0", "-0", "+7", "12.5", "-2.5", "0.001", "999999999999999", "123456.789012345", "1e3", "1.", ".5"] {
            let want = s.parse::<f64>().ok().filter(|v| v.is_finite());
            match number(s.as_bytes()) {
                Some(x) => assert_eq!(Some(x.to_bits()), want.map(f64::to_bits), "{s}"),
                None => assert!(["1e3", "1.", ".5"].contains(&s), "{s} should take the fast path"),
            }
        }
        assert_eq!(number(b"1234567890123456"), None, "16 digits go to the reference");
    }

    #[test]
    fn the_common_shapes_take_the_fast_path() {
        for line in [&b"bench.c.1:3|c"[..], b"a.b:250|ms|@0.5|#op:vm.list,outcome:ok", b"g,k=v:-3|g", b"x:1:2:3|d"] {
            assert!(split(line).is_some(), "{:?}", String::from_utf8_lossy(line));
            check(line).expect("agrees with the reference");
        }
        for line in [&b"u:alice|s"[..], b"x:1|c|T17", b"_e{1,1}:a|b", b"x:1e3|c", b"x:1|c|c:abc", b"x:1|cc"] {
            assert!(split(line).is_none(), "{:?}", String::from_utf8_lossy(line));
        }
    }

    /// Lines of a few series in every shape: fast, slow (sets, `|T`, events), new and held,
    /// valid and not.
    fn any_line() -> impl Strategy<Value = String> {
        let series = prop_oneof![
            Just("op.calls"),
            Just("op.duration"),
            Just("x,k=v"),
            Just("x,=v"),
            Just("x,"),
            Just("x,k=v,"),
            Just("bad\u{7}name"),
            Just("pool.size"),
        ];
        let value = prop_oneof![
            (0u32..1000).prop_map(|v| v.to_string()),
            Just("-2.5".to_string()),
            Just("+3".to_string()),
            Just("1e308".to_string()),
            Just("1:2:3".to_string()),
            Just("1::2".to_string()),
            Just("abc".to_string()),
            Just("0.125".to_string()),
        ];
        let kind = prop_oneof![Just("c"), Just("g"), Just("ms"), Just("h"), Just("d"), Just("s"), Just("q")];
        let field = prop_oneof![
            Just(""),
            Just("|@0.5"),
            Just("|@0"),
            Just("|#t:a"),
            Just("|#t:b,u"),
            Just("|#:x"),
            Just("|T1767225590"),
            Just("|c:abc"),
            Just("||#t:a"),
            Just("|#t:a|#t:b"),
        ];
        prop_oneof![
            8 => (series, value, kind, field).prop_map(|(s, v, k, f)| format!("{s}:{v}|{k}{f}")),
            1 => Just("_e{2,2}:hi|yo|t:error|#op:x".to_string()),
            1 => Just("_sc|db|0".to_string()),
            // Empty lines, and a line ending `\r\n`.
            1 => Just(String::new()),
            1 => Just("op.calls:1|c\r".to_string()),
        ]
    }

    /// Flushes and counts of `datagrams` through the four ways in: one line at a time, in
    /// groups a datagram at a time, in groups across the datagrams of a batch (as
    /// `recvmmsg` hands them over), and the reference parser alone.
    fn same_through_either_path(datagrams: &[Vec<String>]) -> Result<(), TestCaseError> {
        use super::super::aggregate::{Aggregator, AggregatorConfig, Flush};
        // Two spellings of one series (`x,k=v` and `x,k=v,`) are two slots whose points
        // the writer merges; their order within the flush is the hash map's, so compare
        // in a total order.
        let points = |f: &Flush| {
            let mut p: Vec<String> = f.points.iter().map(|p| format!("{p:?}")).collect();
            p.sort();
            p
        };
        // Series idle for a flush leave memory: the live table (and its index) is rebuilt.
        let cfg =
            AggregatorConfig { max_series: 12, max_series_per_name: 5, idle_flushes: 1, ..AggregatorConfig::default() };
        let t0 = 1_767_225_600_000;
        let mut fast = Aggregator::new(cfg.clone(), t0, 10_000);
        let mut grouped = Aggregator::new(cfg.clone(), t0, 10_000);
        grouped.always_grouped();
        let mut batched = Aggregator::new(cfg.clone(), t0, 10_000);
        batched.always_grouped();
        let mut slow = Aggregator::new(cfg, t0, 10_000);
        let mut batch = Vec::new();
        for (i, d) in datagrams.iter().enumerate() {
            let buf = d.join("\n");
            fast.ingest_datagram(buf.as_bytes());
            grouped.ingest_datagram(buf.as_bytes());
            slow.ingest_datagram_reference(buf.as_bytes());
            batch.push(buf);
            if i % 4 == 3 || i + 1 == datagrams.len() {
                batched.ingest_batch(std::mem::take(&mut batch).iter().map(|b| Some(b.as_bytes())));
            }
            if i % 4 == 3 {
                let (a, g, b) = (fast.flush(), grouped.flush(), slow.flush());
                prop_assert_eq!(points(&a), points(&b));
                prop_assert_eq!(points(&g), points(&b));
                let c = batched.flush();
                prop_assert_eq!(points(&c), points(&b));
                prop_assert_eq!(c.events, b.events.clone());
                prop_assert_eq!(a.events, b.events.clone());
                prop_assert_eq!(g.events, b.events);
            }
        }
        let (a, g, b) = (fast.flush(), grouped.flush(), slow.flush());
        prop_assert_eq!(points(&a), points(&b));
        prop_assert_eq!(points(&g), points(&b));
        let c = batched.flush();
        prop_assert_eq!(points(&c), points(&b));
        prop_assert_eq!(c.events, b.events.clone());
        prop_assert_eq!(a.events, b.events.clone());
        prop_assert_eq!(g.events, b.events);
        prop_assert_eq!(fast.stats(), slow.stats());
        prop_assert_eq!(grouped.stats(), slow.stats());
        prop_assert_eq!(batched.stats(), slow.stats());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The same with datagrams of many groups (up to 140 lines), whose lines look up
        /// series that lines of earlier groups created.
        #[test]
        fn long_datagrams_flush_the_same_through_either_path(
            datagrams in proptest::collection::vec(proptest::collection::vec(any_line(), 40..140), 1..5),
        ) {
            same_through_either_path(&datagrams)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// What a user sees (every flushed point and every count of what was dropped) is the
        /// same through the fast path as through the reference parser alone, whether lines are
        /// looked up one by one or in groups (datagrams longer than a group included).
        #[test]
        fn the_aggregator_flushes_the_same_through_either_path(
            datagrams in proptest::collection::vec(proptest::collection::vec(any_line(), 1..24), 1..12),
        ) {
            same_through_either_path(&datagrams)?;
        }

        #[test]
        fn agrees_with_the_reference_on_near_miss_lines(s in "[a-z.:|@#,=+0-9-]{0,40}") {
            check(s.as_bytes())?;
        }

        #[test]
        fn agrees_with_the_reference_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..60)) {
            check(&bytes)?;
        }

        #[test]
        fn agrees_with_the_reference_on_generated_lines(
            name in "[a-z][a-z0-9._]{0,12}(,[a-z]{1,3}=[a-z0-9]{0,3}){0,2}",
            values in proptest::collection::vec(
                prop_oneof![
                    (0u64..100_000).prop_map(|v| v.to_string()),
                    (-1e6f64..1e6).prop_map(|v| v.to_string()),
                    (-1e6f64..1e6).prop_map(|v| format!("{v:.3}")),
                    Just("-0".to_string()),
                    Just("+3".to_string()),
                    Just("0.1".to_string()),
                ],
                1..4,
            ),
            kind in prop_oneof![Just("c"), Just("g"), Just("ms"), Just("h"), Just("d")],
            rate in proptest::option::of(prop_oneof![Just("0.5".to_string()), Just("1".to_string()), (0.0001f64..1.5).prop_map(|r| r.to_string())]),
            tags in proptest::option::of("[a-z]{1,4}:[a-z0-9]{1,4}(,[a-z]{1,4}(:[a-z0-9]{1,4})?){0,3}"),
        ) {
            let mut line = format!("{name}:{}|{kind}", values.join(":"));
            if let Some(r) = rate { line.push_str(&format!("|@{r}")); }
            if let Some(t) = tags { line.push_str(&format!("|#{t}")); }
            check(line.as_bytes())?;
        }
    }
}
