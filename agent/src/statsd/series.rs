//! A live StatsD series as the aggregator holds it: the raw bytes it is looked up by, and a
//! distribution's values on their way to its sketch.

use std::sync::Arc;

use perfstore::grow::reserve_by_eighths;
use perfstore::sketch::Sketch;
use perfstore::{Distribution, SeriesKey};

use super::aggregate::Hot;
use super::index::{Index, prefetch};

/// The live series as a struct of arrays. What every line touches (the hash index, the
/// identities, the hot state) is packed densely, so that 100,000 series stay within a few
/// cache-friendly megabytes; the canonical keys, read once per flush, are kept apart. The
/// arrays grow by eighths ([`reserve_by_eighths`]), not by doubling.
///
/// A lookup can be split in steps, each bringing in what the next reads
/// ([`LiveTable::prefetch_slot`], [`LiveTable::candidate`], [`LiveTable::prefetch_series`],
/// [`LiveTable::prefetch_ident`], then [`LiveTable::is_at`]), so that the receive thread
/// overlaps the cache misses of a group of lines.
#[derive(Debug, Default)]
pub(super) struct LiveTable {
    /// Positions by hash.
    index: Index,
    /// Every identity's bytes (see [`Ident::to_bytes`]), back to back…
    arena: Vec<u8>,
    /// …and where each one is.
    spans: Vec<(u32, u32)>,
    /// What a line changes.
    pub hot: Vec<Hot>,
    /// What a flush names (shared with the flushes, not copied into each).
    pub keys: Vec<Arc<SeriesKey>>,
}

impl LiveTable {
    /// Series held.
    pub fn len(&self) -> usize {
        self.hot.len()
    }

    /// The position of the series `ident` (whose hash is `hash`).
    #[inline]
    pub fn find(&self, ident: &Ident<'_>, hash: u64) -> Option<usize> {
        self.index.find(hash, |i| self.is_at(ident, i as usize)).map(|i| i as usize)
    }

    /// Whether the series at `i` is `ident`.
    #[inline(always)]
    pub fn is_at(&self, ident: &Ident<'_>, i: usize) -> bool {
        let (at, len) = self.spans[i];
        ident.is(&self.arena[at as usize..(at + len) as usize])
    }

    /// Step 1 of a lookup: bring in the index slot of `hash`.
    #[inline(always)]
    pub fn prefetch_slot(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Step 2: the series most likely to be `hash`'s, if any (to be checked with
    /// [`LiveTable::is_at`]).
    #[inline(always)]
    pub fn candidate(&self, hash: u64) -> Option<usize> {
        self.index.first(hash).map(|i| i as usize)
    }

    /// Step 3: bring in where the identity of the series at `i` is, and its hot state.
    #[inline(always)]
    pub fn prefetch_series(&self, i: usize) {
        prefetch(self.spans.as_ptr().wrapping_add(i));
        prefetch(self.hot.as_ptr().wrapping_add(i));
    }

    /// Step 4: bring in the identity's bytes of the series at `i`.
    #[inline(always)]
    pub fn prefetch_ident(&self, i: usize) {
        if let Some(&(at, len)) = self.spans.get(i) {
            let start = self.arena.as_ptr().wrapping_add(at as usize);
            prefetch(start);
            prefetch(start.wrapping_add(len.saturating_sub(1) as usize));
        }
    }

    /// Add a series not held; its position.
    pub fn push(&mut self, ident: &Ident<'_>, hash: u64, key: SeriesKey, hot: Hot) -> usize {
        let i = self.hot.len();
        let bytes = ident.to_bytes();
        reserve_by_eighths(&mut self.arena, bytes.len());
        reserve_by_eighths(&mut self.spans, 1);
        reserve_by_eighths(&mut self.hot, 1);
        reserve_by_eighths(&mut self.keys, 1);
        self.spans.push((self.arena.len() as u32, bytes.len() as u32));
        self.arena.extend_from_slice(&bytes);
        self.hot.push(hot);
        self.keys.push(Arc::new(key));
        self.index.insert(hash, i as u32);
        i
    }

    /// Keep the series `keep` says to, packing the arrays again; how many left.
    pub fn retain(&mut self, mut keep: impl FnMut(&SeriesKey, &Hot) -> bool) -> usize {
        let flags: Vec<bool> = self.keys.iter().zip(&self.hot).map(|(k, h)| keep(k, h)).collect();
        let removed = flags.iter().filter(|&&k| !k).count();
        if removed == 0 {
            return 0;
        }
        // Each kept series' new position is the number kept before it.
        let mut moved_to = Vec::with_capacity(flags.len());
        let mut kept = 0u32;
        for &k in &flags {
            moved_to.push(k.then_some(kept));
            kept += u32::from(k);
        }
        let mut old = std::mem::take(self);
        self.index = old.index.rebuilt(|at| moved_to[at as usize]);
        let spans = std::mem::take(&mut old.spans);
        let kept = kept as usize;
        let bytes = flags.iter().zip(&spans).filter(|(k, _)| **k).map(|(_, s)| s.1 as usize).sum();
        self.arena.reserve_exact(bytes);
        self.spans.reserve_exact(kept);
        self.hot.reserve_exact(kept);
        self.keys.reserve_exact(kept);
        for (((keep, (at, len)), key), hot) in flags.into_iter().zip(spans).zip(old.keys).zip(old.hot) {
            if keep {
                self.spans.push((self.arena.len() as u32, len));
                self.arena.extend_from_slice(&old.arena[at as usize..(at + len) as usize]);
                self.hot.push(hot);
                self.keys.push(key);
            }
        }
        removed
    }
}

/// The parts a series is looked up by, as received.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ident<'a> {
    /// `name[,influx tags]`.
    pub name_part: &'a [u8],
    /// The kind's byte.
    pub kind: u8,
    /// DogStatsD tags.
    pub tags: &'a [u8],
}

