//! `ReceiptActor`: writes delivery receipts to PostgreSQL, in batches, and
//! looks after the receipts kept for ids no message held yet.
//!
//! Takes `RecordReceipt` from the receipt endpoint and answers once the
//! receipt is stored; receipts that arrive within a [`super::batch::LINGER`]
//! of each other are written by one statement, so a flood of receipts costs
//! PostgreSQL a statement per batch, not per receipt. A batch that kept
//! receipts for ids no message held is looked at again a second later, and
//! every second it matches the receipts kept a minute ago or more (the race
//! of a receipt with its outcome, see `repository/receipts.rs`); every
//! minute it deletes kept receipts older than a day.

use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::batch::Batcher;
use super::outbox::Outbox;
use crate::domain::Receipt;
use crate::repository::{self, ReceiptCounts};

/// How often kept receipts are matched again.
const MATCH_EVERY: Duration = Duration::from_secs(1);
/// How long after a batch kept receipts they are looked at again.
const RECHECK_AFTER: Duration = Duration::from_secs(1);
/// How often old kept receipts are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long an unknown id's receipt is kept.
pub const KEEP_UNMATCHED: Duration = Duration::from_secs(24 * 60 * 60);
/// The most kept receipts one prune deletes.
const PRUNE_BATCH: u32 = 1000;

/// Store one receipt; answers whether it was stored.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RecordReceipt {
    pub receipt: Receipt,
}

/// Gathers receipts and writes them a batch at a time.
pub struct ReceiptActor {
    pool: PgPool,
    /// Where the webhook events of applied receipts go.
    outbox: Outbox,
    batch: Batcher<(Receipt, oneshot::Sender<bool>)>,
    /// Where the next match of kept receipts starts, on PostgreSQL's clock;
    /// `None` until the first one.
    matched_to: Option<DateTime<Utc>>,
}

impl ReceiptActor {
    /// Writes to `pool`, with the webhook events of `outbox`.
    pub fn new(pool: PgPool, outbox: Outbox) -> Self {
        ReceiptActor {
            pool,
            outbox,
            batch: Batcher::default(),
            matched_to: None,
        }
    }

    fn write_waiting(&mut self, ctx: &mut Context<Self>) {
        if let Some(batch) = self.batch.take(ctx) {
            self.write_batch(batch);
        }
    }

    fn write_batch(&self, batch: Vec<(Receipt, oneshot::Sender<bool>)>) {
        let (receipts, replies): (Vec<Receipt>, Vec<_>) = batch.into_iter().unzip();
        let (pool, outbox) = (self.pool.clone(), self.outbox.clone());
        actix_rt::spawn(async move {
            let counts = write_receipts(&pool, &receipts, outbox.url()).await;
            outbox.nudge();
            for reply in replies {
                let _ = reply.send(counts.is_some());
            }
            if counts.is_some_and(|counts| counts.unknown > 0) {
                actix_rt::time::sleep(RECHECK_AFTER).await;
                recheck(&pool, &receipts, &outbox).await;
            }
        });
    }

    fn match_kept(&mut self, ctx: &mut Context<Self>) {
        let (pool, from, outbox) = (self.pool.clone(), self.matched_to, self.outbox.clone());
        repository_call(
            async move { repository::match_kept_receipts(&pool, from, outbox.url()).await },
        )
        .into_actor(self)
        .map(|matched, actor, _| {
            if let Some((applied, to)) = matched {
                if applied > 0 {
                    metrics::counter!("dispatcher_receipts_matched_late_total").increment(applied);
                    tracing::info!(applied, "kept receipts applied to their messages");
                }
                actor.matched_to = Some(to);
            }
        })
        .wait(ctx);
    }
}

/// Runs a repository call whose failure only delays housekeeping: logged at
/// debug level, `None`.
async fn repository_call<T>(
    call: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Option<T> {
    call.await
        .inspect_err(|error| tracing::debug!(error = %error, "receipt housekeeping skipped"))
        .ok()
}

impl Actor for ReceiptActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.write_waiting(ctx);
        ctx.run_interval(MATCH_EVERY, Self::match_kept);
        ctx.run_interval(PRUNE_EVERY, |actor, _| {
            let pool = actor.pool.clone();
            actix_rt::spawn(repository_call(async move {
                repository::prune_kept_receipts(&pool, KEEP_UNMATCHED, PRUNE_BATCH).await
            }));
        });
    }
}

impl Supervised for ReceiptActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.batch.restarted();
    }
}

impl Handler<RecordReceipt> for ReceiptActor {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, record: RecordReceipt, ctx: &mut Self::Context) -> Self::Result {
        let (reply, stored) = oneshot::channel();
        if let Some(full) = self
            .batch
            .push((record.receipt, reply), ctx, Self::write_waiting)
        {
            self.write_batch(full);
        }
        Box::pin(async move { stored.await.unwrap_or(false) })
    }
}

/// Writes a batch of receipts and counts what each did; `None` when
/// PostgreSQL did not take them (the provider is told to send them again).
#[tracing::instrument(skip_all, fields(receipts = receipts.len()))]
pub async fn write_receipts(
    pool: &PgPool,
    receipts: &[Receipt],
    webhook_url: Option<&str>,
) -> Option<ReceiptCounts> {
    match repository::record_receipts(pool, receipts, webhook_url).await {
        Ok(counts) => {
            count(counts);
            Some(counts)
        }
        Err(error) => {
            tracing::warn!(error = %error, receipts = receipts.len(), "receipts not stored; the provider is asked to send them again");
            None
        }
    }
}

/// Applies the receipts of a batch that were kept and whose message now
/// holds their id (its outcome was being written at the same moment).
async fn recheck(pool: &PgPool, receipts: &[Receipt], outbox: &Outbox) {
    let ids: Vec<&str> = receipts
        .iter()
        .map(|r| r.provider_message_id.as_str())
        .collect();
    let matched = repository_call(repository::match_kept_receipts_of(pool, &ids, outbox.url()));
    if let Some(applied) = matched.await.filter(|&applied| applied > 0) {
        metrics::counter!("dispatcher_receipts_matched_late_total").increment(applied);
        outbox.nudge();
    }
}

fn count(counts: ReceiptCounts) {
    for (result, n) in [
        ("applied", counts.applied),
        ("unknown", counts.unknown),
        ("stale", counts.stale),
    ] {
        if n > 0 {
            metrics::counter!("dispatcher_receipts_total", "result" => result).increment(n);
        }
    }
}
