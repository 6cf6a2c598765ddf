//! A DDSketch-style mergeable quantile sketch (Masson, Rim & Lee, VLDB 2019).
//!
//! Values map to logarithmic bins `key = ceil(log_γ |v|)` with γ = (1+α)/(1−α) and α = 1 %:
//! any value reported for a bin is within 1 % of every value that fell into it. Bins are kept
//! sparse (sorted `(key, weight)` pairs), so a timer that only ever sees 40 distinct
//! magnitudes costs 40 bins. Weights are `f64` because StatsD sample rates weight an event
//! by 1/rate.
//!
//! ## Merging
//! Merging adds weights bin by bin, so `merge(a, b)` equals the sketch of the union exactly;
//! percentiles over any window are computed by merging, never by averaging percentiles.
//!
//! ## Failure modes
//! A sketch holds at most [`MAX_BINS`] bins per sign. Past that the lowest bins are folded
//! into one: high quantiles (p95, p99) stay within α, the lowest ones lose accuracy. Decoding
//! rejects anything malformed (unsorted keys, non-finite or negative weights, trailing bytes).

use crate::codec::{BitReader, BitWriter, Layout, Truncated, plan_codes, read_codes, unzigzag, write_codes, zigzag};

/// Relative accuracy of every quantile the sketch returns.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Most bins kept per sign before the lowest are folded together.
pub const MAX_BINS: usize = 2048;
/// Magnitudes below this count as zero (1 ns when values are seconds).
pub const MIN_MAGNITUDE: f64 = 1e-9;

const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
/// Keys lie within ±this ([`key_of`] clamps them).
const KEY_LIMIT: i32 = 1_000_000;
const FORMAT_VERSION: u8 = 1;
const FLAG_NEG: u8 = 0x10;
const FLAG_ZERO: u8 = 0x20;
const FLAG_INT: u8 = 0x40;

fn ln_gamma() -> f64 {
    GAMMA.ln()
}

fn key_of(magnitude: f64) -> i32 {
    // Clamp keeps absurd magnitudes (1e300) inside i32; they land in the top bin.
    (magnitude.ln() / ln_gamma()).ceil().clamp(-f64::from(KEY_LIMIT), f64::from(KEY_LIMIT)) as i32
}

/// [`key_of`], through [`keys`]' tables for the magnitudes values have.
#[inline]
fn key_of_fast(magnitude: f64) -> i32 {
    keys::table().key(magnitude)
}

fn value_of(key: i32) -> f64 {
    2.0 * GAMMA.powi(key) / (GAMMA + 1.0)
}

/// `(key, weight)` pairs in arrival order as sorted bins, each key's weights summed in
/// arrival order, in the same vector (there are never more bins than pairs).
fn fold_keys(mut keyed: Vec<(i32, f64)>) -> Vec<(i32, f64)> {
    let (Some(lo), Some(hi)) = (keyed.iter().map(|p| p.0).min(), keyed.iter().map(|p| p.0).max()) else {
        return keyed;
    };
    let span = (i64::from(hi) - i64::from(lo) + 1) as usize;
    // Zeroing and scanning a slot costs a few instructions, a sort ~15 per compare: dense
    // wins far past a span as wide as the batch (a timer's 80 values of a flush over 350 keys).
    if span <= 4 * keyed.len() + 1024 {
        let mut dense = vec![0.0f64; span];
        for &(k, w) in &keyed {
            dense[(k - lo) as usize] += w;
        }
        keyed.clear();
        // Every weight is positive, so a slot is taken exactly when its sum is.
        keyed.extend(dense.iter().zip(lo..).filter(|&(&w, _)| w > 0.0).map(|(&w, k)| (k, w)));
        return keyed;
    }
    keyed.sort_by_key(|p| p.0); // stable: arrival order within a key
    let mut bins = 0;
    for i in 0..keyed.len() {
        let (k, w) = keyed[i];
        if bins > 0 && keyed[bins - 1].0 == k {
            keyed[bins - 1].1 += w;
        } else {
            keyed[bins] = (k, w);
            bins += 1;
        }
    }
    keyed.truncate(bins);
    keyed
}

/// Sorted sparse bins for one sign.
#[derive(Debug, Clone, Default, PartialEq)]
struct Bins(Vec<(i32, f64)>);