impl Ident<'_> {
    /// Whether `stored` (a [`Live::ident`]) is these parts.
    #[inline]
    pub fn is(&self, stored: &[u8]) -> bool {
        let n = self.name_part.len();
        stored.len() == n + 3 + self.tags.len()
            && same(&stored[..n], self.name_part)
            && stored[n..n + 3] == [0, self.kind, 0]
            && same(&stored[n + 3..], self.tags)
    }

    /// The bytes [`Ident::is`] recognises.
    pub fn to_bytes(self) -> Box<[u8]> {
        let mut out = Vec::with_capacity(self.name_part.len() + 3 + self.tags.len());
        out.extend_from_slice(self.name_part);
        out.extend_from_slice(&[0, self.kind, 0]);
        out.extend_from_slice(self.tags);
        out.into_boxed_slice()
    }

    /// The hash both paths look a series up by.
    #[inline]
    pub fn hash(&self, hasher: &foldhash::fast::RandomState) -> u64 {
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut h = hasher.build_hasher();
        h.write(self.name_part);
        h.write_u8(self.kind);
        // Most lines have no tags: hashing none is the same on both paths.
        if !self.tags.is_empty() {
            h.write(self.tags);
        }
        h.finish()
    }
}

/// Equal slices of equal length, compared eight bytes at a time (names and tags are short:
/// a `memcmp` call costs more than the comparison).
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| s.get(at..).and_then(<[u8]>::first_chunk::<8>).map(|w| u64::from_le_bytes(*w));
    let n = a.len();
    if n < 8 {
        // Four bytes at each end, overlapping (a tag such as `env:prod` is often this short).
        let half = |s: &[u8], at: usize| s.get(at..).and_then(<[u8]>::first_chunk::<4>).map(|w| u32::from_le_bytes(*w));
        if n >= 4 {
            return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
        }
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut at = 0;
    while at + 8 <= n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    // The last eight bytes, overlapping what was compared.
    word(a, n - 8) == word(b, n - 8)
}

/// Values held before they reach the sketch, at most this many per series: binning a batch
/// ([`perfstore::Sketch::add_batch`]) costs far less than a bin search per value.
///
/// Not many more: what waits at the interval's end is binned by the flush, on the receive
/// thread. With 1024, 2 500 distributions at 640 values a second each (6.4 M lines/s, a
/// quarter of them timers) were all binned at the flush, a stall of some 25 ms each second
/// while the socket's queue grew to 4–9 MB of its 16; with 256 most of that binning happens
/// during the interval and the queue peaks at 2–3 MB.
pub(super) const PENDING_VALUES: usize = 256;

/// Values a flush hands over as they are ([`Sketch::deferred`]) rather than binned: up to
/// this many, 8 bytes each take no more than the bins they make (16 bytes each, one for
/// every few values of a series' usual spread), and the typical timer of an interval has a
/// handful.
const DEFERRED_VALUES: usize = 64;

/// A distribution being aggregated: count, sum, min and max as values arrive; the sketch in
/// batches. 72 bytes, and 8 a value waiting: one per live timer or histogram series, by the
/// 10 000s (with the whole `Distribution` in it and every value kept with its weight, it
/// took 112 bytes and 16 a value).
#[derive(Debug, Clone)]
pub(super) struct Dist {
    /// Weighted number of values so far.
    pub count: f64,
    /// Weighted sum.
    pub sum: f64,
    min: f64,
    max: f64,
    /// Values of weight 1 (most lines carry no sample rate) waiting for the sketch…
    pending: Vec<f64>,
    /// …and what is rarer: values with another weight, and the sketch of the values settled
    /// within the interval (a series past [`PENDING_VALUES`] values).
    rest: Option<Box<Rest>>,
    /// Seconds per unit of an `h` or `d` value: 0.001 when the name says milliseconds (here,
    /// where only distributions pay for it, rather than in every series' hot state).
    pub named_scale: f64,
}

