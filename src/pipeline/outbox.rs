//! What the pipeline's writers and the webhook actor share of the outbox:
//! the default URL and the nudge that says events were written, and how
//! events are delivered (attempts, backoff, lease, concurrency).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::domain::RetryPolicy;

/// How events are delivered.
#[derive(Debug, Clone)]
pub struct WebhookPolicy {
    /// `WEBHOOK_MAX_ATTEMPTS` and `WEBHOOK_RETRY_BASE_MS`.
    pub retry: RetryPolicy,
    /// How long a claim of an event lasts: past the post's time-out.
    pub lease: Duration,
    /// `WEBHOOK_CONCURRENCY`.
    pub concurrency: u32,
}

impl WebhookPolicy {
    /// The wait after failed attempt number `attempts`: the messages' own
    /// backoff ([`RetryPolicy::backoff`]), less a random part of up to half,
    /// so that a receiver coming back is not hit by every event at once.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let attempts = u32::try_from(attempts).unwrap_or(0);
        self.retry
            .backoff(attempts)
            .mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// What the writers of events (outcomes, receipts) need: the default URL,
/// and whom to tell that events were written.
#[derive(Clone, Default)]
pub struct Outbox {
    /// `WEBHOOK_URL`: where the events of rows without a `callback_url` go.
    pub url: Option<Arc<str>>,
    /// Told after a write that may have added events; without it (no
    /// `WEBHOOK_URL`), events of a `callback_url` wait for the next poll.
    pub nudge: Option<Recipient<Nudge>>,
}

impl Outbox {
    /// The default URL.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Tells the webhook actor to look now.
    pub fn nudge(&self) {
        if let Some(nudge) = &self.nudge {
            nudge.do_send(Nudge);
        }
    }
}

/// Look at the outbox now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Nudge;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_grows_with_jitter_and_stops_at_an_hour() {
        let retry = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(1),
        };
        let policy = WebhookPolicy {
            retry,
            lease: Duration::from_secs(60),
            concurrency: 1,
        };
        for attempts in 1..=40 {
            let wait = policy.backoff(attempts);
            let full = retry.backoff(attempts as u32);
            assert!(full <= Duration::from_secs(3600));
            assert!(wait >= full / 2 && wait <= full, "{attempts}: {wait:?}");
        }
    }
}
