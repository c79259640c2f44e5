//! A map and a set kept as one sorted `Vec`, for the small collections (plugins, nodes, quotas,
//! timers, a batch's keys) that do not need a B-tree.
//!
//! Why not `BTreeMap`: every key/value type a B-tree is instantiated with adds several KB of
//! node, search and rebalancing code to the wasm (25 instantiations were a tenth of the
//! package), and building one from an iterator also instantiates a stable sort. Here a lookup is
//! a binary search and an insert is one `Vec::insert`: little code per type, and as fast for the
//! tens of entries these hold. Inserting n keys in random order costs O(n²) moves, so the
//! store's big indexes (100k records, random inserts) stay B-trees.

use std::borrow::Borrow;
use std::cmp::Ordering;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, Serializer};

/// A map ordered by key, as one sorted `Vec` of pairs (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// An empty map.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Where `key` is (`Ok`) or would go (`Err`).
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// The value of `key`, mutably.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &mut self.0[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// The value of `key`, first set to `make()` if there was none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (key, make()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    /// Removes and returns the entries with keys at or above `key`, like `BTreeMap::split_off`.
    pub fn split_off<Q: Ord + ?Sized>(&mut self, key: &Q) -> Self
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).unwrap_or_else(|i| i);
        Self(self.0.split_off(at))
    }

    /// Keeps only the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v))
    }
}

impl<K, V> SortedMap<K, V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0.clear()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.0.iter().map(|(_, v)| v)
    }

    /// The values in key order, mutably.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.0.iter_mut().map(|(_, v)| v)
    }
}

/// Later pairs win over earlier ones with the same key, as in `BTreeMap`.
impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = Self::new();
        map.extend(iter);
        map
    }
}

/// An insert per pair: for the small or ordered collections built here. Pairs read from a peer
/// go through [`SortedMap::from_unsorted`].
impl<K: Ord, V> Extend<(K, V)> for SortedMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// A map of `pairs` in any order, sorted once; of equal keys the later pair wins. Inserting
    /// them one by one moves O(n²) entries when they come in reverse order, and pairs read from
    /// a peer (a request's watermarks: 600,000 plugins fit in its 8 MiB) may.
    pub fn from_unsorted(mut pairs: Vec<(K, V)>) -> Self {
        // Stable, so of equal keys the later pair sits last; it replaces the earlier.
        sort_by(&mut pairs, |a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        Self(pairs)
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Serialises as a map, like `BTreeMap`.
impl<K: Serialize, V: Serialize> Serialize for SortedMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Reads a map; a repeated key keeps its last value, like `BTreeMap`. Sorted once
/// ([`SortedMap::from_unsorted`]): the server reads requests' watermarks through here.
impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for SortedMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Pairs<K, V> {
            type Value = SortedMap<K, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(access.size_hint().unwrap_or(0).min(4096));
                while let Some(pair) = access.next_entry()? {
                    pairs.push(pair);
                }
                Ok(SortedMap::from_unsorted(pairs))
            }
        }
        deserializer.deserialize_map(Pairs(std::marker::PhantomData))
    }
}

/// A set ordered by value, as one sorted, deduplicated `Vec` (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedSet<T>(Vec<T>);

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Ord> SortedSet<T> {
    /// An empty set.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Whether `value` is in the set.
    pub fn contains<Q: Ord + ?Sized>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.0.binary_search_by(|v| v.borrow().cmp(value)).is_ok()
    }

    /// Adds `value`; returns whether it was new.
    pub fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, value);
                true
            }
        }
    }

    /// Removes `value`; returns whether it was there.
    pub fn remove<Q: Ord + ?Sized>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        match self.0.binary_search_by(|v| v.borrow().cmp(value)) {
            Ok(i) => {
                self.0.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

impl<T> SortedSet<T> {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values in order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut set = Self::new();
        set.extend(iter);
        set
    }
}

impl<T: Ord> Extend<T> for SortedSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for v in iter {
            self.insert(v);
        }
    }
}

impl<T> IntoIterator for SortedSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Sorts `items` stably by `cmp`, through the one shared sort of [`sorted_positions`].
pub fn sort_by<T>(items: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) {
    let order = sorted_positions(items.len(), &|a, b| cmp(&items[a], &items[b]));
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.iter().filter_map(|&at| slots[at].take()));
}

