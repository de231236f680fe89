//! W3C Trace Context `traceparent` values for the records the producer writes.

use rand::Rng;

pub use orderflow_contracts::record::{TRACEPARENT_HEADER, TRACESTATE_HEADER};

/// Length of a `traceparent` value: `00-` + 32 hex + `-` + 16 hex + `-01`.
pub const TRACEPARENT_LEN: usize = 55;

/// A fresh sampled `traceparent` (`00-<trace id>-<span id>-01`) with random non-zero ids.
pub fn new_traceparent(rng: &mut impl Rng) -> String {
    let mut value = String::with_capacity(TRACEPARENT_LEN);
    write_traceparent(rng, &mut value);
    value
}

/// Replaces the contents of `out` with a fresh `traceparent` (no allocation once `out`
/// has the capacity).
pub fn write_traceparent(rng: &mut impl Rng, out: &mut String) {
    use std::fmt::Write;
    // The spec forbids all-zero ids; a random u128/u64 is zero with negligible
    // probability, but the loop makes it impossible rather than unlikely.
    let trace_id = loop {
        let id: u128 = rng.random();
        if id != 0 {
            break id;
        }
    };
    let span_id = loop {
        let id: u64 = rng.random();
        if id != 0 {
            break id;
        }
    };
    out.clear();
    write!(out, "00-{trace_id:032x}-{span_id:016x}-01").expect("writing to a String cannot fail");
}

/// Whether `value` is a well-formed version-00 `traceparent` (lower-case hex, non-zero ids).
pub fn is_valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let [version, trace_id, span_id, flags] = parts.as_slice() else {
        return false;
    };
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let all_zero = |s: &str| s.bytes().all(|b| b == b'0');
    *version == "00"
        && lower_hex(trace_id, 32)
        && !all_zero(trace_id)
        && lower_hex(span_id, 16)
        && !all_zero(span_id)
        && lower_hex(flags, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn generated_values_are_valid_and_fresh() {
        let mut rng = SmallRng::seed_from_u64(7);
        let a = new_traceparent(&mut rng);
        let b = new_traceparent(&mut rng);
        assert_eq!(a.len(), TRACEPARENT_LEN);
        assert!(is_valid_traceparent(&a), "{a}");
        assert!(a.ends_with("-01"));
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_malformed_values() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(is_valid_traceparent(good));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(!is_valid_traceparent(bad), "{bad}");
        }
    }
}
