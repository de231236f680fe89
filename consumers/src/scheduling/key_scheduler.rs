//! Per-key FIFO scheduling: records of one key run one at a time in arrival
//! (offset) order, different keys run concurrently.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

/// Identifies one dispatch of a record, so a completion that arrives after its
/// key was purged (partition revoked) cannot release a newer record of that key.
pub(crate) type Ticket = u64;

#[derive(Debug)]
struct KeyQueue<T> {
    queued: VecDeque<T>,
    in_flight: Option<Ticket>,
}

/// Buffers received records per key and hands out the ones that may start now:
/// the head of each key's queue, when no other record of that key is in flight.
#[derive(Debug)]
pub(crate) struct KeyScheduler<K, T> {
    keys: HashMap<K, KeyQueue<T>>,
    ready: VecDeque<K>,
    buffered: usize,
    in_flight: usize,
    next_ticket: Ticket,
}

impl<K: Hash + Eq + Clone, T> Default for KeyScheduler<K, T> {
    fn default() -> Self {
        Self {
            keys: HashMap::new(),
            ready: VecDeque::new(),
            buffered: 0,
            in_flight: 0,
            next_ticket: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, T> KeyScheduler<K, T> {
    /// An empty scheduler.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Queues a record behind the earlier records of its key.
    pub(crate) fn push(&mut self, key: K, item: T) {
        self.buffered += 1;
        let queue = self.keys.entry(key.clone()).or_insert_with(|| KeyQueue {
            queued: VecDeque::new(),
            in_flight: None,
        });
        if queue.in_flight.is_none() && queue.queued.is_empty() {
            self.ready.push_back(key);
        }
        queue.queued.push_back(item);
    }

    /// The next record that may start, marked in flight for its key.
    pub(crate) fn next_ready(&mut self) -> Option<(K, T, Ticket)> {
        while let Some(key) = self.ready.pop_front() {
            let Some(queue) = self.keys.get_mut(&key) else {
                continue;
            };
            if queue.in_flight.is_some() {
                continue;
            }
            let Some(item) = queue.queued.pop_front() else {
                continue;
            };
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            queue.in_flight = Some(ticket);
            self.in_flight += 1;
            return Some((key, item, ticket));
        }
        None
    }

    /// Releases the key of a finished record so its next record can start.
    /// Returns false (and changes nothing) for a ticket that is no longer current.
    pub(crate) fn complete(&mut self, key: &K, ticket: Ticket) -> bool {
        let Some(queue) = self.keys.get_mut(key) else {
            return false;
        };
        if queue.in_flight != Some(ticket) {
            return false;
        }
        queue.in_flight = None;
        self.in_flight -= 1;
        self.buffered -= 1;
        if queue.queued.is_empty() {
            self.keys.remove(key);
        } else {
            self.ready.push_back(key.clone());
        }
        true
    }

    /// Drops every queued and in-flight record whose key matches (a revoked
    /// partition). Returns how many records were dropped.
    pub(crate) fn purge(&mut self, mut matches: impl FnMut(&K) -> bool) -> usize {
        let mut dropped = 0;
        let (buffered, in_flight) = (&mut self.buffered, &mut self.in_flight);
        self.keys.retain(|key, queue| {
            if !matches(key) {
                return true;
            }
            let flying = usize::from(queue.in_flight.is_some());
            dropped += queue.queued.len() + flying;
            *buffered -= queue.queued.len() + flying;
            *in_flight -= flying;
            false
        });
        dropped
    }

    /// Drops the queued (not started) records whose key matches; records in flight
    /// stay in flight. Returns how many records were dropped.
    pub(crate) fn purge_queued(&mut self, mut matches: impl FnMut(&K) -> bool) -> usize {
        let mut dropped = 0;
        let buffered = &mut self.buffered;
        self.keys.retain(|key, queue| {
            if !matches(key) {
                return true;
            }
            dropped += queue.queued.len();
            *buffered -= queue.queued.len();
            queue.queued.clear();
            queue.in_flight.is_some()
        });
        dropped
    }

    /// Records received and not finished (queued plus in flight).
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Records received and not finished, counted per group of keys (`group_of`
    /// maps a key to its group, e.g. its partition).
    pub(crate) fn buffered_by<G: Ord>(&self, group_of: impl Fn(&K) -> G) -> BTreeMap<G, usize> {
        let mut counts = BTreeMap::new();
        for (key, queue) in &self.keys {
            *counts.entry(group_of(key)).or_insert(0) +=
                queue.queued.len() + usize::from(queue.in_flight.is_some());
        }
        counts
    }

    /// Records currently in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_per_key_in_flight_in_order() {
        let mut scheduler = KeyScheduler::new();
        scheduler.push("a", 1);
        scheduler.push("a", 2);
        scheduler.push("b", 10);
        let (k1, v1, t1) = scheduler.next_ready().unwrap();
        let (k2, v2, _t2) = scheduler.next_ready().unwrap();
        assert_eq!((k1, v1), ("a", 1));
        assert_eq!((k2, v2), ("b", 10));
        assert!(scheduler.next_ready().is_none(), "a:2 must wait for a:1");
        assert!(scheduler.complete(&"a", t1));
        let (k3, v3, _) = scheduler.next_ready().unwrap();
        assert_eq!((k3, v3), ("a", 2));
        assert_eq!(scheduler.buffered(), 2);
        assert_eq!(scheduler.in_flight(), 2);
    }

    #[test]
    fn purge_drops_queued_and_in_flight_and_ignores_stale_completion() {
        let mut scheduler = KeyScheduler::new();
        scheduler.push((0, "a"), 1);
        scheduler.push((0, "a"), 2);
        scheduler.push((1, "b"), 3);
        let (_, _, ticket_a) = scheduler.next_ready().unwrap();
        assert_eq!(scheduler.purge(|(partition, _)| *partition == 0), 2);
        assert_eq!(scheduler.buffered(), 1);
        assert_eq!(scheduler.in_flight(), 0);
        scheduler.push((0, "a"), 4);
        let mut started = Vec::new();
        while let Some((_, value, _)) = scheduler.next_ready() {
            started.push(value);
        }
        assert_eq!(started, vec![3, 4]);
        assert!(!scheduler.complete(&(0, "a"), ticket_a), "stale ticket");
        assert_eq!(scheduler.in_flight(), 2);
    }

    #[test]
    fn purge_queued_keeps_in_flight() {
        let mut scheduler = KeyScheduler::new();
        scheduler.push((0, "a"), 1);
        scheduler.push((0, "a"), 2);
        scheduler.push((0, "b"), 3);
        let (key, _, ticket) = scheduler.next_ready().unwrap();
        assert_eq!(scheduler.purge_queued(|(p, _)| *p == 0), 2);
        assert_eq!(scheduler.buffered(), 1);
        assert!(scheduler.next_ready().is_none());
        assert!(scheduler.complete(&key, ticket));
        assert_eq!(scheduler.buffered(), 0);
    }

    #[test]
    fn counts_return_to_zero() {
        let mut scheduler = KeyScheduler::new();
        for i in 0..100 {
            scheduler.push(i % 7, i);
        }
        let mut seen = vec![Vec::new(); 7];
        while scheduler.buffered() > 0 {
            let mut batch = Vec::new();
            while let Some(started) = scheduler.next_ready() {
                batch.push(started);
            }
            assert!(batch.len() <= 7);
            for (key, value, ticket) in batch {
                seen[key].push(value);
                assert!(scheduler.complete(&key, ticket));
            }
        }
        for (key, values) in seen.iter().enumerate() {
            let expected: Vec<_> = (0..100).filter(|i| i % 7 == key).collect();
            assert_eq!(values, &expected);
        }
        assert_eq!(scheduler.in_flight(), 0);
    }
}
