//! Counts by status and activity per minute, without counting the table.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::bounded;

/// Rows by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
}

/// Adds outcome counts to the current minute's activity.
pub async fn record_activity(
    pool: &PgPool,
    sent: i64,
    retried: i64,
    failed: i64,
) -> Result<(), sqlx::Error> {
    let add = sqlx::query(
        r#"
        INSERT INTO dispatch_activity (minute, sent, retried, failed)
        VALUES (date_trunc('minute', now()), $1, $2, $3)
        ON CONFLICT (minute) DO UPDATE
        SET sent = dispatch_activity.sent + $1,
            retried = dispatch_activity.retried + $2,
            failed = dispatch_activity.failed + $3
        "#,
    )
    .bind(sent)
    .bind(retried)
    .bind(failed)
    .execute(pool);
    bounded(add).await.map(|_| ())
}

/// Outcomes in one minute.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MinuteActivity {
    pub minute: DateTime<Utc>,
    pub sent: i64,
    pub retried: i64,
    pub failed: i64,
}

/// Outcomes per minute over the last hour, oldest first; minutes without
/// any are left out.
pub async fn recent_activity(pool: &PgPool) -> Result<Vec<MinuteActivity>, sqlx::Error> {
    sqlx::query_as::<_, MinuteActivity>(
        r#"
        SELECT minute, sent, retried, failed FROM dispatch_activity
        WHERE minute > now() - interval '1 hour'
        ORDER BY minute
        "#,
    )
    .fetch_all(pool)
    .await
}

/// Rows by status, from the deltas the `messages` triggers keep: a sum over
/// a few rows, whatever the size of the table.
#[tracing::instrument(skip_all)]
pub async fn count_by_status(pool: &PgPool) -> Result<StatusCounts, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, sum(n)::bigint FROM message_count_deltas GROUP BY status")
            .fetch_all(pool)
            .await?;
    let mut counts = StatusCounts::default();
    for (status, count) in rows {
        match status.as_str() {
            "pending" => counts.pending = count,
            "sending" => counts.sending = count,
            "sent" => counts.sent = count,
            "failed" => counts.failed = count,
            _ => {}
        }
    }
    Ok(counts)
}

/// Folds the count deltas into one row per status, so that counting stays a
/// sum over a few rows. Safe to run anywhere, concurrently.
pub async fn fold_count_deltas(pool: &PgPool) -> Result<(), sqlx::Error> {
    let fold = sqlx::query(
        r#"
        WITH folded AS (DELETE FROM message_count_deltas RETURNING status, n)
        INSERT INTO message_count_deltas (status, n)
        SELECT status, sum(n) FROM folded GROUP BY status HAVING sum(n) <> 0
        "#,
    )
    .execute(pool);
    bounded(fold).await.map(|_| ())
}
