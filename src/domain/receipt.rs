//! A delivery receipt: what the provider says became of a message it
//! accepted.

use std::fmt;

use chrono::{DateTime, Utc};

use super::printable;

/// The longest `messageId` a receipt may name.
pub const MAX_ID_CHARS: usize = 256;
/// The longest `error` kept from a receipt; a longer one is cut.
pub const MAX_ERROR_CHARS: usize = 500;

/// The word of a receipt's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ReceiptStatus {
    Delivered,
    Undelivered,
    Expired,
    Rejected,
}

impl ReceiptStatus {
    /// The word, as received and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Undelivered => "undelivered",
            ReceiptStatus::Expired => "expired",
            ReceiptStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ReceiptStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of a sent message, as its latest receipt says: an
/// `expired` or `rejected` receipt counts as undelivered.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum DeliveryStatus {
    Delivered,
    Undelivered,
}

impl From<ReceiptStatus> for DeliveryStatus {
    fn from(status: ReceiptStatus) -> Self {
        match status {
            ReceiptStatus::Delivered => DeliveryStatus::Delivered,
            _ => DeliveryStatus::Undelivered,
        }
    }
}

/// A receipt, checked: an id of bounded length, an error without control
/// characters and cut to `MAX_ERROR_CHARS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub provider_message_id: String,
    pub status: ReceiptStatus,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

impl Receipt {
    /// A receipt from its parts, or why it cannot be one.
    pub fn parse(
        provider_message_id: &str,
        status: ReceiptStatus,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Self, String> {
        let id = provider_message_id;
        if id.is_empty() {
            return Err("messageId must not be empty".into());
        }
        if id.chars().count() > MAX_ID_CHARS || id.chars().any(char::is_control) {
            return Err(format!(
                "messageId must be at most {MAX_ID_CHARS} characters, without control characters"
            ));
        }
        let error = error
            .map(|text| printable(text, MAX_ERROR_CHARS))
            .filter(|text| !text.trim().is_empty());
        Ok(Receipt {
            provider_message_id: id.to_owned(),
            status,
            error,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-12-03T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_empty_or_overlong_id_is_refused() {
        assert!(Receipt::parse("", ReceiptStatus::Delivered, None, at()).is_err());
        let long = "x".repeat(MAX_ID_CHARS + 1);
        assert!(Receipt::parse(&long, ReceiptStatus::Delivered, None, at()).is_err());
        assert!(Receipt::parse("a\nb", ReceiptStatus::Delivered, None, at()).is_err());
    }

    #[test]
    fn the_error_is_kept_printable_and_bounded() {
        let long = format!("no\nroute{}", "!".repeat(1000));
        let receipt =
            Receipt::parse("id-1", ReceiptStatus::Undelivered, Some(&long), at()).unwrap();
        let error = receipt.error.unwrap();
        assert!(error.starts_with("no route"));
        assert_eq!(error.chars().count(), MAX_ERROR_CHARS);
        let blank = Receipt::parse("id-1", ReceiptStatus::Rejected, Some("  "), at()).unwrap();
        assert_eq!(blank.error, None);
    }
}