impl Bins {
    fn add(&mut self, key: i32, weight: f64) {
        match self.0.binary_search_by_key(&key, |&(k, _)| k) {
            Ok(i) => self.0[i].1 += weight,
            Err(i) => {
                self.0.insert(i, (key, weight));
                self.cap();
            }
        }
    }

    fn merge(&mut self, other: &Bins) {
        if other.0.is_empty() {
            return;
        }
        if self.0.is_empty() {
            self.0.clone_from(&other.0);
            return;
        }
        self.merge_nonempty(other);
    }

    /// [`Bins::merge`] of bins of its own: taken as they are when there are none here.
    fn merge_owned(&mut self, mut other: Bins) {
        if self.0.is_empty() {
            // Sized for the batch's values, not its bins: a timer's sketch kept between
            // batches would hold room for 256 bins where it has 100 (20 MB at 5 000 timers).
            // A snug copy then, as before: shrinking in place left the freed tails between
            // live blocks, 1–1.5 MB more RSS at 10 000 tagged series.
            if other.0.capacity() > 2 * other.0.len() {
                other.0 = other.0.as_slice().to_vec();
            }
            *self = other;
            self.cap();
        } else if !other.0.is_empty() {
            self.merge_nonempty(&other);
        }
    }

    fn merge_nonempty(&mut self, other: &Bins) {
        // Steady distributions keep hitting the same bins: add in place when every key of
        // `other` is already here (no allocation), else do the general merge below.
        if other.0.len() <= self.0.len() {
            let mut i = 0;
            let subset = other.0.iter().all(|&(k, _)| {
                while i < self.0.len() && self.0[i].0 < k {
                    i += 1;
                }
                i < self.0.len() && self.0[i].0 == k
            });
            if subset {
                let mut i = 0;
                for &(k, w) in &other.0 {
                    while self.0[i].0 < k {
                        i += 1;
                    }
                    self.0[i].1 += w;
                }
                return;
            }
        }
        let mut out = Vec::with_capacity(self.0.len() + other.0.len());
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&self.0, &other.0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push((a[i].0, a[i].1 + b[j].1));
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        self.0 = out;
        self.cap();
    }

    /// Fold the lowest bins so at most `MAX_BINS` remain.
    fn cap(&mut self) {
        if self.0.len() <= MAX_BINS {
            return;
        }
        let excess = self.0.len() - MAX_BINS + 1;
        let folded: f64 = self.0[..excess].iter().map(|&(_, w)| w).sum();
        let key = self.0[excess - 1].0;
        self.0.drain(..excess);
        self.0.insert(0, (key, folded));
    }

    fn total(&self) -> f64 {
        self.0.iter().map(|&(_, w)| w).sum()
    }

    /// Bin count, first key, then key gaps and weights as bit-packed codes (a typical bin
    /// costs 4–8 bits instead of two bytes).
    fn encode(&self, w: &mut BitWriter, int_weights: bool) {
        w.write_varint(self.0.len() as u64);
        let Some(&(first, _)) = self.0.first() else { return };
        w.write_varint(zigzag(i64::from(first)));
        let gaps: Vec<u64> = self.0.windows(2).map(|p| (i64::from(p[1].0) - i64::from(p[0].0) - 1) as u64).collect();
        if !gaps.is_empty() {
            write_codes(w, &gaps, plan_codes(&gaps, Layout::Flagged));
        }
        if int_weights {
            let weights: Vec<u64> = self.0.iter().map(|&(_, x)| x as u64 - 1).collect();
            write_codes(w, &weights, plan_codes(&weights, Layout::Flagged));
        } else {
            for &(_, x) in &self.0 {
                w.write_bits(x.to_bits(), 64);
            }
        }
    }

