//! `StatusActor`: writes outcomes to PostgreSQL, in batches.
//!
//! Takes `RecordOutcome` from the `SenderActor`s and answers once the outcome
//! is written, fenced out by a later claim, or given up on. Outcomes that
//! arrive within a [`super::batch::LINGER`] of each other are written by one
//! statement. While PostgreSQL is away a batch is tried again for as
//! long as a claim's lease runs; after that its rows are claimed again and
//! re-sent with the same `Idempotency-Key`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::batch::Batcher;
use super::outbox::Outbox;
use crate::domain::{Outcome, OutcomeKind};
use crate::repository;

/// The first and the longest wait between two tries of one write.
const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// Write the outcome of one claim.
#[derive(Message)]
#[rtype(result = "Recorded")]
pub struct RecordOutcome {
    pub outcome: Outcome,
}

/// What became of an outcome write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The row took it.
    Written,
    /// A later claim owns the row (this one's lease expired): not written.
    FencedOut,
    /// PostgreSQL stayed away too long; the row is claimed again after its
    /// lease and re-sent with the same `Idempotency-Key`.
    GaveUp,
}

/// Gathers outcomes and writes them to PostgreSQL a batch at a time.
pub struct StatusActor {
    pool: PgPool,
    lease: Duration,
    /// Where the webhook events of the outcomes go.
    outbox: Outbox,
    batch: Batcher<(Outcome, oneshot::Sender<Recorded>)>,
}

impl StatusActor {
    /// Writes to `pool`, retrying for at most `lease`, with the webhook
    /// events of `outbox`.
    pub fn new(pool: PgPool, lease: Duration, outbox: Outbox) -> Self {
        StatusActor {
            pool,
            lease,
            outbox,
            batch: Batcher::default(),
        }
    }

    fn write_waiting(&mut self, ctx: &mut Context<Self>) {
        if let Some(batch) = self.batch.take(ctx) {
            self.write_batch(batch);
        }
    }

    fn write_batch(&self, batch: Vec<(Outcome, oneshot::Sender<Recorded>)>) {
        let (outcomes, replies): (Vec<Outcome>, Vec<_>) = batch.into_iter().unzip();
        let (pool, lease, outbox) = (self.pool.clone(), self.lease, self.outbox.clone());
        // A task of its own: a restart of this actor must not cancel a write.
        actix_rt::spawn(async move {
            let recorded = write_outcomes(&pool, &outcomes, lease, outbox.url()).await;
            outbox.nudge();
            for (reply, recorded) in replies.into_iter().zip(recorded) {
                let _ = reply.send(recorded);
            }
        });
    }
}

impl Actor for StatusActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // After a restart, whatever was waiting goes out now.
        self.write_waiting(ctx);
    }
}

impl Supervised for StatusActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.batch.restarted();
    }
}

impl Handler<RecordOutcome> for StatusActor {
    type Result = ResponseFuture<Recorded>;

    fn handle(&mut self, record: RecordOutcome, ctx: &mut Self::Context) -> Self::Result {
        let (reply, recorded) = oneshot::channel();
        if let Some(full) = self
            .batch
            .push((record.outcome, reply), ctx, Self::write_waiting)
        {
            self.write_batch(full);
        }
        Box::pin(async move { recorded.await.unwrap_or(Recorded::GaveUp) })
    }
}

/// What became of each outcome once the statement ran: written, or fenced
/// out; the written ones are added to the minute's activity.
async fn settled(
    pool: &PgPool,
    outcomes: &[Outcome],
    written: Vec<(i64, i64)>,
    after_outage: bool,
) -> Vec<Recorded> {
    if after_outage {
        tracing::info!(
            outcomes = outcomes.len(),
            "outcome written after PostgreSQL came back"
        );
    }
    let written: HashSet<(i64, i64)> = written.into_iter().collect();
    record_activity(pool, outcomes, &written).await;
    outcomes.iter().map(|o| landed(o, &written)).collect()
}

