//! Liveness, readiness and metrics: open even when `API_KEY` is set.

use std::time::Duration;

use actix_web::{get, web, HttpResponse};

use super::views::{Health, Readiness};
use super::AppState;
use crate::domain::MessageStatus;
use crate::{deadline, redis, repository};

/// The longest readiness and metrics wait for PostgreSQL.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 while the process serves.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health, example = json!({"status": "ok"})))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// 200 when PostgreSQL answers, else 503; says whether Redis answers.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness, example = json!({"ready": true, "postgres": "up", "redis": "up"})),
        (status = 503, description = "PostgreSQL does not answer", body = Readiness, example = json!({"ready": false, "postgres": "down", "redis": "up"})),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let postgres = deadline::within(PING_TIMEOUT, repository::ping(&state.pool))
        .await
        .is_ok();
    let redis = match &state.redis {
        None => "disabled",
        Some(pool) if redis::ping(pool).await.is_ok() => "up",
        Some(_) => "down",
    };
    let body = Readiness {
        ready: postgres,
        postgres: if postgres { "up" } else { "down" },
        redis,
    };
    if postgres {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text format; see docs/operations.md for every metric.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    read_gauges(&state.pool).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// The gauges read from PostgreSQL at scrape time, together, bounded like
/// readiness; `dispatcher_postgres_up` says whether they could be.
async fn read_gauges(pool: &sqlx::PgPool) {
    let (counts, kept, outbox, wait) = futures_util::join!(
        deadline::within(PING_TIMEOUT, repository::count_by_status(pool)),
        deadline::within(PING_TIMEOUT, repository::kept_receipts(pool)),
        deadline::within(PING_TIMEOUT, repository::outbox_stats(pool)),
        deadline::within(PING_TIMEOUT, repository::oldest_due_wait(pool)),
    );
    let up = if counts.is_ok() { 1.0 } else { 0.0 };
    ::metrics::gauge!("dispatcher_postgres_up").set(up);
    if let Ok(counts) = counts {
        for status in MessageStatus::ALL {
            ::metrics::gauge!("dispatcher_queue_depth", "status" => status.as_str())
                .set(counts.of(status) as f64);
        }
    }
    if let Ok(wait) = wait {
        ::metrics::gauge!("dispatcher_queue_oldest_due_age_seconds").set(wait);
    }
    if let Ok(kept) = kept {
        ::metrics::gauge!("dispatcher_receipts_kept").set(kept as f64);
    }
    if let Ok(outbox) = outbox {
        ::metrics::gauge!("dispatcher_webhook_outbox_depth").set(outbox.depth as f64);
        ::metrics::gauge!("dispatcher_webhook_outbox_oldest_age_seconds")
            .set(outbox.oldest_age_secs);
        ::metrics::gauge!("dispatcher_webhook_events_dead").set(outbox.dead as f64);
    }
}
