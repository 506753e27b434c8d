//! How the pipeline is started: the actors in dependency order (webhooks,
//! status, receipts and cache, then the senders, then the lease keeper, then the fetcher, then
//! the scheduler at the pace of the scope), and what each is given.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use sqlx::PgPool;
use tokio::sync::Semaphore;

use super::{
    follow_cluster_state, CacheActor, Deliver, FetcherActor, FleetPace, Heartbeat, InstancePace,
    Janitor, LeaseKeeper, Leases, Outbox, Pace, Pipeline, ProviderBoard, QueueKeeper, ReceiptActor,
    RenderMessage, SchedulerActor, SenderActor, SenderLinks, StatusActor, WebhookActor,
    WebhookPolicy,
};
use crate::configuration::{DispatchScope, Settings};
use crate::provider::Provider;
use crate::redis::RedisPool;
use crate::repository::{ClaimPolicy, Turn};
use crate::webhook::WebhookClient;

impl Pipeline {
    /// Starts the actors; `running` is the state to start in (the fleet's, in
    /// cluster scope); events' `data` is drawn by `render`.
    pub fn start(
        settings: &Settings,
        pool: PgPool,
        redis: Option<RedisPool>,
        running: bool,
        render: RenderMessage,
    ) -> Self {
        let dispatch = &settings.dispatch;
        let lease = dispatch.lease();
        log_lease(settings);
        let outbox = start_webhooks(settings, &pool, render);
        let (status, receipts) = start_writers(&pool, lease, outbox.clone());
        let cache = redis.map(|redis| {
            let ttl = Duration::from_secs(settings.redis.ttl_secs);
            Supervisor::start(move |_| CacheActor::new(redis, ttl))
        });
        let links = SenderLinks {
            providers: settings
                .providers
                .iter()
                .cloned()
                .map(Provider::new)
                .collect(),
            pool: pool.clone(),
            status,
            cache: cache.clone(),
        };
        let (senders, arbiters) = start_senders(settings, &links);
        Supervisor::start({
            let (pool, max_wait, outbox) =
                (pool.clone(), dispatch.priority_max_wait(), outbox.clone());
            move |_| QueueKeeper::new(pool.clone(), max_wait, outbox.clone())
        });
        Supervisor::start({
            let (pool, retention) = (pool.clone(), dispatch.retention());
            move |_| Janitor::new(pool.clone(), retention)
        });
        let leases = Leases::default();
        Supervisor::start({
            let (pool, leases) = (pool.clone(), leases.clone());
            move |_| LeaseKeeper::new(pool, leases, lease)
        });
        let capacity = dispatch.capacity();
        let slots = Arc::new(Semaphore::new(capacity as usize));
        let fetcher = Supervisor::start({
            let policy = claim_policy(settings);
            let (pool, slots, providers) = (pool.clone(), slots.clone(), links.providers.clone());
            move |_| FetcherActor::new(pool, senders, slots, policy, providers, leases)
        });
        let scheduler = start_scheduler(settings, &fetcher, &pool, running);
        let listener = (dispatch.scope == DispatchScope::Cluster)
            .then(|| actix_rt::spawn(follow_cluster_state(pool, scheduler.clone())));
        Pipeline {
            scheduler,
            fetcher,
            receipts,
            cache,
            listener: Arc::new(std::sync::Mutex::new(listener)),
            slots,
            capacity,
            arbiters: Arc::new(arbiters),
            providers: ProviderBoard::new(links.providers),
        }
    }
}

/// The actors that write outcomes and receipts, with their webhook events.
fn start_writers(
    pool: &PgPool,
    lease: Duration,
    outbox: Outbox,
) -> (Addr<StatusActor>, Addr<ReceiptActor>) {
    let status = Supervisor::start({
        let (pool, outbox) = (pool.clone(), outbox.clone());
        move |_| StatusActor::new(pool, lease, outbox)
    });
    let receipts = Supervisor::start({
        let pool = pool.clone();
        move |_| ReceiptActor::new(pool, outbox)
    });
    (status, receipts)
}

