//! `StatusActor`: writes outcomes to PostgreSQL, in batches.
//!
//! Takes `RecordOutcome` from the `SenderActor`s and answers once the outcome
//! is written, fenced out by a later claim, or given up on. Outcomes that
//! arrive within [`LINGER`] of each other (up to [`MAX_BATCH`]) are written
//! by one statement. While PostgreSQL is away a batch is tried again for as
//! long as a claim's lease runs; after that its rows are claimed again and
//! re-sent with the same `Idempotency-Key`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::domain::{Outcome, OutcomeKind};
use crate::repository;

/// How long the first outcome of a batch waits for others.
pub const LINGER: Duration = Duration::from_millis(10);
/// The most outcomes one statement writes.
pub const MAX_BATCH: usize = 2000;

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
    batch: Vec<(Outcome, oneshot::Sender<Recorded>)>,
    linger_timer: Option<SpawnHandle>,
}

impl StatusActor {
    /// Writes to `pool`, retrying for at most `lease`.
    pub fn new(pool: PgPool, lease: Duration) -> Self {
        StatusActor {
            pool,
            lease,
            batch: Vec::new(),
            linger_timer: None,
        }
    }

    fn write_batch(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.linger_timer.take() {
            ctx.cancel_future(timer);
        }
        if self.batch.is_empty() {
            return;
        }
        let (outcomes, replies): (Vec<Outcome>, Vec<_>) =
            std::mem::take(&mut self.batch).into_iter().unzip();
        let (pool, lease) = (self.pool.clone(), self.lease);
        // A task of its own: a restart of this actor must not cancel a write.
        actix_rt::spawn(async move {
            let recorded = write_outcomes(&pool, &outcomes, lease).await;
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
        self.write_batch(ctx);
    }
}

impl Supervised for StatusActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.linger_timer = None;
    }
}

impl Handler<RecordOutcome> for StatusActor {
    type Result = ResponseFuture<Recorded>;

    fn handle(&mut self, record: RecordOutcome, ctx: &mut Self::Context) -> Self::Result {
        let (reply, recorded) = oneshot::channel();
        self.batch.push((record.outcome, reply));
        if self.batch.len() >= MAX_BATCH {
            self.write_batch(ctx);
        } else if self.linger_timer.is_none() {
            self.linger_timer = Some(ctx.run_later(LINGER, |act, ctx| act.write_batch(ctx)));
        }
        Box::pin(async move { recorded.await.unwrap_or(Recorded::GaveUp) })
    }
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

/// Writes one outcome; see [`write_outcomes`].
pub async fn write_outcome(pool: &PgPool, outcome: &Outcome, give_up_after: Duration) -> Recorded {
    write_outcomes(pool, std::slice::from_ref(outcome), give_up_after)
        .await
        .pop()
        .unwrap_or(Recorded::GaveUp)
}

/// Writes outcomes with one statement, trying again while PostgreSQL is
/// unreachable, for at most `give_up_after`. Answers for each outcome, in
/// order.
#[tracing::instrument(skip_all, fields(outcomes = outcomes.len()))]
pub async fn write_outcomes(
    pool: &PgPool,
    outcomes: &[Outcome],
    give_up_after: Duration,
) -> Vec<Recorded> {
    let started = Instant::now();
    let mut wait = FIRST_WAIT;
    loop {
        match repository::record_outcomes(pool, outcomes).await {
            Ok(written) => {
                if wait > FIRST_WAIT {
                    tracing::info!(
                        outcomes = outcomes.len(),
                        "outcome written after PostgreSQL came back"
                    );
                }
                let written: HashSet<(i64, i64)> = written.into_iter().collect();
                record_activity(pool, outcomes, &written).await;
                return outcomes
                    .iter()
                    .map(|outcome| {
                        if written.contains(&(outcome.id, outcome.claim_token)) {
                            return Recorded::Written;
                        }
                        metrics::counter!("dispatcher_outcomes_fenced_total").increment(1);
                        tracing::warn!(
                            message_id = outcome.id,
                            "outcome fenced out: a later claim owns the row"
                        );
                        Recorded::FencedOut
                    })
                    .collect();
            }
            // PostgreSQL refused the statement itself: trying it again cannot
            // help, and one bad outcome must not hold back the others.
            Err(sqlx::Error::Database(error)) if outcomes.len() > 1 => {
                tracing::warn!(error = %error, outcomes = outcomes.len(), "a batch of outcomes was refused; writing them one by one");
                let mut recorded = Vec::with_capacity(outcomes.len());
                for outcome in outcomes {
                    recorded.push(Box::pin(write_outcome(pool, outcome, give_up_after)).await);
                }
                return recorded;
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
