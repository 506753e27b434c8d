//! `SchedulerActor`: owns the running state and the timer.
//!
//! Takes `Start`, `Stop`, `GetState` and `TickNow` from the HTTP handlers (and
//! from the builder, for autostart and shutdown). Sends `Tick` to the
//! `FetcherActor`: once at start, then every `DISPATCH_INTERVAL_MS`.

use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::fetcher::{Barrier, FetcherActor, Tick};

/// Starts sending: ticks now, then every interval. Idempotent.
#[derive(Message)]
#[rtype(result = "SchedulerState")]
pub struct Start;

/// Stops sending. Answers once no claim can start any more; sends already
/// claimed go on and have their outcome written. Idempotent.
#[derive(Message)]
#[rtype(result = "SchedulerState")]
pub struct Stop;

/// Answered once every tick sent before it has finished its claim.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// Reads the state.
#[derive(Message)]
#[rtype(result = "SchedulerState")]
pub struct GetState;

/// Runs one tick now, as the timer would: nothing happens when stopped.
/// Answers `true` once the tick's claim is done.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct TickNow;

/// What the scheduler knows of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SchedulerState {
    pub running: bool,
    pub last_tick_at: Option<DateTime<Utc>>,
    pub next_tick_at: Option<DateTime<Utc>>,
}

/// See the module documentation.
pub struct SchedulerActor {
    fetcher: Addr<FetcherActor>,
    interval: Duration,
    running: bool,
    timer: Option<SpawnHandle>,
    last_tick_at: Option<DateTime<Utc>>,
    next_tick_at: Option<DateTime<Utc>>,
}

impl SchedulerActor {
    /// A scheduler that starts ticking as soon as it starts when `running`.
    pub fn new(fetcher: Addr<FetcherActor>, interval: Duration, running: bool) -> Self {
        SchedulerActor {
            fetcher,
            interval,
            running,
            timer: None,
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

    fn start_timer(&mut self, ctx: &mut Context<Self>) {
        self.running = true;
        metrics::gauge!("dispatcher_scheduler_running").set(1.0);
        if self.timer.is_none() {
            self.tick();
            self.timer = Some(ctx.run_interval(self.interval, |act, _| act.tick()));
        }
    }

    /// Resolves once the fetcher, which handles messages in order and one
    /// tick at a time, has finished every tick sent before this call.
    fn flush(&self) -> impl std::future::Future<Output = ()> + 'static {
        let barrier = self.fetcher.send(Barrier);
        async move {
            if barrier.await.is_err() {
                tracing::error!("fetcher unreachable");
            }
        }
    }

    fn tick(&mut self) {
        let now = Utc::now();
        self.last_tick_at = Some(now);
        self.next_tick_at = chrono::Duration::from_std(self.interval)
            .ok()
            .map(|d| now + d);
        // try_send: a tick still claiming (the fetcher's mailbox holds one)
        // makes this one skip rather than pile up.
        match self.fetcher.try_send(Tick::new()) {
            Ok(()) => {}
            Err(SendError::Full(_)) => {
                metrics::counter!("dispatcher_ticks_total", "result" => "skipped").increment(1);
                tracing::warn!("previous tick still claiming; tick skipped")
            }
            Err(SendError::Closed(_)) => tracing::error!("fetcher is gone; tick skipped"),
        }
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.running {
            self.start_timer(ctx);
        }
    }
}

impl Supervised for SchedulerActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // The old context's timer died with it; `started` makes a new one.
        self.timer = None;
    }
}

impl Handler<Start> for SchedulerActor {
    type Result = MessageResult<Start>;

    fn handle(&mut self, _: Start, ctx: &mut Self::Context) -> Self::Result {
        if !self.running {
            tracing::info!("sending started");
        }
        self.start_timer(ctx);
        MessageResult(self.state())
    }
}

impl Handler<Stop> for SchedulerActor {
    type Result = ResponseActFuture<Self, SchedulerState>;

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) -> Self::Result {
        if self.running {
            tracing::info!("sending stopped");
        }
        self.running = false;
        metrics::gauge!("dispatcher_scheduler_running").set(0.0);
        self.next_tick_at = None;
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        // Once the fetcher has finished the ticks sent before the stop, no
        // claim can start any more.
        Box::pin(self.flush().into_actor(self).map(|_, act, _| act.state()))
    }
}

impl Handler<Flush> for SchedulerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.flush())
    }
}

impl Handler<GetState> for SchedulerActor {
    type Result = MessageResult<GetState>;

    fn handle(&mut self, _: GetState, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.state())
    }
}

impl Handler<TickNow> for SchedulerActor {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, _: TickNow, _: &mut Self::Context) -> Self::Result {
        if !self.running {
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
