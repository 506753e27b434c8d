//! The pipeline, one actor per file:
//!
//! ```text
//! HTTP handlers --Start/Stop/GetState--> SchedulerActor --Tick, Barrier--> FetcherActor
//! NOTIFY dispatch_state --StateChanged--> SchedulerActor
//! FetcherActor --claims due rows--> SenderActor pool --POST--> provider
//!              --holds each claim in Leases--> LeaseKeeper (renews them)
//! SenderActor --RecordOutcome--> StatusActor (PostgreSQL)
//!             --StoreDelivery--> CacheActor (Redis, when configured)
//! POST /provider/receipts --RecordReceipt--> ReceiptActor (PostgreSQL)
//! StatusActor, ReceiptActor --Nudge--> WebhookActor --POST--> the client's URL
//! QueueKeeper, every second: promotes long-waiting rows, fails expired ones
//! Janitor, every minute: deletes finished rows past RETENTION_DAYS, old bookkeeping
//! ```
//!
//! [`Pipeline`] starts them in dependency order and is the one handle on
//! them: tick, settle, wait until idle, drain. Every actor runs under a
//! `Supervisor`. Handlers that do I/O return futures
//! that actix spawns on their own (`ResponseFuture`), so a panic there ends
//! that one future, not the actor; the fetcher's claim runs inside the actor
//! (`AtomicResponse`), so it is wrapped by [`guarded`], which turns a panic
//! into a restart.

mod batch;
mod cache;
mod control;
mod failover;
mod fetcher;
mod janitor;
mod keeper;
mod lease;
mod outbox;
mod pace;
mod providers;
mod receipts;
mod scheduler;
mod sender;
mod start;
mod status;
mod webhooks;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::FutureExt;
use tokio::sync::Semaphore;

pub use cache::{CacheActor, StoreDelivery, StoreNow};
pub use control::{
    follow_cluster_state, GetState, Heartbeat, Settle, Shutdown, Start, StateChanged, Stop,
    TickNow, HEARTBEAT,
};
#[cfg(feature = "fault-injection")]
pub use fetcher::PanicOnNextClaim;
pub use fetcher::{Barrier, FetcherActor, Tick};
pub use janitor::Janitor;
pub use keeper::QueueKeeper;
pub use lease::{Held, LeaseKeeper, Leases};
pub use outbox::{Nudge, Outbox, WebhookPolicy};
pub use pace::{FleetPace, InstancePace, Pace, SchedulerState};
pub use providers::{ProviderBoard, ProviderState};
pub use receipts::{write_receipts, ReceiptActor, RecordReceipt, KEEP_UNMATCHED};
pub use scheduler::SchedulerActor;
pub use sender::{deliver, Deliver, SenderActor, SenderLinks};
pub use status::{write_outcome, write_outcomes, RecordOutcome, Recorded, StatusActor};
pub use webhooks::{RenderMessage, WebhookActor};

/// Test builds only: a message with this content makes its first delivery
/// panic inside the sender.
#[cfg(feature = "fault-injection")]
pub const PANIC_IN_SENDER: &str = "panic in sender";

/// Test builds only: a claimed message with this content blocks the thread
/// the scheduler and the fetcher run on, for good: a wedged pipeline.
#[cfg(feature = "fault-injection")]
pub const WEDGE_PIPELINE: &str = "wedge the pipeline";

/// A panic caught in a handler's future.
#[derive(Debug)]
pub struct Panicked;

/// Runs `future`, turning a panic into `Err(Panicked)` so that the handler can
/// stop its actor and let the supervisor restart it: an uncaught panic would
/// end the actor for good.
pub async fn guarded<T>(future: impl Future<Output = T>) -> Result<T, Panicked> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|_| Panicked)
}

/// The actors, and the slots that bound the sends in flight.
#[derive(Clone)]
pub struct Pipeline {
    scheduler: Addr<SchedulerActor>,
    fetcher: Addr<FetcherActor>,
    receipts: Addr<ReceiptActor>,
    cache: Option<Addr<CacheActor>>,
    /// The `LISTEN dispatch_state` task, ended while the runtime still runs:
    /// its connection goes back to the pool from a task of its own.
    listener: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    slots: Arc<Semaphore>,
    capacity: u32,
    arbiters: Arc<Vec<ArbiterHandle>>,
    providers: ProviderBoard,
}

impl Pipeline {
    /// The providers, for status.
    pub fn providers(&self) -> &ProviderBoard {
        &self.providers
    }

    /// The scheduler, for `Start`, `Stop` and `GetState`.
    pub fn scheduler(&self) -> &Addr<SchedulerActor> {
        &self.scheduler
    }

    /// The receipt writer, for `RecordReceipt`.
    pub fn receipts(&self) -> &Addr<ReceiptActor> {
        &self.receipts
    }

    /// The fetcher, for tests that inject faults into it.
    pub fn fetcher(&self) -> &Addr<FetcherActor> {
        &self.fetcher
    }

    /// Runs one tick now, as the timer would, and returns once its claim is
    /// done; `false` when sending is stopped.
    pub async fn tick(&self) -> bool {
        self.scheduler.send(TickNow).await.unwrap_or(false)
    }

    /// Returns once every tick already fired has finished its claim.
    pub async fn settle(&self) {
        if self.scheduler.send(Settle).await.is_err() {
            tracing::error!("scheduler unreachable");
        }
    }

    /// Returns once no send is in flight: every claimed message has had its
    /// outcome written (or given up on).
    pub async fn wait_idle(&self) {
        // Every slot free means every delivery has finished. The semaphore is
        // never closed, so acquiring cannot fail.
        let _all = self.slots.acquire_many(self.capacity).await;
    }

    /// Stops claiming, waits for every in-flight send, and stops the senders'
    /// threads.
    pub async fn drain(&self) {
        // Shutdown, not Stop: in cluster scope Stop would stop the fleet.
        if self.scheduler.send(Shutdown).await.is_err() {
            tracing::error!("scheduler unreachable while draining");
        }
        self.wait_idle().await;
        if let Some(cache) = &self.cache {
            let _ = cache.send(StoreNow).await;
        }
        let listener = self
            .listener
            .lock()
            .ok()
            .and_then(|mut listener| listener.take());
        if let Some(listener) = listener {
            listener.abort();
            let _ = listener.await;
        }
        for arbiter in self.arbiters.iter() {
            arbiter.stop();
        }
    }
}
