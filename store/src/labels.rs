//! A series key's labels: one allocation of varint-prefixed strings, shared among the keys
//! that hold the same set ([`LabelSets`]).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::SeriesKey;

/// A key's labels in one allocation: each key and value after its length as a varint, in key
/// order. Keys live as long as their series, often by the 100 000: as a `Vec` of `String`
/// pairs a key with two labels took five allocations and about 230 bytes, where this takes
/// one of about 30. Serialized as before, a list of `[key, value]` pairs; a list read back
/// is sorted, and of two values for one key the smaller is kept (as the store reads them).
///
/// Shared: many keys often hold the same labels (the same tags on many names and kinds), and
/// [`LabelSets`] lets them hold one copy.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Labels(Arc<[u8]>);

impl Labels {
    /// From pairs already sorted by key, keys unique.
    pub(crate) fn from_sorted<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut out = Vec::new();
        Self::encode(&mut out, pairs);
        Self(out.into())
    }

    /// The bytes of [`Labels::from_sorted`] into `out` (cleared first).
    fn encode<'a>(out: &mut Vec<u8>, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        out.clear();
        for (k, v) in pairs {
            for s in [k, v] {
                crate::codec::put_varint(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    /// From pairs in any order: sorted, and of two values for one key the smaller kept.
    pub(crate) fn from_pairs(mut pairs: Vec<(String, String)>) -> Self {
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Self::from_sorted(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    pub(crate) fn iter(&self) -> LabelIter<'_> {
        LabelIter { rest: &self.0 }
    }
}

// A set is found by its bytes before any is allocated ([`LabelSets::key`]): the derived
// `Hash` and `Eq` of the `Arc<[u8]>` are those of the bytes.
impl std::borrow::Borrow<[u8]> for Labels {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // As the pairs compare (the bytes would order by length first).
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<(String, String)>::deserialize(d).map(Self::from_pairs)
    }
}

/// Sort `pairs` by key and keep one pair a key, its last value (stable: a key's values stay
/// in the order given), as a key's labels are held.
pub(crate) fn last_wins(pairs: &mut Vec<(&str, &str)>) {
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut kept = 0;
    for i in 0..pairs.len() {
        if kept > 0 && pairs[kept - 1].0 == pairs[i].0 {
            pairs[kept - 1] = pairs[i];
        } else {
            pairs[kept] = pairs[i];
            kept += 1;
        }
    }
    pairs.truncate(kept);
}

/// A key's labels as `(key, value)`, sorted by key ([`SeriesKey::labels`]).
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    rest: &'a [u8],
}

impl<'a> LabelIter<'a> {
    fn next_str(&mut self) -> Option<&'a str> {
        let mut at = 0;
        let len = crate::codec::get_varint(self.rest, &mut at).ok()?;
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        let bytes = self.rest.get(at..end)?;
        self.rest = &self.rest[end..];
        // SAFETY: `Labels::from_sorted` is the only writer of these bytes, and it copies each
        // string whole from a `&str` right after its length, which is what is read back here:
        // `bytes` is exactly one of those strings.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        Some((self.next_str()?, self.next_str()?))
    }
}

/// Label sets that keys share ([`LabelSets::share`]): each distinct set held once, however
/// many keys hold it. DogStatsD series mostly differ by name and kind and repeat their tags:
/// the load generator's 100 000 series hold 100 distinct sets, and a set of a tag or two took
/// a 32- to 48-byte allocation in every key.
#[derive(Debug, Default)]
pub struct LabelSets(HashSet<Labels>, Vec<u8>);

