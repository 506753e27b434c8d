//! `CacheActor`: writes each delivery to Redis.
//!
//! Takes `CacheDelivery` from the `SenderActor`s after a send. A Redis failure
//! is logged once when the cache becomes unavailable and once when it comes
//! back, and changes nothing else. Not started without `REDIS_URL`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use crate::cache::{self, CachedDelivery, RedisPool};

/// Cache the delivery of one sent message.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct CacheDelivery {
    pub id: i64,
    pub provider_message_id: String,
    pub sent_at: DateTime<Utc>,
}

/// See the module documentation.
pub struct CacheActor {
    pool: RedisPool,
    ttl: Duration,
    /// Whether the last write worked, to log changes rather than every failure.
    available: Arc<AtomicBool>,
}

impl CacheActor {
    /// Writes to `pool`, entries living for `ttl`.
    pub fn new(pool: RedisPool, ttl: Duration) -> Self {
        CacheActor {
            pool,
            ttl,
            available: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl Actor for CacheActor {
    type Context = Context<Self>;
}

impl Supervised for CacheActor {}

impl Handler<CacheDelivery> for CacheActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, entry: CacheDelivery, _: &mut Self::Context) -> Self::Result {
        let (pool, ttl, available) = (self.pool.clone(), self.ttl, self.available.clone());
        Box::pin(async move {
            let delivery = CachedDelivery {
                message_id: entry.provider_message_id,
                sent_at: entry.sent_at,
            };
            match cache::store(&pool, entry.id, &delivery, ttl).await {
                Ok(()) => {
                    if !available.swap(true, Ordering::Relaxed) {
                        tracing::info!("Redis is back; caching deliveries again");
                    }
                }
                Err(error) => {
                    metrics::counter!("dispatcher_cache_errors_total").increment(1);
                    if available.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %error, "Redis unavailable; deliveries are not cached until it returns");
                    }
                }
            }
        })
    }
}
