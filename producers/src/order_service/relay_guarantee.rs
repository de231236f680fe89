//! What the relay's guarantee needs from its producer, checked on the producer's
//! effective configuration (flags, `client.properties` and `--kafka-option` applied) at
//! start-up, before anything is contacted:
//!
//! - `acks=all` and `enable.idempotence=true`: a row is marked sent only after the
//!   broker acknowledged it, so the acknowledgement must mean "stored by the in-sync
//!   replicas", and client retries must not write it twice;
//! - a bounded delivery timeout that the slot's Kafka transaction covers: librdkafka
//!   reads it from `delivery.timeout.ms` or its alias `message.timeout.ms` (with both
//!   set, which one wins depends on the order they are applied in, so they must agree),
//!   and refuses a `transaction.timeout.ms` below it. Unset, the transaction timeout is
//!   the delivery timeout; it also bounds how long the broker keeps a paused owner's
//!   transaction open;
//! - no `transactional.id` of the user's: the relay gives each slot's producer its own
//!   (`--relay-transactional-id-prefix`), which is what fences a previous owner.
//!
//! Every time-out of the relay's transactions derives from [`DeliveryGuarantee`].

use std::time::Duration;

use rdkafka::ClientConfig;

/// The longest delivery timeout accepted: a slot's commit may wait this long, and the
/// broker's own cap on transactions (`transaction.max.timeout.ms`) defaults to 900 s.
/// librdkafka's own default is the same 300 s.
pub(crate) const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// The producer's guarantee, as its effective configuration sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeliveryGuarantee {
    /// How long librdkafka may keep a record before reporting it failed.
    pub(crate) delivery_timeout: Duration,
    /// The slots' `transaction.timeout.ms`: as set, or the delivery timeout.
    pub(crate) transaction_timeout: Duration,
}

impl DeliveryGuarantee {
    /// Checks `config`; the error is one line naming the setting to change.
    pub(crate) fn of(config: &ClientConfig) -> Result<Self, String> {
        let acks = one_of(config, "acks", "request.required.acks")?;
        if let Some(acks) = acks
            && !matches!(acks.trim(), "all" | "-1")
        {
            return Err(format!(
                "the relay needs acks=all (got acks={acks}): with fewer acknowledgements a row is marked sent that no in-sync replica may have stored"
            ));
        }
        let idempotence = config.get("enable.idempotence").map(str::trim);
        if !idempotence.is_some_and(|value| value.eq_ignore_ascii_case("true") || value == "1") {
            return Err(format!(
                "the relay needs enable.idempotence=true (got {}): without it a client retry can write a row twice or out of order",
                idempotence.unwrap_or("unset")
            ));
        }
        let timeout = one_of(config, "delivery.timeout.ms", "message.timeout.ms")?.ok_or(
            "the relay needs a delivery timeout (delivery.timeout.ms / message.timeout.ms)",
        )?;
        let millis: u64 = timeout.trim().parse().map_err(|_| {
            format!("delivery.timeout.ms / message.timeout.ms {timeout:?} is not a number of milliseconds")
        })?;
        let delivery_timeout = Duration::from_millis(millis);
        if millis == 0 || delivery_timeout > MAX_DELIVERY_TIMEOUT {
            return Err(format!(
                "the relay's delivery timeout (delivery.timeout.ms / message.timeout.ms = {millis}) must be between 1 ms and {} ms: a slot's commit waits for it{}",
                MAX_DELIVERY_TIMEOUT.as_millis(),
                if millis == 0 {
                    ", and 0 never ends"
                } else {
                    ""
                }
            ));
        }
        if let Some(id) = config.get("transactional.id") {
            return Err(format!(
                "the relay sets transactional.id itself, one per outbox slot (got {id}): use --relay-transactional-id-prefix"
            ));
        }
        let transaction_timeout = match config.get("transaction.timeout.ms") {
            None => delivery_timeout,
            Some(value) => {
                let millis: u64 = value.trim().parse().map_err(|_| {
                    format!("transaction.timeout.ms {value:?} is not a number of milliseconds")
                })?;
                let transaction_timeout = Duration::from_millis(millis);
                if transaction_timeout < delivery_timeout {
                    return Err(format!(
                        "transaction.timeout.ms={millis} is below the delivery timeout ({} ms): librdkafka refuses a transactional producer whose records outlive its transaction",
                        delivery_timeout.as_millis()
                    ));
                }
                transaction_timeout
            }
        };
        Ok(Self {
            delivery_timeout,
            transaction_timeout,
        })
    }
}

/// The value of a setting spelt `name` or `alias`; both set to different values is an
/// error, since which one librdkafka applies depends on their order.
fn one_of<'a>(
    config: &'a ClientConfig,
    name: &str,
    alias: &str,
) -> Result<Option<&'a str>, String> {
    match (config.get(name), config.get(alias)) {
        (Some(a), Some(b)) if a.trim() != b.trim() => Err(format!(
            "{name}={a} and its alias {alias}={b} disagree: set one of them"
        )),
        (Some(value), _) | (None, Some(value)) => Ok(Some(value)),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "120000");
        for (key, value) in pairs {
            config.set(*key, *value);
        }
        config
    }

    #[test]
    fn the_service_defaults_pass_and_give_the_transaction_timeout() {
        let guarantee = DeliveryGuarantee::of(&config(&[])).expect("defaults pass");
        assert_eq!(guarantee.delivery_timeout, Duration::from_secs(120));
        assert_eq!(guarantee.transaction_timeout, Duration::from_secs(120));
        let longer = config(&[("transaction.timeout.ms", "180000")]);
        let guarantee = DeliveryGuarantee::of(&longer).expect("passes");
        assert_eq!(guarantee.transaction_timeout, Duration::from_secs(180));
    }

    #[test]
    fn the_timeout_follows_the_effective_alias() {
        let mut only_delivery = ClientConfig::new();
        only_delivery
            .set("acks", "-1")
            .set("enable.idempotence", "true")
            .set("delivery.timeout.ms", "45000");
        let guarantee = DeliveryGuarantee::of(&only_delivery).expect("passes");
        assert_eq!(guarantee.delivery_timeout, Duration::from_secs(45));
        let agreeing = config(&[("delivery.timeout.ms", "120000")]);
        assert!(DeliveryGuarantee::of(&agreeing).is_ok());
    }

    #[test]
    fn settings_that_break_the_guarantee_are_refused() {
        for pairs in [
            &[("acks", "1")][..],
            &[("acks", "all"), ("request.required.acks", "0")],
            &[("enable.idempotence", "false")],
            &[("message.timeout.ms", "0")],
            &[("message.timeout.ms", "300001")],
            &[("delivery.timeout.ms", "30000")],
            &[("message.timeout.ms", "soon")],
            &[("transactional.id", "mine")],
            &[("transaction.timeout.ms", "60000")],
        ] {
            assert!(DeliveryGuarantee::of(&config(pairs)).is_err(), "{pairs:?}");
        }
    }
}
