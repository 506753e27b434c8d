//! `CacheActor`: writes deliveries to Redis, in pipelined batches.
//!
//! Takes `StoreDelivery` from the `SenderActor`s after a send; deliveries
//! that arrive within a [`super::batch::LINGER`] of each other go to Redis
//! in one round trip.
//! A Redis failure is logged once when the cache becomes unavailable and once
//! when it comes back, and changes nothing else. Not started without
//! `REDIS_URL`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::batch::Batcher;
use crate::redis::{self, CachedDelivery, RedisPool};

/// Cache the delivery of one sent message.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct StoreDelivery {
    pub id: i64,
    pub provider_message_id: String,
    pub sent_at: DateTime<Utc>,
}

/// Gathers sent deliveries and stores them in Redis a batch at a time.
pub struct CacheActor {
    pool: RedisPool,
    ttl: Duration,
    batch: Batcher<(i64, CachedDelivery)>,
    /// Whether the last write worked, to log changes rather than every failure.
    available: Arc<AtomicBool>,
}

impl CacheActor {
    /// Writes to `pool`, entries living for `ttl`.
    pub fn new(pool: RedisPool, ttl: Duration) -> Self {
        CacheActor {
            pool,
            ttl,
            batch: Batcher::default(),
            available: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Stores what is waiting now; the returned task ends when Redis has it
    /// (or has failed).
    fn store_waiting(&mut self, ctx: &mut Context<Self>) -> Option<actix_rt::task::JoinHandle<()>> {
        let deliveries = self.batch.take(ctx)?;
        Some(self.store_batch(deliveries))
    }

    fn store_batch(
        &self,
        deliveries: Vec<(i64, CachedDelivery)>,
    ) -> actix_rt::task::JoinHandle<()> {
        let (pool, ttl, available) = (self.pool.clone(), self.ttl, self.available.clone());
        actix_rt::spawn(async move {
            match redis::store(&pool, &deliveries, ttl).await {
                Ok(()) => {
                    if !available.swap(true, Ordering::Relaxed) {
                        tracing::info!("Redis is back; caching deliveries again");
                    }
                }
                Err(error) => {
                    metrics::counter!("dispatcher_cache_errors_total")
                        .increment(deliveries.len() as u64);
                    if available.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %error, "Redis unavailable; deliveries are not cached until it returns");
                    }
                }
            }
        })
    }
}

impl Actor for CacheActor {
    type Context = Context<Self>;
}

impl Supervised for CacheActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.batch.restarted();
    }
}

impl Handler<StoreDelivery> for CacheActor {
    type Result = ();

    fn handle(&mut self, entry: StoreDelivery, ctx: &mut Self::Context) {
        let delivery = CachedDelivery {
            message_id: entry.provider_message_id,
            sent_at: entry.sent_at,
        };
        let store_waiting = |act: &mut Self, ctx: &mut Context<Self>| {
            act.store_waiting(ctx);
        };
        if let Some(full) = self.batch.push((entry.id, delivery), ctx, store_waiting) {
            self.store_batch(full);
        }
    }
}

/// Write what is waiting now, and answer once Redis has it: the last
/// deliveries of a graceful shutdown are cached too.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StoreNow;

impl Handler<StoreNow> for CacheActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StoreNow, ctx: &mut Self::Context) -> Self::Result {
        let written = self.store_waiting(ctx);
        Box::pin(async move {
            if let Some(written) = written {
                let _ = written.await;
            }
        })
    }
}
