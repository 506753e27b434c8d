//! What the API answers: the wire shape of every response body, built from
//! the repository's rows and the pipeline's state. Field names are the
//! SPEC's; a change here is a change of the API.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DeliveryStatus, Encoding, MessageStatus, Segments};
use crate::repository::{MessageRow, SentRow};

mod attempts;
mod messaging;
mod webhooks;

pub use attempts::AttemptView;
pub use messaging::{Activity, MessagingStatus};
pub use webhooks::{OutboxStatus, WebhookEvent, WebhookEventPage};

/// One message with its delivery state.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredMessage {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    pub status: MessageStatus,
    pub attempts: i32,
    pub provider_message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `delivered` or `undelivered` once the provider sent a receipt; null
    /// before (`status` stays `sent` either way).
    pub delivery_status: Option<DeliveryStatus>,
    /// The time the receipt gives.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The receipt's status word and error, when not delivered.
    pub delivery_error: Option<String>,
    /// Where its status events go, instead of `WEBHOOK_URL`.
    pub callback_url: Option<String>,
    /// The provider that accepted it (`default` with `PROVIDER_URL`); while
    /// it waits for a retry, the provider an earlier call may have reached,
    /// the only one it may go to. Null before any such call.
    pub provider: Option<String>,
    /// `gsm7` or `ucs2`: how `content` travels.
    pub encoding: Encoding,
    /// The SMS segments the provider bills for `content`.
    #[schema(example = 1)]
    pub segments: u32,
    /// 0 to 9, higher sent first.
    pub priority: i16,
    /// Not sent before this time; null: as soon as due.
    pub send_at: Option<DateTime<Utc>>,
    /// Not sent after this time; null: never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<MessageRow> for StoredMessage {
    fn from(row: MessageRow) -> Self {
        let Segments { encoding, count } = Segments::of(&row.content);
        StoredMessage {
            encoding,
            segments: count,
            id: row.id,
            phone_number: row.phone_number,
            content: row.content,
            status: row.status,
            attempts: row.attempts,
            provider_message_id: row.provider_message_id,
            sent_at: row.sent_at,
            last_error: row.last_error,
            created_at: row.created_at,
            delivery_status: row.delivery_status,
            delivered_at: row.delivered_at,
            delivery_error: row.delivery_error,
            callback_url: row.callback_url,
            provider: row.provider,
            priority: row.priority,
            send_at: row.send_at,
            expires_at: row.expires_at,
        }
    }
}

/// A message as events carry it (`data`): the stored message, as
/// `GET /api/messages/{id}` shows it.
pub fn message_json(row: MessageRow) -> serde_json::Value {
    serde_json::to_value(StoredMessage::from(row)).unwrap_or_default()
}

/// One message, with where its delivery data came from.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    #[serde(flatten)]
    pub message: StoredMessage,
    /// `cache` when `provider_message_id` and `sent_at` came from Redis,
    /// else `database`.
    #[schema(example = "cache")]
    pub delivery_source: &'static str,
    /// Its status events, oldest first.
    pub webhook_events: Vec<WebhookEvent>,
    /// Its provider calls, oldest first.
    pub attempt_history: Vec<AttemptView>,
}

/// One row of the sent list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SentMessage {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    /// The provider's `messageId`.
    pub message_id: String,
    pub sent_at: DateTime<Utc>,
    /// `gsm7` or `ucs2`.
    pub encoding: Encoding,
    /// The SMS segments billed.
    #[schema(example = 1)]
    pub segments: u32,
    /// 0 to 9.
    pub priority: i16,
}

impl From<SentRow> for SentMessage {
    fn from(row: SentRow) -> Self {
        let Segments { encoding, count } = Segments::of(&row.content);
        SentMessage {
            encoding,
            segments: count,
            priority: row.priority,
            id: row.id,
            phone_number: row.phone_number,
            content: row.content,
            message_id: row.provider_message_id,
            sent_at: row.sent_at,
        }
    }
}

/// One page of the sent list.
#[derive(Serialize, ToSchema)]
pub struct SentPage {
    pub items: Vec<SentMessage>,
    /// Pass back as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One page of the message list.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub items: Vec<StoredMessage>,
    /// Pass back as `?cursor=` (with the same filters) for the next page;
    /// null on the last page.
    pub next_cursor: Option<String>,
}

/// Liveness.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Readiness.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// Whether PostgreSQL answers, which is all that readiness needs.
    pub ready: bool,
    /// `up` or `down`.
    pub postgres: &'static str,
    /// `up`, `down`, or `disabled` without `REDIS_URL`; never makes the
    /// service unready.
    pub redis: &'static str,
}

/// Rows converted to their views.
pub fn all<R, V: From<R>>(rows: Vec<R>) -> Vec<V> {
    rows.into_iter().map(V::from).collect()
}
