//! A map with a bound on its entries, for in-memory caches that a crowd of clients could
//! otherwise grow without end. When full, an eighth of the entries (whichever the hash map
//! yields first: effectively random) make room: cheap, and fair enough for a cache.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

pub struct BoundedMap<K, V> {
    entries: HashMap<K, V>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V> BoundedMap<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self { entries: HashMap::new(), capacity: capacity.max(1) }
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.entries.get(key)
    }

    pub fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.entries.get_mut(key)
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.entries.remove(key)
    }

    pub fn insert(&mut self, key: K, value: V) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let drop: Vec<K> = self.entries.keys().take(self.capacity.div_ceil(8)).cloned().collect();
            for key in drop {
                self.entries.remove(&key);
            }
        }
        self.entries.insert(key, value);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::BoundedMap;

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut map = BoundedMap::new(16);
        for i in 0..1000 {
            map.insert(i, i);
            assert!(map.len() <= 16);
        }
        assert_eq!(map.get(&999), Some(&999), "the newest entry is kept");
        map.insert(999, 0);
        assert_eq!(map.get(&999), Some(&0));
    }
}
