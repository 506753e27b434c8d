//! Messages as the API sees them: enqueue, read, list, retry.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::{Content, PhoneNumber};

/// Later than any `sent_at`: the start of the sent list.
const LATEST: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(end_of_9999) => end_of_9999,
    None => DateTime::<Utc>::MAX_UTC,
};

/// One row of the sent list.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SentMessage {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    /// The provider's `messageId`.
    #[sqlx(rename = "provider_message_id")]
    pub message_id: String,
    pub sent_at: DateTime<Utc>,
}

/// One message with its delivery state.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredMessage {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    /// pending, sending, sent or failed.
    pub status: String,
    pub attempts: i32,
    pub provider_message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// When the oldest unfinished message was created.
pub async fn oldest_pending(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT created_at FROM messages WHERE status IN ('pending', 'sending') ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}

/// Puts a failed message back to pending, due now, with its attempts reset;
/// `None` when there is no failed message with this id.
pub async fn retry_failed(pool: &PgPool, id: i64) -> Result<Option<StoredMessage>, sqlx::Error> {
    sqlx::query_as::<_, StoredMessage>(
        r#"
        UPDATE messages SET status = 'pending', attempts = 0, due_at = now()
        WHERE id = $1 AND status = 'failed'
        RETURNING id, phone_number, content, status, attempts, provider_message_id,
                  sent_at, last_error, created_at
        "#,
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One page of sent messages, newest first, after the `(sent_at, id)` key of
/// the previous page's last row.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn sent_page(
    pool: &PgPool,
    after: Option<(DateTime<Utc>, i64)>,
    limit: u32,
) -> Result<Vec<SentMessage>, sqlx::Error> {
    // Without a cursor, start after a key later than any row: one statement
    // shape, so the plan is always the index scan.
    let (sent_at, id) = after.unwrap_or((LATEST, i64::MAX));
    sqlx::query_as::<_, SentMessage>(
        r#"
        SELECT id, phone_number, content, provider_message_id, sent_at
        FROM messages
        WHERE status = 'sent' AND (sent_at, id) < ($1, $2)
        ORDER BY sent_at DESC, id DESC
        LIMIT $3
        "#,
    )
    .bind(sent_at)
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// The filters of the message list, and where the page starts.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<&'static str>,
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
) -> Result<Vec<StoredMessage>, sqlx::Error> {
    sqlx::query_as::<_, StoredMessage>(
        r#"
        SELECT id, phone_number, content, status, attempts, provider_message_id,
               sent_at, last_error, created_at
        FROM messages
        WHERE id < $1
          AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR created_at >= $3)
          AND ($4::timestamptz IS NULL OR created_at < $4)
        ORDER BY id DESC
        LIMIT $5
        "#,
    )
    .bind(filter.before_id.unwrap_or(i64::MAX))
    .bind(filter.status)
    .bind(filter.created_after)
    .bind(filter.created_before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// Stores a new pending message.
#[tracing::instrument(skip_all)]
pub async fn insert_message(
    pool: &PgPool,
    phone_number: &PhoneNumber,
    content: &Content,
) -> Result<StoredMessage, sqlx::Error> {
    sqlx::query_as::<_, StoredMessage>(
        r#"
        INSERT INTO messages (phone_number, content) VALUES ($1, $2)
        RETURNING id, phone_number, content, status, attempts, provider_message_id,
                  sent_at, last_error, created_at
        "#,
    )
    .bind(phone_number.as_ref())
    .bind(content.as_ref())
    .fetch_one(pool)
    .await
}

/// One message by id.
#[tracing::instrument(skip_all, fields(message_id = id))]
pub async fn find_message(pool: &PgPool, id: i64) -> Result<Option<StoredMessage>, sqlx::Error> {
    sqlx::query_as::<_, StoredMessage>(
        r#"
        SELECT id, phone_number, content, status, attempts, provider_message_id,
               sent_at, last_error, created_at
        FROM messages WHERE id = $1
        "#,
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}
