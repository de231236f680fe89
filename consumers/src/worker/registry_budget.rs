//! What a failed writer-schema lookup means for the record, per schema id: wait
//! (the registry is down, or a 404 within the deserializer's grace), wait within a
//! budget (the registry answers, but refuses this id: 401/403, a 5xx while other
//! calls succeed, an answer that does not parse), or dead-letter. The budget is
//! counted per schema id, from the first refusal, so a registry that refuses one id
//! for good costs that id's records the budget once, never the lane forever; one log
//! line per schema id says when the trouble starts, when the budget runs out and
//! when the registry answers again.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

// Tokio's clock, so the unit tests can move time by hand.
use tokio::time::Instant;

use orderflow_schemas::{DecodeError, RegistryClient, RegistryError, RetryAdvice};

/// Most schema ids in trouble remembered at once: garbage ids must not grow the map.
const MAX_IDS: usize = 10_000;

/// How long a 5xx proven by a probe to be one id's trouble is believed without a new
/// probe: one probe per second at most, however many records wait.
const PROBE_VALID_FOR: Duration = Duration::from_secs(1);

/// What to do with a record whose decode failed on the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegistryVerdict {
    /// Retry it later with backoff.
    Wait,
    /// The budget of its schema id is used up: dead-letter it (category `registry`).
    GiveUp(String),
    /// Retrying cannot help (the deserializer's poison).
    Poison,
}

/// The failure-budget bookkeeping of one decoder (shared by its clones).
#[derive(Debug)]
pub(crate) struct RegistryBudget {
    budget: Duration,
    troubles: Mutex<HashMap<u32, Trouble>>,
    /// Ids whose records wait on a registry that does not answer (logged once each).
    waiting: Mutex<HashSet<u32>>,
    /// When a probe last proved the registry answers while an id got a 5xx.
    registry_answered_at: Mutex<Option<Instant>>,
}

#[derive(Debug, Clone, Copy)]
struct Trouble {
    since: Instant,
    last: Instant,
    gave_up_logged: bool,
}

impl RegistryBudget {
    /// Refusals of one schema id are retried for `budget` from the first one.
    pub(crate) fn new(budget: Duration) -> Self {
        Self {
            budget,
            troubles: Mutex::default(),
            waiting: Mutex::default(),
            registry_answered_at: Mutex::default(),
        }
    }

    /// Judges a failed decode of a record of `schema_id`; `client` answers the probe
    /// that tells a 5xx for this id from a registry that is down.
    pub(crate) async fn judge(
        &self,
        schema_id: u32,
        error: &DecodeError,
        client: &RegistryClient,
    ) -> RegistryVerdict {
        let within_budget = match error.retry_advice() {
            RetryAdvice::Never => return RegistryVerdict::Poison,
            RetryAdvice::WithinBudget => true,
            RetryAdvice::UntilItAnswers => self.answers_while_this_id_fails(error, client).await,
        };
        if !within_budget {
            self.waits_on_outage(schema_id, error);
            return RegistryVerdict::Wait;
        }
        self.charge(schema_id, error)
    }

