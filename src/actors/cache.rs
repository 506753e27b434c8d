//! `CacheActor`: writes deliveries to Redis, in pipelined batches.
//!
//! Takes `StoreDelivery` from the `SenderActor`s after a send; deliveries
//! that arrive within [`LINGER`] of each other go to Redis in one round trip.
//! A Redis failure is logged once when the cache becomes unavailable and once
//! when it comes back, and changes nothing else. Not started without
//! `REDIS_URL`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::status::{LINGER, MAX_BATCH};
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
    batch: Vec<(i64, CachedDelivery)>,
    linger_timer: Option<SpawnHandle>,
    /// Whether the last write worked, to log changes rather than every failure.
    available: Arc<AtomicBool>,
}

impl CacheActor {
    /// Writes to `pool`, entries living for `ttl`.
    pub fn new(pool: RedisPool, ttl: Duration) -> Self {
        CacheActor {
            pool,
            ttl,
            batch: Vec::new(),
            linger_timer: None,
            available: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Writes the batch now; the returned task ends when Redis has it (or
    /// has failed).
    fn store_batch(&mut self, ctx: &mut Context<Self>) -> Option<actix_rt::task::JoinHandle<()>> {
        if let Some(timer) = self.linger_timer.take() {
            ctx.cancel_future(timer);
        }
        if self.batch.is_empty() {
            return None;
        }
        let deliveries = std::mem::take(&mut self.batch);
        let (pool, ttl, available) = (self.pool.clone(), self.ttl, self.available.clone());
        Some(actix_rt::spawn(async move {
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
        }))
    }
}

impl Actor for CacheActor {
    type Context = Context<Self>;
}

impl Supervised for CacheActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.linger_timer = None;
    }
}

impl Handler<StoreDelivery> for CacheActor {
    type Result = ();

    fn handle(&mut self, entry: StoreDelivery, ctx: &mut Self::Context) {
        let delivery = CachedDelivery {
            message_id: entry.provider_message_id,
            sent_at: entry.sent_at,
        };
        self.batch.push((entry.id, delivery));
        if self.batch.len() >= MAX_BATCH {
            self.store_batch(ctx);
        } else if self.linger_timer.is_none() {
            self.linger_timer = Some(ctx.run_later(LINGER, |act, ctx| {
                act.store_batch(ctx);
            }));
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
        let written = self.store_batch(ctx);
        Box::pin(async move {
            if let Some(written) = written {
                let _ = written.await;
            }
        })
    }
}
