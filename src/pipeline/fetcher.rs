//! `FetcherActor`: claims due rows and hands them to the senders.
//!
//! Takes `Tick` from the `SchedulerActor` and `Barrier` from its `Stop`.
//! Claims at most `DISPATCH_BATCH_SIZE` rows, and never more than the sender
//! pool has free slots for; sends each claimed row to a `SenderActor` as
//! `Deliver`, with the slot it occupies and the hold on its lease (renewed by
//! the `LeaseKeeper`) until its outcome is written.

use std::sync::Arc;

use actix::prelude::*;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use super::lease::Leases;
use super::sender::Deliver;
use super::{guarded, Panicked};
use crate::domain::Claim;
use crate::provider::{all_paused_for, Providers};
use crate::repository::{self, ClaimPolicy};

/// Time to claim a batch. Carries the span of the tick.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Tick {
    span: tracing::Span,
}

impl Tick {
    /// A tick with a fresh span.
    pub fn new() -> Self {
        Tick {
            span: tracing::info_span!("tick"),
        }
    }
}

impl Default for Tick {
    fn default() -> Self {
        Tick::new()
    }
}

/// Answered once every message sent before it has been handled.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Barrier;

/// Test builds only: the next claim panics.
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "()")]
pub struct PanicOnNextClaim;

/// Claims due rows on each tick, at most as many as there are free
/// sender slots, and deals them out to the senders.
pub struct FetcherActor {
    pool: PgPool,
    senders: Vec<Recipient<Deliver>>,
    next_sender: usize,
    /// One permit per provider call the sender pool can hold.
    slots: Arc<Semaphore>,
    policy: ClaimPolicy,
    providers: Providers,
    leases: Leases,
    #[cfg(feature = "fault-injection")]
    panic_on_next_claim: bool,
}

impl FetcherActor {
    /// A fetcher feeding `senders`, whose capacity is the permits of `slots`.
    pub fn new(
        pool: PgPool,
        senders: Vec<Recipient<Deliver>>,
        slots: Arc<Semaphore>,
        policy: ClaimPolicy,
        providers: Providers,
        leases: Leases,
    ) -> Self {
        FetcherActor {
            pool,
            senders,
            next_sender: 0,
            slots,
            policy,
            providers,
            leases,
            #[cfg(feature = "fault-injection")]
            panic_on_next_claim: false,
        }
    }

    /// The slots a tick may fill: as many as are free, at most a batch; none
    /// while every provider asked to wait or every slot is busy.
    fn free_slots(&self, span: &tracing::Span) -> Option<(u32, OwnedSemaphorePermit)> {
        if let Some(wait) = all_paused_for(&self.providers) {
            tracing::info!(parent: span, wait_ms = wait.as_millis() as u64, "provider asked to wait; tick skipped");
            return None;
        }
        let free = self
            .slots
            .available_permits()
            .min(self.policy.batch_size as usize);
        let free = u32::try_from(free).ok().filter(|&free| free > 0);
        let slots = free.and_then(|n| self.slots.clone().try_acquire_many_owned(n).ok());
        if slots.is_none() {
            tracing::debug!(parent: span, "every sender slot is busy; tick skipped");
        }
        free.zip(slots)
    }

    /// Deals out what a claim took, and counts the tick.
    fn claimed(
        &mut self,
        claimed: Result<Result<Vec<Claim>, sqlx::Error>, Panicked>,
        slots: OwnedSemaphorePermit,
        ctx: &mut Context<Self>,
    ) {
        let result = match claimed {
            // Nothing due, or (cluster scope) the fleet is stopped or another
            // instance has the turn.
            Ok(Ok(messages)) if messages.is_empty() => "empty",
            Ok(Ok(messages)) => {
                metrics::histogram!("dispatcher_claim_batch_size").record(messages.len() as f64);
                let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
                tracing::info!(claimed = messages.len(), ids = ?ids, "claimed a batch");
                #[cfg(feature = "fault-injection")]
                if messages.iter().any(|m| m.content == super::WEDGE_PIPELINE) {
                    // The thread of the scheduler and the fetcher, blocked.
                    loop {
                        std::thread::park();
                    }
                }
                self.dispatch(messages, slots);
                "claimed"
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "tick skipped: the claim failed");
                "failed"
            }
            Err(Panicked) => {
                tracing::error!("the claim panicked; restarting the fetcher");
                ctx.stop();
                "failed"
            }
        };
        metrics::counter!("dispatcher_ticks_total", "result" => result).increment(1);
    }

    fn dispatch(&mut self, messages: Vec<Claim>, mut slots: OwnedSemaphorePermit) {
        for message in messages {
            let Some(slot) = slots.split(1) else {
                // Cannot happen: a claim never returns more rows than slots.
                tracing::error!(message_id = message.id, "claimed more rows than free slots");
                break;
            };
            let span = tracing::info_span!(
                "deliver",
                message_id = message.id,
                attempt = message.attempts
            );
            let sender = &self.senders[self.next_sender % self.senders.len()];
            self.next_sender = self.next_sender.wrapping_add(1);
            let lease = self.leases.hold(message.id, message.claim_token);
            sender.do_send(Deliver {
                message,
                slot,
                lease,
                span,
            });
        }
        // Unused slots go back to the pool as `slots` drops.
    }
}

impl Actor for FetcherActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // One queued tick at most: the scheduler skips a tick rather than
        // stacking them behind a slow claim.
        ctx.set_mailbox_capacity(1);
    }
}

impl Supervised for FetcherActor {}

impl Handler<Tick> for FetcherActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, tick: Tick, _: &mut Self::Context) -> Self::Result {
        let now = std::time::UNIX_EPOCH.elapsed().unwrap_or_default();
        metrics::gauge!("dispatcher_last_tick_timestamp_seconds").set(now.as_secs_f64());
        let Some((free, slots)) = self.free_slots(&tick.span) else {
            metrics::counter!("dispatcher_ticks_total", "result" => "skipped").increment(1);
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        let (pool, policy) = (self.pool.clone(), self.policy.clone());
        #[cfg(feature = "fault-injection")]
        let inject_panic = std::mem::take(&mut self.panic_on_next_claim);
        let claim = async move {
            #[cfg(feature = "fault-injection")]
            if inject_panic {
                panic!("injected panic in the claim");
            }
            repository::claim_due(&pool, &policy, free).await
        };
        let span = tick.span;
        AtomicResponse::new(Box::pin(
            guarded(claim.instrument(span.clone()))
                .into_actor(self)
                .map(move |claimed, act, ctx| {
                    let _entered = span.enter();
                    act.claimed(claimed, slots, ctx);
                }),
        ))
    }
}

impl Handler<Barrier> for FetcherActor {
    type Result = ();

    fn handle(&mut self, _: Barrier, _: &mut Self::Context) {}
}

#[cfg(feature = "fault-injection")]
impl Handler<PanicOnNextClaim> for FetcherActor {
    type Result = ();

    fn handle(&mut self, _: PanicOnNextClaim, _: &mut Self::Context) {
        self.panic_on_next_claim = true;
    }
}
