//! The outbox relay: publishes the outbox's rows to Kafka, each order's in the order the
//! API wrote them, and marks them sent once Kafka has them.
//!
//! The rows are spread over [`SLOTS`] slots by their order id (Kafka's murmur2, see
//! `crates/outbox/migrations/0009`). Each slot has one owner at a time among the relays
//! on the database ([`relay_ownership`](super::relay_ownership): a session-level advisory
//! lock, freed the moment the owner's session ends), and the owner publishes the slot's
//! rows in id order through a transactional producer of the slot's own
//! ([`relay_slot`](super::relay_slot)). Why this design:
//!
//! - **Order without waiting.** One owner per slot reads an order's rows in id order, so
//!   several events of one order may be in flight at once; nothing waits for the
//!   previous event's acknowledgement to be recorded, and no row is leased.
//! - **Takeover in seconds.** A dead owner's locks free when its session ends (at once
//!   after kill -9; after `--relay-session-timeout` for an owner that stopped without
//!   dying), and another relay takes its slots on its next tick, one second later.
//! - **Fencing.** The new owner's `init_transactions` aborts the old owner's open
//!   transaction and fences its producer, so a stale send of a paused or cut-off owner
//!   can never become visible after a newer event of the same order. The cost: readers
//!   must read with `isolation.level=read_committed` (our consumer, the lag engine and
//!   the chaos verifier do), and each slot's producer is a client of its own.
//! - **Shared work.** Relays own a fair share of the slots each, so two or three `serve`
//!   processes on one database publish side by side.
//!
//! The API's `/readyz` follows the database only, so writes go on while Kafka is away;
//! the relay's own health (`/relayz`, see [`relay_health`](super::relay_health)) turns
//! failing after [`UNHEALTHY_AFTER_FAILED_ROUNDS`] failed turns in a row.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use orderflow_outbox::queries::{self as outbox, SLOTS};
use orderflow_runtime::backoff::Backoff;
use rdkafka::ClientConfig;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::OrderServiceMetrics;
use crate::order_service::outbox_wake::OutboxWake;
use crate::order_service::relay_health::RelayHealth;
use crate::order_service::relay_ownership::{Ownership, TICK};
use crate::order_service::relay_slot::{SlotContext, SlotEnd, publish_slot};

/// How often the pending and parked gauges are counted.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

/// How often the relay tidies the state of its slots' rows (see
/// `orderflow_outbox::queries::sweep_slots`): such rows come only from hand repairs or
/// older binaries, so seldom is enough.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// The key of the ownership session's failures among the slots' (a lost session fails
/// the relay at once).
const SESSION: i16 = -1;

/// Failed turns of one slot in a row after which the relay reports itself unhealthy.
pub const UNHEALTHY_AFTER_FAILED_ROUNDS: u32 = 3;

/// Backoff of a slot after a failure, and of a failed row before its next attempt.
pub const RELAY_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(30),
    multiplier: 2.0,
};

/// Settings of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Topic to publish to.
    pub topic: String,
    /// Most rows per transaction.
    pub batch_size: u32,
    /// Sleep of an idle slot when nothing wakes it.
    pub poll_interval: Duration,
    /// Delay of a slot after a failure, and of a failed row before its next attempt.
    pub backoff: Backoff,
    /// Attempts after which a row that fails permanently is parked.
    pub max_attempts: u32,
    /// Longest a transaction waits for its acknowledgements; rows not acknowledged by
    /// then back off, holding back only their own orders.
    pub round_wait: Duration,
    /// Longest `init_transactions`, a commit or an abort may take (the producer's
    /// `transaction.timeout.ms`).
    pub transaction_timeout: Duration,
    /// How long the ownership session may stay idle before the server ends it, freeing
    /// the slots of a relay that stopped without dying.
    pub session_timeout: Duration,
    /// The slots' producers are `<prefix>-<topic>-<slot>`.
    pub transactional_id_prefix: String,
}

/// A slot being published.
struct Publishing {
    token: CancellationToken,
    task: JoinHandle<SlotEnd>,
}

/// The relay task's parts.
pub struct Relay {
    context: Arc<SlotContext>,
    ownership: Ownership,
    wake: Arc<OutboxWake>,
}

