//! Receipts kept for ids no message held: matched again, and pruned.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::DELIVERY_COLUMNS;
use crate::repository::{bounded, millis};

/// Applies the kept receipts of a CTE `r(id, status, error, at)` (locked
/// `FOR UPDATE OF u`), forgets them and writes their webhook events to `$2`
/// when the message names no `callback_url`.
fn apply_kept(r: &str) -> String {
    format!(
        r#"
        WITH {r}, forgotten AS (
            DELETE FROM unmatched_receipts u USING r WHERE u.provider_message_id = r.id
        ), applied AS (
            UPDATE messages m SET {DELIVERY_COLUMNS}
            FROM r
            WHERE m.provider_message_id = ANY(ARRAY(SELECT id FROM r)) AND m.provider_message_id = r.id
              AND (m.delivered_at IS NULL OR r.at > m.delivered_at)
            RETURNING m.id, m.delivery_status, m.callback_url
        ), {EVENTS}
        "#,
        EVENTS = receipt_events!("$2::text")
    )
}

/// The kept receipts among `unmatched_receipts u` whose id a message holds.
const HELD: &str = r#"
    SELECT u.provider_message_id AS id, u.status, u.error, u.at
    FROM unmatched_receipts u
    WHERE EXISTS (SELECT 1 FROM messages m WHERE m.provider_message_id = u.provider_message_id)
"#;

/// The statement of [`match_kept_receipts`], written once.
static MATCH_KEPT_RECEIPTS: LazyLock<String> = LazyLock::new(|| {
    let statement = apply_kept(&format!(
        r#"bounds AS (
            SELECT coalesce($1, now() - interval '10 minutes') AS from_at,
                   now() - interval '1 minute' AS to_at
        ), r AS (
            {HELD}
              AND u.received_at >= (SELECT from_at FROM bounds)
              AND u.received_at < (SELECT to_at FROM bounds)
            FOR UPDATE OF u SKIP LOCKED
        )"#
    ));
    statement + "SELECT (SELECT count(*) FROM applied), greatest(from_at, to_at) FROM bounds"
});

/// The statement of [`match_kept_receipts_of`], written once.
static MATCH_KEPT_RECEIPTS_OF: LazyLock<String> = LazyLock::new(|| {
    let statement = apply_kept(&format!(
        "r AS ({HELD} AND u.provider_message_id = ANY($1) FOR UPDATE OF u SKIP LOCKED)"
    ));
    statement + "SELECT count(*) FROM applied"
});

/// Applies the kept receipts of `ids` whose id a message now holds, and
/// forgets them; returns how many. Run shortly after a batch kept some: the
/// usual reason a receipt finds no message is an outcome being written at
/// the same moment, committed by then.
#[tracing::instrument(skip_all, fields(ids = ids.len()))]
pub async fn match_kept_receipts_of(
    pool: &PgPool,
    ids: &[&str],
    webhook_url: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let query = sqlx::query_scalar::<_, i64>(&MATCH_KEPT_RECEIPTS_OF)
        .bind(ids)
        .bind(webhook_url)
        .fetch_one(pool);
    Ok(bounded(query).await? as u64)
}

/// Applies the kept receipts whose id a message now holds, among those
/// that arrived from `from` (or ten minutes ago, the first time) until a
/// minute ago: by then the statements that raced them have ended, whatever
/// their time-outs. Forgets the applied ones; returns how many there were,
/// and where the next call starts (PostgreSQL's clock, not ours).
#[tracing::instrument(skip_all)]
pub async fn match_kept_receipts(
    pool: &PgPool,
    from: Option<DateTime<Utc>>,
    webhook_url: Option<&str>,
) -> Result<(u64, DateTime<Utc>), sqlx::Error> {
    let query = sqlx::query_as::<_, (i64, DateTime<Utc>)>(&MATCH_KEPT_RECEIPTS)
        .bind(from)
        .bind(webhook_url)
        .fetch_one(pool);
    let (applied, to) = bounded(query).await?;
    Ok((applied as u64, to))
}

/// Deletes up to `limit` kept receipts older than `age`; returns how many.
pub async fn prune_kept_receipts(
    pool: &PgPool,
    age: Duration,
    limit: u32,
) -> Result<u64, sqlx::Error> {
    let query = sqlx::query(
        r#"
        DELETE FROM unmatched_receipts WHERE provider_message_id IN (
            SELECT provider_message_id FROM unmatched_receipts
            WHERE received_at < now() - $1 * interval '1 millisecond'
            ORDER BY received_at
            LIMIT $2
        )
        "#,
    )
    .bind(millis(age))
    .bind(i64::from(limit))
    .execute(pool);
    Ok(bounded(query).await?.rows_affected())
}

/// How many kept receipts wait for their message.
pub async fn kept_receipts(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let query = sqlx::query_scalar("SELECT count(*) FROM unmatched_receipts").fetch_one(pool);
    bounded(query).await
}
