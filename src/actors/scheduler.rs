//! `SchedulerActor`: owns the running state and the pace of ticks.
//!
//! Takes `Start`, `Stop`, `GetState`, `Settle` and `TickNow` from the HTTP
//! handlers and the builder, and `StateChanged` from the fleet's
//! `NOTIFY dispatch_state` (see [`follow_cluster_state`]). Sends `Tick` to the
//! `FetcherActor`, and writes this instance's heartbeat (folding the status
//! count deltas on the way).
//!
//! In `instance` scope the actor is the state: it ticks at start, then every
//! `DISPATCH_INTERVAL_MS`. In `cluster` scope the state lives in PostgreSQL:
//! start and stop write it, and the actor polls often, with jitter, so that
//! whichever instance comes first after the fleet's next tick takes it (the
//! claim itself takes the turn atomically); a dead instance costs nothing.

use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use super::fetcher::{Barrier, FetcherActor, Tick};
use crate::configuration::DispatchScope;
use crate::repository::{self, ClusterState};

/// How often an instance says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

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

/// Whether sending runs, and when ticks fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SchedulerState {
    pub running: bool,
    pub last_tick_at: Option<DateTime<Utc>>,
    pub next_tick_at: Option<DateTime<Utc>>,
}

impl From<ClusterState> for SchedulerState {
    fn from(state: ClusterState) -> Self {
        SchedulerState {
            running: state.running,
            last_tick_at: state.last_tick_at,
            next_tick_at: state.running.then_some(state.next_tick_at),
        }
    }
}

/// Keeps whether sending runs, and fires ticks at the configured pace.
pub struct SchedulerActor {
    fetcher: Addr<FetcherActor>,
    pool: PgPool,
    scope: DispatchScope,
    instance_id: String,
    interval: Duration,
    /// Instance scope: the state. Cluster scope: the last state heard of.
    running: bool,
    timer: Option<SpawnHandle>,
    /// Set by `Shutdown`: no tick any more, whatever happens.
    shutting_down: bool,
    last_tick_at: Option<DateTime<Utc>>,
    next_tick_at: Option<DateTime<Utc>>,
}

impl SchedulerActor {
    /// A scheduler that ticks as soon as it starts when `running`.
    pub fn new(
        fetcher: Addr<FetcherActor>,
        pool: PgPool,
        scope: DispatchScope,
        instance_id: String,
        interval: Duration,
        running: bool,
    ) -> Self {
        SchedulerActor {
            fetcher,
            pool,
            scope,
            instance_id,
            interval,
            running,
            timer: None,
            shutting_down: false,
            last_tick_at: None,
            next_tick_at: None,
        }
    }

    fn state(&self) -> SchedulerState {
        SchedulerState {
            running: self.running,
            last_tick_at: self.last_tick_at,
            next_tick_at: self.next_tick_at,
        }
    }

    fn set_running(&mut self, running: bool) {
        if running != self.running {
            tracing::info!(scope = ?self.scope, "sending {}", if running { "started" } else { "stopped" });
        }
        self.running = running;
        metrics::gauge!("dispatcher_scheduler_running").set(if running { 1.0 } else { 0.0 });
    }

    /// Instance scope: ticks now, then every interval, unless already ticking.
    fn start_timer(&mut self, ctx: &mut Context<Self>) {
        self.set_running(true);
        if self.timer.is_none() && !self.shutting_down {
            self.tick();
            self.timer = Some(ctx.run_interval(self.interval, |act, _| act.tick()));
        }
    }

    /// Cluster scope: offers a tick now, then again after a short, jittered
    /// pause. The claim decides whether this instance has the turn.
    fn poll(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        if self.shutting_down {
            return;
        }
        self.tick();
        let period = (self.interval / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let pause = period.mul_f64(0.5 + fastrand::f64());
        self.timer = Some(ctx.run_later(pause, |act, ctx| act.poll(ctx)));
    }

    /// Resolves once the fetcher, which handles messages in order and one
    /// tick at a time, has finished every tick sent before this call.
    fn barrier(&self) -> impl std::future::Future<Output = ()> + 'static {
        let barrier = self.fetcher.send(Barrier);
        async move {
            if barrier.await.is_err() {
                tracing::error!("fetcher unreachable");
            }
        }
    }

