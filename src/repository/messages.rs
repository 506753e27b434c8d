//! Messages as the API sees them: enqueue, read, list, retry.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::bounded;
use crate::domain::{DeliveryStatus, MessageStatus};

/// Later than any `sent_at`: the start of the sent list.
const LATEST: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(end_of_9999) => end_of_9999,
    None => DateTime::<Utc>::MAX_UTC,
};

/// One row of the sent list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SentRow {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    pub provider_message_id: String,
    pub sent_at: DateTime<Utc>,
    pub priority: i16,
}

/// The columns of a [`MessageRow`], for `concat!`.
macro_rules! message_columns {
    () => {
        " id, phone_number, content, status, attempts, provider_message_id, sent_at, last_error, \
          created_at, delivery_status, delivered_at, delivery_error, callback_url, provider, \
          priority, send_at, expires_at "
    };
}

/// The columns of a [`MessageRow`], for statements built at run time.
pub(super) const MESSAGE_COLUMNS: &str = message_columns!();

/// One message with its delivery state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    pub status: MessageStatus,
    pub attempts: i32,
    pub provider_message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `delivered` or `undelivered`, once a receipt came.
    pub delivery_status: Option<DeliveryStatus>,
    /// The `at` of that receipt.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The receipt's status word and error, when not delivered.
    pub delivery_error: Option<String>,
    /// Where its status events go, instead of `WEBHOOK_URL`.
    pub callback_url: Option<String>,
    /// The provider it is bound to.
    pub provider: Option<String>,
    pub priority: i16,
    pub send_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// When the oldest unfinished message was created: the oldest pending one
/// (the first of `messages_pending_by_id`) or one in flight (a few thousand
/// at most, in `messages_sending_by_lease`).
pub async fn oldest_pending(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let query = sqlx::query_scalar(
        r#"
        SELECT least(
            (SELECT created_at FROM messages WHERE status = 'pending' ORDER BY id LIMIT 1),
            (SELECT min(created_at) FROM messages WHERE status = 'sending'))
        "#,
    )
    .fetch_one(pool);
    bounded(query).await
}

/// How long, in seconds, the due pending message with the lowest id has
/// been due; 0 when none is. It walks `messages_pending_by_id` past the
/// rows not due yet, as a claim does; the longest wait would need a sort of
/// every due row at each scrape. Within a priority the claim takes the
/// lowest id first, so this is the wait of the next message of its lane.
#[tracing::instrument(skip_all)]
pub async fn oldest_due_wait(pool: &PgPool) -> Result<f64, sqlx::Error> {
    let query = sqlx::query_scalar(
        r#"
        SELECT coalesce((
            SELECT extract(epoch FROM now() - due_at)::float8 FROM messages
            WHERE status = 'pending' AND due_at <= now()
            ORDER BY id LIMIT 1), 0)
        "#,
    )
    .fetch_one(pool);
    bounded(query).await
}

/// Puts a failed message back to pending, due now, with its attempts reset;
/// `None` when there is no failed message with this id.
pub async fn retry_failed(pool: &PgPool, id: i64) -> Result<Option<MessageRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, MessageRow>(concat!(
        r#"
        UPDATE messages SET status = 'pending', attempts = 0, due_at = now()
        WHERE id = $1 AND status = 'failed'
        RETURNING "#,
        message_columns!(),
        r#"
        "#
    ))
    .bind(id)
    .fetch_optional(pool);
    bounded(query).await
}

/// One page of sent messages, newest first, after the `(sent_at, id)` key of
/// the previous page's last row.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn sent_page(
    pool: &PgPool,
    after: Option<(DateTime<Utc>, i64)>,
    limit: u32,
) -> Result<Vec<SentRow>, sqlx::Error> {
    // Without a cursor, start after a key later than any row: one statement
    // shape, so the plan is always the index scan.
    let (sent_at, id) = after.unwrap_or((LATEST, i64::MAX));
    let query = sqlx::query_as::<_, SentRow>(
        r#"
        SELECT id, phone_number, content, provider_message_id, sent_at, priority
        FROM messages
        WHERE status = 'sent' AND (sent_at, id) < ($1, $2)
        ORDER BY sent_at DESC, id DESC
        LIMIT $3
        "#,
    )
    .bind(sent_at)
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(pool);
    bounded(query).await
}

/// The filters of the message list, and where the page starts.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<MessageStatus>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Only ids below this one: the last id of the previous page.
    pub before_id: Option<i64>,
}

/// One page of messages, newest (highest id) first.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn list_messages(
    pool: &PgPool,
    filter: &MessageFilter,
    limit: u32,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, MessageRow>(concat!(
        r#"
        SELECT "#,
        message_columns!(),
        r#"
        FROM messages
        WHERE id < $1
          AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR created_at >= $3)
          AND ($4::timestamptz IS NULL OR created_at < $4)
        ORDER BY id DESC
        LIMIT $5
        "#
    ))
    .bind(filter.before_id.unwrap_or(i64::MAX))
    .bind(filter.status)
    .bind(filter.created_after)
    .bind(filter.created_before)
    .bind(i64::from(limit))
    .fetch_all(pool);
    bounded(query).await
}

/// One message by id.
#[tracing::instrument(skip_all, fields(message_id = id))]
pub async fn find_message(pool: &PgPool, id: i64) -> Result<Option<MessageRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, MessageRow>(concat!(
        r#"
        SELECT "#,
        message_columns!(),
        r#"
        FROM messages WHERE id = $1
        "#
    ))
    .bind(id)
    .fetch_optional(pool);
    bounded(query).await
}

/// The messages of these ids, in no order; ids without a row are left out.
pub async fn find_messages(pool: &PgPool, ids: &[i64]) -> Result<Vec<MessageRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, MessageRow>(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(pool);
    bounded(query).await
}
