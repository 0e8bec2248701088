//! An observed-remove set (OR-set, add-wins) for state without a single order: comment
//! reactions, and later anything merged across gateway nodes (docs/ARCHITECTURE.md).
//!
//! Every add is tagged with a unique dot `(replica, counter)`; a remove deletes exactly the dots
//! its replica has observed for that element. So an add concurrent with a remove survives the
//! merge (the remove never saw its dot): adds win, and replicas converge whatever the order in
//! which they exchange states. This is the "optimized" OR-set of Bieniusa et al. (2012): instead
//! of keeping tombstones, each replica keeps a clock — per replica, the highest counter it has
//! seen — and a dot that the clock covers but the element lacks was removed. State stays
//! proportional to the live elements plus one counter per replica, however often users toggle.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The unique tag of one add.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    pub replica: String,
    pub counter: u64,
}

/// An add-wins observed-remove set of `E`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "Repr<E>",
    into = "Repr<E>",
    bound(
        serialize = "E: Serialize + Clone + Ord",
        deserialize = "E: Deserialize<'de> + Ord"
    )
)]
pub struct OrSet<E: Ord> {
    /// Live elements, each with the dots of the adds that put it there.
    entries: BTreeMap<E, BTreeSet<Dot>>,
    /// Per replica, the highest counter this state has seen (added, merged or removed).
    clock: BTreeMap<String, u64>,
}

/// The stored form: elements need not be strings, so entries are a list, not a JSON object.
#[derive(Serialize, Deserialize)]
struct Repr<E> {
    entries: Vec<(E, Vec<Dot>)>,
    clock: BTreeMap<String, u64>,
}

impl<E: Ord> From<Repr<E>> for OrSet<E> {
    fn from(r: Repr<E>) -> OrSet<E> {
        let mut entries: BTreeMap<E, BTreeSet<Dot>> = BTreeMap::new();
        for (e, dots) in r.entries {
            if !dots.is_empty() {
                entries.entry(e).or_default().extend(dots);
            }
        }
        OrSet {
            entries,
            clock: r.clock,
        }
    }
}

impl<E: Ord + Clone> From<OrSet<E>> for Repr<E> {
    fn from(s: OrSet<E>) -> Repr<E> {
        Repr {
            entries: s
                .entries
                .into_iter()
                .map(|(e, d)| (e, d.into_iter().collect()))
                .collect(),
            clock: s.clock,
        }
    }
}

impl<E: Ord> Default for OrSet<E> {
    fn default() -> OrSet<E> {
        OrSet {
            entries: BTreeMap::new(),
            clock: BTreeMap::new(),
        }
    }
}

impl<E: Ord + Clone> OrSet<E> {
    pub fn new() -> OrSet<E> {
        OrSet::default()
    }

    /// Adds `e` at `replica` with a fresh dot, and returns it.
    pub fn add(&mut self, replica: &str, e: E) -> Dot {
        let counter = self.clock.entry(replica.to_owned()).or_insert(0);
        *counter += 1;
        let dot = Dot {
            replica: replica.to_owned(),
            counter: *counter,
        };
        self.entries.entry(e).or_default().insert(dot.clone());
        dot
    }

    /// Removes `e` as observed here: the dots seen so far go; a concurrent add elsewhere stays.
    /// Returns the removed dots (empty when `e` was absent).
    pub fn remove(&mut self, e: &E) -> Vec<Dot> {
        self.entries
            .remove(e)
            .map(|d| d.into_iter().collect())
            .unwrap_or_default()
    }

    pub fn contains(&self, e: &E) -> bool {
        self.entries.contains_key(e)
    }

    /// The live elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &E> {
        self.entries.keys()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Folds another replica's state into this one. Commutative, associative and idempotent.
    pub fn merge(&mut self, other: &OrSet<E>) {
        let seen = |clock: &BTreeMap<String, u64>, d: &Dot| {
            clock.get(&d.replica).is_some_and(|c| d.counter <= *c)
        };
        let mut keys: BTreeSet<E> = self.entries.keys().cloned().collect();
        keys.extend(other.entries.keys().cloned());
        let empty = BTreeSet::new();
        let mut merged = BTreeMap::new();
        for e in keys {
            let mine = self.entries.get(&e).unwrap_or(&empty);
            let theirs = other.entries.get(&e).unwrap_or(&empty);
            let mut keep = BTreeSet::new();
            for d in mine {
                // Kept if the other side has it too, or never saw it (so could not remove it).
                if theirs.contains(d) || !seen(&other.clock, d) {
                    keep.insert(d.clone());
                }
            }
            for d in theirs {
                if !mine.contains(d) && !seen(&self.clock, d) {
                    keep.insert(d.clone());
                }
            }
            if !keep.is_empty() {
                merged.insert(e, keep);
            }
        }
        self.entries = merged;
        for (r, c) in &other.clock {
            let mine = self.clock.entry(r.clone()).or_insert(0);
            *mine = (*mine).max(*c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_wins_over_a_concurrent_remove() {
        let mut a: OrSet<&str> = OrSet::new();
        a.add("a", "👍");
        let mut b = a.clone();
        // b removes what it saw; a adds again concurrently.
        b.remove(&"👍");
        a.add("a", "👍");
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert!(ab.contains(&"👍") && ba.contains(&"👍"));
        assert_eq!(ab, ba);
        // A remove that observed every add wins.
        ab.remove(&"👍");
        let mut a2 = a.clone();
        a2.merge(&ab);
        assert!(!a2.contains(&"👍"));
    }

    #[test]
    fn state_does_not_grow_with_toggles() {
        let mut s: OrSet<String> = OrSet::new();
        for _ in 0..10_000 {
            s.add("node", "x".into());
            s.remove(&"x".to_owned());
        }
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.len() < 64, "{json}");
        let back: OrSet<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    /// Seeded fuzz: three replicas add, remove and merge at random; after everyone has merged
    /// everyone, all states are equal, and an element is present iff some add of it was never
    /// observed by a remove.
    #[test]
    fn replicas_converge_in_any_merge_order() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _round in 0..200 {
            let names = ["r0", "r1", "r2"];
            let mut reps: Vec<OrSet<(u8, u8)>> = vec![OrSet::new(); 3];
            for _ in 0..40 {
                let r = next(3) as usize;
                let e = (next(3) as u8, next(2) as u8);
                match next(3) {
                    0 => {
                        reps[r].add(names[r], e);
                    }
                    1 => {
                        reps[r].remove(&e);
                    }
                    _ => {
                        let o = next(3) as usize;
                        let other = reps[o].clone();
                        reps[r].merge(&other);
                    }
                }
            }
            // Merge in two different orders.
            let mut fwd = reps[0].clone();
            fwd.merge(&reps[1]);
            fwd.merge(&reps[2]);
            let mut back = reps[2].clone();
            back.merge(&reps[1]);
            back.merge(&reps[0]);
            assert_eq!(fwd, back);
            let mut again = fwd.clone();
            again.merge(&back);
            assert_eq!(again, fwd, "merge is idempotent");
        }
    }
}
