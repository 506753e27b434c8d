//! `SchedulerActor`: keeps whether sending runs, offers `Tick`s to the
//! `FetcherActor` at the rhythm of its [`Pace`] (`pace.rs`), the same actor
//! in both scopes, and writes this instance's heartbeat. Its messages are in
//! `control.rs`.

use actix::prelude::*;

use super::control::{
    GetState, Heartbeat, Settle, Shutdown, Start, StateChanged, Stop, TickNow, HEARTBEAT,
};
use super::fetcher::{Barrier, FetcherActor, Tick};
use super::pace::{Pace, SchedulerState};

/// Keeps whether sending runs, and offers ticks at its pace's rhythm.
pub struct SchedulerActor {
    fetcher: Addr<FetcherActor>,
    heartbeat: Heartbeat,
    pace: Box<dyn Pace>,
    /// Instance scope: the state. Cluster scope: the last state heard of.
    running: bool,
    timer: Option<SpawnHandle>,
    /// Set by `Shutdown`: no tick any more, whatever happens.
    shutting_down: bool,
}

impl SchedulerActor {
    /// A scheduler over `fetcher` that starts in `running` (in cluster
    /// scope, the fleet's state).
    pub fn new(
        fetcher: Addr<FetcherActor>,
        heartbeat: Heartbeat,
        pace: Box<dyn Pace>,
        running: bool,
    ) -> Self {
        SchedulerActor {
            fetcher,
            heartbeat,
            pace,
            running,
            timer: None,
            shutting_down: false,
        }
    }

    fn set_running(&mut self, running: bool) {
        if running != self.running {
            let scope = self.pace.scope();
            tracing::info!(scope = ?scope, "sending {}", if running { "started" } else { "stopped" });
        }
        self.running = running;
        metrics::gauge!("dispatcher_scheduler_running").set(if running { 1.0 } else { 0.0 });
    }

    /// Offers a tick now, then again after the pace's pause, for as long as
    /// ticks are wanted: while running, or always when the state is shared.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        self.cancel_timer(ctx);
        if self.shutting_down || !(self.running || self.pace.shared()) {
            return;
        }
        self.tick();
        self.timer = Some(ctx.run_later(self.pace.pause(), |act, ctx| act.schedule(ctx)));
    }

    fn cancel_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
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
        self.pace.ticked();
        // try_send: a tick still claiming (the fetcher's mailbox holds one)
        // makes this one skip rather than pile up.
        match self.fetcher.try_send(Tick::new()) {
            Ok(()) => {}
            Err(SendError::Full(_)) => {
                metrics::counter!("dispatcher_ticks_total", "result" => "skipped").increment(1);
                if !self.pace.shared() {
                    tracing::warn!("previous tick still claiming; tick skipped");
                }
            }
            Err(SendError::Closed(_)) => tracing::error!("fetcher is gone; tick skipped"),
        }
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        // The supervisor's watchdog hears of this thread, not of the
        // database: an outage is readiness's business, not a restart's.
        crate::systemd::alive();
        let beat = self.heartbeat.beat(self.pace.scope());
        ctx.spawn(
            beat.into_actor(self)
                .map(|fleet_running, act, _| match fleet_running {
                    // The fallback for a missed notification.
                    Ok(running) if act.pace.shared() => act.set_running(running),
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
        self.set_running(self.running);
        self.schedule(ctx);
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

    fn handle(&mut self, _: Start, _: &mut Self::Context) -> Self::Result {
        Box::pin(
            self.pace
                .switch(true)
                .into_actor(self)
                .map(|state, act, ctx| {
                    let state = state?;
                    // Already running: the timer is on, and starting is idempotent.
                    if !act.running || act.timer.is_none() {
                        act.set_running(true);
                        act.schedule(ctx);
                    }
                    Ok(state.unwrap_or_else(|| act.pace.local(act.running)))
                }),
        )
    }
}

impl Handler<Stop> for SchedulerActor {
    type Result = ResponseActFuture<Self, Result<SchedulerState, sqlx::Error>>;

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) -> Self::Result {
        if !self.pace.shared() {
            // This instance's own state: stopped at once.
            self.set_running(false);
            self.cancel_timer(ctx);
        }
        // Once the fetcher has finished the ticks sent before the stop is
        // in force, no claim can start any more.
        Box::pin(
            self.pace
                .switch(false)
                .into_actor(self)
                .then(|state, act, _| {
                    if state.is_ok() {
                        act.set_running(false);
                    }
                    act.barrier().into_actor(act).map(move |_, act, _| {
                        Ok(state?.unwrap_or_else(|| act.pace.local(act.running)))
                    })
                }),
        )
    }
}

impl Handler<StateChanged> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, change: StateChanged, ctx: &mut Self::Context) {
        self.set_running(change.running);
        if change.running {
            self.schedule(ctx);
        }
    }
}

impl Handler<Shutdown> for SchedulerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        self.cancel_timer(ctx);
        if !self.pace.shared() {
            self.set_running(false);
            // Instance scope answers at once; the fleet's state is left alone.
            drop(self.pace.switch(false));
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
        Box::pin(
            self.pace
                .read()
                .into_actor(self)
                .map(|state, act, _| match state {
                    Some(state) => {
                        act.set_running(state.running);
                        state
                    }
                    // Instance scope, or PostgreSQL away: what this instance knows.
                    None => act.pace.local(act.running),
                }),
        )
    }
}

impl Handler<TickNow> for SchedulerActor {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, _: TickNow, _: &mut Self::Context) -> Self::Result {
        if !self.running || self.shutting_down {
            return Box::pin(fut::ready(false));
        }
        self.pace.ticked();
        Box::pin(
            self.fetcher
                .send(Tick::new())
                .into_actor(self)
                .map(|done, _, _| done.is_ok()),
        )
    }
}
