//! One delivery across the providers: each one that serves the number, in
//! file order, until one takes the message or leaves it uncertain whether
//! it did (docs/providers.md).
//!
//! The `Idempotency-Key` deduplicates within one provider only, so a
//! message moves on only after an answer that proves it was not accepted
//! (a 429, a 503, no connection, a breaker open, a `Retry-After` pending);
//! after any other failure it is pinned to the provider that got the call
//! and asked again there, with the same key.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::domain::{
    Attempt, AttemptResult, Claim, Outcome, OutcomeKind, ProviderAnswer, RetryPolicy,
};
use crate::provider::{route, BreakerState, Permit, Provider, ProviderClient, Providers, Route};
use crate::repository::{self, Reserved};

/// A reserved call must start at least this long before its second ends.
const LATE: Duration = Duration::from_millis(100);

/// What one delivery needs: the instance's providers, this sender's client
/// for each, the retry policy, and the pool that keeps the fleet's rates.
pub struct Delivery<'a> {
    pub providers: &'a Providers,
    pub clients: &'a [ProviderClient],
    pub retry: RetryPolicy,
    pub pool: &'a PgPool,
}

/// What came of offering the message to one provider.
enum Step {
    /// Not called: its breaker is open or it asked to wait; try the next.
    Skipped(Duration),
    /// Not called: its second is full; the message waits for it.
    RateLimited(Duration),
    Answered(ProviderAnswer, Attempt),
}

impl Delivery<'_> {
    /// Offers `message` to its providers in turn; returns the row's next
    /// state.
    pub async fn deliver(&self, message: &Claim) -> Outcome {
        let mut attempts = Vec::new();
        let outcome = |kind, provider: Option<&str>, attempts| Outcome {
            id: message.id,
            claim_token: message.claim_token,
            kind,
            provider: provider.map(str::to_owned),
            attempts,
            segments: 0,
        };
        let attempt = u32::try_from(message.attempts).unwrap_or(u32::MAX);
        let candidates = match self.candidates(message, attempt) {
            Ok(candidates) => candidates,
            Err(kind) => return outcome(kind, None, attempts),
        };
        let (mut wait, mut refused) = (None::<Duration>, None);
        for index in candidates {
            let provider = &self.providers[index];
            match self.offer(index, message).await {
                Step::Skipped(after) => wait = Some(wait.map_or(after, |w| w.min(after))),
                Step::RateLimited(after) => {
                    return outcome(OutcomeKind::Deferred { after }, None, attempts);
                }
                Step::Answered(answer, call) if call.result == AttemptResult::NotAccepted => {
                    attempts.push(call);
                    tracing::info!(provider = provider.name(), "provider did not take it");
                    refused = Some(answer);
                }
                Step::Answered(answer, call) => {
                    attempts.push(call);
                    let kind = OutcomeKind::decide(answer, attempt, self.retry);
                    let bound = !matches!(kind, OutcomeKind::Failed { .. });
                    return outcome(kind, bound.then_some(provider.name()), attempts);
                }
            }
        }
        let kind = match (refused, wait) {
            (Some(answer), _) => OutcomeKind::decide(answer, attempt, self.retry),
            (None, wait) => OutcomeKind::Deferred {
                after: wait.unwrap_or(Duration::from_secs(1)),
            },
        };
        outcome(kind, None, attempts)
    }

    /// The providers `message` may go to, in order; or, when none may, the
    /// row's next state.
    fn candidates(&self, message: &Claim, attempt: u32) -> Result<Vec<usize>, OutcomeKind> {
        match route(self.providers, message) {
            Route::Try(candidates) => Ok(candidates),
            Route::Unserved => Err(OutcomeKind::Failed {
                error: format!("no provider serves {}", message.phone_number),
            }),
            Route::PinnedElsewhere(name) => {
                let reason = format!(
                    "an earlier call to provider {name} may have been accepted, and {name} is no longer configured"
                );
                let answer = ProviderAnswer::Transient {
                    reason,
                    retry_after: None,
                };
                Err(OutcomeKind::decide(answer, attempt, self.retry))
            }
        }
    }

    /// Calls provider `index` for `message`, unless its breaker, its
    /// `Retry-After` or its rate says not now.
    async fn offer(&self, index: usize, message: &Claim) -> Step {
        let provider = &self.providers[index];
        if let Some(wait) = provider.gate.paused_for() {
            return Step::Skipped(wait);
        }
        let (permit, moved) = provider.breaker.permit(Instant::now());
        announce(provider, moved);
        if let Permit::Wait(wait) = permit {
            return Step::Skipped(wait);
        }
        if let Some(wait) = self.reserve(provider).await {
            provider.breaker.release(permit);
            return Step::RateLimited(wait);
        }
        let (answer, call) = self.clients[index].send(message).await;
        if let Some(wait) = answer.retry_after().filter(|wait| !wait.is_zero()) {
            if provider.gate.pause_for(wait) {
                tracing::warn!(
                    provider = provider.name(),
                    wait_ms = wait.as_millis() as u64,
                    "provider asked to wait; no call to it before then"
                );
            }
        }
        let moved = provider
            .breaker
            .record(answer.provider_works(), Instant::now());
        announce(provider, moved);
        Step::Answered(answer, call)
    }

    /// Takes a call of the provider's second, when it has a rate; `Some`
    /// is the wait when the second is full (or the count unreachable).
    ///
    /// A call taken but made too late in its second (this task waited for
    /// the statement, or for a thread, past [`LATE`] before the second's
    /// end) could reach the provider in the next second: it is given back,
    /// and the message waits. Time is measured on this host from before the
    /// statement, never by comparing this host's clock with PostgreSQL's.
    async fn reserve(&self, provider: &Provider) -> Option<Duration> {
        let max = provider.settings.max_per_second?;
        let asked = Instant::now();
        match repository::reserve_provider_call(self.pool, provider.name(), max).await {
            Ok(Reserved::Taken { left, .. }) if asked.elapsed() + LATE < left => None,
            Ok(Reserved::Taken { second, left }) => {
                let release = repository::release_provider_call(self.pool, provider.name(), second);
                if let Err(error) = release.await {
                    tracing::debug!(error = %error, "a late provider call not given back");
                }
                Some(
                    left.saturating_sub(asked.elapsed())
                        .max(Duration::from_millis(1)),
                )
            }
            Ok(Reserved::Full { wait }) => Some(wait),
            Err(error) => {
                tracing::warn!(provider = provider.name(), error = %error, "provider rate unreadable; the message waits");
                Some(Duration::from_secs(1))
            }
        }
    }
}

/// Logs and counts a breaker's move, once, by the caller that made it.
fn announce(provider: &Provider, moved: Option<BreakerState>) {
    let Some(state) = moved else { return };
    let name = provider.name().to_owned();
    metrics::counter!("dispatcher_provider_breaker_transitions_total", "provider" => name.clone(), "state" => state.as_str())
        .increment(1);
    metrics::gauge!("dispatcher_provider_breaker_state", "provider" => name).set(state.gauge());
    match state {
        BreakerState::Open => tracing::warn!(
            provider = provider.name(),
            cooldown_ms = provider.settings.breaker.cooldown.as_millis() as u64,
            "provider breaker opened: its calls keep failing; messages go to the next provider"
        ),
        BreakerState::HalfOpen => {
            tracing::info!(
                provider = provider.name(),
                "provider breaker half-open: one probe"
            )
        }
        BreakerState::Closed => {
            tracing::info!(
                provider = provider.name(),
                "provider breaker closed: calls go to it again"
            )
        }
    }
}
