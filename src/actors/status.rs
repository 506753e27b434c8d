//! `StatusActor`: writes outcomes to PostgreSQL.
//!
//! Takes `RecordOutcome` from the `SenderActor`s and answers once the outcome
//! is written, fenced out by a later claim, or given up on. While PostgreSQL
//! is away it keeps trying for as long as the claim's lease runs; after that
//! the row is claimed again and re-sent with the same `Idempotency-Key`.

use std::time::{Duration, Instant};

use actix::prelude::*;
use sqlx::PgPool;
use tracing::Instrument;

use crate::domain::Outcome;
use crate::repository;

/// The first and the longest wait between two tries of one write.
const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// Write the outcome of one claim. Carries the message's span.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordOutcome {
    pub outcome: Outcome,
    pub span: tracing::Span,
}

/// See the module documentation.
pub struct StatusActor {
    pool: PgPool,
    lease: Duration,
}

impl StatusActor {
    /// Writes to `pool`, retrying for at most `lease`.
    pub fn new(pool: PgPool, lease: Duration) -> Self {
        StatusActor { pool, lease }
    }
}

impl Actor for StatusActor {
    type Context = Context<Self>;
}

impl Supervised for StatusActor {}

impl Handler<RecordOutcome> for StatusActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, record: RecordOutcome, _: &mut Self::Context) -> Self::Result {
        let (pool, lease) = (self.pool.clone(), self.lease);
        Box::pin(
            async move {
                write_outcome(&pool, &record.outcome, lease).await;
            }
            .instrument(record.span),
        )
    }
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

/// Writes one outcome, trying again while PostgreSQL is unreachable, for at
/// most `give_up_after`.
pub async fn write_outcome(pool: &PgPool, outcome: &Outcome, give_up_after: Duration) -> Recorded {
    let started = Instant::now();
    let mut wait = FIRST_WAIT;
    loop {
        match repository::record_outcomes(pool, std::slice::from_ref(outcome)).await {
            Ok(1) => {
                if wait > FIRST_WAIT {
                    tracing::info!("outcome written after PostgreSQL came back");
                }
                return Recorded::Written;
            }
            Ok(_) => {
                metrics::counter!("dispatcher_outcomes_fenced_total").increment(1);
                tracing::warn!("outcome fenced out: a later claim owns the row");
                return Recorded::FencedOut;
            }
            Err(error) if started.elapsed() + wait < give_up_after => {
                metrics::counter!("dispatcher_outcome_write_retries_total").increment(1);
                if wait == FIRST_WAIT {
                    tracing::warn!(error = %error, "could not write the outcome; trying again");
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_WAIT);
            }
            Err(error) => {
                tracing::error!(
                    error = %error,
                    "gave up writing the outcome; the row will be claimed again after its lease"
                );
                return Recorded::GaveUp;
            }
        }
    }
}