/// Whether `outcome` is among those `written`; logs and counts it if not.
fn landed(outcome: &Outcome, written: &HashSet<(i64, i64)>) -> Recorded {
    if written.contains(&(outcome.id, outcome.claim_token)) {
        return Recorded::Written;
    }
    metrics::counter!("dispatcher_outcomes_fenced_total").increment(1);
    tracing::warn!(
        message_id = outcome.id,
        "outcome fenced out: a later claim owns the row"
    );
    Recorded::FencedOut
}

/// Adds the written outcomes to the minute's activity, for the console; a
/// failure here is logged and changes nothing else.
async fn record_activity(pool: &PgPool, outcomes: &[Outcome], written: &HashSet<(i64, i64)>) {
    let (mut sent, mut retried, mut failed) = (0, 0, 0);
    for outcome in outcomes
        .iter()
        .filter(|outcome| written.contains(&(outcome.id, outcome.claim_token)))
    {
        match outcome.kind {
            OutcomeKind::Sent { .. } => sent += 1,
            OutcomeKind::Retry { .. } => retried += 1,
            OutcomeKind::Failed { .. } => failed += 1,
            OutcomeKind::Deferred { .. } => {}
        }
    }
    if sent + retried + failed > 0 {
        if let Err(error) = repository::record_activity(pool, sent, retried, failed).await {
            tracing::debug!(error = %error, "activity not recorded");
        }
    }
}

/// Writes each outcome with a statement of its own, so that the one that
/// PostgreSQL refuses holds back no other.
async fn write_one_by_one(
    pool: &PgPool,
    outcomes: &[Outcome],
    give_up_after: Duration,
    webhook_url: Option<&str>,
) -> Vec<Recorded> {
    let mut recorded = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let one = std::slice::from_ref(outcome);
        let mut written = Box::pin(write_outcomes(pool, one, give_up_after, webhook_url)).await;
        recorded.push(written.pop().unwrap_or(Recorded::GaveUp));
    }
    recorded
}

/// Writes one outcome, with no default webhook; see [`write_outcomes`].
pub async fn write_outcome(pool: &PgPool, outcome: &Outcome, give_up_after: Duration) -> Recorded {
    write_outcomes(pool, std::slice::from_ref(outcome), give_up_after, None)
        .await
        .pop()
        .unwrap_or(Recorded::GaveUp)
}

/// Writes outcomes with one statement, with their webhook events (to a
/// row's `callback_url`, else to `webhook_url`), trying again while
/// PostgreSQL is unreachable, for at most `give_up_after`. Answers for each
/// outcome, in order.
#[tracing::instrument(skip_all, fields(outcomes = outcomes.len()))]
pub async fn write_outcomes(
    pool: &PgPool,
    outcomes: &[Outcome],
    give_up_after: Duration,
    webhook_url: Option<&str>,
) -> Vec<Recorded> {
    let started = Instant::now();
    let mut wait = FIRST_WAIT;
    loop {
        match repository::record_outcomes(pool, outcomes, webhook_url).await {
            Ok(written) => return settled(pool, outcomes, written, wait > FIRST_WAIT).await,
            // PostgreSQL refused the statement itself: trying it again cannot
            // help, and one bad outcome must not hold back the others.
            Err(sqlx::Error::Database(error)) if outcomes.len() > 1 => {
                tracing::warn!(error = %error, outcomes = outcomes.len(), "a batch of outcomes was refused; writing them one by one");
                return write_one_by_one(pool, outcomes, give_up_after, webhook_url).await;
            }
            Err(sqlx::Error::Database(error)) => {
                tracing::error!(
                    error = %error,
                    message_id = outcomes.first().map(|o| o.id),
                    "PostgreSQL refused an outcome; the row will be claimed again after its lease"
                );
                return vec![Recorded::GaveUp; outcomes.len()];
            }
            Err(error) if started.elapsed() + wait < give_up_after => {
                metrics::counter!("dispatcher_outcome_write_retries_total").increment(1);
                if wait == FIRST_WAIT {
                    tracing::warn!(error = %error, outcomes = outcomes.len(), "could not write the outcome; trying again");
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_WAIT);
            }
            Err(error) => {
                tracing::error!(
                    error = %error,
                    outcomes = outcomes.len(),
                    "gave up writing the outcome; the row will be claimed again after its lease"
                );
                return vec![Recorded::GaveUp; outcomes.len()];
            }
        }
    }
}
