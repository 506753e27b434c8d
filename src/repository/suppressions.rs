//! The suppression list: numbers that never receive another message.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::bounded;
use crate::domain::PhoneNumber;

/// One suppressed number.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SuppressionRow {
    pub phone_number: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// Adds `phone_number` (a repeat keeps the first reason) and fails its
/// pending messages, with their `message.failed` events (to `callback_url`,
/// else `webhook_url`); returns the row and how many messages it failed.
pub async fn suppress(
    pool: &PgPool,
    phone_number: &PhoneNumber,
    reason: &str,
    webhook_url: Option<&str>,
) -> Result<(SuppressionRow, u64), sqlx::Error> {
    let query = sqlx::query_as::<_, (String, String, DateTime<Utc>, i64)>(
        r#"
        WITH added AS (
            INSERT INTO suppressions (phone_number, reason) VALUES ($1, $2)
            ON CONFLICT (phone_number) DO UPDATE SET phone_number = excluded.phone_number
            RETURNING phone_number, reason, created_at
        ), failed AS (
            UPDATE messages m
            SET status = 'failed',
                due_at = now(),
                last_error = 'suppressed' || coalesce(': ' || nullif((SELECT reason FROM added), ''), '')
            WHERE m.phone_number = $1 AND m.status = 'pending'
            RETURNING m.id, m.callback_url
        ), events AS (
            INSERT INTO webhook_events (message_id, type, url)
            SELECT id, 'message.failed', coalesce(callback_url, $3) FROM failed
            WHERE coalesce(callback_url, $3) IS NOT NULL
            ORDER BY id
        )
        SELECT phone_number, reason, created_at, (SELECT count(*) FROM failed) FROM added
        "#,
    )
    .bind(phone_number.as_ref())
    .bind(reason)
    .bind(webhook_url)
    .fetch_one(pool);
    let (phone_number, reason, created_at, failed) = bounded(query).await?;
    let row = SuppressionRow {
        phone_number,
        reason,
        created_at,
    };
    Ok((row, failed as u64))
}

/// One page of the list, by number, after `after`.
pub async fn suppressions_page(
    pool: &PgPool,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<SuppressionRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, SuppressionRow>(
        "SELECT phone_number, reason, created_at FROM suppressions \
         WHERE phone_number > $1 ORDER BY phone_number LIMIT $2",
    )
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(pool);
    bounded(query).await
}

/// Removes `phone_number`; whether it was there.
pub async fn unsuppress(pool: &PgPool, phone_number: &PhoneNumber) -> Result<bool, sqlx::Error> {
    let query = sqlx::query("DELETE FROM suppressions WHERE phone_number = $1")
        .bind(phone_number.as_ref())
        .execute(pool);
    Ok(bounded(query).await?.rows_affected() > 0)
}
