//! The one place that wires everything: pools, actors in dependency order
//! (status and cache, then senders, then fetcher, then scheduler), and the
//! HTTP server.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::actors::{
    follow_cluster_state, CacheActor, ClaimPolicy, FetcherActor, LeaseKeeper, Leases,
    SchedulerActor, SenderActor, Settle, Shutdown, StatusActor, StoreNow, TickNow,
};
use crate::configuration::{DispatchScope, Settings};
use crate::error::ApiError;
use crate::provider::{ProviderClient, ProviderGate};
use crate::redis::{self, RedisPool};
use crate::repository;
use crate::routes::{self, ApiDoc, AppState, Fallback};
use crate::telemetry;

/// The largest request body the API reads.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Why the service could not start.
#[derive(Debug, derive_more::Display, derive_more::Error, derive_more::From)]
pub enum StartupError {
    #[display("DATABASE_URL is not a valid PostgreSQL URL: {_0}")]
    #[from(ignore)]
    DatabaseUrl(sqlx::Error),
    #[display("cannot reach PostgreSQL: {_0}")]
    Database(sqlx::Error),
    #[display("cannot apply the migrations: {_0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[display("REDIS_URL is not a valid Redis URL: {_0}")]
    RedisUrl(bb8_redis::redis::RedisError),
    #[display("cannot listen on HTTP_ADDR: {_0}")]
    Listen(std::io::Error),
}

/// The running service: the HTTP server over the pipeline.
pub struct Application {
    port: u16,
    server: Server,
    pipeline: Pipeline,
}

impl Application {
    /// Connects, migrates, starts the actors and binds the listener (port 0
    /// picks a free one).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let options: PgConnectOptions = settings
            .database
            .url
            .expose()
            .parse()
            .map_err(StartupError::DatabaseUrl)?;
        // The server gives up on a statement stuck in it; repository::bounded
        // gives up on one stuck on the way (a frozen server, a cut network).
        let options = options.options([("statement_timeout", "30s")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!().run(&pool).await?;
        let redis = match &settings.redis.url {
            Some(url) => Some(redis::connect(url.expose())?),
            None => None,
        };
        // Bind before the pipeline starts: a taken port must not leave a
        // claimed batch behind.
        let listener = TcpListener::bind(settings.http.addr).map_err(StartupError::Listen)?;
        let port = listener.local_addr().map_err(StartupError::Listen)?.port();
        // A fresh database takes DISPATCH_AUTOSTART as the fleet's state; an
        // existing state is the fleet's and stays.
        let fleet_running =
            repository::init_cluster_state(&pool, settings.dispatch.autostart).await?;
        let running = match settings.dispatch.scope {
            DispatchScope::Cluster => fleet_running,
            DispatchScope::Instance => settings.dispatch.autostart,
        };
        let pipeline = Pipeline::start(&settings, pool.clone(), redis.clone(), running);
        let dispatch = &settings.dispatch;
        let state = AppState {
            pool,
            redis,
            scheduler: pipeline.scheduler.clone(),
            batch_size: dispatch.batch_size,
            interval_ms: dispatch.interval_ms,
            scope: dispatch.scope,
            instance_id: dispatch.instance_id().to_owned(),
            api_keys: settings.http.api_keys(),
            metrics: telemetry::metrics(),
        };
        if state.api_keys.is_empty() {
            tracing::warn!(
                "API_KEY is unset: the /api routes are open to anyone who can reach them"
            );
        }
        let server = HttpServer::new(move || {
            let (app, openapi) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                .app_data(web::Data::new(state.clone()))
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .error_handler(ApiError::from_json),
                )
                .app_data(web::QueryConfig::default().error_handler(ApiError::from_query))
                .app_data(web::PathConfig::default().error_handler(ApiError::from_path))
                .configure(routes::configure)
                .split_for_parts();
            let fallback = Fallback::new(&openapi);
            app.service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", openapi))
                .service(web::redirect("/docs", "/docs/"))
                .default_service(web::to(move |request| fallback.clone().answer(request)))
                .wrap(TracingLogger::default())
        })
        .listen(listener)
        .map_err(StartupError::Listen)?
        .disable_signals()
        .shutdown_timeout(10)
        .run();
        tracing::info!(port, instance_id = dispatch.instance_id(), "listening");
        Ok(Application {
            port,
            server,
            pipeline,
        })
    }

    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle on the pipeline, for tests and tools.
    pub fn pipeline(&self) -> Pipeline {
        self.pipeline.clone()
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then stops taking requests, stops
    /// claiming, and waits for in-flight sends and their outcome writes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = actix_rt::spawn(self.server);
        tokio::select! {
            served = &mut server => return served.unwrap_or(Ok(())),
            () = shutdown => {}
        }
        tracing::info!("shutting down: no new claims; waiting for in-flight sends");
        handle.stop(true).await;
        self.pipeline.drain().await;
        tracing::info!("shut down cleanly");
        server.await.unwrap_or(Ok(()))
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(error = %error, "cannot listen for SIGTERM; only SIGINT stops the service");
            let _ = tokio::signal::ctrl_c().await;
        }
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
        provider_timeout_ms = settings.provider.timeout_ms,
        "claims are leased and renewed while their call is in flight: a call may outlast \
         LEASE_MS, and a crashed instance's claims are taken over one lease after its last renewal"
    );
}

