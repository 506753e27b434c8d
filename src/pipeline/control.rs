//! What the scheduler is told: by the HTTP handlers and the pipeline handle
//! (start, stop, state, settle, tick now, shut down), and by the fleet,
//! through `NOTIFY dispatch_state`, when it starts or stops.

use std::time::Duration;

use actix::prelude::*;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use super::pace::SchedulerState;
use super::scheduler::SchedulerActor;
use crate::configuration::DispatchScope;
use crate::repository;

/// How often an instance says it is alive, and re-reads the fleet's state.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// This instance's heartbeat in `dispatch_instances`.
#[derive(Clone)]
pub struct Heartbeat {
    pub pool: PgPool,
    pub instance_id: String,
}

impl Heartbeat {
    /// Records that this instance is alive, folds the status count deltas
    /// (so that counting stays a sum over a few rows) and forgets the
    /// providers' past seconds; answers
    /// whether the fleet runs.
    pub fn beat(
        &self,
        scope: DispatchScope,
    ) -> impl std::future::Future<Output = Result<bool, sqlx::Error>> + 'static {
        let (pool, instance_id) = (self.pool.clone(), self.instance_id.clone());
        async move {
            let running = repository::heartbeat(&pool, &instance_id, scope.as_str()).await?;
            repository::fold_count_deltas(&pool).await?;
            repository::prune_provider_seconds(&pool).await?;
            Ok(running)
        }
    }
}

/// Starts sending: the first tick fires at once. Idempotent.
#[derive(Message)]
#[rtype(result = "Result<SchedulerState, sqlx::Error>")]
pub struct Start;

/// Stops sending. Answers once no claim can start any more; sends already
/// claimed go on and have their outcome written. Idempotent.
#[derive(Message)]
#[rtype(result = "Result<SchedulerState, sqlx::Error>")]
pub struct Stop;

/// Answered once every tick sent before it has finished its claim.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Settle;

/// This instance is shutting down: it never ticks again, and answers once
/// no claim of its own can start. Unlike `Stop`, it leaves the fleet's state
/// alone: the other instances go on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Reads the state.
#[derive(Message)]
#[rtype(result = "SchedulerState")]
pub struct GetState;

/// Runs one tick now, as the timer would: nothing happens when stopped.
/// Answers `true` once the tick's claim is done.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct TickNow;

/// The fleet started or stopped (cluster scope).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StateChanged {
    pub running: bool,
}

/// Listens to `NOTIFY dispatch_state` and tells the scheduler at once when the
/// fleet starts or stops. Heartbeats re-read the state as a fallback, so a
/// notification lost while the connection was down is caught up within
/// [`HEARTBEAT`].
pub async fn follow_cluster_state(pool: PgPool, scheduler: Addr<SchedulerActor>) {
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen("dispatch_state").await?;
            loop {
                let notification = listener.recv().await?;
                scheduler.do_send(StateChanged {
                    running: notification.payload() == "running",
                });
            }
        };
        let result: Result<(), sqlx::Error> = listener.await;
        if let Err(error) = result {
            tracing::debug!(error = %error, "not listening to dispatch_state; trying again");
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}
