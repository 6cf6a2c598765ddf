//! A live StatsD series as the aggregator holds it: the raw bytes it is looked up by, and a
//! distribution's values on their way to its sketch.

use std::sync::Arc;

use perfstore::grow::reserve_by_eighths;
use perfstore::sketch::Sketch;
use perfstore::{Distribution, SeriesKey};

use super::index::{Index, prefetch};
use super::state::State;

/// Identity bytes kept in a series' own entry, up to this many: longer ones are in the
/// table's arena. A name and a tag or two (`api.calls\0c\0op:get`) fit.
const INLINE: usize = 24;

/// A live series: what a line changes, and the identity it is looked up by, in one cache
/// line. (Identity and state apart took a line lookup three cache lines: where the identity
/// is, its bytes and the state.)
#[derive(Debug)]
#[repr(C, align(64))]
pub(super) struct Entry {
    pub state: State,
    /// The flush count when a line last came, modulo 2^32 ([`stamp`]).
    pub last_seen: u32,
    /// The identity's length…
    len: u32,
    /// …and its bytes when they fit, else (the first four bytes) where they start in the
    /// arena.
    ident: [u8; INLINE],
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<Entry>() == 64);

impl Entry {
    /// Where the identity starts in the arena, when it is not inline.
    #[inline(always)]
    fn arena_at(&self) -> Option<usize> {
        let [a, b, c, d, ..] = self.ident;
        (self.len as usize > INLINE).then(|| u32::from_le_bytes([a, b, c, d]) as usize)
    }
}

/// A flush count as an entry keeps it: flushes since then are `stamp(now).wrapping_sub(last)`,
/// right while a series is idle for fewer than 2^32 flushes (it has expired long before).
#[inline(always)]
pub(super) fn stamp(flushes: u64) -> u32 {
    flushes as u32
}

/// The live series: a hash index and one entry per series. What every line touches (an
/// index slot and an entry) is packed densely, so that 100,000 series stay within a few
/// cache-friendly megabytes; the canonical keys, read once per flush, are kept apart. The
/// arrays grow by eighths ([`reserve_by_eighths`]), not by doubling.
///
/// A lookup can be split in steps, each bringing in what the next reads
/// ([`LiveTable::prefetch_slot`], [`LiveTable::candidate`], [`LiveTable::prefetch_entry`],
/// [`LiveTable::prefetch_ident`], then [`LiveTable::is_at`]), so that the receive thread
/// overlaps the cache misses of a group of lines.
#[derive(Debug, Default)]
pub(super) struct LiveTable {
    /// Positions by hash.
    index: Index,
    /// The series.
    pub entries: Vec<Entry>,
    /// Identities too long for their entry, back to back.
    arena: Vec<u8>,
    /// What a flush names (shared with the flushes, not copied into each).
    pub keys: Vec<Arc<SeriesKey>>,
}

impl LiveTable {
    /// Series held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The position of the series `ident` (whose hash is `hash`).
    #[inline]
    pub fn find(&self, ident: &Ident<'_>, hash: u64) -> Option<usize> {
        self.index.find(hash, |i| self.is_at(ident, i as usize)).map(|i| i as usize)
    }

    /// The identity bytes of `e`.
    #[inline(always)]
    fn ident_of<'s>(&'s self, e: &'s Entry) -> &'s [u8] {
        match e.arena_at() {
            None => &e.ident[..e.len as usize],
            Some(at) => &self.arena[at..at + e.len as usize],
        }
    }