/// The positions `0..len` in the order `cmp` (comparing two positions) sorts them; equal ones
/// keep their order. Every caller shares this one instantiation of the standard sort (the
/// comparison is a `dyn` call): sorting each item type directly would link one copy of the
/// sort per item type and comparison, several KB each. Never inlined, for the same reason.
#[inline(never)]
pub fn sorted_positions(len: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    // Positions are unique, so the unstable sort is stable here.
    order.sort_unstable_by(|&a, &b| cmp(a, b).then(a.cmp(&b)));
    order
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// Random inserts, removals and splits agree with the standard B-tree collections.
    #[test]
    fn behaves_like_the_btree_collections() {
        let mut rng = fastrand::Rng::with_seed(17);
        for _ in 0..50 {
            let (mut map, mut model) = (SortedMap::new(), BTreeMap::new());
            let (mut set, mut set_model) = (SortedSet::new(), BTreeSet::new());
            for _ in 0..rng.usize(0..200) {
                let k = rng.u8(0..40);
                match rng.u8(0..5) {
                    0 => assert_eq!(map.remove(&k), model.remove(&k)),
                    1 => assert_eq!(set.remove(&k), set_model.remove(&k)),
                    2 => assert_eq!(set.insert(k), set_model.insert(k)),
                    3 => {
                        *map.get_or_insert_with(k, || 0) += 1;
                        *model.entry(k).or_insert(0) += 1;
                    }
                    _ => assert_eq!(map.insert(k, 100), model.insert(k, 100)),
                }
                assert_eq!(map.get(&k), model.get(&k));
                assert_eq!(map.contains_key(&k), model.contains_key(&k));
                assert_eq!(set.contains(&k), set_model.contains(&k));
            }
            assert!(map.iter().eq(model.iter()));
            assert!(set.iter().eq(set_model.iter()));
            assert_eq!((map.len(), set.len()), (model.len(), set_model.len()));
            let at = rng.u8(0..40);
            let (high, model_high) = (map.split_off(&at), model.split_off(&at));
            assert!(high.into_iter().eq(model_high));
            assert!(map.into_iter().eq(model));
        }
    }

    #[test]
    fn collecting_keeps_the_last_value_of_a_repeated_key_and_dedups_a_set() {
        let map: SortedMap<_, _> = [(2, "a"), (1, "b"), (2, "c")].into_iter().collect();
        assert_eq!(map.into_iter().collect::<Vec<_>>(), [(1, "b"), (2, "c")]);
        let set: SortedSet<_> = [3, 1, 3, 2].into_iter().collect();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn sort_by_is_the_standard_stable_sort() {
        let mut rng = fastrand::Rng::with_seed(3);
        for len in [0, 1, 2, 7, 100] {
            let items: Vec<(u64, u64, &str)> = (0..len)
                .map(|i| (rng.u64(0..4), rng.u64(0..3), ["a", "b", "c"][i % 3]))
                .collect();
            let mut ours = items.clone();
            sort_by(&mut ours, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            let mut std = items;
            std.sort_by_key(|&(a, b, _)| (a, b));
            assert_eq!(ours, std);
        }
    }

    /// Pairs in reverse order (a hostile peer's watermarks) are sorted once, not inserted one
    /// by one (see `protocol`'s test of a request with 600,000 plugins), and the later of
    /// equal keys wins as in `BTreeMap`.
    #[test]
    fn unsorted_pairs_are_sorted_once_and_the_later_of_equal_keys_wins() {
        let n = 200_000u32;
        let text = format!(
            "{{{}}}",
            (0..n)
                .rev()
                .map(|k| format!("\"{k:07}\":{k}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let back: SortedMap<String, u32> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.len(), n as usize);
        assert!(back.values().copied().eq(0..n));
        let map = SortedMap::from_unsorted(vec![(3, "a"), (1, "b"), (3, "c"), (2, "d"), (1, "e")]);
        assert_eq!(
            map.into_iter().collect::<Vec<_>>(),
            [(1, "e"), (2, "d"), (3, "c")]
        );
    }

    #[test]
    fn serialises_like_a_btree_map() {
        let map: SortedMap<String, u32> = [("b".into(), 2), ("a".into(), 1)].into_iter().collect();
        let text = serde_json::to_string(&map).unwrap();
        assert_eq!(text, r#"{"a":1,"b":2}"#);
        let back: SortedMap<String, u32> = serde_json::from_str(r#"{"b":2,"a":1,"b":3}"#).unwrap();
        assert_eq!(
            back.into_iter().collect::<Vec<_>>(),
            [("a".into(), 1), ("b".into(), 3)]
        );
    }
}
