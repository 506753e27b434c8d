//! Start, stop and status of automatic sending.

use actix_web::{get, post, web, HttpResponse};
use serde::Serialize;

use super::AppState;
use crate::actors::{GetState, SchedulerState, Start, Stop};
use crate::configuration::DispatchScope;
use crate::error::ApiError;
use crate::repository::{self, StatusCounts};

/// The answer of start, stop and status.
#[derive(Serialize)]
struct MessagingStatus<'a> {
    #[serde(flatten)]
    scheduler: SchedulerState,
    scope: DispatchScope,
    instance_id: &'a str,
    batch_size: u32,
    interval_ms: u64,
    /// Null while PostgreSQL is unavailable.
    counts: Option<StatusCounts>,
}

async fn answer(state: &AppState, scheduler: SchedulerState) -> HttpResponse {
    let counts = match repository::count_by_status(&state.pool).await {
        Ok(counts) => Some(counts),
        Err(error) => {
            tracing::warn!(error = %error, "could not count messages");
            None
        }
    };
    HttpResponse::Ok().json(MessagingStatus {
        scheduler,
        scope: state.scope,
        instance_id: &state.instance_id,
        batch_size: state.batch_size,
        interval_ms: state.interval_ms,
        counts,
    })
}

fn scheduler_gone(error: actix::MailboxError) -> ApiError {
    tracing::error!(error = %error, "scheduler unreachable");
    ApiError::SchedulerUnavailable
}

/// Starts automatic sending; the first tick fires at once. Idempotent.
#[post("/messaging/start")]
pub async fn start(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let scheduler = state.scheduler.send(Start).await.map_err(scheduler_gone)?;
    Ok(answer(&state, scheduler).await)
}

/// Stops automatic sending; in-flight sends finish. Idempotent.
#[post("/messaging/stop")]
pub async fn stop(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let scheduler = state.scheduler.send(Stop).await.map_err(scheduler_gone)?;
    Ok(answer(&state, scheduler).await)
}

/// Running state, pace, last and next tick, and counts by status.
#[get("/messaging/status")]
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let scheduler = state
        .scheduler
        .send(GetState)
        .await
        .map_err(scheduler_gone)?;
    Ok(answer(&state, scheduler).await)
}
