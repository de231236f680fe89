//! Which keys change partition when a keyed topic gains partitions. Producers pick a
//! record's partition as murmur2(key) mod the partition count, so raising the count sends
//! most keys elsewhere: a consumer lagging on the old partition then sees an order's later
//! events (on the new partition) before its earlier ones. Pure code, no broker.

use orderflow_runtime::partitioner::partition_for_key;
use serde::Serialize;

/// Examples of moving keys shown in a plan, at most.
const EXAMPLES: usize = 5;

/// Keys read from the end of each partition of a topic, with the partition they are in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySample {
    /// Records read.
    pub records: u64,
    /// Distinct non-null keys with their partition now (the last one seen).
    pub keys: Vec<(Vec<u8>, i32)>,
}

impl KeySample {
    /// Whether the topic's records carry keys (any record read had one).
    pub fn is_keyed(&self) -> bool {
        !self.keys.is_empty()
    }
}

/// What a partition increase does to the keys sampled, for the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyMoves {
    /// Records read from the topic's partitions.
    pub sampled_records: u64,
    /// Distinct keys among them.
    pub sampled_keys: usize,
    /// Sampled keys whose partition changes.
    pub moving_keys: usize,
    /// Share of all possible keys that move, in percent (uniform murmur2 hashes).
    pub expected_percent: f64,
    /// A few moving keys: `key: old -> new`.
    pub examples: Vec<String>,
}

impl KeyMoves {
    /// The moves of `sample` when the topic goes from `from` to `to` partitions.
    pub fn compute(sample: &KeySample, from: i32, to: i32) -> Self {
        let to_count = u32::try_from(to.max(1)).unwrap_or(1);
        let moving: Vec<String> = sample
            .keys
            .iter()
            .filter_map(|(key, now)| {
                let next = partition_for_key(key, to_count);
                (next != *now).then(|| format!("{}: {now} -> {next}", String::from_utf8_lossy(key)))
            })
            .collect();
        Self {
            sampled_records: sample.records,
            sampled_keys: sample.keys.len(),
            moving_keys: moving.len(),
            expected_percent: expected_moving_percent(from, to),
            examples: moving.into_iter().take(EXAMPLES).collect(),
        }
    }
}

/// Percent of uniformly hashed keys whose partition changes from `from` to `to`
/// partitions: a hash keeps its partition when `h mod from == h mod to`, a pattern that
/// repeats every lcm(from, to) hashes.
pub fn expected_moving_percent(from: i32, to: i32) -> f64 {
    let (Ok(a), Ok(b)) = (u64::try_from(from), u64::try_from(to)) else {
        return 0.0;
    };
    if a == 0 || b == 0 || a == b {
        return 0.0;
    }
    let lcm = a / gcd(a, b) * b;
    // Counting the period one hash at a time is cheap for real partition counts; a
    // pair with a huge lcm falls back to the dominant term (the low `min` hashes stay).
    let staying = if lcm <= 10_000_000 {
        (0..lcm).filter(|h| h % a == h % b).count() as f64
    } else {
        lcm as f64 * a.min(b) as f64 / a.max(b) as f64
    };
    100.0 * (1.0 - staying / lcm as f64)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One line on what moves: sampled and expected shares, and a few keys.
pub(super) fn describe_moves(moves: &KeyMoves) -> String {
    let mut text = format!(
        "{} of {} sampled keys change partition (about {:.1}% of all keys)",
        moves.moving_keys, moves.sampled_keys, moves.expected_percent
    );
    if !moves.examples.is_empty() {
        text.push_str(&format!(", e.g. {}", moves.examples.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_moves_half_and_six_to_twelve_moves_half() {
        assert!((expected_moving_percent(1, 2) - 50.0).abs() < 1e-9);
        assert!((expected_moving_percent(6, 12) - 50.0).abs() < 1e-9);
        // 12 -> 13: only hashes below 12 in each period of 156 stay.
        let p = expected_moving_percent(12, 13);
        assert!((p - 100.0 * (1.0 - 12.0 / 156.0)).abs() < 1e-9, "{p}");
        assert_eq!(expected_moving_percent(4, 4), 0.0);
    }

    #[test]
    fn moves_name_the_keys_whose_murmur2_partition_changes() {
        let keys: Vec<(Vec<u8>, i32)> = (0..50)
            .map(|n| {
                let key = format!("order-{n}").into_bytes();
                let now = partition_for_key(&key, 2);
                (key, now)
            })
            .collect();
        let sample = KeySample { records: 60, keys };
        let moves = KeyMoves::compute(&sample, 2, 4);
        let expected = sample
            .keys
            .iter()
            .filter(|(k, now)| partition_for_key(k, 4) != *now)
            .count();
        assert_eq!(moves.moving_keys, expected);
        assert!(moves.moving_keys > 0 && moves.moving_keys < 50);
        assert_eq!(moves.examples.len(), 5);
        assert!(
            moves.examples[0].starts_with("order-"),
            "{:?}",
            moves.examples
        );
        assert_eq!(moves.sampled_keys, 50);
        assert!(KeySample::default().keys.is_empty() && !KeySample::default().is_keyed());
    }
}