/// The webhook actor, and what the writers of events need of it.
fn start_webhooks(settings: &Settings, pool: &PgPool, render: RenderMessage) -> Outbox {
    let webhook = &settings.webhook;
    if webhook.signing_key().is_none() {
        tracing::warn!("WEBHOOK_SECRET is unset: status webhooks go out unsigned");
    }
    let policy = WebhookPolicy {
        retry: webhook.retry(),
        // Past the post's own time-out: a claim is never taken over while
        // its post can still be running.
        lease: webhook.timeout() * 2 + Duration::from_secs(10),
        concurrency: webhook.concurrency,
    };
    let (key, timeout) = (webhook.signing_key(), webhook.timeout());
    let actor = Supervisor::start({
        let pool = pool.clone();
        move |_| {
            let client = WebhookClient::new(key.clone(), timeout, policy.concurrency as usize);
            WebhookActor::new(pool.clone(), client, render, policy.clone())
        }
    });
    let url = webhook.url().map(Arc::from);
    Outbox {
        nudge: url.is_some().then(|| actor.recipient()),
        url,
    }
}

/// Says once, at start, how the leases keep a claim from being taken over
/// while its call runs, whatever `LEASE_MS` and `PROVIDER_TIMEOUT_MS` are.
fn log_lease(settings: &Settings) {
    let dispatch = &settings.dispatch;
    let lease = dispatch.lease();
    if lease.as_millis() > u128::from(dispatch.lease_ms) {
        tracing::warn!(
            lease_ms = dispatch.lease_ms,
            raised_to_ms = lease.as_millis() as u64,
            "LEASE_MS is below the shortest lease that renewals can keep; raised"
        );
    }
    tracing::info!(
        lease_ms = lease.as_millis() as u64,
        renewed_every_ms = LeaseKeeper::period(lease).as_millis() as u64,
        provider_timeout_ms = settings.longest_provider_timeout().as_millis() as u64,
        "claims are leased and renewed while their call is in flight: a call may outlast \
         LEASE_MS, and a crashed instance's claims are taken over one lease after its last renewal"
    );
}

/// What a tick of this instance claims, and whose turn it needs.
fn claim_policy(settings: &Settings) -> ClaimPolicy {
    let dispatch = &settings.dispatch;
    ClaimPolicy {
        batch_size: dispatch.batch_size,
        lease: dispatch.lease(),
        instance_id: dispatch.instance_id().into(),
        turn: match dispatch.scope {
            DispatchScope::Cluster => Turn::Fleet {
                interval: dispatch.interval(),
            },
            DispatchScope::Instance => Turn::EveryTick,
        },
        webhook_url: settings.webhook.url().map(Arc::from),
    }
}

/// `SENDER_POOL_SIZE` senders spread over threads of their own, each with its
/// own client; returns them and their threads.
fn start_senders(
    settings: &Settings,
    links: &SenderLinks,
) -> (Vec<Recipient<Deliver>>, Vec<ArbiterHandle>) {
    let dispatch = &settings.dispatch;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let arbiters: Vec<ArbiterHandle> = (0..threads.min(dispatch.sender_pool_size as usize))
        .map(|_| Arbiter::new().handle())
        .collect();
    let senders = (0..dispatch.sender_pool_size as usize)
        .map(|i| {
            let links = links.clone();
            let (retry, concurrency) = (dispatch.retry(), dispatch.sender_concurrency as usize);
            Supervisor::start_in_arbiter(&arbiters[i % arbiters.len()], move |_| {
                SenderActor::new(links.clone(), retry, concurrency)
            })
            .recipient()
        })
        .collect();
    (senders, arbiters)
}

/// The scheduler, at the pace of the scope.
fn start_scheduler(
    settings: &Settings,
    fetcher: &Addr<FetcherActor>,
    pool: &PgPool,
    running: bool,
) -> Addr<SchedulerActor> {
    let dispatch = &settings.dispatch;
    let (fetcher, pool) = (fetcher.clone(), pool.clone());
    let (scope, interval) = (dispatch.scope, dispatch.interval());
    // A pipeline wedged before its first tick is overdue from its start.
    let now = std::time::UNIX_EPOCH.elapsed().unwrap_or_default();
    metrics::gauge!("dispatcher_last_tick_timestamp_seconds").set(now.as_secs_f64());
    let instance_id = dispatch.instance_id().to_owned();
    Supervisor::start(move |_| {
        let pace: Box<dyn Pace> = match scope {
            DispatchScope::Cluster => Box::new(FleetPace::new(pool.clone(), interval)),
            DispatchScope::Instance => Box::new(InstancePace::new(interval)),
        };
        let longest = pace.longest_pause().as_secs_f64();
        metrics::gauge!("dispatcher_tick_interval_seconds").set(longest);
        SchedulerActor::new(fetcher, Heartbeat { pool, instance_id }, pace, running)
    })
}
