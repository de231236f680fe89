//! Per-key FIFO scheduling: records of one key are handed out in arrival (offset)
//! order, one run of them at a time (a run: one or several consecutive records of
//! the key, processed together in one batch); different keys run concurrently.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

/// Identifies one dispatch of a run of records, so a completion that arrives after
/// its key was purged (partition revoked) cannot release a newer run of that key.
pub(crate) type Ticket = u64;

#[derive(Debug)]
struct KeyQueue<T> {
    queued: VecDeque<T>,
    /// The run in flight: its ticket and how many of its records are not finished.
    in_flight: Option<(Ticket, usize)>,
}

/// Buffers received records per key and hands out the ones that may start now:
/// the head of each key's queue (up to a whole run of it), when no other record
/// of that key is in flight. The key's next run starts once every record of its
/// current run finished or was put back.
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
    #[cfg(test)]
    pub(crate) fn next_ready(&mut self) -> Option<(K, T, Ticket)> {
        let (key, mut run, ticket) = self.next_ready_run(1)?;
        Some((key, run.remove(0), ticket))
    }

    /// The next run that may start: up to `max` (at least one) consecutive records
    /// of one key, in offset order, marked in flight for the key under one ticket.
    pub(crate) fn next_ready_run(&mut self, max: usize) -> Option<(K, Vec<T>, Ticket)> {
        while let Some(key) = self.ready.pop_front() {
            let Some(queue) = self.keys.get_mut(&key) else {
                continue;
            };
            if queue.in_flight.is_some() || queue.queued.is_empty() {
                continue;
            }
            let take = max.max(1).min(queue.queued.len());
            let run: Vec<T> = queue.queued.drain(..take).collect();
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            queue.in_flight = Some((ticket, run.len()));
            self.in_flight += run.len();
            return Some((key, run, ticket));
        }
        None
    }

    /// A record of the key's run finished; the last one releases the key so its
    /// next records can start. Returns false (and changes nothing) for a ticket
    /// that is no longer current.
    pub(crate) fn complete(&mut self, key: &K, ticket: Ticket) -> bool {
        let Some(queue) = self.keys.get_mut(key) else {
            return false;
        };
        let Some((current, left)) = queue.in_flight.as_mut() else {
            return false;
        };
        if *current != ticket {
            return false;
        }
        *left -= 1;
        self.in_flight -= 1;
        self.buffered -= 1;
        if *left == 0 {
            self.release(key);
        }
        true
    }

    /// Gives records of the key's run back unfinished, to the front of its queue
    /// (`items` in offset order): they start again, in a later run, after the rest
    /// of the current run finished. Returns false (and drops nothing from the
    /// queue) for a ticket that is no longer current; the items are dropped then.
    pub(crate) fn put_back(&mut self, key: &K, ticket: Ticket, items: Vec<T>) -> bool {
        let Some(queue) = self.keys.get_mut(key) else {
            return false;
        };
        let Some((current, left)) = queue.in_flight.as_mut() else {
            return false;
        };
        if *current != ticket || *left < items.len() {
            return false;
        }
        *left -= items.len();
        self.in_flight -= items.len();
        for item in items.into_iter().rev() {
            queue.queued.push_front(item);
        }
        if *left == 0 {
            self.release(key);
        }
        true
    }

    /// The key's run is over: the key goes away, or waits for its next run.
    fn release(&mut self, key: &K) {
        let Some(queue) = self.keys.get_mut(key) else {
            return;
        };
        queue.in_flight = None;
        if queue.queued.is_empty() {
            self.keys.remove(key);
        } else {
            self.ready.push_back(key.clone());
        }
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
            let flying = queue.in_flight.map_or(0, |(_, left)| left);
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
                queue.queued.len() + queue.in_flight.map_or(0, |(_, left)| left);
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
    fn a_run_holds_its_key_until_every_record_finished() {
        let mut scheduler = KeyScheduler::new();
        for value in 1..=4 {
            scheduler.push("a", value);
        }
        scheduler.push("b", 10);
        let (key, run, ticket) = scheduler.next_ready_run(3).unwrap();
        assert_eq!((key, run), ("a", vec![1, 2, 3]));
        assert_eq!(scheduler.in_flight(), 3);
        let (key, run, _) = scheduler.next_ready_run(3).unwrap();
        assert_eq!((key, run), ("b", vec![10]));
        assert!(scheduler.complete(&"a", ticket));
        assert!(scheduler.complete(&"a", ticket));
        assert!(scheduler.next_ready_run(3).is_none(), "a:4 waits for a:3");
        assert!(scheduler.complete(&"a", ticket));
        let (key, run, _) = scheduler.next_ready_run(3).unwrap();
        assert_eq!((key, run), ("a", vec![4]));
        assert_eq!(scheduler.buffered(), 2);
    }

    #[test]
    fn put_back_records_start_again_in_order_after_the_rest_of_their_run() {
        let mut scheduler = KeyScheduler::new();
        for value in 1..=3 {
            scheduler.push("a", value);
        }
        let (_, run, ticket) = scheduler.next_ready_run(10).unwrap();
        assert_eq!(run, vec![1, 2, 3]);
        scheduler.push("a", 4);
        assert!(scheduler.put_back(&"a", ticket, vec![2, 3]));
        assert_eq!(scheduler.in_flight(), 1);
        assert_eq!(scheduler.buffered(), 4);
        assert!(
            scheduler.next_ready_run(10).is_none(),
            "a:1 still in flight"
        );
        assert!(scheduler.complete(&"a", ticket));
        let (_, run, ticket) = scheduler.next_ready_run(10).unwrap();
        assert_eq!(run, vec![2, 3, 4]);
        assert_eq!(scheduler.purge(|_| true), 3);
        assert!(!scheduler.put_back(&"a", ticket, vec![4]), "stale ticket");
        assert_eq!((scheduler.buffered(), scheduler.in_flight()), (0, 0));
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
