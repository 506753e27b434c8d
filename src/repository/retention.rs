//! What keeps the tables from growing without bound: finished messages
//! older than `RETENTION_DAYS`, with their attempt history and their
//! webhook events, and the bookkeeping rows no reader looks at any more.

use std::time::Duration;

use sqlx::PgPool;

use super::{bounded, millis};

/// The statement of [`delete_finished`]: `$1` the age in milliseconds, `$2`
/// the limit of each outcome. The history goes by `= ANY` of the deleted
/// ids, probing the `_by_message` indexes whatever the statistics say of
/// the tables (a join with the deleted rows was planned as a scan of
/// the whole table when they said it was small).
pub const DELETE_FINISHED: &str = r#"
WITH sent AS (
    SELECT id FROM messages
    WHERE status = 'sent' AND sent_at < now() - $1 * interval '1 millisecond'
      AND NOT EXISTS (
          SELECT 1 FROM webhook_events e WHERE e.message_id = messages.id AND e.unfinished
      )
    ORDER BY sent_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), failed AS (
    SELECT id FROM messages
    WHERE status = 'failed' AND due_at < now() - $1 * interval '1 millisecond'
      AND NOT EXISTS (
          SELECT 1 FROM webhook_events e WHERE e.message_id = messages.id AND e.unfinished
      )
    ORDER BY due_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM messages m
    WHERE m.id = ANY (ARRAY(SELECT id FROM sent UNION ALL SELECT id FROM failed))
    RETURNING m.id
), attempts AS (
    DELETE FROM message_attempts WHERE message_id = ANY (ARRAY(SELECT id FROM gone))
), events AS (
    DELETE FROM webhook_events WHERE message_id = ANY (ARRAY(SELECT id FROM gone))
)
SELECT count(*) FROM gone
"#;

/// Deletes up to `limit` sent and up to `limit` failed messages that
/// finished more than `age` ago (sent ones by `sent_at`, failed ones by
/// `due_at`, the time they failed), oldest first, with their
/// `message_attempts` and their webhook events; returns how many messages.
///
/// A message whose webhook events are still to be posted is kept until
/// they are, and passed over: the batch is made of the oldest messages that
/// can go, so held ones never stall the pass. Rows another statement holds
/// are skipped, never waited for, so instances running this side by side
/// do not queue behind each other.
#[tracing::instrument(skip(pool))]
pub async fn delete_finished(pool: &PgPool, age: Duration, limit: u32) -> Result<u64, sqlx::Error> {
    let query = sqlx::query_scalar::<_, i64>(DELETE_FINISHED)
        .bind(millis(age))
        .bind(i64::from(limit))
        .fetch_one(pool);
    Ok(bounded(query).await? as u64)
}

/// Deletes the per-minute outcome counts older than a day (the console
/// charts the last hour) and the instances not seen for a day (status lists
/// those seen lately); returns how many rows of each.
pub async fn prune_bookkeeping(pool: &PgPool) -> Result<(u64, u64), sqlx::Error> {
    let query = sqlx::query_as::<_, (i64, i64)>(
        r#"
        WITH activity AS (
            DELETE FROM dispatch_activity WHERE minute < now() - interval '1 day'
            RETURNING 1
        ), instances AS (
            DELETE FROM dispatch_instances WHERE seen_at < now() - interval '1 day'
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM activity), (SELECT count(*) FROM instances)
        "#,
    )
    .fetch_one(pool);
    let (activity, instances) = bounded(query).await?;
    Ok((activity as u64, instances as u64))
}
