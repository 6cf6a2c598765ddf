//! Value columns of a chunk: one `f64` per point, coded in the cheapest of three modes.
//!
//! * **Integers** (also decimals with up to 6 digits, scaled, when that is exact): deltas
//!   from the previous value or offsets from the column's minimum, whichever is smaller, as
//!   [`Layout::Framed`] codes.
//! * **Float deltas**: a double's bits mapped to an integer that orders like the double
//!   ([`ordered`]), then the same integer coding.
//! * **Gorilla XOR** of consecutive bit patterns.
//!
//! Exact size models pick the mode; everything round-trips bit for bit. Columns of chunk
//! formats 1 and 2 (schema 4 and older) have a 1-bit mode and flagged codes, and are read.

use crate::codec::{
    BitReader, BitWriter, CodePlan, Layout, Truncated, plan_codes, read_codes, unzigzag, write_codes, zigzag,
};

const MODE_INT: u64 = 0;
const MODE_XOR: u64 = 1;
/// Doubles as integers: bit patterns mapped by [`ordered`], then an integer column. A random
/// walk's step is a ~47-bit integer there, where XOR pays for the carries it flips and a
/// 14-bit window header whenever the step's size changes: about 48.7 against 53.9 bits per
/// value on the footprint benchmark's walks.
const MODE_FLOAT_DELTA: u64 = 2;
/// Bits of a column's mode in formats 4 and 5 (1 in formats 1 and 2).
const MODE_BITS: u32 = 2;
/// The largest decimal scale (10^k) tried for the integer mode.
pub(crate) const MAX_SCALE: u32 = 6;
/// 2^53: integers beyond are not all exact as doubles.
pub(crate) const INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// If every value times 10^k is an integer below 2^53 and dividing back gives the same bits,
/// return the smallest such k with the scaled integers.
pub(crate) fn as_scaled_ints(vals: &[f64]) -> Option<(u32, Vec<i64>)> {
    'scale: for k in 0..=MAX_SCALE {
        let f = 10f64.powi(k as i32);
        let mut out = Vec::with_capacity(vals.len());
        for &v in vals {
            let r = (v * f).round();
            // Compare through the integer so -0.0 (which would come back as +0.0) goes to XOR.
            if !r.is_finite() || r.abs() >= INT_LIMIT || ((r as i64) as f64 / f).to_bits() != v.to_bits() {
                continue 'scale;
            }
            out.push(r as i64);
        }
        return Some((k, out));
    }
    None
}

pub(crate) fn write_values(w: &mut BitWriter, vals: &[f64]) {
    if let Some((k, ints)) = as_scaled_ints(vals) {
        w.write_bits(MODE_INT, MODE_BITS);
        w.write_bits(u64::from(k), 3);
        IntColumn::plan(&ints).write(w);
        return;
    }
    let ordered: Vec<i64> = vals.iter().map(|v| ordered(v.to_bits())).collect();
    let column = IntColumn::plan(&ordered);
    if column.cost() < xor_cost(vals.iter().map(|v| v.to_bits())) {
        w.write_bits(MODE_FLOAT_DELTA, MODE_BITS);
        column.write(w);
    } else {
        w.write_bits(MODE_XOR, MODE_BITS);
        let mut xw = XorWriter::default();
        for &v in vals {
            xw.write(w, v.to_bits());
        }
    }
}

pub(crate) fn read_values(r: &mut BitReader<'_>, n: usize, layout: Layout) -> Result<Vec<f64>, Truncated> {
    let mode_bits = if layout == Layout::Flagged { 1 } else { MODE_BITS };
    match r.read_bits(mode_bits)? {
        MODE_INT => {
            let k = r.read_bits(3)? as u32;
            if k > MAX_SCALE {
                return Err(Truncated);
            }
            let f = 10f64.powi(k as i32);
            Ok(read_int_column(r, n, layout)?.into_iter().map(|v| v as f64 / f).collect())
        }
        MODE_XOR => {
            let mut xr = XorReader::default();
            (0..n).map(|_| xr.read(r).map(f64::from_bits)).collect()
        }
        MODE_FLOAT_DELTA => {
            Ok(read_int_column(r, n, layout)?.into_iter().map(|o| f64::from_bits(ordered(o as u64) as u64)).collect())
        }
        _ => Err(Truncated),
    }
}

/// A double's bits as an integer that orders like the double (negative values have their
/// magnitude bits flipped). Its own inverse on the bits.
pub(crate) fn ordered(bits: u64) -> i64 {
    let s = bits as i64;
    s ^ (((s >> 63) as u64) >> 1) as i64
}

/// Integers as deltas from the previous one (random walks, slowly moving levels) or as
/// offsets from the chunk's minimum (stationary noise such as per-interval counts),
/// whichever is smaller. The first integer of a delta column is written whole (formats 4
/// and 5), so it does not widen the deltas' codes.
pub(crate) struct IntColumn {
    /// The minimum, when coded as offsets from it.
    base: Option<i64>,
    /// The first integer, when coded as deltas (and there is one).
    first: Option<i64>,
    codes: Vec<u64>,
    plan: CodePlan,
}

impl IntColumn {
    pub(crate) fn plan(ints: &[i64]) -> Self {
        let deltas: Vec<u64> = ints.windows(2).map(|p| zigzag(p[1].wrapping_sub(p[0]))).collect();
        let base = ints.iter().copied().min().unwrap_or(0);
        let offsets: Vec<u64> = ints.iter().map(|&v| v.wrapping_sub(base) as u64).collect();
        let (d_plan, o_plan) = (plan_codes(&deltas, Layout::Framed), plan_codes(&offsets, Layout::Framed));
        if o_plan.cost < d_plan.cost {
            Self { base: Some(base), first: None, codes: offsets, plan: o_plan }
        } else {
            Self { base: None, first: ints.first().copied(), codes: deltas, plan: d_plan }
        }
    }

