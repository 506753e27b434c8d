//! `QueueKeeper`: every second, promotes the messages that waited
//! `PRIORITY_MAX_WAIT_MS` behind higher priorities, and fails the expired
//! ones (`repository/lanes.rs`). Both statements are idempotent, so every
//! instance runs them.

use std::time::Duration;

use actix::prelude::*;
use sqlx::PgPool;

use super::outbox::Outbox;
use crate::repository;

/// How often the keeper looks.
const EVERY: Duration = Duration::from_secs(1);

/// Keeps the queue's order and deadlines.
pub struct QueueKeeper {
    pool: PgPool,
    /// `PRIORITY_MAX_WAIT_MS`.
    max_wait: Duration,
    /// Where the events of expired messages go.
    outbox: Outbox,
}

impl QueueKeeper {
    pub fn new(pool: PgPool, max_wait: Duration, outbox: Outbox) -> Self {
        QueueKeeper {
            pool,
            max_wait,
            outbox,
        }
    }

    fn keep(&mut self, ctx: &mut Context<Self>) {
        let (pool, max_wait, outbox) = (self.pool.clone(), self.max_wait, self.outbox.clone());
        async move {
            match repository::promote_waiting(&pool, max_wait).await {
                Ok(0) => {}
                Ok(promoted) => tracing::info!(
                    promoted,
                    "messages that waited too long promoted to the top priority"
                ),
                Err(error) => tracing::debug!(error = %error, "promotion skipped"),
            }
            match repository::expire_messages(&pool, outbox.url()).await {
                Ok(0) => {}
                Ok(expired) => {
                    metrics::counter!("dispatcher_messages_expired_total").increment(expired);
                    tracing::info!(expired, "expired messages failed without a call");
                    outbox.nudge();
                }
                Err(error) => tracing::debug!(error = %error, "expiry sweep skipped"),
            }
        }
        .into_actor(self)
        .wait(ctx);
    }
}

impl Actor for QueueKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(EVERY, Self::keep);
    }
}

impl Supervised for QueueKeeper {}
