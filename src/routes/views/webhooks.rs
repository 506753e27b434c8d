//! The wire shape of webhook events and of the outbox.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::EventStatus;
use crate::repository::{EventRow, OutboxStats};

/// One webhook event of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEvent {
    pub id: i64,
    pub message_id: i64,
    /// `message.sent`, `message.failed`, `message.delivered` or
    /// `message.undelivered`.
    #[serde(rename = "type")]
    #[schema(example = "message.sent")]
    pub event_type: String,
    pub url: String,
    /// Where it is in its delivery.
    pub status: EventStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<EventRow> for WebhookEvent {
    fn from(row: EventRow) -> Self {
        WebhookEvent {
            id: row.id,
            message_id: row.message_id,
            event_type: row.event_type,
            url: row.url,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        }
    }
}

/// One page of webhook events.
#[derive(Serialize, ToSchema)]
pub struct WebhookEventPage {
    pub items: Vec<WebhookEvent>,
    /// Pass back as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The outbox at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxStatus {
    /// Events waiting to be delivered (or being delivered).
    pub pending: i64,
    /// How long the oldest of them has waited, in seconds.
    pub oldest_age_secs: f64,
    /// Events given up on after `WEBHOOK_MAX_ATTEMPTS`.
    pub dead: i64,
}

impl From<OutboxStats> for OutboxStatus {
    fn from(stats: OutboxStats) -> Self {
        OutboxStatus {
            pending: stats.depth,
            oldest_age_secs: stats.oldest_age_secs,
            dead: stats.dead,
        }
    }
}
