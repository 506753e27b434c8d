//! `WebhookActor`: delivers the outbox's events to the client.
//!
//! Every second, and whenever `Nudge`d (after an outcome or receipt batch
//! wrote events, after a delivery settled), it claims as many due events as
//! it has free slots (`WEBHOOK_CONCURRENCY`), each under a lease, lowest id
//! first and never two of one message at once (so a message's events arrive
//! in order), and posts each from a task of its own: a receiver that is
//! slow, redirects or never answers holds one slot until the time-out and
//! nothing else. What each attempt did comes back as `Attempted` and is
//! written a batch at a time: delivered, again after a growing backoff with
//! jitter, or dead after `WEBHOOK_MAX_ATTEMPTS`.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use sqlx::PgPool;
use tokio::sync::Semaphore;

use super::batch::Batcher;
use super::outbox::{Nudge, WebhookPolicy};
use crate::repository::{self, EventClaim, EventOutcome, MessageRow};
use crate::webhook::{EventBody, WebhookClient};

/// How often the outbox is looked at without a nudge.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Draws the `data` of an event: the message as the API shows it.
pub type RenderMessage = fn(MessageRow) -> serde_json::Value;

/// What one attempt of one event did.
#[derive(Message)]
#[rtype(result = "()")]
struct Attempted {
    id: i64,
    claim_token: i64,
    outcome: EventOutcome,
}

/// Claims due events and posts them.
pub struct WebhookActor {
    pool: PgPool,
    client: Rc<WebhookClient>,
    render: RenderMessage,
    policy: WebhookPolicy,
    slots: Arc<Semaphore>,
    claiming: bool,
    settled: Batcher<(i64, i64, EventOutcome)>,
}

impl WebhookActor {
    /// Delivers the events of `pool` with `client`.
    pub fn new(
        pool: PgPool,
        client: WebhookClient,
        render: RenderMessage,
        policy: WebhookPolicy,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(policy.concurrency as usize));
        WebhookActor {
            pool,
            client: Rc::new(client),
            render,
            policy,
            slots,
            claiming: false,
            settled: Batcher::default(),
        }
    }

    fn claim(&mut self, ctx: &mut Context<Self>) {
        let free = self.slots.available_permits();
        if self.claiming || free == 0 {
            return;
        }
        self.claiming = true;
        let (pool, lease) = (self.pool.clone(), self.policy.lease);
        async move { claim_with_messages(&pool, free as u32, lease).await }
            .into_actor(self)
            .map(move |claimed, actor, ctx| {
                actor.claiming = false;
                match claimed {
                    Ok(events) => {
                        let full = events.len() == free;
                        for (event, message) in events {
                            actor.deliver(event, message, ctx);
                        }
                        if full {
                            ctx.notify(Nudge);
                        }
                    }
                    Err(error) => tracing::debug!(error = %error, "webhook events not claimed"),
                }
            })
            .spawn(ctx);
    }

    /// Posts one event from a task of its own, holding a slot.
    fn deliver(&self, event: EventClaim, message: Option<MessageRow>, ctx: &mut Context<Self>) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return; // Claimed within the free slots: cannot happen.
        };
        let (client, render, policy) = (self.client.clone(), self.render, self.policy.clone());
        let addr = ctx.address();
        actix_rt::spawn(async move {
            let outcome = attempt(&client, render, &policy, &event, message).await;
            drop(slot);
            addr.do_send(Attempted {
                id: event.id,
                claim_token: event.claim_token,
                outcome,
            });
        });
    }

    fn write_settled(&mut self, ctx: &mut Context<Self>) {
        if let Some(batch) = self.settled.take(ctx) {
            self.write(batch, ctx);
        }
    }

    fn write(&self, batch: Vec<(i64, i64, EventOutcome)>, ctx: &mut Context<Self>) {
        let (pool, addr) = (self.pool.clone(), ctx.address());
        actix_rt::spawn(async move {
            if let Err(error) = repository::record_event_outcomes(&pool, &batch).await {
                // The events stay claimed; their lease ends and they go again.
                tracing::warn!(error = %error, events = batch.len(), "webhook outcomes not written; the events will be posted again");
            }
            // The next event of each message may be due now.
            addr.do_send(Nudge);
        });
    }
}

/// Claims events and reads their messages, with two statements.
async fn claim_with_messages(
    pool: &PgPool,
    limit: u32,
    lease: Duration,
) -> Result<Vec<(EventClaim, Option<MessageRow>)>, sqlx::Error> {
    let events = repository::claim_events(pool, limit, lease).await?;
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = events.iter().map(|event| event.message_id).collect();
    let mut messages: HashMap<i64, MessageRow> = repository::find_messages(pool, &ids)
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    // One claim holds at most one event per message.
    Ok(events
        .into_iter()
        .map(|event| {
            let message = messages.remove(&event.message_id);
            (event, message)
        })
        .collect())
}

/// Posts one event and says what becomes of it.
#[tracing::instrument(skip_all, fields(event_id = event.id, message_id = event.message_id, attempt = event.attempts))]
async fn attempt(
    client: &WebhookClient,
    render: RenderMessage,
    policy: &WebhookPolicy,
    event: &EventClaim,
    message: Option<MessageRow>,
) -> EventOutcome {
    let Some(message) = message else {
        return EventOutcome::Dead {
            error: "the message no longer exists".into(),
        };
    };
    let body = EventBody {
        event_type: &event.event_type,
        timestamp: event.created_at,
        data: render(message),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    match client.post(&event.url, &event.public_id, body).await {
        Ok(()) => EventOutcome::Delivered,
        Err(error) if event.attempts >= policy.retry.max_attempts as i32 => {
            tracing::warn!(error = %error, "webhook event dead: out of attempts");
            EventOutcome::Dead { error }
        }
        Err(error) => EventOutcome::Retry {
            after: policy.backoff(event.attempts),
            error,
        },
    }
}

impl Actor for WebhookActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.write_settled(ctx);
        self.claim(ctx);
        ctx.run_interval(POLL_EVERY, Self::claim);
    }
}

impl Supervised for WebhookActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.settled.restarted();
        self.claiming = false;
    }
}

impl Handler<Nudge> for WebhookActor {
    type Result = ();

    fn handle(&mut self, _: Nudge, ctx: &mut Self::Context) {
        self.claim(ctx);
    }
}

impl Handler<Attempted> for WebhookActor {
    type Result = ();

    fn handle(&mut self, attempted: Attempted, ctx: &mut Self::Context) {
        let result = match attempted.outcome {
            EventOutcome::Delivered => "delivered",
            EventOutcome::Retry { .. } => "retried",
            EventOutcome::Dead { .. } => "dead",
        };
        metrics::counter!("dispatcher_webhook_deliveries_total", "result" => result).increment(1);
        let item = (attempted.id, attempted.claim_token, attempted.outcome);
        if let Some(full) = self.settled.push(item, ctx, Self::write_settled) {
            self.write(full, ctx);
        }
        // Refill the slots without waiting for the results to be written:
        // an event whose result is not written yet is still `sending`, so
        // the next event of its message waits, and the others need not.
        if self.slots.available_permits() * 2 >= self.policy.concurrency as usize {
            self.claim(ctx);
        }
    }
}
