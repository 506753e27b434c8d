//! The fleet's share of each provider's rate: calls per second, counted in
//! PostgreSQL so that every instance sees the others' calls.

use std::time::Duration;

use sqlx::PgPool;

use super::bounded;

/// The end of each second in which no call is started: a call started at
/// 0.99 s would reach the provider in the next second, on top of that
/// second's own.
const GUARD_MS: u32 = 250;

/// What a reservation of a provider call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// A call of `second` (epoch seconds, PostgreSQL's clock), with `left`
    /// of that second to go when it was taken.
    Taken { second: i64, left: Duration },
    /// The second is full, or in its last [`GUARD_MS`]: wait this long.
    Full { wait: Duration },
}

/// Takes one call of `provider`'s current second if fewer than
/// `max_per_second` were taken and the second is not in its last
/// [`GUARD_MS`]; else says how long until the next second.
pub async fn reserve_provider_call(
    pool: &PgPool,
    provider: &str,
    max_per_second: u32,
) -> Result<Reserved, sqlx::Error> {
    let query = sqlx::query_as::<_, (bool, i64, i32)>(
        r#"
        WITH clock AS (
            SELECT extract(epoch FROM clock_timestamp()) AS now
        ), taken AS (
            INSERT INTO provider_seconds AS s (provider, second, calls)
            SELECT $1, floor(now)::bigint, 1 FROM clock WHERE now - floor(now) < $3
            ON CONFLICT (provider, second) DO UPDATE SET calls = s.calls + 1
            WHERE s.calls < $2
            RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM taken), floor(now)::bigint,
               (1000 - floor((now - floor(now)) * 1000))::int
        FROM clock
        "#,
    )
    .bind(provider)
    .bind(max_per_second as i32)
    .bind(f64::from(1000 - GUARD_MS) / 1000.0)
    .fetch_one(pool);
    let (taken, second, left_ms) = bounded(query).await?;
    let left = Duration::from_millis(left_ms.max(1) as u64);
    Ok(match taken {
        true => Reserved::Taken { second, left },
        false => Reserved::Full { wait: left },
    })
}

/// Gives back a call taken of `second` and not made.
pub async fn release_provider_call(
    pool: &PgPool,
    provider: &str,
    second: i64,
) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "UPDATE provider_seconds SET calls = calls - 1 WHERE provider = $1 AND second = $2 AND calls > 0",
    )
    .bind(provider)
    .bind(second)
    .execute(pool);
    bounded(query).await.map(|_| ())
}

/// Deletes the counts of seconds over a minute old.
pub async fn prune_provider_seconds(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let query = sqlx::query(
        "DELETE FROM provider_seconds WHERE second < extract(epoch FROM now())::bigint - 60",
    )
    .execute(pool);
    Ok(bounded(query).await?.rows_affected())
}