    fn tick(&mut self) {
        if self.shutting_down {
            return;
        }
        if self.scope == DispatchScope::Instance {
            let now = Utc::now();
            self.last_tick_at = Some(now);
            self.next_tick_at = chrono::Duration::from_std(self.interval)
                .ok()
                .map(|d| now + d);
        }
        // try_send: a tick still claiming (the fetcher's mailbox holds one)
        // makes this one skip rather than pile up.
        match self.fetcher.try_send(Tick::new()) {
            Ok(()) => {}
            Err(SendError::Full(_)) => {
                metrics::counter!("dispatcher_ticks_total", "result" => "skipped").increment(1);
                if self.scope == DispatchScope::Instance {
                    tracing::warn!("previous tick still claiming; tick skipped");
                }
            }
            Err(SendError::Closed(_)) => tracing::error!("fetcher is gone; tick skipped"),
        }
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        let (pool, instance_id) = (self.pool.clone(), self.instance_id.clone());
        let scope = match self.scope {
            DispatchScope::Cluster => "cluster",
            DispatchScope::Instance => "instance",
        };
        let beat = async move {
            let running = repository::heartbeat(&pool, &instance_id, scope).await?;
            // Keeps the status counts a sum over a few rows.
            repository::fold_count_deltas(&pool).await?;
            Ok::<_, sqlx::Error>(running)
        };
        ctx.spawn(
            beat.into_actor(self)
                .map(|fleet_running, act, _| match fleet_running {
                    // The fallback for a missed notification.
                    Ok(running) if act.scope == DispatchScope::Cluster => act.set_running(running),
                    Ok(_) => {}
                    Err(error) => tracing::debug!(error = %error, "heartbeat not written"),
                }),
        );
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.heartbeat(ctx);
        ctx.run_interval(HEARTBEAT, |act, ctx| act.heartbeat(ctx));
        match self.scope {
            DispatchScope::Cluster => self.poll(ctx),
            DispatchScope::Instance if self.running => self.start_timer(ctx),
            DispatchScope::Instance => self.set_running(false),
        }
    }
}

impl Supervised for SchedulerActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // The old context's timers died with it; `started` makes new ones.
        self.timer = None;
    }
}

impl Handler<Start> for SchedulerActor {
    type Result = ResponseActFuture<Self, Result<SchedulerState, sqlx::Error>>;

    fn handle(&mut self, _: Start, ctx: &mut Self::Context) -> Self::Result {
        if self.scope == DispatchScope::Instance {
            self.start_timer(ctx);
            return Box::pin(fut::ready(Ok(self.state())));
        }
        let pool = self.pool.clone();
        let start = async move { repository::set_cluster_running(&pool, true).await };
        Box::pin(start.into_actor(self).map(|state, act, ctx| {
            let state = state?;
            act.set_running(true);
            act.poll(ctx);
            Ok(state.into())
        }))
    }
}

impl Handler<Stop> for SchedulerActor {
    type Result = ResponseActFuture<Self, Result<SchedulerState, sqlx::Error>>;

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) -> Self::Result {
        if self.scope == DispatchScope::Instance {
            self.set_running(false);
            self.next_tick_at = None;
            if let Some(timer) = self.timer.take() {
                ctx.cancel_future(timer);
            }
            // Once the fetcher has finished the ticks sent before the stop,
            // no claim can start any more.
            return Box::pin(
                self.barrier()
                    .into_actor(self)
                    .map(|_, act, _| Ok(act.state())),
            );
        }
        // In the fleet, every claim checks `running` in the same statement,
        // so no instance claims once this update is committed.
        let pool = self.pool.clone();
        let stop = async move { repository::set_cluster_running(&pool, false).await };
        Box::pin(
            stop.into_actor(self)
                .then(|state, act, _| {
                    if state.is_ok() {
                        act.set_running(false);
                    }
                    act.barrier().into_actor(act).map(move |_, _, _| state)
                })
                .map(|state, _, _| Ok(state?.into())),
        )
    }
}

impl Handler<StateChanged> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, change: StateChanged, ctx: &mut Self::Context) {
        self.set_running(change.running);
        if change.running {
            self.poll(ctx);
        }
    }
}

impl Handler<Shutdown> for SchedulerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        if self.scope == DispatchScope::Instance {
            self.set_running(false);
            self.next_tick_at = None;
        }
        Box::pin(self.barrier())
    }
}

impl Handler<Settle> for SchedulerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Settle, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.barrier())
    }
}

impl Handler<GetState> for SchedulerActor {
    type Result = ResponseActFuture<Self, SchedulerState>;

    fn handle(&mut self, _: GetState, _: &mut Self::Context) -> Self::Result {
        if self.scope == DispatchScope::Instance {
            return Box::pin(fut::ready(self.state()));
        }
        let pool = self.pool.clone();
        let read = async move { repository::cluster_state(&pool).await };
        Box::pin(read.into_actor(self).map(|state, act, _| match state {
            Ok(state) => {
                act.set_running(state.running);
                state.into()
            }
            // PostgreSQL is away: what this instance last heard.
            Err(_) => act.state(),
        }))
    }
}

impl Handler<TickNow> for SchedulerActor {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, _: TickNow, _: &mut Self::Context) -> Self::Result {
        if !self.running || self.shutting_down {
            return Box::pin(fut::ready(false));
        }
        self.last_tick_at = Some(Utc::now());
        Box::pin(
            self.fetcher
                .send(Tick::new())
                .into_actor(self)
                .map(|done, _, _| done.is_ok()),
        )
    }
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
