//! How strong an API token must be: at least [`MIN_TOKEN_BITS`] bits, never a value this
//! repository ships as an example.
//!
//! A token's strength is estimated from its length and the characters it is drawn from:
//! length × log2(alphabet), where the alphabet is hex (16) when every character is a hex
//! digit of one case, else the union of the classes it uses (digits 10, lower case 26,
//! upper case 26, the symbols `-._~+/=` 7). So 32 hex digits or 22 base64url characters
//! reach 128 bits. The estimate is what the token's format could hold, an upper bound: a
//! token typed by a person holds less, so a token in which one character makes up more
//! than a third is refused as well (random tokens of 128 bits and more almost never are).

use orderflow_runtime::example_secrets::is_example_secret;

/// Fewest bits of entropy a token must carry (estimated as above).
pub const MIN_TOKEN_BITS: f64 = 128.0;

/// The command that makes a good token, for error messages.
pub const TOKEN_RECIPE: &str = "openssl rand -hex 32";

/// Why `token` is too weak to accept, if it is; never contains the token.
pub fn weakness(token: &str) -> Option<String> {
    if is_example_secret(token) {
        return Some(format!(
            "the token is the example value of .env.example; make one with `{TOKEN_RECIPE}`"
        ));
    }
    if most_repeated_share(token) > 1.0 / 3.0 {
        return Some(format!(
            "one character makes up more than a third of the token, so it is not random \
             and carries less than the {MIN_TOKEN_BITS:.0} bits required; make one with \
             `{TOKEN_RECIPE}`"
        ));
    }
    let bits = estimated_bits(token);
    if bits < MIN_TOKEN_BITS {
        return Some(format!(
            "the token carries about {bits:.0} bits, below the {MIN_TOKEN_BITS:.0} bits \
             required (32 hex digits or 22 base64url characters of random data); make one \
             with `{TOKEN_RECIPE}`"
        ));
    }
    None
}

/// A class of characters a token may draw from, and how many characters it holds.
type CharClass = (fn(char) -> bool, u32);

/// Length × log2(alphabet) as described in the module documentation.
pub fn estimated_bits(token: &str) -> f64 {
    let chars = token.chars().count() as f64;
    let is_hex = |upper: bool| {
        token.chars().all(|c| {
            c.is_ascii_digit()
                || if upper {
                    ('A'..='F').contains(&c)
                } else {
                    ('a'..='f').contains(&c)
                }
        })
    };
    let alphabet = if !token.is_empty() && (is_hex(false) || is_hex(true)) {
        16
    } else {
        let classes: [CharClass; 4] = [
            (|c| c.is_ascii_digit(), 10),
            (|c| c.is_ascii_lowercase(), 26),
            (|c| c.is_ascii_uppercase(), 26),
            (|c| !c.is_ascii_alphanumeric(), 7),
        ];
        classes
            .iter()
            .filter(|(is_in, _)| token.chars().any(is_in))
            .map(|(_, size)| size)
            .sum()
    };
    if alphabet < 2 {
        return 0.0;
    }
    chars * f64::from(alphabet).log2()
}

/// The share of the token taken by its most frequent character.
fn most_repeated_share(token: &str) -> f64 {
    let total = token.chars().count();
    if total == 0 {
        return 1.0;
    }
    let mut counts = std::collections::HashMap::new();
    for c in token.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    most as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_of_128_bits_pass_and_shorter_ones_do_not() {
        // 32 and 31 hex digits.
        assert_eq!(weakness("3f9c1a7be2d84c05a61e9b7d2c4f8e10"), None);
        assert!(weakness("3f9c1a7be2d84c05a61e9b7d2c4f8e1").is_some());
        // 22 base64url characters; 22 and 21 letters and digits (62: 5.95 bits each).
        assert_eq!(weakness("kR4_x9Lq2Zb-Tw7mPc0sYe"), None);
        assert_eq!(weakness("kR4x9Lq2ZbTw7mPc0sYeVd"), None);
        assert!(weakness("kR4x9Lq2ZbTw7mPc0sYeV").is_some());
        assert!((estimated_bits("0123456789abcdef") - 64.0).abs() < 1e-9);
        assert!((estimated_bits("0123456789ABCDEF") - 64.0).abs() < 1e-9);
    }

    #[test]
    fn example_and_repetitive_tokens_are_refused_without_echoing_them() {
        let example = weakness("change-me-order-api-token").unwrap();
        assert!(example.contains(".env.example"), "{example}");
        assert!(!example.contains("change-me"), "{example}");
        let repeated = weakness(&"a".repeat(64)).unwrap();
        assert!(repeated.contains("128 bits"), "{repeated}");
        let pattern = weakness(&"ab".repeat(32)).unwrap();
        assert!(pattern.contains("not random"), "{pattern}");
        assert_eq!(estimated_bits(""), 0.0);
    }
}
