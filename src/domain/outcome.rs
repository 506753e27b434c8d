//! What one provider call means for the row: sent, tried again later, or
//! given up on.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Attempt, ProviderAnswer};

/// The longest a message waits between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// How often a message is tried, and how long it waits between two tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `MAX_ATTEMPTS`: provider calls before a message is given up.
    pub max_attempts: u32,
    /// `RETRY_BASE_MS`: the wait after the first failed attempt.
    pub base: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based); see
    /// [`backoff`].
    pub fn backoff(&self, attempt: u32) -> Duration {
        backoff(self.base, attempt)
    }
}

/// The result of one claim, to be written to the row the claim fenced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The row.
    pub id: i64,
    /// The claim this outcome belongs to; a later claim fences it out.
    pub claim_token: i64,
    /// What happened.
    pub kind: OutcomeKind,
    /// The provider the row is bound to from now on: the one that accepted
    /// it, or one whose answer left acceptance uncertain; `None` keeps the
    /// row's.
    pub provider: Option<String>,
    /// The provider calls this claim made, in order.
    pub attempts: Vec<Attempt>,
    /// The SMS segments of the message's text, stored when it is sent.
    pub segments: u32,
}

/// The new state of a claimed row.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeKind {
    /// Accepted by the provider: never sent again.
    Sent {
        provider_message_id: String,
        sent_at: DateTime<Utc>,
    },
    /// Back to `pending`, due again after `after`.
    Retry { after: Duration, error: String },
    /// Given up: a permanent refusal, or no attempts left.
    Failed { error: String },
    /// Not sent at all (the provider asked to wait): back to `pending`, due
    /// after `after`, the claim's attempt not counted.
    Deferred { after: Duration },
}

impl OutcomeKind {
    /// Turns the provider's answer to attempt number `attempt` (1-based) into
    /// the row's next state.
    pub fn decide(answer: ProviderAnswer, attempt: u32, retry: RetryPolicy) -> Self {
        match answer {
            ProviderAnswer::Accepted { message_id } => OutcomeKind::Sent {
                provider_message_id: message_id,
                sent_at: Utc::now(),
            },
            ProviderAnswer::Rejected { reason } => OutcomeKind::Failed { error: reason },
            ProviderAnswer::Transient { reason, .. }
            | ProviderAnswer::Unavailable { reason, .. }
                if attempt >= retry.max_attempts =>
            {
                OutcomeKind::Failed {
                    error: format!("gave up after {attempt} attempts; last: {reason}"),
                }
            }
            ProviderAnswer::Transient {
                reason,
                retry_after,
            }
            | ProviderAnswer::Unavailable {
                reason,
                retry_after,
            } => OutcomeKind::Retry {
                after: retry_after.unwrap_or_default().max(retry.backoff(attempt)),
                error: reason,
            },
        }
    }
}

/// The wait after failed attempt number `attempt` (1-based): the base, doubled
/// for each attempt after the first, and never more than an hour.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    base.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(1);
    const RETRY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base: BASE,
    };

    fn transient(retry_after: Option<Duration>) -> ProviderAnswer {
        ProviderAnswer::Transient {
            reason: "provider answered 503".into(),
            retry_after,
        }
    }

    #[test]
    fn backoff_doubles_per_attempt_and_is_capped() {
        let waits: Vec<u64> = (1..=5).map(|a| backoff(BASE, a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16]);
        assert_eq!(backoff(BASE, 0), BASE);
        assert_eq!(backoff(BASE, 13), MAX_BACKOFF);
        assert_eq!(backoff(BASE, u32::MAX), MAX_BACKOFF);
        assert_eq!(backoff(Duration::MAX, 2), MAX_BACKOFF);
    }

    #[test]
    fn an_accepted_answer_means_sent() {
        let kind = OutcomeKind::decide(
            ProviderAnswer::Accepted {
                message_id: "m-1".into(),
            },
            1,
            RETRY,
        );
        assert!(
            matches!(kind, OutcomeKind::Sent { provider_message_id, .. } if provider_message_id == "m-1")
        );
    }

    #[test]
    fn a_transient_answer_retries_until_the_attempts_run_out() {
        assert_eq!(
            OutcomeKind::decide(transient(None), 2, RETRY),
            OutcomeKind::Retry {
                after: Duration::from_secs(2),
                error: "provider answered 503".into()
            }
        );
        let last = OutcomeKind::decide(transient(None), 5, RETRY);
        assert!(
            matches!(last, OutcomeKind::Failed { error } if error.contains("gave up after 5 attempts"))
        );
    }

    #[test]
    fn retry_after_lengthens_the_wait_but_never_shortens_it() {
        let long = OutcomeKind::decide(transient(Some(Duration::from_secs(30))), 1, RETRY);
        assert!(
            matches!(long, OutcomeKind::Retry { after, .. } if after == Duration::from_secs(30))
        );
        let short = OutcomeKind::decide(transient(Some(Duration::ZERO)), 3, RETRY);
        assert!(
            matches!(short, OutcomeKind::Retry { after, .. } if after == Duration::from_secs(4))
        );
    }

    #[test]
    fn a_rejection_fails_at_once() {
        let kind = OutcomeKind::decide(
            ProviderAnswer::Rejected {
                reason: "provider answered 400".into(),
            },
            1,
            RETRY,
        );
        assert_eq!(
            kind,
            OutcomeKind::Failed {
                error: "provider answered 400".into()
            }
        );
    }
}
