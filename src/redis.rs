//! The delivery cache in Redis: `message:<id>` holds the provider's
//! `messageId` and the send time as JSON. Never on the critical path: every
//! call is bounded by a short time-out and its failure changes nothing else.

use std::time::Duration;

use bb8_redis::bb8::Pool;
use bb8_redis::redis::{self, AsyncCommands};
use bb8_redis::RedisConnectionManager;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::deadline::{self, TimedOut};

/// A pool of Redis connections.
pub type RedisPool = Pool<RedisConnectionManager>;

/// The longest any cache call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// What the cache holds for one sent message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedDelivery {
    pub message_id: String,
    pub sent_at: DateTime<Utc>,
}

/// Why a cache call failed.
#[derive(Debug, derive_more::Display, derive_more::Error, derive_more::From)]
pub enum CacheError {
    #[display("Redis: {_0}")]
    Redis(redis::RedisError),
    #[display("no Redis connection: {_0}")]
    Pool(bb8_redis::bb8::RunError<redis::RedisError>),
    #[display("Redis did not answer within {CALL_TIMEOUT:?}")]
    Timeout(TimedOut),
    #[display("cached entry is not valid JSON: {_0}")]
    Json(serde_json::Error),
}

/// A pool that connects lazily, so that start-up never waits for Redis.
pub fn connect(url: &str) -> Result<RedisPool, redis::RedisError> {
    let manager = RedisConnectionManager::new(url)?;
    Ok(Pool::builder()
        .connection_timeout(CALL_TIMEOUT)
        .build_unchecked(manager))
}

fn key(id: i64) -> String {
    format!("message:{id}")
}

/// Every cache call, bounded by [`CALL_TIMEOUT`].
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, CacheError>>,
) -> Result<T, CacheError> {
    deadline::within(CALL_TIMEOUT, call).await
}

/// Stores deliveries for `ttl`, in one round trip.
#[tracing::instrument(skip_all, fields(deliveries = deliveries.len()))]
pub async fn store(
    pool: &RedisPool,
    deliveries: &[(i64, CachedDelivery)],
    ttl: Duration,
) -> Result<(), CacheError> {
    let mut pipeline = redis::pipe();
    for (id, delivery) in deliveries {
        pipeline
            .set_ex(key(*id), serde_json::to_string(delivery)?, ttl.as_secs())
            .ignore();
    }
    bounded(async {
        let mut connection = pool.get().await?;
        pipeline.query_async::<()>(&mut *connection).await?;
        Ok(())
    })
    .await
}

/// The cached delivery of one message, if any.
#[tracing::instrument(skip_all, fields(message_id = id))]
pub async fn fetch(pool: &RedisPool, id: i64) -> Result<Option<CachedDelivery>, CacheError> {
    bounded(async {
        let mut connection = pool.get().await?;
        let value: Option<String> = connection.get(key(id)).await?;
        Ok(value.map(|v| serde_json::from_str(&v)).transpose()?)
    })
    .await
}

/// Whether Redis answers.
pub async fn ping(pool: &RedisPool) -> Result<(), CacheError> {
    bounded(async {
        let mut connection = pool.get().await?;
        redis::cmd("PING")
            .query_async::<()>(&mut *connection)
            .await?;
        Ok(())
    })
    .await
}
