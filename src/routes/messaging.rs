//! Start, stop and status of automatic sending.

use std::time::Duration;

use actix_web::{get, post, web, HttpResponse};

use super::views::{self, Activity, MessagingStatus};
use super::AppState;
use crate::deadline;
use crate::error::{ApiError, ErrorBody};
use crate::pipeline::{GetState, SchedulerState, Start, Stop, HEARTBEAT};
use crate::repository;

/// The longest the answer of start, stop and status waits for its counts:
/// without PostgreSQL it still answers, with the counts null.
const COUNTS_TIMEOUT: Duration = Duration::from_secs(2);

async fn answer(state: &AppState, scheduler: SchedulerState) -> HttpResponse {
    let pool = &state.pool;
    let (counts, instances, oldest_pending_at, outbox, kept, schedule) = futures_util::join!(
        deadline::within(COUNTS_TIMEOUT, repository::count_by_status(pool)),
        deadline::within(
            COUNTS_TIMEOUT,
            repository::live_instances(pool, HEARTBEAT * 3)
        ),
        deadline::within(COUNTS_TIMEOUT, repository::oldest_pending(pool)),
        deadline::within(COUNTS_TIMEOUT, repository::outbox_stats(pool)),
        deadline::within(COUNTS_TIMEOUT, repository::kept_receipts(pool)),
        deadline::within(COUNTS_TIMEOUT, repository::schedule_counts(pool)),
    );
    let (scheduled, expired) = schedule.ok().unzip();
    let counts = counts
        .inspect_err(|error| tracing::warn!(error = %error, "could not count messages"))
        .ok();
    HttpResponse::Ok().json(MessagingStatus {
        running: scheduler.running,
        last_tick_at: scheduler.last_tick_at,
        next_tick_at: scheduler.next_tick_at,
        scope: state.scope.into(),
        instance_id: state.instance_id.clone(),
        batch_size: state.batch_size,
        interval_ms: state.interval_ms,
        counts: counts.map(Into::into),
        instances: instances.ok().map(views::all),
        oldest_pending_at: oldest_pending_at.ok().flatten(),
        webhooks: outbox.ok().map(Into::into),
        receipts_kept: kept.ok(),
        scheduled,
        expired,
        providers: views::all(state.providers.states()),
    })
}

/// The example answer of start, stop and status.
fn status_example(running: bool) -> serde_json::Value {
    serde_json::json!({
        "running": running, "last_tick_at": "2026-11-29T12:00:00Z",
        "next_tick_at": if running { Some("2026-11-29T12:02:00Z") } else { None },
        "scope": "cluster", "instance_id": "dispatcher-1", "batch_size": 2, "interval_ms": 120000,
        "counts": {"pending": 10, "sending": 2, "sent": 120, "failed": 1, "delivered": 112, "undelivered": 3,
                   "segments_sent": 131},
        "instances": [{"instance_id": "dispatcher-1", "scope": "cluster",
                       "started_at": "2026-11-29T11:00:00Z", "seen_at": "2026-11-29T12:00:01Z"}],
        "oldest_pending_at": "2026-11-29T11:58:00Z",
        "webhooks": {"pending": 3, "oldest_age_secs": 0.4, "dead": 0},
        "receipts_kept": 0, "scheduled": 1000, "expired": 2,
        "providers": [
            {"name": "primary", "breaker": "closed", "max_per_second": 100, "prefixes": ["+90"], "paused_for_ms": null},
            {"name": "backup", "breaker": "open", "max_per_second": null, "prefixes": [], "paused_for_ms": null}
        ]
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
    let minutes = views::all(repository::recent_activity(&state.pool).await?);
    Ok(HttpResponse::Ok().json(Activity { minutes }))
}
