//! The queue's order and deadlines: messages that waited too long are
//! promoted to the top priority; expired ones are failed, never sent.

use std::time::Duration;

use sqlx::PgPool;

use super::{bounded, millis};

/// The most rows one promotion or one sweep changes.
const BATCH: i64 = 1000;

/// Promotes the oldest pending messages below the top priority that were
/// created `max_wait` ago or more, while a message of a priority above 0
/// (not itself promoted) waits too: with every row at priority 0 nothing is
/// promoted, and the order stays the id order of Part 1. Returns how many.
///
/// Only the `BATCH` oldest pending rows, by id, are looked at: the scan
/// is bounded however many rows wait (promoted rows go first, so the window
/// moves on as they are sent). Rows another statement holds are skipped,
/// never waited for.
pub async fn promote_waiting(pool: &PgPool, max_wait: Duration) -> Result<u64, sqlx::Error> {
    let query = sqlx::query(
        r#"
        WITH oldest AS (
            SELECT id, created_at, promoted, priority FROM messages
            WHERE status = 'pending'
            ORDER BY id
            LIMIT $2
        ), candidates AS (
            SELECT m.id FROM messages m JOIN oldest o USING (id)
            WHERE NOT o.promoted AND o.priority < 9
              AND o.created_at <= now() - $1 * interval '1 millisecond'
              AND EXISTS (
                  SELECT 1 FROM messages w
                  WHERE w.status = 'pending' AND w.priority > 0 AND NOT w.promoted
              )
            FOR UPDATE OF m SKIP LOCKED
        )
        UPDATE messages m SET promoted = true FROM candidates c WHERE m.id = c.id
        "#,
    )
    .bind(millis(max_wait))
    .bind(BATCH)
    .execute(pool);
    Ok(bounded(query).await?.rows_affected())
}

/// Fails unfinished messages whose `expires_at` has passed (pending ones,
/// in a backoff or not, and sending ones whose lease ended with their
/// instance: their last call may have been accepted, and `last_error` says
/// so), with `last_error` `expired at ...`, and writes their
/// `message.failed` events (to `callback_url`, else `webhook_url`);
/// returns how many.
pub async fn expire_messages(pool: &PgPool, webhook_url: Option<&str>) -> Result<u64, sqlx::Error> {
    let query = sqlx::query_scalar::<_, i64>(
        r#"
        WITH expired AS (
            UPDATE messages m
            SET status = 'failed',
                due_at = now(),
                last_error = 'expired at '
                    || to_char(m.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                    || CASE WHEN m.status = 'sending'
                            THEN '; the outcome of its last call, by an instance that stopped renewing its lease, is unknown'
                            ELSE ', before it could be sent' END
            WHERE m.id IN (
                SELECT id FROM messages
                WHERE status IN ('pending', 'sending') AND expires_at IS NOT NULL
                  AND expires_at <= now() AND (status = 'pending' OR due_at <= now())
                ORDER BY expires_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            )
            RETURNING m.id, m.callback_url
        ), events AS (
            INSERT INTO webhook_events (message_id, type, url)
            SELECT id, 'message.failed', coalesce(callback_url, $1) FROM expired
            WHERE coalesce(callback_url, $1) IS NOT NULL
            ORDER BY id
        )
        SELECT count(*) FROM expired
        "#,
    )
    .bind(webhook_url)
    .bind(BATCH)
    .fetch_one(pool);
    Ok(bounded(query).await? as u64)
}

/// How many messages wait for a `send_at` still ahead, and how many
/// expired unsent (each counted over an index of those rows alone).
pub async fn schedule_counts(pool: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    let query = sqlx::query_as(
        r#"
        SELECT
            (SELECT count(*) FROM messages
             WHERE status = 'pending' AND send_at IS NOT NULL AND send_at > now()),
            (SELECT count(*) FROM messages
             WHERE status = 'failed' AND last_error LIKE 'expired at %')
        "#,
    )
    .fetch_one(pool);
    bounded(query).await
}
