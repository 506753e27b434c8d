//! Delivery receipts: applied to the message that holds their id, or kept
//! in `unmatched_receipts` until one does.
//!
//! A receipt and the outcome that stores its id can be written at the same
//! moment, each statement blind to the other's uncommitted row. Three
//! statements close that race: the receipt statement applies what it can
//! and keeps the rest; the outcome statement takes the kept receipt of every
//! id it stores ([`super::record_outcomes`]); and [`match_kept_receipts`]
//! looks once more at receipts kept within a window that both concurrent
//! statements have certainly ended by.
//!
//! Messages are looked up by provider id as `provider_message_id =
//! ANY(array)`: one index probe per id, whatever the table's statistics say.
//! Left to a join, the planner walked the whole index per batch once the
//! statistics were older than the ids.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{bounded, millis};
use crate::domain::{Receipt, ReceiptStatus};

/// What a batch of receipts did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiptCounts {
    /// Applied to their message.
    pub applied: u64,
    /// No message holds their id (yet): kept.
    pub unknown: u64,
    /// Their message holds a receipt as late or later: changed nothing.
    pub stale: u64,
}

/// The delivery columns a receipt sets, in SQL over `r(status, error)`.
const DELIVERY_COLUMNS: &str = r#"
    delivery_status = CASE WHEN r.status = 'delivered' THEN 'delivered' ELSE 'undelivered' END,
    delivered_at = r.at,
    delivery_error = CASE WHEN r.status = 'delivered' THEN NULL
                          ELSE r.status || coalesce(': ' || r.error, '') END
"#;

/// The webhook events of the rows an `applied` CTE returned, to their
/// `callback_url` or else to the statement's last parameter.
macro_rules! receipt_events {
    ($url:literal) => {
        concat!(
            "events AS (INSERT INTO webhook_events (message_id, type, url) ",
            "SELECT id, 'message.' || delivery_status, coalesce(callback_url, ",
            $url,
            ") FROM applied WHERE coalesce(callback_url, ",
            $url,
            ") IS NOT NULL ORDER BY id)"
        )
    };
}

/// The statement of [`record_receipts`], written once; public so that a
/// test can check its plan.
pub static RECORD_RECEIPTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
    WITH r AS (
        SELECT DISTINCT ON (id) id, status, error, at
        FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS r(id, status, error, at)
        ORDER BY id, at DESC
    ), applied AS (
        UPDATE messages m SET {DELIVERY_COLUMNS}
        FROM r
        WHERE m.provider_message_id = ANY($1) AND m.provider_message_id = r.id
          AND (m.delivered_at IS NULL OR r.at > m.delivered_at)
        RETURNING m.id, m.delivery_status, m.callback_url
    ), {EVENTS}, unknown AS (
        SELECT r.* FROM r
        WHERE r.id <> ALL (ARRAY(SELECT provider_message_id FROM messages WHERE provider_message_id = ANY($1)))
    ), kept AS (
        INSERT INTO unmatched_receipts (provider_message_id, status, error, at)
        SELECT id, status, error, at FROM unknown
        ON CONFLICT (provider_message_id) DO UPDATE
        SET status = excluded.status, error = excluded.error, at = excluded.at,
            received_at = excluded.received_at
        WHERE excluded.at > unmatched_receipts.at
    )
    SELECT (SELECT count(*) FROM applied), (SELECT count(*) FROM unknown)
    "#,
        EVENTS = receipt_events!("$5::text")
    )
});

/// Applies a batch of receipts with one statement: each to the message that
/// holds its id, when its `at` is later than the receipt applied there
/// before; a receipt for an id no message holds is kept (the latest `at`
/// per id). Of several receipts for one id in the batch, the latest wins.
/// Each applied receipt writes its webhook event (see
/// [`super::record_outcomes`]).
#[tracing::instrument(skip_all, fields(receipts = receipts.len()))]
pub async fn record_receipts(
    pool: &PgPool,
    receipts: &[Receipt],
    webhook_url: Option<&str>,
) -> Result<ReceiptCounts, sqlx::Error> {
    let query = sqlx::query_as::<_, (i64, i64)>(&RECORD_RECEIPTS)
        .bind(
            receipts
                .iter()
                .map(|r| r.provider_message_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            receipts
                .iter()
                .map(|r| r.status)
                .collect::<Vec<ReceiptStatus>>(),
        )
        .bind(
            receipts
                .iter()
                .map(|r| r.error.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(receipts.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(webhook_url)
        .fetch_one(pool);
    let (applied, unknown) = bounded(query).await?;
    let (applied, unknown) = (applied as u64, unknown as u64);
    // A repeat within the batch, like a receipt older than the applied one,
    // changed nothing.
    Ok(ReceiptCounts {
        applied,
        unknown,
        stale: (receipts.len() as u64).saturating_sub(applied + unknown),
    })
}

/// The statement of [`match_kept_receipts`], written once.
static MATCH_KEPT_RECEIPTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
        WITH bounds AS (
            SELECT coalesce($1, now() - interval '10 minutes') AS from_at,
                   now() - interval '1 minute' AS to_at
        ), r AS (
            SELECT u.provider_message_id AS id, u.status, u.error, u.at
            FROM unmatched_receipts u, bounds
            WHERE u.received_at >= bounds.from_at AND u.received_at < bounds.to_at
              AND EXISTS (SELECT 1 FROM messages m WHERE m.provider_message_id = u.provider_message_id)
            FOR UPDATE OF u SKIP LOCKED
        ), forgotten AS (
            DELETE FROM unmatched_receipts u USING r WHERE u.provider_message_id = r.id
        ), applied AS (
            UPDATE messages m SET {DELIVERY_COLUMNS}
            FROM r
            WHERE m.provider_message_id = ANY(ARRAY(SELECT id FROM r)) AND m.provider_message_id = r.id
              AND (m.delivered_at IS NULL OR r.at > m.delivered_at)
            RETURNING m.id, m.delivery_status, m.callback_url
        ), {EVENTS}
        SELECT (SELECT count(*) FROM applied), greatest(from_at, to_at) FROM bounds
        "#,
        EVENTS = receipt_events!("$2::text")
    )
});

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
