//! Which outbox slots this relay owns: each slot is owned through a session-level
//! PostgreSQL advisory lock, `pg_try_advisory_lock(LOCK_CLASS, slot)`, all held on one
//! dedicated connection (never a pooled one: a pool would hand the session, and its
//! locks, to whoever asks next).
//!
//! - A lock lives as long as its session, so when an owner dies (kill -9, a crashed
//!   host: the kernel or TCP keepalive closes its socket) PostgreSQL frees its slots at
//!   once and another relay takes them on its next tick.
//! - An owner that stops without dying (a long GC-like pause, SIGSTOP, a hung runtime)
//!   keeps its socket open. The session sets `idle_session_timeout`: the owner touches
//!   the session every [`TICK`], so a session idle for longer is one whose owner stopped,
//!   and the server ends it, freeing its slots. If the paused owner wakes up, its
//!   transactional producers have been fenced by the new owner's `init_transactions`,
//!   and its next query fails, so it drops every slot.
//! - Work is shared: every relay counts the relays present (the sessions named
//!   [`APPLICATION_NAME`] on the database) and owns at most its fair share,
//!   `ceil(SLOTS / relays)`, giving back the rest so that a relay that joins gets work.

use std::collections::BTreeSet;
use std::time::Duration;

use orderflow_outbox::queries::SLOTS;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

/// The first key of the relay's advisory locks (the second is the slot): "ofrx". The
/// API's idempotency locks use the one-key (bigint) form, a separate key space.
pub(crate) const LOCK_CLASS: i32 = 0x6f66_7278;

/// The name each relay's ownership session carries; sessions so named are the relays
/// sharing the slots.
pub(crate) const APPLICATION_NAME: &str = "orderflow-relay";

/// How often the owner touches its session, counts the relays and takes free slots.
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// What a tick decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Slots locked in this tick: start publishing them.
    pub(crate) acquired: Vec<i16>,
    /// Slots beyond the fair share: stop publishing them, then [`Ownership::release`].
    pub(crate) surplus: Vec<i16>,
}

/// The ownership session and the slots it holds.
pub(crate) struct Ownership {
    options: PgConnectOptions,
    session_timeout: Duration,
    connection: Option<PgConnection>,
    owned: BTreeSet<i16>,
    /// Where this relay starts looking for free slots, so that relays starting together
    /// do not all try the same slots first.
    start: i16,
}

impl Ownership {
    /// Ownership through sessions opened with `options`, ended by the server after
    /// `session_timeout` without a tick.
    pub(crate) fn new(options: &PgConnectOptions, session_timeout: Duration) -> Self {
        Self {
            options: options.clone().application_name(APPLICATION_NAME),
            session_timeout,
            connection: None,
            owned: BTreeSet::new(),
            start: rand::random_range(0..SLOTS),
        }
    }

    /// The slots held now.
    pub(crate) fn owned(&self) -> Vec<i16> {
        self.owned.iter().copied().collect()
    }

    /// Touches the session (opening it if needed), counts the relays and takes free
    /// slots up to the fair share, or names the slots above it. An error means the
    /// session is gone, and with it every slot: the caller stops publishing all of them.
    pub(crate) async fn tick(&mut self) -> sqlx::Result<Changes> {
        let result = self.try_tick().await;
        if result.is_err() {
            self.lost();
        }
        result
    }

    async fn try_tick(&mut self) -> sqlx::Result<Changes> {
        if self.connection.is_none() {
            let mut connection = PgConnection::connect_with(&self.options).await?;
            // Whole milliseconds; a SET takes no bind parameter.
            let timeout = format!(
                "SET idle_session_timeout = {}",
                self.session_timeout.as_millis()
            );
            sqlx::query(sqlx::AssertSqlSafe(timeout))
                .execute(&mut connection)
                .await?;
            self.connection = Some(connection);
        }
        let Some(connection) = self.connection.as_mut() else {
            unreachable!("opened above");
        };
        let relays: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = $1",
        )
        .bind(APPLICATION_NAME)
        .fetch_one(&mut *connection)
        .await?;
        let share = fair_share(relays);
        let mut changes = Changes::default();
        if self.owned.len() > share {
            changes.surplus = self
                .owned
                .iter()
                .rev()
                .take(self.owned.len() - share)
                .copied()
                .collect();
            return Ok(changes);
        }
        for offset in 0..SLOTS {
            if self.owned.len() >= share {
                break;
            }
            let slot = (self.start + offset) % SLOTS;
            if self.owned.contains(&slot) {
                continue;
            }
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(LOCK_CLASS)
                .bind(i32::from(slot))
                .fetch_one(&mut *connection)
                .await?;
            if locked {
                self.owned.insert(slot);
                changes.acquired.push(slot);
            }
        }
        Ok(changes)
    }

    /// Gives `slot` up; call only once nothing of this relay publishes it any more.
    pub(crate) async fn release(&mut self, slot: i16) -> sqlx::Result<()> {
        if !self.owned.remove(&slot) {
            return Ok(());
        }
        let Some(connection) = self.connection.as_mut() else {
            return Ok(());
        };
        let unlocked = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(i32::from(slot))
            .fetch_one(connection)
            .await;
        if let Err(error) = unlocked {
            self.lost();
            return Err(error);
        }
        Ok(())
    }

    /// Ends the session, which frees every slot at once.
    pub(crate) async fn close(&mut self) {
        self.owned.clear();
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
    }

    fn lost(&mut self) {
        self.owned.clear();
        self.connection = None;
    }
}

/// The most slots one of `relays` relays may own.
pub(crate) fn fair_share(relays: i64) -> usize {
    let relays = usize::try_from(relays.max(1)).unwrap_or(1);
    usize::try_from(SLOTS).unwrap_or(64).div_ceil(relays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slots_are_shared_out_rounding_up() {
        assert_eq!(fair_share(0), 64);
        assert_eq!(fair_share(1), 64);
        assert_eq!(fair_share(2), 32);
        assert_eq!(fair_share(3), 22);
        assert_eq!(fair_share(100), 1);
    }
}