/// The actors, and the slots that bound the sends in flight.
#[derive(Clone)]
pub struct Pipeline {
    scheduler: Addr<SchedulerActor>,
    fetcher: Addr<FetcherActor>,
    cache: Option<Addr<CacheActor>>,
    /// The `LISTEN dispatch_state` task, ended while the runtime still runs:
    /// its connection goes back to the pool from a task of its own.
    listener: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    slots: Arc<Semaphore>,
    capacity: u32,
    arbiters: Arc<Vec<ArbiterHandle>>,
}

impl Pipeline {
    /// Starts the actors; `running` is the state to start in (the fleet's, in
    /// cluster scope).
    fn start(settings: &Settings, pool: PgPool, redis: Option<RedisPool>, running: bool) -> Self {
        let dispatch = &settings.dispatch;
        let lease = dispatch.lease();
        log_lease(settings);

        let status = Supervisor::start({
            let pool = pool.clone();
            move |_| StatusActor::new(pool, lease)
        });
        let cache = redis.map(|redis| {
            let ttl = Duration::from_secs(settings.redis.ttl_secs);
            Supervisor::start(move |_| CacheActor::new(redis, ttl))
        });

        let gate = ProviderGate::default();
        // Senders spread over threads of their own, each with its own client.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arbiters: Vec<ArbiterHandle> = (0..threads.min(dispatch.sender_pool_size as usize))
            .map(|_| Arbiter::new().handle())
            .collect();
        let senders = (0..dispatch.sender_pool_size as usize)
            .map(|i| {
                let (provider, gate) = (settings.provider.clone(), gate.clone());
                let (status, cache) = (status.clone(), cache.clone());
                let retry = dispatch.retry();
                let concurrency = dispatch.sender_concurrency as usize;
                Supervisor::start_in_arbiter(&arbiters[i % arbiters.len()], move |_| {
                    SenderActor::new(
                        ProviderClient::new(&provider, concurrency),
                        gate,
                        status,
                        cache,
                        retry,
                    )
                })
                .recipient()
            })
            .collect();

        let leases = Leases::default();
        Supervisor::start({
            let (pool, leases) = (pool.clone(), leases.clone());
            move |_| LeaseKeeper::new(pool, leases, lease)
        });

        let capacity = dispatch.capacity();
        let slots = Arc::new(Semaphore::new(capacity as usize));
        let fetcher = Supervisor::start({
            let policy = ClaimPolicy {
                batch_size: dispatch.batch_size,
                lease,
                instance_id: dispatch.instance_id().into(),
                turn: (dispatch.scope == DispatchScope::Cluster).then(|| dispatch.interval()),
            };
            let (pool, slots) = (pool.clone(), slots.clone());
            move |_| FetcherActor::new(pool, senders, slots, policy, gate, leases)
        });
        let scheduler = Supervisor::start({
            let (fetcher, pool) = (fetcher.clone(), pool.clone());
            let (scope, instance_id) = (dispatch.scope, dispatch.instance_id().to_owned());
            let interval = dispatch.interval();
            move |_| SchedulerActor::new(fetcher, pool, scope, instance_id, interval, running)
        });
        let listener = (dispatch.scope == DispatchScope::Cluster)
            .then(|| actix_rt::spawn(follow_cluster_state(pool, scheduler.clone())));
        Pipeline {
            scheduler,
            fetcher,
            cache,
            listener: Arc::new(std::sync::Mutex::new(listener)),
            slots,
            capacity,
            arbiters: Arc::new(arbiters),
        }
    }

    /// The scheduler, for `Start`, `Stop` and `GetState`.
    pub fn scheduler(&self) -> &Addr<SchedulerActor> {
        &self.scheduler
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