    /// Whether the series at `i` is `ident`.
    #[inline(always)]
    pub fn is_at(&self, ident: &Ident<'_>, i: usize) -> bool {
        ident.is(self.ident_of(&self.entries[i]))
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

    /// Step 3: bring in the entry of the series at `i` (one cache line).
    #[inline(always)]
    pub fn prefetch_entry(&self, i: usize) {
        prefetch(self.entries.as_ptr().wrapping_add(i));
    }

    /// Step 4: bring in the identity's bytes of the series at `i` when they are not in its
    /// entry.
    #[inline(always)]
    pub fn prefetch_ident(&self, i: usize) {
        if let Some(e) = self.entries.get(i)
            && let Some(at) = e.arena_at()
        {
            let start = self.arena.as_ptr().wrapping_add(at);
            prefetch(start);
            prefetch(start.wrapping_add(e.len as usize - 1));
        }
    }

    /// Add a series not held, last seen at flush `flushes`; its position.
    pub fn push(&mut self, ident: &Ident<'_>, hash: u64, key: SeriesKey, state: State, flushes: u64) -> usize {
        let i = self.entries.len();
        let bytes = ident.to_bytes();
        reserve_by_eighths(&mut self.entries, 1);
        reserve_by_eighths(&mut self.keys, 1);
        let ident = self.place(&bytes);
        self.entries.push(Entry { state, last_seen: stamp(flushes), len: bytes.len() as u32, ident });
        self.keys.push(Arc::new(key));
        self.index.insert(hash, i as u32);
        i
    }

    /// An entry's identity field for `bytes`: the bytes, or where they now are in the arena.
    fn place(&mut self, bytes: &[u8]) -> [u8; INLINE] {
        let mut out = [0; INLINE];
        match out.get_mut(..bytes.len()) {
            Some(inline) => inline.copy_from_slice(bytes),
            None => {
                reserve_by_eighths(&mut self.arena, bytes.len());
                out[..4].copy_from_slice(&(self.arena.len() as u32).to_le_bytes());
                self.arena.extend_from_slice(bytes);
            }
        }
        out
    }

    /// Keep the series `keep` says to, packing the arrays again; how many left.
    pub fn retain(&mut self, mut keep: impl FnMut(&SeriesKey, &Entry) -> bool) -> usize {
        let flags: Vec<bool> = self.keys.iter().zip(&self.entries).map(|(k, e)| keep(k, e)).collect();
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
        let kept = kept as usize;
        let long = |e: &Entry| e.arena_at().map_or(0, |_| e.len as usize);
        let bytes = flags.iter().zip(&old.entries).filter(|(k, _)| **k).map(|(_, e)| long(e)).sum();
        self.arena.reserve_exact(bytes);
        self.entries.reserve_exact(kept);
        self.keys.reserve_exact(kept);
        let entries = std::mem::take(&mut old.entries);
        for ((keep, mut e), key) in flags.into_iter().zip(entries).zip(old.keys) {
            if keep {
                if let Some(at) = e.arena_at() {
                    e.ident[..4].copy_from_slice(&(self.arena.len() as u32).to_le_bytes());
                    self.arena.extend_from_slice(&old.arena[at..at + e.len as usize]);
                }
                self.entries.push(e);
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
    #[inline(always)]
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

    /// What `Distribution::record` does, with the sketch's part deferred.
    #[inline]
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
    fn series_are_found_by_identity_inline_or_not_after_others_leave() {
        let hasher = foldhash::fast::RandomState::default();
        // Identities of 4 to 60 bytes: in their entry up to 24, in the arena beyond.
        let names: Vec<String> = (0..200).map(|i| format!("{}{i}", "n".repeat(i % 57))).collect();
        fn ident(name: &str) -> Ident<'_> {
            Ident { name_part: name.as_bytes(), kind: b'c', tags: b"t:v" }
        }
        let mut table = LiveTable::default();
        for (i, name) in names.iter().enumerate() {
            let key = SeriesKey::new("s", name, perfstore::Kind::Counter);
            let state = State::Counter { sum: i as f64, touched: true };
            assert_eq!(table.push(&ident(name), ident(name).hash(&hasher), key, state, 0), i);
        }
        // Every third leaves; the rest are packed again, their long identities with them.
        let mut n = 0;
        assert_eq!(table.retain(|_, _| (n % 3 != 0, n += 1).0), 67);
        for (i, name) in names.iter().enumerate() {
            let found = table.find(&ident(name), ident(name).hash(&hasher));
            if i % 3 == 0 {
                assert_eq!(found, None, "{name}");
                continue;
            }
            let at = found.unwrap_or_else(|| panic!("{name} lost"));
            assert_eq!(*table.keys[at].name, **name);
            assert!(matches!(table.entries[at].state, State::Counter { sum, .. } if sum == i as f64));
            // Another kind or other tags are another series.
            assert_eq!(table.find(&Ident { kind: b'g', ..ident(name) }, ident(name).hash(&hasher)), None);
        }
    }

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
