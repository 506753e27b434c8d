//! The pipeline, one actor per file:
//!
//! ```text
//! HTTP handlers --Start/Stop/GetState--> SchedulerActor --Tick, Barrier--> FetcherActor
//! NOTIFY dispatch_state --StateChanged--> SchedulerActor
//! FetcherActor --claims due rows--> SenderActor pool --POST--> provider
//!              --holds each claim in Leases--> LeaseKeeper (renews them)
//! SenderActor --RecordOutcome--> StatusActor (PostgreSQL)
//!             --StoreDelivery--> CacheActor (Redis, when configured)
//! ```
//!
//! Every actor runs under a `Supervisor`. Handlers that do I/O return futures
//! that actix spawns on their own (`ResponseFuture`), so a panic there ends
//! that one future, not the actor; the fetcher's claim runs inside the actor
//! (`AtomicResponse`), so it is wrapped by [`guarded`], which turns a panic
//! into a restart.

mod cache;
mod fetcher;
mod lease;
mod scheduler;
mod sender;
mod status;

pub use cache::{CacheActor, StoreDelivery, StoreNow};
#[cfg(feature = "fault-injection")]
pub use fetcher::PanicOnNextClaim;
pub use fetcher::{Barrier, ClaimPolicy, FetcherActor, Tick};
pub use lease::{Held, LeaseKeeper, Leases};
pub use scheduler::{
    follow_cluster_state, GetState, SchedulerActor, SchedulerState, Settle, Shutdown, Start,
    StateChanged, Stop, TickNow, HEARTBEAT,
};
pub use sender::{deliver, Deliver, SenderActor};
pub use status::{write_outcome, write_outcomes, RecordOutcome, Recorded, StatusActor};

/// Test builds only: a message with this content makes its first delivery
/// panic inside the sender.
#[cfg(feature = "fault-injection")]
pub const PANIC_IN_SENDER: &str = "panic in sender";

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

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