    fn decode(r: &mut BitReader<'_>, len: usize, int_weights: bool) -> Result<Self, Truncated> {
        let n = r.read_varint()?;
        // Each bin costs at least a bit; anything claiming more is damaged.
        if n > MAX_BINS as u64 || n as usize > len * 8 {
            return Err(Truncated);
        }
        let n = n as usize;
        if n == 0 {
            return Ok(Bins::default());
        }
        let mut key = unzigzag(r.read_varint()?);
        let mut keys = Vec::with_capacity(n);
        keys.push(key);
        if n > 1 {
            for gap in read_codes(r, n - 1, Layout::Flagged)? {
                key = key.checked_add(gap as i64).and_then(|k| k.checked_add(1)).ok_or(Truncated)?;
                keys.push(key);
            }
        }
        let weights: Vec<f64> = if int_weights {
            read_codes(r, n, Layout::Flagged)?.into_iter().map(|c| c as f64 + 1.0).collect()
        } else {
            (0..n).map(|_| r.read_bits(64).map(f64::from_bits)).collect::<Result<_, _>>()?
        };
        let mut bins = Vec::with_capacity(n);
        for (k, x) in keys.into_iter().zip(weights) {
            // No key past the range `key_of` gives: such a bin has no value to count it by.
            let k = i32::try_from(k).ok().filter(|k| (-KEY_LIMIT..=KEY_LIMIT).contains(k)).ok_or(Truncated)?;
            if !x.is_finite() || x <= 0.0 {
                return Err(Truncated);
            }
            bins.push((k, x));
        }
        Ok(Bins(bins))
    }
}

fn is_int_weight(w: f64) -> bool {
    w.fract() == 0.0 && (1.0..9.0e15).contains(&w)
}

/// A mergeable quantile sketch with 1 % relative accuracy.
#[derive(Debug, Clone, Default)]
pub struct Sketch {
    pos: Bins,
    neg: Bins,
    zero: f64,
    /// Values of weight 1 not binned yet ([`Sketch::deferred`]), binned first by whatever
    /// changes the sketch and in a copy by whatever reads it. Boxed: 16 bytes in every
    /// sketch (decoded points hold one each), not a vector's 24.
    unbinned: Option<Box<[f64]>>,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<Sketch>() == 72);

impl PartialEq for Sketch {
    /// The same bins: a deferred sketch equals the sketch its values make.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.binned(), other.binned());
        a.pos == b.pos && a.neg == b.neg && a.zero == b.zero
    }
}

