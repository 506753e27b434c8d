//! Start, stop and status of automatic sending.

use actix_web::{get, post, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::actors::HEARTBEAT;
use crate::actors::{GetState, SchedulerState, Start, Stop};
use crate::configuration::DispatchScope;
use crate::error::{ApiError, ErrorBody};
use crate::repository::{self, InstanceInfo, StatusCounts};

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
}

async fn answer(state: &AppState, scheduler: SchedulerState) -> HttpResponse {
    let counts = match repository::count_by_status(&state.pool).await {
        Ok(counts) => Some(counts),
        Err(error) => {
            tracing::warn!(error = %error, "could not count messages");
            None
        }
    };
    let instances = repository::live_instances(&state.pool, HEARTBEAT * 3)
        .await
        .ok();
    HttpResponse::Ok().json(MessagingStatus {
        scheduler,
        scope: state.scope,
        instance_id: state.instance_id.clone(),
        batch_size: state.batch_size,
        interval_ms: state.interval_ms,
        counts,
        instances,
    })
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
        (status = 200, description = "Running", body = MessagingStatus, example = json!({
            "running": true, "last_tick_at": "2026-11-29T12:00:00Z", "next_tick_at": "2026-11-29T12:02:00Z",
            "scope": "cluster", "instance_id": "dispatcher-1", "batch_size": 2, "interval_ms": 120000,
            "counts": {"pending": 10, "sending": 2, "sent": 120, "failed": 1},
            "instances": [{"instance_id": "dispatcher-1", "scope": "cluster",
                           "started_at": "2026-11-29T11:00:00Z", "seen_at": "2026-11-29T12:00:01Z"}]
        })),
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
        (status = 200, description = "Stopped", body = MessagingStatus, example = json!({
            "running": false, "last_tick_at": "2026-11-29T12:00:00Z", "next_tick_at": null,
            "scope": "cluster", "instance_id": "dispatcher-1", "batch_size": 2, "interval_ms": 120000,
            "counts": {"pending": 10, "sending": 2, "sent": 120, "failed": 1},
            "instances": [{"instance_id": "dispatcher-1", "scope": "cluster",
                           "started_at": "2026-11-29T11:00:00Z", "seen_at": "2026-11-29T12:00:01Z"}]
        })),
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
        (status = 200, description = "The state", body = MessagingStatus, example = json!({
            "running": true, "last_tick_at": "2026-11-29T12:00:00Z", "next_tick_at": "2026-11-29T12:02:00Z",
            "scope": "cluster", "instance_id": "dispatcher-1", "batch_size": 2, "interval_ms": 120000,
            "counts": {"pending": 10, "sending": 2, "sent": 120, "failed": 1},
            "instances": [{"instance_id": "dispatcher-1", "scope": "cluster",
                           "started_at": "2026-11-29T11:00:00Z", "seen_at": "2026-11-29T12:00:01Z"}]
        })),
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