impl Relay {
    /// A relay publishing from `pool`'s outbox, owning slots through sessions opened
    /// with `session_options`; its slots' producers start from `producer_config`. `wake`
    /// is notified when the API wrote rows; `health` follows the relay's.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: PgPool,
        session_options: &PgConnectOptions,
        producer_config: ClientConfig,
        config: RelayConfig,
        metrics: OrderServiceMetrics,
        wake: Arc<OutboxWake>,
        health: RelayHealth,
    ) -> Self {
        let ownership = Ownership::new(session_options, config.session_timeout);
        let context = Arc::new(SlotContext {
            pool,
            producer_config,
            config,
            metrics,
            health,
            written: (0..SLOTS).map(|_| watch::Sender::new(0)).collect(),
            failed_turns: std::sync::Mutex::new(BTreeMap::new()),
        });
        Self {
            context,
            ownership,
            wake,
        }
    }

    /// Owns and publishes slots until `token` is cancelled. At a stop every slot
    /// finishes its transaction and records it, then the slots are given up.
    pub async fn run(mut self, token: CancellationToken) {
        tracing::info!(topic = %self.context.config.topic, slots = SLOTS, "outbox relay started");
        let mut publishing: BTreeMap<i16, Publishing> = BTreeMap::new();
        // The gauges and the sweep wait on the outbox (and on the pool the slots share)
        // in a task of their own: the tick below must touch the ownership session every
        // second, or a relay held up by a slow database loses its session, and every
        // slot with it, to `idle_session_timeout`.
        let (owned, owned_rx) = watch::channel(Vec::new());
        let upkeep = tokio::spawn(upkeep(self.context.clone(), owned_rx, token.child_token()));
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !token.is_cancelled() {
            tokio::select! {
                _ = ticker.tick() => {}
                slots = self.wake.written_slots() => {
                    for slot in slots {
                        self.context.written[slot as usize].send_modify(|generation| *generation += 1);
                    }
                    continue;
                }
                () = token.cancelled() => break,
            }
            self.reap_fenced(&mut publishing).await;
            match self.ownership.tick().await {
                Ok(changes) => {
                    self.context.turn_succeeded(SESSION);
                    for slot in changes.surplus {
                        if let Some(slot_task) = publishing.remove(&slot) {
                            slot_task.token.cancel();
                            let _ = slot_task.task.await;
                        }
                        self.context.turn_succeeded(slot);
                        if let Err(error) = self.ownership.release(slot).await {
                            tracing::warn!(%error, "the relay's ownership session failed");
                        }
                    }
                    for slot in changes.acquired {
                        let slot_token = token.child_token();
                        let task = tokio::spawn(publish_slot(
                            slot,
                            self.context.clone(),
                            slot_token.clone(),
                        ));
                        publishing.insert(
                            slot,
                            Publishing {
                                token: slot_token,
                                task,
                            },
                        );
                    }
                }
                Err(error) => {
                    if !publishing.is_empty() {
                        tracing::error!(%error, slots = publishing.len(), "the relay's ownership session is gone; stopped publishing its slots");
                    }
                    // Stop at once: another relay may own these slots from now on (its
                    // producers fence ours in any case).
                    for (slot, slot_task) in std::mem::take(&mut publishing) {
                        slot_task.token.cancel();
                        slot_task.task.abort();
                        self.context.turn_succeeded(slot);
                    }
                    for _ in 0..UNHEALTHY_AFTER_FAILED_ROUNDS {
                        self.context
                            .turn_failed(SESSION, &format!("database: {error}"));
                    }
                }
            }
            self.context
                .metrics
                .outbox_slots_owned
                .set(publishing.len() as i64);
            owned.send_if_modified(|slots| {
                let now = self.ownership.owned();
                let changed = *slots != now;
                *slots = now;
                changed
            });
        }
        upkeep.abort();
        for slot_task in publishing.values() {
            slot_task.token.cancel();
        }
        for (_, slot_task) in publishing {
            let _ = slot_task.task.await;
        }
        self.ownership.close().await;
        tracing::info!("outbox relay stopped");
    }

    /// Gives up the slots whose producer was fenced: another relay publishes them.
    async fn reap_fenced(&mut self, publishing: &mut BTreeMap<i16, Publishing>) {
        let ended: Vec<i16> = publishing
            .iter()
            .filter(|(_, slot_task)| slot_task.task.is_finished())
            .map(|(slot, _)| *slot)
            .collect();
        for slot in ended {
            if let Some(slot_task) = publishing.remove(&slot) {
                self.context.turn_succeeded(slot);
                if let Ok(SlotEnd::Fenced(error)) = slot_task.task.await {
                    tracing::warn!(slot, %error, "another producer fenced this slot's; gave the slot up");
                }
                if let Err(error) = self.ownership.release(slot).await {
                    tracing::warn!(%error, "the relay's ownership session failed");
                }
            }
        }
    }
}

/// Counts the pending and parked rows for the gauges every [`GAUGE_INTERVAL`] and
/// sweeps the owned slots every [`SWEEP_INTERVAL`], until `token` is cancelled.
async fn upkeep(
    context: Arc<SlotContext>,
    owned: watch::Receiver<Vec<i16>>,
    token: CancellationToken,
) {
    let mut last_sweep: Option<tokio::time::Instant> = None;
    let mut ticker = tokio::time::interval(GAUGE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = token.cancelled() => return,
        }
        refresh_gauges(&context).await;
        let slots = owned.borrow().clone();
        // The first sweep waits for the first slots.
        if !slots.is_empty() && last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL) {
            sweep(&context, &slots).await;
            last_sweep = Some(tokio::time::Instant::now());
        }
    }
}

async fn sweep(context: &SlotContext, owned: &[i16]) {
    match outbox::sweep_slots(&context.pool, owned).await {
        Ok(promoted) if !promoted.is_empty() => tracing::warn!(
            rows = promoted.len(),
            first_id = promoted[0],
            "outbox rows waited behind no unsent row of their order; made them pending"
        ),
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, "cannot sweep stranded outbox rows"),
    }
}

async fn refresh_gauges(context: &SlotContext) {
    match outbox::count_unsent(&context.pool).await {
        Ok(unsent) => {
            let metrics = &context.metrics;
            metrics.outbox_pending.set(unsent.pending);
            metrics.outbox_parked.set(unsent.parked);
            let age = context.health.counted(&unsent, chrono::Utc::now());
            metrics.outbox_oldest_unsent_age.set(age);
        }
        Err(error) => tracing::debug!(%error, "cannot count unsent outbox rows"),
    }
}