impl Sketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sketch of `values` (each of weight 1), binned only when it is read or changed:
    /// until then it holds `values` themselves. An agent's flush hands over each
    /// distribution's values this way, with no new allocation, and the writer bins them
    /// one distribution at a time as it stores them; binning them all at the flush took
    /// ~180 bytes a distribution, 4 MB at 100 000 series, at the moment memory peaks.
    pub fn deferred(values: Vec<f64>) -> Self {
        // Shrinking in place gives the slack back (glibc splits the block; no copy).
        Self { unbinned: (!values.is_empty()).then(|| values.into_boxed_slice()), ..Self::default() }
    }

    /// This sketch with its deferred values binned: itself, or a binned copy.
    fn binned(&self) -> std::borrow::Cow<'_, Sketch> {
        let Some(values) = &self.unbinned else { return std::borrow::Cow::Borrowed(self) };
        let mut copy = Sketch { pos: self.pos.clone(), neg: self.neg.clone(), zero: self.zero, unbinned: None };
        copy.add_all(values.iter().map(|&v| (v, 1.0)));
        std::borrow::Cow::Owned(copy)
    }

    /// Values held unbinned ([`Sketch::deferred`]): 0 for a binned sketch.
    pub fn deferred_len(&self) -> usize {
        self.unbinned.as_ref().map_or(0, |v| v.len())
    }

    /// Bin the deferred values in place (nothing changes for a binned sketch). Whatever reads
    /// the sketch afterwards reads its bins, where each read of a deferred one bins its
    /// values again or counts them one by one.
    pub fn settle(&mut self) {
        if let Some(values) = self.unbinned.take() {
            self.add_all(values.iter().map(|&v| (v, 1.0)));
        }
    }

    /// Record `value` once.
    pub fn add(&mut self, value: f64) {
        self.add_weighted(value, 1.0);
    }

    /// Record `value` with `weight` (1/rate for sampled StatsD events). Non-finite values
    /// and non-positive weights are ignored.
    pub fn add_weighted(&mut self, value: f64, weight: f64) {
        self.settle();
        if !value.is_finite() || !weight.is_finite() || weight <= 0.0 || weight.is_nan() {
            return;
        }
        let m = value.abs();
        if m < MIN_MAGNITUDE {
            self.zero += weight;
        } else if value > 0.0 {
            self.pos.add(key_of_fast(m), weight);
        } else {
            self.neg.add(key_of_fast(m), weight);
        }
    }

    /// Record many `(value, weight)` pairs at once: the sketch that adding them one by one
    /// makes, without a bin search per value. Each value's key is computed once (once per run
    /// of equal values) and weights are summed per key in arrival order, in a dense array
    /// over the batch's key range unless that is much wider than the batch (latencies span a
    /// few hundred keys), else after a stable sort by key; then the bins are merged. A bin takes
    /// the batch's sum of its weights (identical to one by one for whole-number weights;
    /// within rounding otherwise).
    pub fn add_batch(&mut self, pairs: &[(f64, f64)]) {
        self.settle();
        self.add_all(pairs.iter().copied());
    }

    /// [`Sketch::add_batch`] of values of weight 1.
    pub fn add_values(&mut self, values: &[f64]) {
        self.settle();
        self.add_all(values.iter().map(|&v| (v, 1.0)));
    }

    /// Bin `pairs` (the deferred values are binned already, or are what is binned).
    fn add_all(&mut self, pairs: impl ExactSizeIterator<Item = (f64, f64)>) {
        let (mut pos, mut neg) = (Vec::with_capacity(pairs.len()), Vec::new());
        let mut last: Option<(f64, i32)> = None;
        let keys = keys::table();
        for (value, weight) in pairs {
            if !value.is_finite() || !weight.is_finite() || weight <= 0.0 {
                continue;
            }
            let m = value.abs();
            if m < MIN_MAGNITUDE {
                self.zero += weight;
                continue;
            }
            let key = match last {
                Some((v, k)) if v == value => k,
                _ => keys.key(m),
            };
            last = Some((value, key));
            if value > 0.0 { pos.push((key, weight)) } else { neg.push((key, weight)) }
        }
        self.pos.merge_owned(Bins(fold_keys(pos)));
        self.neg.merge_owned(Bins(fold_keys(neg)));
    }

    /// Merge `other` into `self`: the result is the sketch of both inputs together.
    pub fn merge(&mut self, other: &Sketch) {
        self.settle();
        let other = other.binned();
        self.pos.merge(&other.pos);
        self.neg.merge(&other.neg);
        self.zero += other.zero;
    }

    /// Total weight recorded.
    pub fn count(&self) -> f64 {
        if self.unbinned.is_some() {
            return self.binned().count();
        }
        self.pos.total() + self.neg.total() + self.zero
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        if self.unbinned.is_some() {
            return self.binned().is_empty();
        }
        self.pos.0.is_empty() && self.neg.0.is_empty() && self.zero == 0.0
    }

    /// Every non-empty bin as `(representative value, weight)`, smallest value first. Adding
    /// each pair back with [`Sketch::add_weighted`] rebuilds this sketch exactly (export and
    /// import rely on it).
    pub fn bin_values(&self) -> Vec<(f64, f64)> {
        if self.unbinned.is_some() {
            return self.binned().bin_values();
        }
        let mut out: Vec<(f64, f64)> = self.neg.0.iter().rev().map(|&(k, w)| (-value_of(k), w)).collect();
        if self.zero > 0.0 {
            out.push((0.0, self.zero));
        }
        out.extend(self.pos.0.iter().map(|&(k, w)| (value_of(k), w)));
        out
    }

    /// Number of non-empty bins (a measure of memory and encoded size).
    pub fn bins(&self) -> usize {
        if self.unbinned.is_some() {
            return self.binned().bins();
        }
        self.pos.0.len() + self.neg.0.len() + usize::from(self.zero > 0.0)
    }

    /// The nearest-rank `q`-quantile (0 ≤ q ≤ 1): the value of rank ⌈q·n⌉ in sorted order,
    /// within [`RELATIVE_ACCURACY`] of the exact one. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.unbinned.is_some() {
            return self.binned().quantile(q);
        }
        let n = self.count();
        if n.is_nan() || n <= 0.0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = nearest_rank(q, n);
        let mut seen = 0.0;
        // Most negative first: negative bins in descending key order.
        for &(k, w) in self.neg.0.iter().rev() {
            seen += w;
            if seen >= rank {
                return Some(-value_of(k));
            }
        }
        seen += self.zero;
        if seen >= rank && self.zero > 0.0 {
            return Some(0.0);
        }
        for &(k, w) in &self.pos.0 {
            seen += w;
            if seen >= rank {
                return Some(value_of(k));
            }
        }
        // Rounding left `rank` a hair above the total: the answer is the top bin.
        self.pos
            .0
            .last()
            .map(|&(k, _)| value_of(k))
            .or(if self.zero > 0.0 { Some(0.0) } else { None })
            .or_else(|| self.neg.0.first().map(|&(k, _)| -value_of(k)))
    }

    /// Weight of the values at most `bound` (each bin counted by its representative value,
    /// so within the sketch's relative accuracy of the bound): a histogram bucket.
    pub fn count_at_most(&self, bound: f64) -> f64 {
        if self.unbinned.is_some() {
            return self.binned().count_at_most(bound);
        }
        let mut n = 0.0;
        for &(k, w) in &self.neg.0 {
            if -value_of(k) <= bound {
                n += w;
            }
        }
        if bound >= 0.0 {
            n += self.zero;
        }
        for &(k, w) in &self.pos.0 {
            if value_of(k) <= bound {
                n += w;
            }
        }
        n
    }

    /// Compact binary form (a few bytes per bin). See [`Sketch::decode`].
    pub fn encode(&self) -> Vec<u8> {
        let s = self.binned();
        let mut out = Vec::with_capacity(4 + 3 * s.bins());
        s.encode_into(&mut out);
        out
    }

    /// Append the compact binary form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        if self.unbinned.is_some() {
            return self.binned().encode_into(out);
        }
        let int = self.pos.0.iter().chain(&self.neg.0).all(|&(_, w)| is_int_weight(w))
            && (self.zero == 0.0 || is_int_weight(self.zero));
        let mut flags = FORMAT_VERSION;
        if !self.neg.0.is_empty() {
            flags |= FLAG_NEG;
        }
        if self.zero > 0.0 {
            flags |= FLAG_ZERO;
        }
        if int {
            flags |= FLAG_INT;
        }
        let mut w = BitWriter::with_capacity(8 + self.bins());
        w.write_bytes(&[flags]);
        if self.zero > 0.0 {
            if int {
                w.write_varint(self.zero as u64);
            } else {
                w.write_bits(self.zero.to_bits(), 64);
            }
        }
        self.pos.encode(&mut w, int);
        if !self.neg.0.is_empty() {
            self.neg.encode(&mut w, int);
        }
        out.extend_from_slice(&w.finish());
    }

    /// Decode [`Sketch::encode`]'s output, rejecting anything malformed.
    pub fn decode(buf: &[u8]) -> Result<Self, Truncated> {
        let mut r = BitReader::new(buf);
        let flags = r.read_bytes(1)?[0];
        if flags & 0x0f != FORMAT_VERSION || flags & 0x80 != 0 {
            return Err(Truncated);
        }
        let int = flags & FLAG_INT != 0;
        let zero = if flags & FLAG_ZERO == 0 {
            0.0
        } else if int {
            r.read_varint()? as f64
        } else {
            f64::from_bits(r.read_bits(64)?)
        };
        if !zero.is_finite() || zero < 0.0 {
            return Err(Truncated);
        }
        let pos = Bins::decode(&mut r, buf.len(), int)?;
        let neg = if flags & FLAG_NEG != 0 { Bins::decode(&mut r, buf.len(), int)? } else { Bins::default() };
        if r.bytes_consumed() != buf.len() {
            return Err(Truncated);
        }
        Ok(Sketch { pos, neg, zero, unbinned: None })
    }
}

/// Rank (1-based, possibly fractional for weighted data) of the nearest-rank `q`-quantile of
/// `n` values: ⌈q·n⌉, at least 1, tolerant of floating-point noise (0.95 × 100 is 95, not 96).
pub fn nearest_rank(q: f64, n: f64) -> f64 {
    let x = q * n;
    let r = if (x - x.round()).abs() <= 1e-9 * n.max(1.0) { x.round() } else { x.ceil() };
    r.max(1.0).min(n.max(1.0))
}

mod buckets;
mod keys;

pub use buckets::BucketBounds;

#[cfg(test)]
mod tests;
