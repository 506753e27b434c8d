//! Counts by status and activity per minute, without counting the table.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::bounded;
use crate::domain::MessageStatus;

/// Rows by status, and sent rows by what their receipts said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountsByStatus {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub delivered: i64,
    pub undelivered: i64,
    /// The SMS segments of the sent messages.
    pub segments_sent: i64,
}

impl CountsByStatus {
    /// The count of one status.
    pub fn of(&self, status: MessageStatus) -> i64 {
        match status {
            MessageStatus::Pending => self.pending,
            MessageStatus::Sending => self.sending,
            MessageStatus::Sent => self.sent,
            MessageStatus::Failed => self.failed,
        }
    }

    /// The count kept under `key`: a status, or `delivery:` and a
    /// delivery status.
    fn of_key(&mut self, key: &str) -> Option<&mut i64> {
        if let Some(status) = MessageStatus::parse(key) {
            return Some(match status {
                MessageStatus::Pending => &mut self.pending,
                MessageStatus::Sending => &mut self.sending,
                MessageStatus::Sent => &mut self.sent,
                MessageStatus::Failed => &mut self.failed,
            });
        }
        match key {
            "delivery:delivered" => Some(&mut self.delivered),
            "delivery:undelivered" => Some(&mut self.undelivered),
            "segments:sent" => Some(&mut self.segments_sent),
            _ => None,
        }
    }
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
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MinuteRow {
    pub minute: DateTime<Utc>,
    pub sent: i64,
    pub retried: i64,
    pub failed: i64,
}

/// Outcomes per minute over the last hour, oldest first; minutes without
/// any are left out.
pub async fn recent_activity(pool: &PgPool) -> Result<Vec<MinuteRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, MinuteRow>(
        r#"
        SELECT minute, sent, retried, failed FROM dispatch_activity
        WHERE minute > now() - interval '1 hour'
        ORDER BY minute
        "#,
    )
    .fetch_all(pool);
    bounded(query).await
}

/// Rows by status and by delivery status, from the deltas the `messages`
/// triggers keep: a sum over a few rows, whatever the size of the table.
#[tracing::instrument(skip_all)]
pub async fn count_by_status(pool: &PgPool) -> Result<CountsByStatus, sqlx::Error> {
    let query =
        sqlx::query_as("SELECT status, sum(n)::bigint FROM message_count_deltas GROUP BY status")
            .fetch_all(pool);
    let rows: Vec<(String, i64)> = bounded(query).await?;
    let mut counts = CountsByStatus::default();
    for (key, count) in rows {
        if let Some(slot) = counts.of_key(&key) {
            *slot = count;
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
