//! A value's bin, `ceil(ln |v| / ln γ)`, without a logarithm for the magnitudes values have.
//!
//! The bins of a stored sketch are these keys, so a faster way to them has to give the very
//! keys [`key_of`] gives, to the last bit, or a merge of old and new sketches would be off.
//! [`key_of`] is monotone in the magnitude, so each key starts at one exact magnitude, its
//! *bound*. A magnitude's binary exponent and top [`SUB_BITS`] mantissa bits name a slice of
//! an octave narrower than γ (65/64 < γ = 1.0202), which holds at most one bound: the slice's
//! first key and a compare with the next key's bound give the key. The tables are computed
//! from [`key_of`] itself, once, the bounds to the exact bit by bisection.
//!
//! Timers are kept in seconds, so their values are never whole: each took the logarithm and a
//! `ceil` call. With the tables (and batches folded in place), callgrind counts the flush's
//! binning at 31 instructions a line instead of 53 (`ingest-cost`, 10 000 tagged series).

use std::sync::LazyLock;

use super::key_of;

/// Binary exponents of the magnitudes the tables cover: from 2^-30 (about 1 ns in seconds)
/// up to 2^42. Others take [`key_of`].
const EXP_MIN: i32 = -30;
const EXP_END: i32 = 42;
/// Mantissa bits that pick a slice of an octave: 64 slices, each narrower than γ.
const SUB_BITS: u32 = 6;
const MANTISSA_BITS: u32 = 52;

pub(super) struct KeyTable {
    /// The key of the first magnitude the tables cover.
    first_key: i32,
    /// Each slice's first key, slices in order of magnitude.
    slice_key: Box<[i32]>,
    /// `bound[k - first_key]`: the least magnitude whose key is `k` (+∞ past the last).
    bound: Box<[f64]>,
}

static TABLE: LazyLock<KeyTable> = LazyLock::new(KeyTable::build);

/// The tables, built on first use (about half a millisecond).
pub(super) fn table() -> &'static KeyTable {
    &TABLE
}

impl KeyTable {
    /// [`key_of`] of a finite magnitude ≥ `MIN_MAGNITUDE`, the same key to the bit.
    #[inline]
    pub(super) fn key(&self, magnitude: f64) -> i32 {
        let bits = magnitude.to_bits();
        let exp = (bits >> MANTISSA_BITS) as i32 - 1023;
        let octave = exp.wrapping_sub(EXP_MIN) as u32;
        if octave >= (EXP_END - EXP_MIN) as u32 {
            return key_of(magnitude);
        }
        let slice =
            (octave << SUB_BITS) as usize | (bits >> (MANTISSA_BITS - SUB_BITS)) as usize & ((1 << SUB_BITS) - 1);
        let k = self.slice_key[slice];
        // `bound` reaches one past the last slice key, so the index is always in range.
        k + i32::from(magnitude >= self.bound[(k + 1 - self.first_key) as usize])
    }

    fn build() -> Self {
        let lo = 2f64.powi(EXP_MIN).to_bits();
        let slices = ((EXP_END - EXP_MIN) as usize) << SUB_BITS;
        let width = 1u64 << (MANTISSA_BITS - SUB_BITS);
        let at = |bits: u64| key_of(f64::from_bits(bits));
        let first_key = at(lo);
        let last_key = at(lo + slices as u64 * width - 1);
        let mut bound = vec![f64::INFINITY; (last_key - first_key + 2) as usize];
        bound[0] = f64::from_bits(lo);
        let mut slice_key = Vec::with_capacity(slices);
        let mut prev_last = first_key;
        for s in 0..slices as u64 {
            let start = lo + s * width;
            let end = start + width - 1;
            let (first, last) = (at(start), at(end));
            // A bound on a slice's first magnitude.
            if first > prev_last {
                bound[(first - first_key) as usize] = f64::from_bits(start);
            }
            if last > first {
                // The least magnitude of the slice whose key is `last`: near γ^(last - 1),
                // then walked to the exact bit (a few logarithms where a bisection over the
                // slice's 2^46 magnitudes took 46; the build went from 2.7 ms to 0.6,
                // paid by every process that reads or bins a sketch).
                let guess = (super::ln_gamma() * f64::from(last - 1)).exp().to_bits().clamp(start + 1, end);
                bound[(last - first_key) as usize] = f64::from_bits(least_above(&at, first, guess, start, end));
            }
            slice_key.push(first);
            prev_last = last;
        }
        Self { first_key, slice_key: slice_key.into_boxed_slice(), bound: bound.into_boxed_slice() }
    }
}

/// The least magnitude (as bits) in `(start, end]` whose key passes `first`, where `end`'s
/// does and `start`'s does not (keys grow with magnitudes), found by walking from `guess` a
/// bit at a time, or by bisection should the walk go far.
fn least_above(at: &impl Fn(u64) -> i32, first: i32, guess: u64, start: u64, end: u64) -> u64 {
    const WALK: u32 = 64;
    let mut m = guess;
    for _ in 0..WALK {
        match (at(m) > first, m > start + 1 && at(m - 1) > first) {
            // `m` passes and the one below does not: the least.
            (true, false) => return m,
            (true, true) => m -= 1,
            (false, _) if m < end => m += 1,
            (false, _) => break,
        }
    }
    let (mut below, mut from) = (start, end);
    while from - below > 1 {
        let mid = below + (from - below) / 2;
        if at(mid) > first { from = mid } else { below = mid }
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_bound_and_its_neighbours_get_the_logarithms_key() {
        let t = table();
        assert!(t.bound.len() > 2000, "{} keys", t.bound.len());
        for (j, &b) in t.bound.iter().enumerate().filter(|(_, b)| b.is_finite()) {
            let bits = b.to_bits();
            for m in (bits.saturating_sub(3)..=bits + 3).map(f64::from_bits) {
                assert_eq!(t.key(m), key_of(m), "{m:e} near the bound of key {}", t.first_key + j as i32);
            }
        }
        // The ends of the range, and past them.
        for m in [2f64.powi(EXP_MIN), 2f64.powi(EXP_END), 1e-9, 1e300, f64::MAX, 1.0, 0.001, 0.517] {
            for m in [m, f64::from_bits(m.to_bits() - 1), f64::from_bits(m.to_bits() + 1)] {
                assert_eq!(t.key(m), key_of(m), "{m:e}");
            }
        }
    }

    proptest! {
        /// Any magnitude, whole or not, in range or not: the logarithm's key.
        #[test]
        fn any_magnitude_gets_the_logarithms_key(bits in 0x3e11_2e0b_e826_d695u64..0x7fef_ffff_ffff_ffff) {
            let m = f64::from_bits(bits);
            prop_assert_eq!(table().key(m), key_of(m), "{:e}", m);
        }

        #[test]
        fn milliseconds_in_seconds_get_the_logarithms_key(ms in 0u32..10_000_000) {
            let m = f64::from(ms) * 0.001;
            if m >= super::super::MIN_MAGNITUDE {
                prop_assert_eq!(table().key(m), key_of(m), "{}", m);
            }
        }
    }
}
