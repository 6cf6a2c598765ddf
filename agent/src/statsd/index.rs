//! The live series' hash index: positions by hash, in one array of 8-byte slots with linear
//! probing.
//!
//! `hashbrown` would do the lookups, but hides where a hash will land. Here the slot is
//! known from the hash alone, so the receive thread can prefetch the slots of a whole group
//! of lines before it looks any of them up ([`Index::prefetch`]): with 10 000 series and
//! more, each lookup is a cache miss, and the misses of a group then overlap instead of
//! queueing one after the other.
//!
//! A slot holds the upper 32 bits of the hash (the *tag*, which also places the slot) and
//! the position plus one; 0 is empty. The table is at most a quarter full, or 13/16 when
//! large ([`slots_for`]), so a miss stops within a few cache lines. Nothing is removed one at
//! a time: a new index is built instead ([`Index::rebuilt`]).

/// Positions by hash. See the module docs.
#[derive(Debug, Default)]
pub(super) struct Index {
    slots: Vec<u64>,
    len: usize,
}

/// The part of a hash a slot keeps, and places the slot by.
#[inline(always)]
fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// Slots for `n` entries: a power of two, at least 16, with `n` filling at most a quarter
/// while they take no more than [`QUARTER_FULL_UP_TO`] slots, and 13/16 beyond.
///
/// The fuller the table, the more slots a lookup steps over, and each step is a branch the
/// CPU may mispredict: with 400 series in 512 slots (78 % full) the receive thread took 5 %
/// more CPU than with `hashbrown`'s grouped probes, and 0.9 more mispredicted branches per
/// line (callgrind's model). A quarter full, nine lookups in ten stop at their first slot.
/// Past some ten thousand series memory counts more, and lookups wait on cache misses
/// rather than on branches.
fn slots_for(n: usize) -> usize {
    let quarter_full = n.saturating_mul(4).next_power_of_two();
    if quarter_full <= QUARTER_FULL_UP_TO {
        return quarter_full.max(16);
    }
    // Never fewer slots than a quarter-full table of fewer entries has.
    n.saturating_mul(16).div_ceil(13).next_power_of_two().max(QUARTER_FULL_UP_TO)
}

/// Slots up to which an index is kept at most a quarter full: 512 KiB, 16 384 series.
const QUARTER_FULL_UP_TO: usize = 1 << 16;

