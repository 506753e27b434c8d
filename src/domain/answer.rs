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

/// What one provider call was, for the message's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub provider: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub duration: Duration,
    /// None when no answer came.
    pub http_status: Option<u16>,
    /// Why it was not accepted.
    pub error: Option<String>,
    pub result: AttemptResult,
}

/// What a call's answer proved, as `message_attempts.result` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Accepted,
    /// Certainly not taken: the message may go to another provider.
    NotAccepted,
    /// Maybe taken: the message stays with this provider.
    Uncertain,
    Rejected,
}

impl AttemptResult {
    /// The name in `message_attempts.result`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Accepted => "accepted",
            AttemptResult::NotAccepted => "not_accepted",
            AttemptResult::Uncertain => "uncertain",
            AttemptResult::Rejected => "rejected",
        }
    }
}

impl Attempt {
    /// The attempt of a call to `provider` that began at `started_at`, took
    /// `duration` and got `answer` (with `http_status`, if any came).
    pub fn of(
        provider: &str,
        started_at: chrono::DateTime<chrono::Utc>,
        duration: Duration,
        http_status: Option<u16>,
        answer: &ProviderAnswer,
    ) -> Self {
        let (result, error) = match answer {
            ProviderAnswer::Accepted { .. } => (AttemptResult::Accepted, None),
            ProviderAnswer::Unavailable { reason, .. } => {
                (AttemptResult::NotAccepted, Some(reason))
            }
            ProviderAnswer::Transient { reason, .. } => (AttemptResult::Uncertain, Some(reason)),
            ProviderAnswer::Rejected { reason } => (AttemptResult::Rejected, Some(reason)),
        };
        Attempt {
            provider: provider.to_owned(),
            started_at,
            duration,
            http_status,
            error: error.cloned(),
            result,
        }
    }
}
