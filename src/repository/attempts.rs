//! The history of a message's provider calls.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::bounded;

/// One row of `message_attempts`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub provider: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub result: String,
}

/// The provider calls made for message `id`, oldest first.
pub async fn attempts_of_message(pool: &PgPool, id: i64) -> Result<Vec<AttemptRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, AttemptRow>(
        "SELECT provider, started_at, duration_ms, http_status, error, result \
         FROM message_attempts WHERE message_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool);
    bounded(query).await
}
