//! Java-compatible key partitioning: the murmur2 hash Apache Kafka's Java client uses
//! for keyed records, so that a Rust producer and a Java producer put the same order on
//! the same partition (librdkafka's `murmur2_random` partitioner computes the same).
//! Shared by the producer, the redrive's dry run and the topic plan (which keys move
//! when a topic gains partitions).

/// Kafka's murmur2 of `data`, as the Java client's `Utils.murmur2` returns it (signed).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner (and librdkafka's
/// `murmur2_random` for non-empty keys) picks for `key`: `(murmur2 & 0x7fffffff) % partitions`.
///
/// # Panics
/// When `partitions` is zero.
pub fn partition_for_key(key: &[u8], partitions: u32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    let positive = (murmur2(key) as u32) & 0x7fff_ffff;
    (positive % partitions) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A literal transcription of the Java client's `Utils.murmur2` (signed 32-bit
    /// arithmetic, `>>>` as a logical shift, the switch fall-through spelled out), kept
    /// deliberately different in shape from the implementation above.
    fn java_reference(data: &[u8]) -> i32 {
        let length = data.len() as i32;
        let seed: i32 = 0x9747_b28c_u32 as i32;
        let m: i32 = 0x5bd1_e995;
        let r = 24;
        let mut h: i32 = seed ^ length;
        let length4 = length / 4;
        let byte = |i: i32| i32::from(data[i as usize]);
        for i in 0..length4 {
            let i4 = i * 4;
            let mut k: i32 = byte(i4)
                .wrapping_add(byte(i4 + 1) << 8)
                .wrapping_add(byte(i4 + 2) << 16)
                .wrapping_add(byte(i4 + 3) << 24);
            k = k.wrapping_mul(m);
            k ^= ((k as u32) >> r) as i32;
            k = k.wrapping_mul(m);
            h = h.wrapping_mul(m);
            h ^= k;
        }
        let base = length & !3;
        let rest = length % 4;
        if rest == 3 {
            h ^= byte(base + 2) << 16;
        }
        if rest >= 2 {
            h ^= byte(base + 1) << 8;
        }
        if rest >= 1 {
            h ^= byte(base);
            h = h.wrapping_mul(m);
        }
        h ^= ((h as u32) >> 13) as i32;
        h = h.wrapping_mul(m);
        h ^= ((h as u32) >> 15) as i32;
        h
    }

    /// Published vectors from Apache Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn matches_the_java_clients_published_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(java_reference(input), expected);
        }
    }

    #[test]
    fn agrees_with_the_reference_on_every_tail_length_and_high_bytes() {
        let bytes: Vec<u8> = (0u8..=255).rev().collect();
        for len in 0..64 {
            let input = &bytes[..len];
            assert_eq!(murmur2(input), java_reference(input), "length {len}");
        }
        for key in ["ord-000001", "ord-000042", "order-\u{e9}t\u{e9}", ""] {
            assert_eq!(murmur2(key.as_bytes()), java_reference(key.as_bytes()));
        }
    }

    #[test]
    fn partition_masks_the_sign_bit_like_java() {
        // "21" hashes negative: Java's toPositive masks the sign bit, it does not negate.
        let h = murmur2(b"21");
        assert!(h < 0);
        let expected = (h & 0x7fff_ffff) % 12;
        assert_eq!(partition_for_key(b"21", 12), expected);
        assert_eq!(
            partition_for_key(b"21", 12),
            (-973_932_308_i32 & 0x7fff_ffff) % 12
        );
        for key in ["a", "bb", "ccc", "dddd", "eeeee"] {
            let p = partition_for_key(key.as_bytes(), 7);
            assert!((0..7).contains(&p));
        }
    }
}
