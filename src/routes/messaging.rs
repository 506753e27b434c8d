//! Start, stop and status of automatic sending.

use std::time::Duration;

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::actors::HEARTBEAT;
use crate::actors::{GetState, SchedulerState, Start, Stop};
use crate::configuration::DispatchScope;
use crate::error::{ApiError, ErrorBody};
use crate::repository::{self, InstanceInfo, MinuteActivity, StatusCounts};

/// The answer of start, stop and status.
#[derive(Serialize, ToSchema)]
pub struct MessagingStatus {
    #[serde(flatten)]
    scheduler: SchedulerState,
    scope: DispatchScope,
    /// `INSTANCE_ID` of the instance that answered.
    instance_id: String,
    /// `DISPATCH_BATCH_SIZE`: messages claimed per tick.
    batch_size: u32,
    /// `DISPATCH_INTERVAL_MS`: time between ticks.
    interval_ms: u64,
    /// Rows by status; null while PostgreSQL is unavailable.
    counts: Option<StatusCounts>,
    /// Instances with a heartbeat in the last few seconds, on this database;
    /// null while PostgreSQL is unavailable.
    instances: Option<Vec<InstanceInfo>>,
    /// When the oldest pending or sending message was created: the queue's
    /// age. Null when the queue is empty or PostgreSQL unavailable.
    oldest_pending_at: Option<DateTime<Utc>>,
}

/// The longest the answer of start, stop and status waits for its counts:
/// without PostgreSQL it still answers, with the counts null.
const COUNTS_TIMEOUT: Duration = Duration::from_secs(2);

async fn answer(state: &AppState, scheduler: SchedulerState) -> HttpResponse {
    let pool = &state.pool;
    let (counts, instances, oldest_pending_at) = futures_util::join!(
        repository::bounded_by(COUNTS_TIMEOUT, repository::count_by_status(pool)),
        repository::bounded_by(
            COUNTS_TIMEOUT,
            repository::live_instances(pool, HEARTBEAT * 3)
        ),
        repository::bounded_by(COUNTS_TIMEOUT, repository::oldest_pending(pool)),
    );
    let counts = counts
        .inspect_err(|error| tracing::warn!(error = %error, "could not count messages"))
        .ok();
    let (instances, oldest_pending_at) = (instances.ok(), oldest_pending_at.ok().flatten());
    HttpResponse::Ok().json(MessagingStatus {
        scheduler,
        scope: state.scope,
        instance_id: state.instance_id.clone(),
        batch_size: state.batch_size,
        interval_ms: state.interval_ms,
        counts,
        instances,
        oldest_pending_at,
    })
}

/// The example answer of start, stop and status.
fn status_example(running: bool) -> serde_json::Value {
    serde_json::json!({
        "running": running, "last_tick_at": "2026-11-29T12:00:00Z",
        "next_tick_at": if running { Some("2026-11-29T12:02:00Z") } else { None },
        "scope": "cluster", "instance_id": "dispatcher-1", "batch_size": 2, "interval_ms": 120000,
        "counts": {"pending": 10, "sending": 2, "sent": 120, "failed": 1},
        "instances": [{"instance_id": "dispatcher-1", "scope": "cluster",
                       "started_at": "2026-11-29T11:00:00Z", "seen_at": "2026-11-29T12:00:01Z"}],
        "oldest_pending_at": "2026-11-29T11:58:00Z"
    })
}

fn running_example() -> serde_json::Value {
    status_example(true)
}

fn stopped_example() -> serde_json::Value {
    status_example(false)
}

fn scheduler_gone(error: actix::MailboxError) -> ApiError {
    tracing::error!(error = %error, "scheduler unreachable");
    ApiError::SchedulerUnavailable
}

/// Starts automatic sending; the first tick fires at once. Idempotent.
#[utoipa::path(
    tag = "messaging",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Running", body = MessagingStatus, example = running_example),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 503, description = "The scheduler is restarting", body = ErrorBody),
    )
)]
#[post("/messaging/start")]
pub async fn start(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let scheduler = state
        .scheduler
        .send(Start)
        .await
        .map_err(scheduler_gone)??;
    Ok(answer(&state, scheduler).await)
}

/// Stops automatic sending. Answers once no claim can start any more; sends
/// in flight finish and are recorded. Idempotent.
#[utoipa::path(
    tag = "messaging",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Stopped", body = MessagingStatus, example = stopped_example),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 503, description = "The scheduler is restarting", body = ErrorBody),
    )
)]
#[post("/messaging/stop")]
pub async fn stop(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let scheduler = state.scheduler.send(Stop).await.map_err(scheduler_gone)??;
    Ok(answer(&state, scheduler).await)
}

/// Running state, pace, last and next tick, and counts by status.
#[utoipa::path(
    tag = "messaging",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The state", body = MessagingStatus, example = running_example),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 503, description = "The scheduler is restarting", body = ErrorBody),
    )
)]
#[get("/messaging/status")]
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let scheduler = state
        .scheduler
        .send(GetState)
        .await
        .map_err(scheduler_gone)?;
    Ok(answer(&state, scheduler).await)
}

/// Outcomes per minute over the last hour.
#[derive(Serialize, ToSchema)]
pub struct Activity {
    /// Oldest first; minutes without any outcome are left out.
    minutes: Vec<MinuteActivity>,
}

/// Sends, retries and failures per minute over the last hour, for the whole
/// fleet on this database.
#[utoipa::path(
    tag = "messaging",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The last hour", body = Activity, example = json!({
            "minutes": [{"minute": "2026-11-29T12:00:00Z", "sent": 2, "retried": 1, "failed": 0}]
        })),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[get("/messaging/activity")]
pub async fn activity(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let minutes = repository::recent_activity(&state.pool).await?;
    Ok(HttpResponse::Ok().json(Activity { minutes }))
}