/// Hint the CPU to bring `p`'s cache line in: a read that nothing waits for.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it reads nothing into the program and never faults,
    // whatever the address (SSE, which it needs, is part of every x86-64 CPU).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Index {
    #[cfg(test)]
    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The first slot a hash is looked for in.
    #[inline(always)]
    fn home(&self, tag: u32) -> usize {
        tag as usize & (self.slots.len() - 1)
    }

    /// Start bringing in the slot `hash` is looked up from.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            prefetch(&raw const self.slots[self.home(tag_of(hash))]);
        }
    }

    /// The first position stored under `hash`'s tag: almost always the only one, and the
    /// one sought when it is held.
    #[inline(always)]
    pub fn first(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// The first position under `hash`'s tag that `is` accepts.
    #[inline(always)]
    pub fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = tag_of(hash);
        // An empty index has no slot 0 (`get` answers `None`); any other has a free slot,
        // where the probe stops.
        let mask = self.slots.len().wrapping_sub(1);
        let mut k = tag as usize & mask;
        loop {
            let slot = *self.slots.get(k)?;
            if slot == 0 {
                return None;
            }
            let at = slot as u32 - 1;
            if (slot >> 32) as u32 == tag && is(at) {
                return Some(at);
            }
            k = (k + 1) & mask;
        }
    }

    /// Add `at` under `hash` (the caller knows it is not there yet).
    pub fn insert(&mut self, hash: u64, at: u32) {
        if slots_for(self.len + 1) > self.slots.len() {
            let mut grown = Index { slots: vec![0; slots_for(self.len + 1).max(self.slots.len() * 2)], len: 0 };
            for &s in self.slots.iter().filter(|&&s| s != 0) {
                grown.put(s);
            }
            *self = grown;
        }
        self.put(u64::from(tag_of(hash)) << 32 | u64::from(at + 1));
    }

    /// Store a slot's value in the first free slot from its home (there is room).
    fn put(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut k = self.home((slot >> 32) as u32);
        while self.slots[k] != 0 {
            k = (k + 1) & mask;
        }
        self.slots[k] = slot;
        self.len += 1;
    }

    /// A new index of the entries `moved` gives a new position to (`None` drops one).
    pub fn rebuilt(&self, mut moved: impl FnMut(u32) -> Option<u32>) -> Index {
        let kept: Vec<u64> = self
            .slots
            .iter()
            .filter(|&&s| s != 0)
            .filter_map(|&s| moved(s as u32 - 1).map(|at| (s >> 32) << 32 | u64::from(at + 1)))
            .collect();
        let mut index = Index { slots: vec![0; slots_for(kept.len())], len: 0 };
        for s in kept {
            index.put(s);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Hashes from a small range collide in their tags and crowd their homes: every
        // lookup still finds exactly what was stored, through growth and rebuilds.
        #[test]
        fn finds_what_a_map_finds(hashes in proptest::collection::vec(0u64..64, 0..300), keep_every in 1u32..4) {
            // 16 tags for 64 hashes: most tags are shared, and homes crowd.
            let spread = |h: u64| (h % 16) << 32 | h;
            // Every position a lookup of `h` is offered, in order of position.
            let offered = |index: &Index, h: u64| {
                let mut seen = Vec::new();
                index.find(h, |i| {
                    seen.push(i);
                    false
                });
                seen.sort_unstable();
                seen
            };
            let mut index = Index::default();
            for (at, h) in hashes.iter().enumerate() {
                index.insert(spread(*h), at as u32);
                prop_assert!(index.slots.len() * 13 >= index.len() * 16);
            }
            let same_tag = |a: u64, b: u64| spread(a) >> 32 == spread(b) >> 32;
            for &h in &hashes {
                // Exactly the positions stored under the tag, each once.
                let want: Vec<u32> = (0..hashes.len() as u32).filter(|&i| same_tag(hashes[i as usize], h)).collect();
                prop_assert_eq!(offered(&index, spread(h)), want);
                let at = hashes.iter().position(|&x| x == h).unwrap_or_default() as u32;
                prop_assert_eq!(index.find(spread(h), |i| i == at), Some(at));
            }
            prop_assert_eq!(index.find(u64::MAX, |_| true), None);
            // Keep every n-th, packed down: exactly the kept ones are offered, at their new
            // positions.
            let moved = |at: u32| at.is_multiple_of(keep_every).then_some(at / keep_every);
            let rebuilt = index.rebuilt(moved);
            prop_assert_eq!(rebuilt.len(), hashes.len().div_ceil(keep_every as usize));
            for &h in &hashes {
                let want: Vec<u32> = (0..hashes.len() as u32)
                    .filter(|&i| same_tag(hashes[i as usize], h))
                    .filter_map(moved)
                    .collect();
                prop_assert_eq!(offered(&rebuilt, spread(h)), want);
            }
        }
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let index = Index::default();
        index.prefetch(7);
        assert_eq!(index.find(7, |_| true), None);
        assert_eq!(index.rebuilt(Some).len(), 0);
    }

    #[test]
    fn slots_stay_three_quarters_free_then_within_thirteen_sixteenths() {
        assert_eq!(slots_for(0), 16);
        assert_eq!(slots_for(4), 16);
        assert_eq!(slots_for(5), 32);
        assert_eq!(slots_for(400), 2048);
        assert_eq!(slots_for(1 << 14), 1 << 16);
        // Past a quarter of 2^16 slots, up to 13/16 full, never fewer slots than before.
        assert_eq!(slots_for((1 << 14) + 1), 1 << 16);
        for n in 1..200_000 {
            assert!(slots_for(n) >= slots_for(n - 1), "{n}");
        }
        assert_eq!(slots_for(53_248), 1 << 16);
        assert_eq!(slots_for(53_249), 1 << 17);
        // 100 000 series, the default limit, fit in 2^17 slots: 1 MiB.
        assert_eq!(slots_for(100_000), 1 << 17);
        assert_eq!(slots_for(106_496), 1 << 17);
        assert_eq!(slots_for(106_497), 1 << 18);
    }
}
