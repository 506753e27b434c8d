//! The webhook outbox (`webhook_events`): events are written by the
//! statements that change a message (outcomes, receipts), claimed under a
//! lease like messages, in id order per message, and settled in batches.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{bounded, millis};
use crate::domain::EventStatus;

/// One event claimed for one delivery attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventClaim {
    pub id: i64,
    /// The `webhook-id`: the same on every attempt.
    pub public_id: String,
    pub message_id: i64,
    /// `message.sent`, `message.failed`, `message.delivered` or
    /// `message.undelivered`.
    pub event_type: String,
    pub url: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub claim_token: i64,
    /// When the state changed.
    pub created_at: DateTime<Utc>,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Try again after this long.
    Retry { after: Duration, error: String },
    /// Out of attempts.
    Dead { error: String },
}

/// One event as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub message_id: i64,
    pub event_type: String,
    pub url: String,
    pub status: EventStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The columns of an [`EventRow`], for `concat!`.
macro_rules! event_columns {
    () => {
        " id, message_id, type AS event_type, url, status, attempts, last_error, created_at, \
          delivered_at "
    };
}

/// The statement of [`claim_events`] (`$1` the limit, `$2` the lease in
/// milliseconds); public so that a test can check its plan.
pub const CLAIM_EVENTS: &str = r#"
    WITH due AS (
        SELECT e.id FROM webhook_events e
        WHERE e.unfinished AND e.due_at <= now()
          AND NOT EXISTS (
              SELECT 1 FROM webhook_events before
              WHERE before.message_id = e.message_id AND before.id < e.id AND before.unfinished)
        ORDER BY e.id
        LIMIT $1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE webhook_events e
    SET status = 'sending',
        attempts = e.attempts + 1,
        due_at = now() + $2 * interval '1 millisecond',
        claim_token = e.claim_token + 1
    FROM due
    WHERE e.id = due.id
    RETURNING e.id, e.public_id::text, e.message_id, e.type AS event_type, e.url,
              e.attempts, e.claim_token, e.created_at
    "#;

/// Claims up to `limit` due events, lowest id first, each only when no
/// earlier event of its message is unfinished, under a lease of `lease`.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn claim_events(
    pool: &PgPool,
    limit: u32,
    lease: Duration,
) -> Result<Vec<EventClaim>, sqlx::Error> {
    let claim = sqlx::query_as::<_, EventClaim>(CLAIM_EVENTS)
        .bind(i64::from(limit))
        .bind(millis(lease))
        .fetch_all(pool);
    let mut claimed = bounded(claim).await?;
    claimed.sort_unstable_by_key(|event| event.id);
    Ok(claimed)
}

/// Writes the outcomes of attempts with one statement, each only under the
/// claim that made it.
#[tracing::instrument(skip_all, fields(outcomes = outcomes.len()))]
pub async fn record_event_outcomes(
    pool: &PgPool,
    outcomes: &[(i64, i64, EventOutcome)],
) -> Result<u64, sqlx::Error> {
    let mut statuses = Vec::with_capacity(outcomes.len());
    let mut retries = Vec::with_capacity(outcomes.len());
    let mut errors = Vec::with_capacity(outcomes.len());
    for (_, _, outcome) in outcomes {
        let (status, retry, error) = match outcome {
            EventOutcome::Delivered => (EventStatus::Delivered, None, None),
            EventOutcome::Retry { after, error } => {
                (EventStatus::Pending, Some(millis(*after)), Some(error))
            }
            EventOutcome::Dead { error } => (EventStatus::Dead, None, Some(error)),
        };
        statuses.push(status);
        retries.push(retry);
        errors.push(error.map(String::as_str));
    }
    let write = sqlx::query(
        r#"
        UPDATE webhook_events e
        SET status = o.status,
            due_at = CASE WHEN o.retry_ms IS NULL THEN e.due_at
                          ELSE now() + o.retry_ms * interval '1 millisecond' END,
            last_error = coalesce(o.last_error, e.last_error),
            delivered_at = CASE WHEN o.status = 'delivered' THEN now() END
        FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[])
            AS o(id, claim_token, status, retry_ms, last_error)
        -- 'sending' out of the planner's sight, as in the messages' outcome
        -- statement (docs/database.md).
        WHERE e.id = o.id AND e.claim_token = o.claim_token AND e.status = (SELECT 'sending')
        "#,
    )
    .bind(outcomes.iter().map(|(id, _, _)| *id).collect::<Vec<_>>())
    .bind(
        outcomes
            .iter()
            .map(|(_, token, _)| *token)
            .collect::<Vec<_>>(),
    )
    .bind(statuses)
    .bind(retries)
    .bind(errors)
    .execute(pool);
    Ok(bounded(write).await?.rows_affected())
}

/// The events of one message, oldest first.
pub async fn events_of_message(
    pool: &PgPool,
    message_id: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, EventRow>(concat!(
        "SELECT",
        event_columns!(),
        "FROM webhook_events WHERE message_id = $1 ORDER BY id"
    ))
    .bind(message_id)
    .fetch_all(pool);
    bounded(query).await
}

/// One page of dead events, newest first, below `before_id`.
pub async fn dead_events(
    pool: &PgPool,
    before_id: Option<i64>,
    limit: u32,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, EventRow>(concat!(
        "SELECT",
        event_columns!(),
        "FROM webhook_events WHERE status = 'dead' AND id < $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(before_id.unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(pool);
    bounded(query).await
}

/// Puts a dead event back to pending, due now, with its attempts reset;
/// `None` when there is no dead event with this id.
pub async fn retry_dead_event(pool: &PgPool, id: i64) -> Result<Option<EventRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, EventRow>(concat!(
        "UPDATE webhook_events SET status = 'pending', attempts = 0, due_at = now() \
         WHERE id = $1 AND status = 'dead' RETURNING",
        event_columns!()
    ))
    .bind(id)
    .fetch_optional(pool);
    bounded(query).await
}

/// The status of one event, if it exists.
pub async fn event_status(pool: &PgPool, id: i64) -> Result<Option<EventStatus>, sqlx::Error> {
    let query = sqlx::query_scalar("SELECT status FROM webhook_events WHERE id = $1")
        .bind(id)
        .fetch_optional(pool);
    bounded(query).await
}

/// The outbox at a glance: unfinished events, how long the oldest has
/// waited (seconds), and dead events.
#[derive(Debug, Clone, Copy, Default, PartialEq, sqlx::FromRow)]
pub struct OutboxStats {
    pub depth: i64,
    pub oldest_age_secs: f64,
    pub dead: i64,
}

/// Reads [`OutboxStats`].
pub async fn outbox_stats(pool: &PgPool) -> Result<OutboxStats, sqlx::Error> {
    let query = sqlx::query_as::<_, OutboxStats>(
        r#"
        SELECT (SELECT count(*) FROM webhook_events WHERE unfinished) AS depth,
               coalesce((SELECT extract(epoch FROM now() - created_at)::float8
                         FROM webhook_events WHERE unfinished
                         ORDER BY id LIMIT 1), 0) AS oldest_age_secs,
               (SELECT count(*) FROM webhook_events WHERE status = 'dead') AS dead
        "#,
    )
    .fetch_one(pool);
    bounded(query).await
}
