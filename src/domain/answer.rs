//! What a provider's answer means for the message, whatever the provider.

use std::time::Duration;

/// What the provider's answer means for the message.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderAnswer {
    /// A 2xx with a `messageId`: the provider has the message.
    Accepted { message_id: String },
    /// Worth trying again, and the provider certainly does not have the
    /// message: a 429, a 503, a connection that was never established. The
    /// message may go to another provider.
    Unavailable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Worth trying again, but the provider may have the message: another
    /// 5xx, a time-out, a connection cut after the request was written, an
    /// accepted answer cut short. Only this provider, with the same
    /// `Idempotency-Key`, may be asked again.
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
            ProviderAnswer::Transient { retry_after, .. }
            | ProviderAnswer::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the provider answered as a working provider does: accepted
    /// or refused the message itself. What a circuit breaker counts.
    pub fn provider_works(&self) -> bool {
        matches!(
            self,
            ProviderAnswer::Accepted { .. } | ProviderAnswer::Rejected { .. }
        )
    }
}