    /// Bits [`IntColumn::write`] takes.
    pub(crate) fn cost(&self) -> u64 {
        1 + 64 * u64::from(self.base.is_some() || self.first.is_some()) + self.plan.cost
    }

    pub(crate) fn write(&self, w: &mut BitWriter) {
        w.write_bit(self.base.is_some());
        if let Some(v) = self.base.or(self.first) {
            w.write_bits(zigzag(v), 64);
        }
        write_codes(w, &self.codes, self.plan);
    }
}

fn read_int_column(r: &mut BitReader<'_>, n: usize, layout: Layout) -> Result<Vec<i64>, Truncated> {
    if r.read_bit()? {
        let base = unzigzag(r.read_bits(64)?);
        return Ok(read_codes(r, n, layout)?.into_iter().map(|c| base.wrapping_add(c as i64)).collect());
    }
    // Deltas: from zero in formats 1 and 2; from a first integer written whole after.
    let (mut prev, mut out, deltas) = match layout {
        Layout::Flagged => (0i64, Vec::with_capacity(n), n),
        Layout::Framed if n == 0 => (0, Vec::new(), 0),
        Layout::Framed => {
            let first = unzigzag(r.read_bits(64)?);
            let mut out = Vec::with_capacity(n);
            out.push(first);
            (first, out, n - 1)
        }
    };
    for c in read_codes(r, deltas, layout)? {
        prev = prev.wrapping_add(unzigzag(c));
        out.push(prev);
    }
    Ok(out)
}

/// Bits [`XorWriter`] takes for `words`.
pub(crate) fn xor_cost(words: impl Iterator<Item = u64>) -> u64 {
    let (mut prev, mut window, mut cost) = (None, None, 0u64);
    for bits in words {
        let Some(p) = prev.replace(bits) else {
            cost += 64;
            continue;
        };
        cost += xor_bits(bits ^ p, &mut window);
    }
    cost
}

/// Bits [`write_xor`] takes for `x`, updating the window as it does.
fn xor_bits(x: u64, window: &mut Option<(u32, u32)>) -> u64 {
    if x == 0 {
        return 1;
    }
    let (lz, tz) = (x.leading_zeros().min(63), x.trailing_zeros());
    match *window {
        Some((pl, pt)) if lz >= pl && tz >= pt => u64::from(2 + 64 - pl - pt),
        _ => {
            *window = Some((lz, tz));
            u64::from(2 + 12 + 64 - lz - tz)
        }
    }
}

/// Gorilla XOR coding of a sequence of 64-bit words.
#[derive(Default)]
pub(crate) struct XorWriter {
    prev: u64,
    window: Option<(u32, u32)>, // (leading, trailing)
    started: bool,
}

impl XorWriter {
    pub(crate) fn write(&mut self, w: &mut BitWriter, bits: u64) {
        if !self.started {
            w.write_bits(bits, 64);
            self.started = true;
            self.prev = bits;
            return;
        }
        let x = bits ^ self.prev;
        self.prev = bits;
        write_xor(w, x, &mut self.window);
    }
}

fn write_xor(w: &mut BitWriter, x: u64, window: &mut Option<(u32, u32)>) {
    if x == 0 {
        w.write_bit(false);
        return;
    }
    let lz = x.leading_zeros().min(63);
    let tz = x.trailing_zeros();
    match *window {
        Some((pl, pt)) if lz >= pl && tz >= pt => {
            w.write_bits(0b10, 2);
            w.write_bits(x >> pt, 64 - pl - pt);
        }
        _ => {
            let len = 64 - lz - tz;
            w.write_bits(0b11, 2);
            w.write_bits(u64::from(lz), 6);
            w.write_bits(u64::from(len - 1), 6);
            w.write_bits(x >> tz, len);
            *window = Some((lz, tz));
        }
    }
}

fn read_xor(r: &mut BitReader<'_>, window: &mut Option<(u32, u32)>) -> Result<u64, Truncated> {
    if !r.read_bit()? {
        return Ok(0);
    }
    if !r.read_bit()? {
        let (pl, pt) = window.ok_or(Truncated)?;
        Ok(r.read_bits(64 - pl - pt)? << pt)
    } else {
        let lz = r.read_bits(6)? as u32;
        let len = r.read_bits(6)? as u32 + 1;
        if lz + len > 64 {
            return Err(Truncated);
        }
        let tz = 64 - lz - len;
        *window = Some((lz, tz));
        Ok(r.read_bits(len)? << tz)
    }
}

#[derive(Default)]
struct XorReader {
    prev: u64,
    window: Option<(u32, u32)>,
    started: bool,
}

impl XorReader {
    fn read(&mut self, r: &mut BitReader<'_>) -> Result<u64, Truncated> {
        if !self.started {
            self.started = true;
            self.prev = r.read_bits(64)?;
            return Ok(self.prev);
        }
        self.prev ^= read_xor(r, &mut self.window)?;
        Ok(self.prev)
    }
}

/// A column XORed against a reference column: '0' when equal (the common case).
pub(crate) fn write_xor_against(w: &mut BitWriter, pairs: impl Iterator<Item = (f64, f64)>) {
    let mut window = None;
    for (v, reference) in pairs {
        write_xor(w, v.to_bits() ^ reference.to_bits(), &mut window);
    }
}

pub(crate) fn read_xor_against(r: &mut BitReader<'_>, reference: &[f64]) -> Result<Vec<f64>, Truncated> {
    let mut window = None;
    reference.iter().map(|v| Ok(f64::from_bits(read_xor(r, &mut window)? ^ v.to_bits()))).collect()
}
