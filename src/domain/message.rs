//! A message as the pipeline sees it: its state, and one claim of it.

use std::fmt;

/// Where a message is in its life. The names are those of the `status`
/// column and of the API.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for its turn (new, or back after a failed attempt).
    Pending,
    /// Claimed by an instance, under a lease, its provider call in flight.
    Sending,
    /// Accepted by the provider: never sent again.
    Sent,
    /// Given up: refused, or out of attempts.
    Failed,
}

impl MessageStatus {
    /// Every state, in the order of a message's life.
    pub const ALL: [MessageStatus; 4] = [
        MessageStatus::Pending,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Failed,
    ];

    /// The name, as stored and as answered.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Failed => "failed",
        }
    }

    /// The state of this name, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row claimed for one delivery attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claim {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Fences the outcome write: it only lands while no later claim exists.
    pub claim_token: i64,
    /// The provider it is pinned to: an earlier call there may have been
    /// accepted, so no other provider may be asked.
    pub provider: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_one_name() {
        for status in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(MessageStatus::parse("deferred"), None);
    }
}
