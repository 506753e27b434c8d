//! The two paces of the scheduler, behind one interface: [`InstancePace`]
//! (instance scope: this instance holds the state and ticks every interval)
//! and [`FleetPace`] (cluster scope: the state lives in PostgreSQL, and the
//! claim itself takes the fleet's one turn per interval, so the instance
//! only offers ticks, often, with jitter).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::{self, FutureExt, LocalBoxFuture};
use sqlx::PgPool;

use crate::configuration::DispatchScope;
use crate::repository::{self, ClusterState};

/// Whether sending runs, and when ticks fire.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Where the running state lives and how often ticks are offered.
pub trait Pace {
    /// Which scope this pace implements.
    fn scope(&self) -> DispatchScope;

    /// Whether the state is the fleet's: then ticks are offered while
    /// stopped too (each claim reads the state), and this instance's
    /// shutdown leaves the state alone.
    fn shared(&self) -> bool {
        self.scope() == DispatchScope::Cluster
    }

    /// The pause between two offers of a tick.
    fn pause(&self) -> Duration;

    /// The longest [`Pace::pause`].
    fn longest_pause(&self) -> Duration;

    /// Notes that a tick was offered now.
    fn ticked(&mut self);

    /// What this instance knows of the state, given whether it runs.
    fn local(&self, running: bool) -> SchedulerState;

    /// Starts or stops sending where the state lives; the state afterwards,
    /// or `None` when it is [`Pace::local`].
    fn switch(&mut self, running: bool)
        -> StateFuture<Result<Option<SchedulerState>, sqlx::Error>>;

    /// Reads the state where it lives; `None` when it is [`Pace::local`] or
    /// cannot be read now.
    fn read(&self) -> StateFuture<Option<SchedulerState>>;
}

/// An answer of the state's store; `'static`, so that a handler can hold it.
pub type StateFuture<T> = LocalBoxFuture<'static, T>;

/// Instance scope: a timer of this instance's own, every interval.
pub struct InstancePace {
    interval: Duration,
    last_tick_at: Option<DateTime<Utc>>,
    next_tick_at: Option<DateTime<Utc>>,
}

impl InstancePace {
    /// Ticks every `interval`.
    pub fn new(interval: Duration) -> Self {
        InstancePace {
            interval,
            last_tick_at: None,
            next_tick_at: None,
        }
    }
}

impl Pace for InstancePace {
    fn scope(&self) -> DispatchScope {
        DispatchScope::Instance
    }

    fn pause(&self) -> Duration {
        self.interval
    }

    fn longest_pause(&self) -> Duration {
        self.interval
    }

    fn ticked(&mut self) {
        let now = Utc::now();
        self.last_tick_at = Some(now);
        self.next_tick_at = chrono::Duration::from_std(self.interval)
            .ok()
            .map(|d| now + d);
    }

    fn local(&self, running: bool) -> SchedulerState {
        SchedulerState {
            running,
            last_tick_at: self.last_tick_at,
            next_tick_at: self.next_tick_at.filter(|_| running),
        }
    }

    fn switch(
        &mut self,
        running: bool,
    ) -> StateFuture<Result<Option<SchedulerState>, sqlx::Error>> {
        if !running {
            self.next_tick_at = None;
        }
        future::ready(Ok(None)).boxed_local()
    }

    fn read(&self) -> StateFuture<Option<SchedulerState>> {
        future::ready(None).boxed_local()
    }
}

/// Cluster scope: the fleet's state and turn in `dispatch_state`.
pub struct FleetPace {
    pool: PgPool,
    interval: Duration,
}

impl FleetPace {
    /// The fleet on `pool`, one turn every `interval`.
    pub fn new(pool: PgPool, interval: Duration) -> Self {
        FleetPace { pool, interval }
    }

    /// A tenth of the interval, 10 ms to 1 s: the mean pause.
    fn period(&self) -> Duration {
        (self.interval / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

impl Pace for FleetPace {
    fn scope(&self) -> DispatchScope {
        DispatchScope::Cluster
    }

    /// A tenth of the interval (10 ms to 1 s), jittered by half either way:
    /// whichever instance comes first after the turn is due takes it.
    fn pause(&self) -> Duration {
        self.period().mul_f64(0.5 + fastrand::f64())
    }

    fn longest_pause(&self) -> Duration {
        self.period().mul_f64(1.5)
    }

    fn ticked(&mut self) {}

    fn local(&self, running: bool) -> SchedulerState {
        SchedulerState {
            running,
            last_tick_at: None,
            next_tick_at: None,
        }
    }

    /// In the fleet, every claim checks `running` in the same statement, so
    /// no instance claims once a stop is committed.
    fn switch(
        &mut self,
        running: bool,
    ) -> StateFuture<Result<Option<SchedulerState>, sqlx::Error>> {
        let pool = self.pool.clone();
        async move {
            let state = repository::set_cluster_running(&pool, running).await?;
            Ok(Some(state.into()))
        }
        .boxed_local()
    }

    fn read(&self) -> StateFuture<Option<SchedulerState>> {
        let pool = self.pool.clone();
        async move { repository::cluster_state(&pool).await.ok().map(Into::into) }.boxed_local()
    }
}
