//! A message's provider calls, as `GET /api/messages/{id}` shows them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::repository::AttemptRow;

/// One provider call.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// The provider's name (`default` with `PROVIDER_URL`).
    pub provider: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// Null when no answer came (time-out, no connection).
    pub http_status: Option<i32>,
    /// Why it was not accepted; null when it was.
    pub error: Option<String>,
    /// `accepted`; `not_accepted` (certainly not taken: may go to another
    /// provider); `uncertain` (maybe taken: asked again of this provider
    /// only); `rejected`.
    #[schema(example = "accepted")]
    pub result: String,
}

impl From<AttemptRow> for AttemptView {
    fn from(row: AttemptRow) -> Self {
        AttemptView {
            provider: row.provider,
            started_at: row.started_at,
            duration_ms: row.duration_ms,
            http_status: row.http_status,
            error: row.error,
            result: row.result,
        }
    }
}
