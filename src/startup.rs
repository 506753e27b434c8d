//! The one place that wires everything: the pools, the pipeline, and the
//! HTTP server over them.

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::configuration::{DatabaseSettings, DispatchScope, Settings};
use crate::error::{ApiError, StartupError};
use crate::migrations;
use crate::pipeline::Pipeline;
use crate::redis;
use crate::repository;
use crate::routes::{self, ApiDoc, AppState, Fallback};
use crate::systemd;
use crate::telemetry;

/// The largest request body the API reads.
const MAX_BODY_BYTES: usize = 16 * 1024;

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
        let pool = connect_postgres(&settings.database).await?;
        migrate_or_check(&pool, settings.database.migrate_on_start).await?;
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
        // The recorder first: the pipeline publishes gauges as it starts.
        telemetry::metrics();
        let pipeline = Pipeline::start(
            &settings,
            pool.clone(),
            redis.clone(),
            running,
            routes::message_json,
        );
        let state = app_state(&settings, pool, redis, &pipeline);
        if state.api_keys.is_empty() {
            tracing::warn!(
                "API_KEY is unset: the /api routes are open to anyone who can reach them"
            );
        }
        let server = serve(listener, state)?;
        tracing::info!(
            port,
            instance_id = settings.dispatch.instance_id(),
            "listening"
        );
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
        self.run_until(crate::signal::shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then stops taking requests, stops
    /// claiming, and waits for in-flight sends and their outcome writes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = actix_rt::spawn(self.server);
        systemd::ready();
        tokio::select! {
            served = &mut server => return served.unwrap_or(Ok(())),
            () = shutdown => {}
        }
        systemd::stopping();
        tracing::info!("shutting down: no new claims; waiting for in-flight sends");
        handle.stop(true).await;
        self.pipeline.drain().await;
        tracing::info!("shut down cleanly");
        server.await.unwrap_or(Ok(()))
    }
}

/// What every handler may use.
fn app_state(
    settings: &Settings,
    pool: PgPool,
    redis: Option<redis::RedisPool>,
    pipeline: &Pipeline,
) -> AppState {
    let dispatch = &settings.dispatch;
    AppState {
        pool,
        redis,
        scheduler: pipeline.scheduler().clone(),
        receipts: pipeline.receipts().clone(),
        providers: pipeline.providers().clone(),
        receipt_key: settings.http.receipt_key(),
        allowed_hosts: settings.webhook.allowed_hosts(),
        webhook_url: settings.webhook.url().map(std::sync::Arc::from),
        batch_size: dispatch.batch_size,
        interval_ms: dispatch.interval_ms,
        scope: dispatch.scope,
        instance_id: dispatch.instance_id().to_owned(),
        api_keys: settings.http.api_keys(),
        metrics: telemetry::metrics(),
    }
}

/// Applies the pending migrations, or with `MIGRATE_ON_START=false` refuses
/// to start while one is pending. Migrations a newer version applied are
/// expected during a rolling upgrade (docs/operations.md#upgrades).
async fn migrate_or_check(pool: &PgPool, migrate: bool) -> Result<(), StartupError> {
    let status = match migrate {
        true => migrations::apply(pool, &mut migrations::Logged).await?,
        false => migrations::status(pool).await?,
    };
    if !migrate && !status.pending.is_empty() {
        return Err(StartupError::MigrationsPending(status.pending_list()));
    }
    if !status.unknown.is_empty() {
        tracing::warn!(
            versions = ?status.unknown,
            "the database has migrations this version does not know: a newer version applied them"
        );
    }
    Ok(())
}

/// The pool, each connection with a server-side statement time-out, custom
/// plans only and no JIT.
pub async fn connect_postgres(settings: &DatabaseSettings) -> Result<PgPool, StartupError> {
    let options: PgConnectOptions = settings
        .url
        .expose()
        .parse()
        .map_err(StartupError::DatabaseUrl)?;
    // The server gives up on a statement stuck in it; repository::bounded
    // gives up on one stuck on the way (a frozen server, a cut network).
    // Every statement is planned for the tables as they are when it runs:
    // a generic plan is kept for the connection's life, and one made while
    // a queue table was small scanned the whole table once it had grown.
    // No JIT: the statements are short, and a plan whose estimated cost
    // passed `jit_above_cost` (a claim's, once the queue is large) spent
    // more time compiling than running, at every run.
    let options = options.options([
        ("statement_timeout", "30s"),
        ("plan_cache_mode", "force_custom_plan"),
        ("jit", "off"),
    ]);
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// The HTTP server on `listener`: the documented routes, Swagger UI, the
/// fallback for unknown routes, and the limits on what a request may hold.
fn serve(listener: TcpListener, state: AppState) -> Result<Server, StartupError> {
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
            .configure(routes::configure)
            .split_for_parts();
        let fallback = Fallback::new(&openapi);
        let paths = fallback.clone();
        app.app_data(
            web::PathConfig::default()
                .error_handler(move |error, request| paths.path_error(error, request)),
        )
        .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", openapi))
        .service(web::redirect("/docs", "/docs/"))
        .default_service(web::to(move |request| fallback.clone().answer(request)))
        .wrap(TracingLogger::default())
    })
    .listen(listener)
    .map_err(StartupError::Listen)?
    .disable_signals()
    .shutdown_timeout(10)
    .run();
    Ok(server)
}