#[derive(Debug, Clone, Default)]
struct Rest {
    weighted: Vec<(f64, f64)>,
    sketch: Sketch,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<Dist>() == 72);

impl Dist {
    /// Empty, its `h` and `d` values scaled by `named_scale`.
    pub fn new(named_scale: f64) -> Self {
        Self {
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            pending: Vec::new(),
            rest: None,
            named_scale,
        }
    }

    /// Bring in where the next waiting value goes (a step of the receive thread's grouped
    /// lookups).
    #[inline(always)]
    pub fn prefetch_tail(&self) {
        if self.pending.capacity() > 0 {
            prefetch(self.pending.as_ptr().wrapping_add(self.pending.len()));
        }
    }

    /// What `Distribution::record` does, with the sketch's part deferred.
    pub fn record(&mut self, v: f64, weight: f64) {
        self.count += weight;
        self.sum += v * weight;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        let waiting = if weight == 1.0 {
            self.pending.push(v);
            self.pending.len()
        } else {
            let rest = self.rest.get_or_insert_with(Box::default);
            rest.weighted.push((v, weight));
            rest.weighted.len()
        };
        if waiting >= PENDING_VALUES {
            self.settle();
        }
    }

    fn settle(&mut self) {
        let rest = self.rest.get_or_insert_with(Box::default);
        rest.sketch.add_values(&self.pending);
        rest.sketch.add_batch(&rest.weighted);
        self.pending.clear();
        rest.weighted.clear();
    }

    /// The interval's distribution, leaving an empty one. A few values go as they are (the
    /// buffer with them: the series grows a new one as values come); more are binned, and
    /// the buffer is kept for the next interval when it held many.
    pub fn take(&mut self) -> Distribution {
        let sketch = match self.rest.take() {
            // The values themselves, binned by the writer as it stores them: no allocation
            // here, and no bins held at once for every distribution of the flush.
            // (A buffer kept from a busier interval, mostly empty, is binned and kept.)
            None if self.pending.len() <= DEFERRED_VALUES
                && self.pending.capacity() <= 2 * self.pending.len().max(4) =>
            {
                Sketch::deferred(std::mem::take(&mut self.pending))
            }
            None => {
                let mut sketch = Sketch::new();
                sketch.add_values(&self.pending);
                sketch
            }
            Some(mut rest) => {
                rest.sketch.add_values(&self.pending);
                rest.sketch.add_batch(&rest.weighted);
                rest.sketch
            }
        };
        // After a busy interval the buffer is kept for the next (a busy series would only
        // grow it again; it never passes `PENDING_VALUES`, 2 KiB). After a quiet one its
        // memory goes back, and the next flush can hand over a snug buffer unbinned.
        if self.pending.len() < PENDING_VALUES / 4 {
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
        let d = Distribution { count: self.count, sum: self.sum, min: self.min, max: self.max, sketch };
        (self.count, self.sum, self.min, self.max) = (0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distribution_comes_out_as_recording_each_value_makes_it() {
        // Under and past the settling point, with and without weights (sample rates).
        for (n, weighted_every) in [(0, 0), (7, 0), (7, 3), (PENDING_VALUES * 2 + 5, 0), (PENDING_VALUES * 2 + 5, 4)] {
            let mut dist = Dist::new(1.0);
            let mut want = Distribution::from_values(&[]);
            for i in 0..n {
                let v = 0.001 * ((i * 37) % 500) as f64 + 0.0005;
                let w = if weighted_every > 0 && i % weighted_every == 0 { 4.0 } else { 1.0 };
                dist.record(v, w);
                want.record(v, w);
            }
            for round in 0..2 {
                let got = dist.take();
                assert_eq!((got.count, got.sum, got.min, got.max), (want.count, want.sum, want.min, want.max));
                assert_eq!(got.sketch.bin_values(), want.sketch.bin_values(), "{n} values, round {round}");
                // Taken: the next interval starts empty.
                want = Distribution::from_values(&[]);
            }
        }
    }

    #[test]
    fn same_compares_every_byte() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n as u8).collect();
            assert!(same(&a, &a.clone()));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 1;
                assert!(!same(&a, &b), "{n} {i}");
            }
            assert!(!same(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }
}
