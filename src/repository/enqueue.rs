//! Storing new messages: one, idempotently, or a batch, all or none.

use std::sync::LazyLock;

use sqlx::PgPool;

use super::messages::{MessageRow, MESSAGE_COLUMNS};
use super::{bounded, millis};
use crate::domain::{CallbackUrl, Content, PhoneNumber, Schedule};

/// A message to store, checked.
#[derive(Debug, Clone)]
pub struct MessageToStore {
    pub phone_number: PhoneNumber,
    pub content: Content,
    pub callback_url: Option<CallbackUrl>,
    pub schedule: Schedule,
}

/// The client's `Idempotency-Key`, and a digest of the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_digest: &'a [u8],
}

/// What became of an enqueue.
#[derive(Debug)]
pub enum Enqueued {
    /// Stored now.
    Created(MessageRow),
    /// The key was used before with the same request: the row stored then.
    Repeated(MessageRow),
    /// The key was used before with another request.
    KeyReused,
}

/// The columns every insert writes, and their values over `m(phone_number,
/// content, callback_url, priority, send_at, expires_at, ttl_ms)`: `due_at`
/// is `send_at` when it is later than now.
const COLUMNS: &str = "phone_number, content, callback_url, priority, send_at, expires_at, due_at";
const VALUES: &str = "phone_number, content, callback_url, priority, send_at, \
    coalesce(expires_at, now() + ttl_ms * interval '1 millisecond'), \
    greatest(now(), coalesce(send_at, now()))";

static INSERT_ONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
        INSERT INTO messages ({COLUMNS}, idempotency_key, request_digest)
        SELECT {VALUES}, $8, $9
        FROM (VALUES ($1, $2, $3, $4::smallint, $5::timestamptz, $6::timestamptz, $7::bigint))
            AS m(phone_number, content, callback_url, priority, send_at, expires_at, ttl_ms)
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING {MESSAGE_COLUMNS}
        "#
    )
});

/// Stores one pending message. With `idempotency`, a key stored before
/// answers the row it stored (same request) or [`Enqueued::KeyReused`]
/// (another request), and two instances storing the same key at once store
/// one row: the key is unique in the table.
#[tracing::instrument(skip_all)]
pub async fn insert_message(
    pool: &PgPool,
    message: &MessageToStore,
    idempotency: Option<Idempotency<'_>>,
) -> Result<Enqueued, sqlx::Error> {
    let schedule = &message.schedule;
    let insert = sqlx::query_as::<_, MessageRow>(&INSERT_ONE)
        .bind(message.phone_number.as_ref())
        .bind(message.content.as_ref())
        .bind(message.callback_url.as_ref().map(AsRef::<str>::as_ref))
        .bind(schedule.priority)
        .bind(schedule.send_at)
        .bind(schedule.expires_at())
        .bind(schedule.ttl().map(millis))
        .bind(idempotency.map(|i| i.key))
        .bind(idempotency.map(|i| i.request_digest))
        .fetch_optional(pool);
    if let Some(row) = bounded(insert).await? {
        return Ok(Enqueued::Created(row));
    }
    // Only a key taken before makes the insert store nothing.
    let Some(idempotency) = idempotency else {
        return Err(sqlx::Error::RowNotFound);
    };
    stored_under(pool, idempotency).await
}

static STORED_UNDER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE idempotency_key = $1 AND request_digest = $2"
    )
});

/// The row stored under `idempotency.key`, if the request was the same.
async fn stored_under(
    pool: &PgPool,
    idempotency: Idempotency<'_>,
) -> Result<Enqueued, sqlx::Error> {
    let row = sqlx::query_as::<_, MessageRow>(&STORED_UNDER)
        .bind(idempotency.key)
        .bind(idempotency.request_digest)
        .fetch_optional(pool);
    Ok(match bounded(row).await? {
        Some(row) => Enqueued::Repeated(row),
        None => Enqueued::KeyReused,
    })
}

static INSERT_MANY: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
        INSERT INTO messages ({COLUMNS})
        SELECT {VALUES}
        FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::timestamptz[],
                    $6::timestamptz[], $7::bigint[])
            WITH ORDINALITY
            AS m(phone_number, content, callback_url, priority, send_at, expires_at, ttl_ms, n)
        ORDER BY n
        RETURNING id
        "#
    )
});

/// Stores every message of `messages` with one statement, or none; returns
/// their ids in the order given (ids are drawn in the statement's row
/// order, which follows the batch).
#[tracing::instrument(skip_all, fields(messages = messages.len()))]
pub async fn insert_messages(
    pool: &PgPool,
    messages: &[MessageToStore],
) -> Result<Vec<i64>, sqlx::Error> {
    let query = sqlx::query_scalar::<_, i64>(&INSERT_MANY)
        .bind(
            messages
                .iter()
                .map(|m| m.phone_number.as_ref())
                .collect::<Vec<&str>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.content.as_ref())
                .collect::<Vec<&str>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.callback_url.as_ref().map(AsRef::<str>::as_ref))
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.schedule.priority)
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.schedule.send_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.schedule.expires_at())
                .collect::<Vec<_>>(),
        )
        .bind(
            messages
                .iter()
                .map(|m| m.schedule.ttl().map(millis))
                .collect::<Vec<_>>(),
        )
        .fetch_all(pool);
    let mut ids = bounded(query).await?;
    ids.sort_unstable();
    Ok(ids)
}
