//! `Janitor`: at start and every minute, deletes the finished messages
//! older than `RETENTION_DAYS` (in batches, each its own short statement,
//! until none is left) and the bookkeeping rows no reader needs any more
//! (`repository/retention.rs`). Idempotent and skipping locked rows, so
//! every instance runs it.

use std::time::Duration;

use actix::prelude::*;
use sqlx::PgPool;

use crate::repository;

/// How often the janitor looks.
const EVERY: Duration = Duration::from_secs(60);

/// Messages of each outcome one statement deletes at most: small enough
/// that a batch takes milliseconds and never holds up a claim.
const BATCH: u32 = 1000;

/// Keeps the tables from growing without bound.
pub struct Janitor {
    pool: PgPool,
    /// `RETENTION_DAYS`; `None` keeps every message.
    retention: Option<Duration>,
}

impl Janitor {
    pub fn new(pool: PgPool, retention: Option<Duration>) -> Self {
        Janitor { pool, retention }
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let (pool, retention) = (self.pool.clone(), self.retention);
        async move {
            match repository::prune_bookkeeping(&pool).await {
                Ok((0, 0)) => {}
                Ok((minutes, instances)) => {
                    tracing::info!(minutes, instances, "old activity and instances deleted")
                }
                Err(error) => tracing::debug!(error = %error, "bookkeeping prune skipped"),
            }
            if let Some(age) = retention {
                delete_finished(&pool, age).await;
            }
        }
        .into_actor(self)
        .wait(ctx);
    }
}

/// Deletes finished messages past `age`, a batch at a time, until a batch
/// finds none.
async fn delete_finished(pool: &PgPool, age: Duration) {
    let mut deleted = 0;
    loop {
        match repository::delete_finished(pool, age, BATCH).await {
            Ok(0) => break,
            Ok(batch) => {
                deleted += batch;
                metrics::counter!("dispatcher_messages_deleted_total").increment(batch);
            }
            Err(error) => {
                tracing::warn!(error = %error, "retention paused until the next round");
                break;
            }
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "finished messages past RETENTION_DAYS deleted");
    }
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.sweep(ctx);
        ctx.run_interval(EVERY, Self::sweep);
    }
}

impl Supervised for Janitor {}
