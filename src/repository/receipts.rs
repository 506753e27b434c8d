//! Delivery receipts: applied to the message that holds their id, or kept
//! in `unmatched_receipts` until one does.
//!
//! A receipt and the outcome that stores its id can be written at the same
//! moment, each statement blind to the other's uncommitted row. Four
//! statements close that race: the receipt statement applies what it can
//! and keeps the rest; the outcome statement takes the kept receipt of every
//! id it stores ([`super::record_outcomes`]); [`match_kept_receipts_of`]
//! looks again at the ids of a batch a second after it kept some, which
//! catches the race as it usually ends; and [`match_kept_receipts`] looks
//! once more at receipts kept within a window that both concurrent
//! statements have certainly ended by, whatever their time-outs.
//!
//! Messages are looked up by provider id as `provider_message_id =
//! ANY(array)`: one index probe per id, whatever the table's statistics say.
//! Left to a join, the planner walked the whole index per batch once the
//! statistics were older than the ids.

use std::sync::LazyLock;

use sqlx::PgPool;

use super::bounded;
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

mod kept;
pub use kept::*;

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