    /// The registry answered for `schema_id` again: its budget starts afresh.
    pub(crate) fn answered(&self, schema_id: u32) {
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if !waiting.is_empty() && waiting.remove(&schema_id) {
                tracing::info!(
                    schema_id,
                    "schema registry answers for this schema id again"
                );
            }
        }
        let mut troubles = self.troubles.lock().unwrap_or_else(PoisonError::into_inner);
        if troubles.is_empty() {
            return;
        }
        if let Some(trouble) = troubles.remove(&schema_id) {
            tracing::info!(
                schema_id,
                after = ?trouble.since.elapsed(),
                "schema registry answers for this schema id again"
            );
        }
    }

    /// One line per schema id when its records start waiting on a registry outage
    /// (a 404 within the grace has the deserializer's own line).
    fn waits_on_outage(&self, schema_id: u32, error: &DecodeError) {
        if matches!(
            error,
            DecodeError::RegistryUnavailable {
                source: RegistryError::NotFound { .. },
                ..
            }
        ) {
            return;
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.len() >= MAX_IDS && !waiting.contains(&schema_id) {
            waiting.clear();
        }
        if waiting.insert(schema_id) {
            tracing::warn!(schema_id, %error,
                "schema registry does not answer; records of this schema id wait (with backoff) until it does");
        }
    }

    /// A 5xx answer for this id while a probe shows the registry answering is this
    /// id's trouble (a corrupt row, a bug): retried within the budget. A 5xx with
    /// the probe failing too, and no answer at all, is an outage: wait.
    async fn answers_while_this_id_fails(
        &self,
        error: &DecodeError,
        client: &RegistryClient,
    ) -> bool {
        let DecodeError::RegistryUnavailable {
            source:
                RegistryError::Unreachable {
                    status: Some(500..=599),
                    ..
                },
            ..
        } = error
        else {
            return false;
        };
        let recently = *self
            .registry_answered_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if recently.is_some_and(|at| at.elapsed() < PROBE_VALID_FOR) {
            return true;
        }
        let answers = client.answers().await.is_ok();
        *self
            .registry_answered_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = answers.then(Instant::now);
        answers
    }

    fn charge(&self, schema_id: u32, error: &DecodeError) -> RegistryVerdict {
        let now = Instant::now();
        let mut troubles = self.troubles.lock().unwrap_or_else(PoisonError::into_inner);
        if troubles.len() >= MAX_IDS && !troubles.contains_key(&schema_id) {
            troubles.clear();
        }
        let fresh = Trouble {
            since: now,
            last: now,
            gave_up_logged: false,
        };
        let trouble = troubles.entry(schema_id).or_insert_with(|| {
            tracing::warn!(schema_id, budget = ?self.budget, %error,
                "schema registry refuses the lookup of this schema id; its records are retried within the budget, then dead-lettered (category registry)");
            fresh
        });
        // A refusal long after the last one is new trouble with a new budget.
        if now.duration_since(trouble.last) > self.budget {
            *trouble = fresh;
        }
        trouble.last = now;
        if now.duration_since(trouble.since) < self.budget {
            return RegistryVerdict::Wait;
        }
        if !trouble.gave_up_logged {
            trouble.gave_up_logged = true;
            tracing::warn!(schema_id, budget = ?self.budget, %error,
                "schema registry refused this schema id for the whole budget; dead-lettering its records (category registry) until it answers");
        }
        RegistryVerdict::GiveUp(format!(
            "schema registry refused the lookup of schema id {schema_id} for longer than the budget ({:?}, --registry-failure-budget): {error}",
            self.budget
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(schema_id: u32) -> DecodeError {
        DecodeError::RegistryUnavailable {
            schema_id,
            source: RegistryError::Unauthorized {
                url: "http://r".into(),
                what: format!("schema id {schema_id}"),
                status: 403,
                message: String::new(),
            },
        }
    }

    fn client() -> RegistryClient {
        RegistryClient::new("http://127.0.0.1:1").unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_id_waits_within_its_budget_then_gives_up() {
        let budget = RegistryBudget::new(Duration::from_millis(200));
        assert_eq!(
            budget.judge(7, &refused(7), &client()).await,
            RegistryVerdict::Wait
        );
        tokio::time::advance(Duration::from_millis(120)).await;
        assert_eq!(
            budget.judge(7, &refused(7), &client()).await,
            RegistryVerdict::Wait
        );
        assert_eq!(
            budget.judge(8, &refused(8), &client()).await,
            RegistryVerdict::Wait,
            "another id has its own budget"
        );
        tokio::time::advance(Duration::from_millis(120)).await;
        let RegistryVerdict::GiveUp(message) = budget.judge(7, &refused(7), &client()).await else {
            panic!("the budget of id 7 is used up");
        };
        assert!(message.contains("schema id 7"), "{message}");
        budget.answered(7);
        assert_eq!(
            budget.judge(7, &refused(7), &client()).await,
            RegistryVerdict::Wait,
            "an id that answered again starts a new budget"
        );
    }

    #[tokio::test]
    async fn an_outage_waits_without_a_budget_and_poison_is_poison() {
        let budget = RegistryBudget::new(Duration::ZERO);
        let down = DecodeError::RegistryUnavailable {
            schema_id: 3,
            source: RegistryError::Unreachable {
                url: "http://127.0.0.1:1".into(),
                what: "schema id 3".into(),
                reason: "HTTP 500".into(),
                status: Some(500),
            },
        };
        // The probe fails too (nothing listens on port 1): an outage, not this id's.
        assert_eq!(
            budget.judge(3, &down, &client()).await,
            RegistryVerdict::Wait
        );
        assert_eq!(
            budget
                .judge(3, &DecodeError::UnknownSchemaId(3), &client())
                .await,
            RegistryVerdict::Poison
        );
    }
}
