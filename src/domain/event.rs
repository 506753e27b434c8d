//! A status webhook event's place in the outbox.

use std::fmt;

/// Where an event is in its delivery. The names are those of the `status`
/// column of `webhook_events` and of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum EventStatus {
    /// Waiting for its first attempt, or for the next after a failed one.
    Pending,
    /// Claimed by an instance, under a lease, its post in flight.
    Sending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after `WEBHOOK_MAX_ATTEMPTS`; posted again only when retried.
    Dead,
}

impl EventStatus {
    /// The name, as stored and as answered.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Sending => "sending",
            EventStatus::Delivered => "delivered",
            EventStatus::Dead => "dead",
        }
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
