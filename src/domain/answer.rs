//! What a provider's answer means for the message, whatever the provider.

use std::time::Duration;

/// What the provider's answer means for the message.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderAnswer {
    /// A 2xx with a `messageId`: the provider has the message.
    Accepted { message_id: String },
    /// Worth trying again: 5xx, 429, a time-out, a connection error, an
    /// accepted answer cut short.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Never worth trying again: any other 4xx, or a 2xx without a `messageId`.
    Rejected { reason: String },
}

impl ProviderAnswer {
    /// How long the provider asked everyone to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderAnswer::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
