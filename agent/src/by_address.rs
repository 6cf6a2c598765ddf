//! Values by the address of a shared key: how the writer finds a live series' store id
//! without hashing and comparing the key's strings (looking up 100 000 keys by their strings
//! was a fifth of the writer). `/metrics` does the same with a table of its own slots.

use std::sync::{Arc, Weak};

/// `V` by the address of an `Arc<K>`. An entry holds a weak reference to its key, which
/// keeps the allocation (so the address cannot be given to another key while the entry is
/// here) without keeping the key alive; entries whose key is gone (an expired series, the
/// one-off key of a backfilled point) are dropped by [`ByAddress::sweep`]. 16 bytes an
/// entry: the address is the weak reference's own.
#[derive(Debug)]
pub(crate) struct ByAddress<K, V> {
    table: hashbrown::HashTable<(Weak<K>, V)>,
    hasher: foldhash::fast::RandomState,
    calls: u32,
}

impl<K, V> Default for ByAddress<K, V> {
    fn default() -> Self {
        Self { table: hashbrown::HashTable::new(), hasher: foldhash::fast::RandomState::default(), calls: 0 }
    }
}

impl<K, V> ByAddress<K, V> {
    fn hash(hasher: &foldhash::fast::RandomState, at: *const K) -> u64 {
        use std::hash::BuildHasher as _;
        hasher.hash_one(at as usize)
    }

    /// The value put for this very key (not an equal one elsewhere).
    pub(crate) fn get(&self, key: &Arc<K>) -> Option<&V> {
        let at = Arc::as_ptr(key);
        self.table.find(Self::hash(&self.hasher, at), |(k, _)| std::ptr::eq(k.as_ptr(), at)).map(|e| &e.1)
    }

    /// Put `value` for this very key.
    pub(crate) fn put(&mut self, key: &Arc<K>, value: V) {
        let at = Arc::as_ptr(key);
        let hasher = &self.hasher;
        match self.table.entry(
            Self::hash(hasher, at),
            |(k, _)| std::ptr::eq(k.as_ptr(), at),
            |(k, _)| Self::hash(hasher, k.as_ptr()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut e) => e.get_mut().1 = value,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert((Arc::downgrade(key), value));
            }
        }
    }

    /// Make room for `additional` more keys in one step. Growing a step at a time holds the
    /// old table and the new, twice its size, at once: 1.1 and 2.2 MB as the agent's first
    /// flush brought 90 000 series, at the end of their write when it held the most.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let hasher = &self.hasher;
        self.table.reserve(additional, |(k, _)| Self::hash(hasher, k.as_ptr()));
    }

    /// Every 64th call, drop the entries whose key is gone.
    pub(crate) fn sweep(&mut self) {
        self.calls = self.calls.wrapping_add(1);
        if self.calls.is_multiple_of(64) {
            self.table.retain(|(k, _)| k.strong_count() > 0);
        }
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether every entry's key is still alive.
    #[cfg(test)]
    pub(crate) fn all_alive(&self) -> bool {
        self.table.iter().all(|(k, _)| k.strong_count() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_by_the_very_key_and_go_with_it() {
        let mut m: ByAddress<String, u32> = ByAddress::default();
        let a = Arc::new("op.calls".to_owned());
        let b = Arc::new("op.calls".to_owned());
        m.put(&a, 1);
        assert_eq!(m.get(&a), Some(&1));
        assert_eq!(m.get(&b), None, "an equal key elsewhere is another key");
        m.put(&b, 2);
        drop(a);
        // Swept on the 64th call: until then the entry holds the gone key's allocation, so
        // its address cannot be handed to a new key.
        for _ in 0..63 {
            m.sweep();
            assert_eq!(m.len(), 2);
        }
        m.sweep();
        assert_eq!(m.len(), 1);
        assert!(m.all_alive());
        assert_eq!(m.get(&b), Some(&2));
    }

    #[test]
    fn a_reserved_batch_goes_in_without_the_table_growing_and_keeps_what_was_there() {
        let mut m: ByAddress<u32, u32> = ByAddress::default();
        let old: Vec<Arc<u32>> = (0..1000).map(Arc::new).collect();
        for k in &old {
            m.put(k, *k.as_ref());
        }
        let batch: Vec<Arc<u32>> = (1000..90_000).map(Arc::new).collect();
        m.reserve(batch.len());
        let room = m.table.capacity();
        for k in &batch {
            m.put(k, *k.as_ref());
        }
        assert_eq!(m.table.capacity(), room, "grown in one step");
        assert!(old.iter().chain(&batch).all(|k| m.get(k) == Some(k.as_ref())));
    }
}
