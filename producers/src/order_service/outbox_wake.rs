//! How the API tells the relay that it wrote outbox rows, and for which slots: each
//! write marks its order's slot, and the relay wakes that slot's owner only. Waking
//! every slot on every write made all 64 look at the outbox each time, 63 of them for
//! nothing, which took the database from the API's own requests.

use std::sync::atomic::{AtomicU64, Ordering};

use orderflow_outbox::queries::SLOTS;
use orderflow_runtime::partitioner::partition_for_key;
use tokio::sync::Notify;

// One bit a slot.
const _: () = assert!(SLOTS as u32 <= u64::BITS);

/// Slots written since the relay last looked, and the signal that there are some.
#[derive(Debug, Default)]
pub struct OutboxWake {
    slots: AtomicU64,
    notify: Notify,
}

impl OutboxWake {
    /// Marks the slot of `order_id` (the row's `slot` column: Kafka's murmur2 of the id,
    /// modulo [`SLOTS`]) and wakes the relay.
    pub fn written(&self, order_id: &str) {
        let slot = slot_of(order_id);
        self.slots.fetch_or(1 << slot, Ordering::AcqRel);
        self.notify.notify_one();
    }

    /// Waits for writes, then takes the slots written since the last call. A write that
    /// lands after the take leaves its wake-up for the next call.
    pub async fn written_slots(&self) -> Vec<i16> {
        self.notify.notified().await;
        let bits = self.slots.swap(0, Ordering::AcqRel);
        (0..SLOTS).filter(|slot| bits & (1 << slot) != 0).collect()
    }
}

/// The slot of an order's outbox rows, as `order_service.outbox_slot` computes it.
pub fn slot_of(order_id: &str) -> i16 {
    // The partition is in 0..SLOTS.
    partition_for_key(order_id.as_bytes(), SLOTS as u32) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_wake_their_own_slots_once_each() {
        let wake = OutboxWake::default();
        let orders = ["ord-1", "ord-2", "ord-1"];
        for order in orders {
            wake.written(order);
        }
        let mut expected: Vec<i16> = orders.iter().map(|order| slot_of(order)).collect();
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(wake.written_slots().await, expected);
    }

    #[test]
    fn slots_are_the_partitions_of_sixty_four() {
        for n in 0..500 {
            let slot = slot_of(&format!("ord-{n}"));
            assert!((0..SLOTS).contains(&slot), "{slot}");
        }
    }
}
