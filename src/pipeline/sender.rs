//! `SenderActor`: calls the provider, one of a pool spread over threads.
//!
//! Takes `Deliver` from the `FetcherActor`. Posts the message with its own
//! awc client, decides the row's next state, sends `RecordOutcome` to the
//! `StatusActor` and waits for it, then `StoreDelivery` to the `CacheActor`
//! on success. Frees the message's slot and lets go of its lease once its
//! outcome is written.

use std::rc::Rc;

use actix::prelude::*;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use sqlx::PgPool;

use super::cache::{CacheActor, StoreDelivery};
use super::failover::Delivery;
use super::lease::Held;
use super::status::{RecordOutcome, StatusActor};
use crate::domain::{Claim, Outcome, OutcomeKind, RetryPolicy, Segments};
use crate::provider::{ProviderClient, Providers};

/// Send this claimed message to the provider and record the outcome.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver {
    pub message: Claim,
    /// Held until the outcome is written: the fetcher claims no more rows
    /// than there are free slots.
    pub slot: OwnedSemaphorePermit,
    /// Keeps the claim's lease renewed until the outcome is written.
    pub lease: Held,
    pub span: tracing::Span,
}

/// What every sender shares with the rest of the pipeline.
#[derive(Clone)]
pub struct SenderLinks {
    /// The providers, with their breakers and `Retry-After`, for every call
    /// of the instance.
    pub providers: Providers,
    /// Where the fleet's share of each provider's rate is kept.
    pub pool: PgPool,
    /// Where outcomes are written.
    pub status: Addr<StatusActor>,
    /// Where deliveries are cached, with `REDIS_URL`.
    pub cache: Option<Addr<CacheActor>>,
}

/// Posts claimed messages to the providers with its own awc clients, and
/// reports each outcome to the status actor.
pub struct SenderActor {
    /// One per provider, in the order of `links.providers`.
    clients: Rc<[ProviderClient]>,
    retry: RetryPolicy,
    links: SenderLinks,
}

impl SenderActor {
    /// Must run on the arbiter that hosts the actor: awc clients are `!Send`.
    /// Each client keeps up to `connections` calls in flight.
    pub fn new(links: SenderLinks, retry: RetryPolicy, connections: usize) -> Self {
        let clients = links
            .providers
            .iter()
            .map(|provider| ProviderClient::new(&provider.settings, connections))
            .collect();
        SenderActor {
            clients,
            retry,
            links,
        }
    }
}

impl Actor for SenderActor {
    type Context = Context<Self>;
}

impl Supervised for SenderActor {}

impl Handler<Deliver> for SenderActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, request: Deliver, _: &mut Self::Context) -> Self::Result {
        let span = request.span.clone();
        let journey = journey(
            self.clients.clone(),
            self.retry,
            self.links.clone(),
            request,
        );
        Box::pin(journey.instrument(span))
    }
}

/// One message's way through a sender: the call, the outcome written, the
/// delivery cached; then its slot and its lease are let go.
async fn journey(
    clients: Rc<[ProviderClient]>,
    retry: RetryPolicy,
    links: SenderLinks,
    request: Deliver,
) {
    let Deliver {
        message,
        slot,
        lease,
        ..
    } = request;
    let outcome = deliver(&clients, &links, &message, retry).await;
    let cache_entry = match &outcome.kind {
        OutcomeKind::Sent {
            provider_message_id,
            sent_at,
        } => Some(StoreDelivery {
            id: outcome.id,
            provider_message_id: provider_message_id.clone(),
            sent_at: *sent_at,
        }),
        _ => None,
    };
    if links.status.send(RecordOutcome { outcome }).await.is_err() {
        tracing::error!("status actor unreachable; the row is retried after its lease");
    }
    if let (Some(cache), Some(entry)) = (links.cache, cache_entry) {
        cache.do_send(entry);
    }
    drop((slot, lease));
}

/// Offers `message` to its providers, and counts and logs what came of it.
pub async fn deliver(
    clients: &[ProviderClient],
    links: &SenderLinks,
    message: &Claim,
    retry: RetryPolicy,
) -> Outcome {
    #[cfg(feature = "fault-injection")]
    if message.content == super::PANIC_IN_SENDER && message.attempts == 1 {
        panic!("injected panic in a sender");
    }
    let delivery = Delivery {
        providers: &links.providers,
        clients,
        retry,
        pool: &links.pool,
    };
    let mut outcome = delivery.deliver(message).await;
    report(&outcome);
    if matches!(outcome.kind, OutcomeKind::Sent { .. }) {
        outcome.segments = Segments::of(&message.content).count;
        metrics::counter!("dispatcher_segments_sent_total").increment(outcome.segments.into());
    }
    outcome
}

/// Counts and logs the outcome of one attempt.
fn report(outcome: &Outcome) {
    let kind = &outcome.kind;
    metrics::counter!(match kind {
        OutcomeKind::Sent { .. } => "dispatcher_messages_sent_total",
        OutcomeKind::Retry { .. } => "dispatcher_messages_retried_total",
        OutcomeKind::Failed { .. } => "dispatcher_messages_failed_total",
        OutcomeKind::Deferred { .. } => "dispatcher_messages_deferred_total",
    })
    .increment(1);
    match kind {
        OutcomeKind::Sent {
            provider_message_id,
            ..
        } => {
            tracing::info!(provider_message_id = %provider_message_id, provider = outcome.provider.as_deref(), "sent")
        }
        OutcomeKind::Retry { after, error } => {
            tracing::warn!(retry_in_ms = after.as_millis() as u64, error = %error, "will retry")
        }
        OutcomeKind::Failed { error } => tracing::warn!(error = %error, "failed"),
        OutcomeKind::Deferred { after } => {
            tracing::info!(
                retry_in_ms = after.as_millis() as u64,
                "not sent: its provider cannot take it now"
            )
        }
    }
}
