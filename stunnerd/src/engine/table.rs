//! The permission and channel tables of one allocation: a `Vec` of entries, scanned while short,
//! plus a hash index from key to position once it holds more than [`SCAN_MAX`] entries, so that a
//! lookup on the packet path costs O(1) at any size.
//!
//! Why this shape: almost every allocation has one or two permissions and channels, where a scan of
//! a short `Vec` beats hashing the key (the per-packet cost of the common case stays what it was,
//! and an idle allocation carries no index: `None` is 8 bytes). An authenticated client may fill
//! both tables (256 each); then a lookup hashes the key and probes an open-addressing table of
//! positions (`u16`, at most half full, so one or two probes: 2 KiB for the two keys of 256 channels, 1 KiB
//! for 256 permissions) in
//! place of hundreds of comparisons. The index stores positions only, not keys, so it stays small.
//!
//! The hasher is the engine's FxHash ([`super::FxHasher`]): fast, not keyed. The keys (peer
//! addresses, channel numbers) are chosen by the client, so it could make them collide, but that
//! only lengthens probes in its own allocation's index, never beyond a scan of its 256 entries,
//! i.e. what every lookup cost before.

use std::hash::{Hash, Hasher};

use super::FxHasher;

/// Longest table that lookups scan rather than index.
pub(crate) const SCAN_MAX: usize = 8;

/// An entry of a [`Table`], found by each of its keys (unique within the table).
pub(crate) trait Keyed {
    /// A key that finds one entry.
    type Key: Copy + Eq + Hash;
    /// Every key of an entry.
    fn keys(&self) -> impl Iterator<Item = Self::Key>;
    /// Whether `key` is one of this entry's keys.
    fn has(&self, key: Self::Key) -> bool;
}

/// Entries with unique keys, looked up by scan while short and by index after.
#[derive(Debug)]
pub(crate) struct Table<T> {
    entries: Vec<T>,
    index: Option<Box<Index>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            index: None,
        }
    }
}

impl<T: Keyed> Table<T> {
    /// Number of entries (live or expired).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry with `key`. Always inlined, so that the scan compares one field of the known key.
    #[inline(always)]
    pub(crate) fn get(&self, key: T::Key) -> Option<&T> {
        match &self.index {
            None => self.entries.iter().find(|e| e.has(key)),
            Some(index) => self.get_indexed(index, key),
        }
    }

    /// The lookup of a long table, kept out of line (and off the hot layout) of the short scan.
    #[cold]
    #[inline(never)]
    fn get_indexed(&self, index: &Index, key: T::Key) -> Option<&T> {
        let at = index.find(key, |i| self.entries[i].has(key))?;
        self.entries.get(at)
    }

    /// The entry with `key`, mutably (its keys must not change).
    #[inline]
    pub(crate) fn get_mut(&mut self, key: T::Key) -> Option<&mut T> {
        self.position(key).map(|i| &mut self.entries[i])
    }

    #[inline]
    fn position(&self, key: T::Key) -> Option<usize> {
        match &self.index {
            None => self.entries.iter().position(|e| e.has(key)),
            Some(index) => index.find(key, |i| self.entries[i].has(key)),
        }
    }

    /// Adds `entry`, none of whose keys may be in the table yet.
    pub(crate) fn push(&mut self, entry: T) {
        debug_assert!(entry.keys().all(|k| self.get(k).is_none()), "duplicate key");
        let at = self.entries.len();
        let keys = (at + 1) * keys_of(&entry);
        self.entries.push(entry);
        if let Some(index) = self.index.as_mut().filter(|index| index.fits(keys)) {
            index.insert_keys(&self.entries[at], at);
        } else if self.entries.len() > SCAN_MAX {
            self.reindex();
        }
    }

    /// Keeps the entries for which `keep` is true (re-indexing when any went).
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        let before = self.entries.len();
        self.entries.retain(keep);
        if self.entries.len() != before {
            self.reindex();
        }
    }

    /// Calls `f` on every entry; `f` must not change an entry's keys.
    pub(crate) fn for_each_mut(&mut self, f: impl FnMut(&mut T)) {
        self.entries.iter_mut().for_each(f);
    }

    /// Rebuilds the index for the current entries (none while they are few enough to scan).
    fn reindex(&mut self) {
        self.index = (self.entries.len() > SCAN_MAX).then(|| Box::new(Index::of(&self.entries)));
    }
}

/// Keys per entry of `entry`'s type.
fn keys_of<T: Keyed>(entry: &T) -> usize {
    entry.keys().count()
}

/// Open-addressing hash index of positions: a slot holds position + 1, 0 is empty. Linear probing,
/// at most half full, no deletion (removals rebuild it).
#[derive(Debug)]
struct Index {
    slots: Box<[u16]>,
    /// `64 - log2(slots.len())`: the top bits of the hash pick the home slot.
    shift: u32,
}

impl Index {
    /// An index of `entries`, at most half full.
    fn of<T: Keyed>(entries: &[T]) -> Self {
        let keys = entries.first().map_or(0, keys_of) * entries.len();
        let len = (keys * 2).next_power_of_two().max(16);
        let mut index = Self {
            slots: vec![0; len].into_boxed_slice(),
            shift: 64 - len.trailing_zeros(),
        };
        for (at, e) in entries.iter().enumerate() {
            index.insert_keys(e, at);
        }
        index
    }

    /// Whether `keys` keys keep the index at most half full.
    fn fits(&self, keys: usize) -> bool {
        keys * 2 <= self.slots.len()
    }

    fn insert_keys<T: Keyed>(&mut self, entry: &T, at: usize) {
        let pos = u16::try_from(at + 1).expect("tables hold fewer than 65535 entries");
        for key in entry.keys() {
            let mut i = self.home(key);
            while self.slots[i] != 0 {
                i = (i + 1) & (self.slots.len() - 1);
            }
            self.slots[i] = pos;
        }
    }

    /// The position of the entry for which `is_key` is true, probing from `key`'s home slot.
    #[inline]
    fn find<K: Hash>(&self, key: K, is_key: impl Fn(usize) -> bool) -> Option<usize> {
        let mut i = self.home(key);
        loop {
            match usize::from(self.slots[i]) {
                0 => return None,
                pos if is_key(pos - 1) => return Some(pos - 1),
                _ => i = (i + 1) & (self.slots.len() - 1),
            }
        }
    }

    #[inline]
    fn home<K: Hash>(&self, key: K) -> usize {
        let mut h = FxHasher::default();
        key.hash(&mut h);
        (h.finish() >> self.shift) as usize
    }
}