impl LabelSets {
    /// `SeriesKey::shared(service, name, kind, unit)` with `tags` then set on it
    /// ([`SeriesKey::set_labels`]: a key's last value wins, `service` included) and then
    /// [`LabelSets::share`]d, in one step: the set's bytes are put together in a buffer kept
    /// here and looked up, so a key whose set is held allocates nothing for its labels (three
    /// allocations and about 3 500 instructions a new series before, two of them freed at
    /// once).
    pub fn key<'a>(
        &mut self,
        service: &'a str,
        name: crate::SharedStr,
        kind: crate::Kind,
        unit: crate::SharedStr,
        tags: impl IntoIterator<Item = (&'a str, &'a str)>,
        most: usize,
    ) -> SeriesKey {
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(4);
        pairs.push((crate::model::SERVICE_LABEL, service));
        pairs.extend(tags);
        last_wins(&mut pairs);
        Labels::encode(&mut self.1, pairs.iter().copied());
        let labels = match self.0.get(self.1.as_slice()) {
            Some(held) => held.clone(),
            None => {
                let labels = Labels(Arc::from(self.1.as_slice()));
                if self.0.len() < most {
                    self.0.insert(labels.clone());
                }
                labels
            }
        };
        SeriesKey { name, kind, unit, labels }
    }

    /// Make `key` hold the copy of its labels already held here, or hold its own here while
    /// fewer than `most` sets are.
    pub fn share(&mut self, key: &mut SeriesKey, most: usize) {
        match self.0.get(&key.labels) {
            Some(held) => key.labels = held.clone(),
            None if self.0.len() < most => {
                self.0.insert(key.labels.clone());
            }
            None => {}
        }
    }

    /// Let go of the sets no key holds any more.
    pub fn prune(&mut self) {
        self.0.retain(|l| Arc::strong_count(&l.0) > 1);
    }

    /// Distinct sets held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    proptest::proptest! {
        /// A key made in one step is the key made in three, sharing the same sets.
        #[test]
        fn a_key_made_in_one_step_is_the_key_made_in_three(
            keys in proptest::collection::vec(
                ("[a-c]{1,2}", proptest::collection::vec(("[a-cs]{0,2}|service", "[xy]{0,2}"), 0..4)),
                1..12,
            ),
            most in 0usize..4,
        ) {
            let (mut one, mut three) = (LabelSets::default(), LabelSets::default());
            let mut made = Vec::new();
            for (name, tags) in &keys {
                let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let a = one.key("svc", name.as_str().into(), Kind::Counter, "s".into(), tags.iter().copied(), most);
                let mut b = SeriesKey::shared("svc", name.as_str().into(), Kind::Counter, "s".into());
                b.set_labels(tags.iter().copied());
                three.share(&mut b, most);
                proptest::prop_assert_eq!(&a, &b);
                made.push((a, b));
            }
            proptest::prop_assert_eq!(one.len(), three.len());
            // The same keys share a set both ways.
            for (i, (a, b)) in made.iter().enumerate() {
                for (c, d) in &made[..i] {
                    proptest::prop_assert_eq!(Arc::ptr_eq(&a.labels.0, &c.labels.0), Arc::ptr_eq(&b.labels.0, &d.labels.0));
                }
            }
        }
    }

    #[test]
    fn keys_with_the_same_labels_share_one_copy_until_none_holds_it() {
        let mut sets = LabelSets::default();
        let mut a = SeriesKey::new("svc", "a", Kind::Counter).label("op", "get");
        let mut b = SeriesKey::new("svc", "b", Kind::Gauge).label("op", "get");
        let mut c = SeriesKey::new("svc", "c", Kind::Counter).label("op", "put");
        for k in [&mut a, &mut b, &mut c] {
            sets.share(k, 2);
        }
        // Past the most held, a set already held is still shared; a new one is not held.
        let mut d = SeriesKey::new("svc", "d", Kind::Counter).label("op", "get");
        let mut e = SeriesKey::new("svc", "e", Kind::Counter).label("op", "head");
        sets.share(&mut d, 2);
        sets.share(&mut e, 2);
        assert!(Arc::ptr_eq(&a.labels.0, &d.labels.0));
        assert_eq!(sets.len(), 2);
        drop((d, e));
        assert!(Arc::ptr_eq(&a.labels.0, &b.labels.0), "one copy of op=get");
        assert!(!Arc::ptr_eq(&a.labels.0, &c.labels.0));
        assert_eq!(b.labels().collect::<Vec<_>>(), [("op", "get"), ("service", "svc")]);
        assert_eq!((a.clone(), sets.len()), (SeriesKey::new("svc", "a", Kind::Counter).label("op", "get"), 2));
        drop(c);
        sets.prune();
        assert_eq!(sets.len(), 1, "op=put is let go with its last key");
        drop((a, b));
        sets.prune();
        assert!(sets.is_empty());
    }
}
