//! Liveness, readiness and metrics: open even when `API_KEY` is set.

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::{redis, repository};

/// The longest readiness and metrics wait for PostgreSQL.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// 200 while the process serves.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health, example = json!({"status": "ok"})))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// Whether PostgreSQL answers, which is all that readiness needs.
    ready: bool,
    /// `up` or `down`.
    postgres: &'static str,
    /// `up`, `down`, or `disabled` without `REDIS_URL`; never makes the
    /// service unready.
    redis: &'static str,
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
    let postgres = matches!(
        tokio::time::timeout(PING_TIMEOUT, repository::ping(&state.pool)).await,
        Ok(Ok(()))
    );
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
    // The queue depth is read at scrape time, bounded like readiness.
    if let Ok(Ok(counts)) =
        tokio::time::timeout(PING_TIMEOUT, repository::count_by_status(&state.pool)).await
    {
        for (status, count) in [
            ("pending", counts.pending),
            ("sending", counts.sending),
            ("sent", counts.sent),
            ("failed", counts.failed),
        ] {
            ::metrics::gauge!("dispatcher_queue_depth", "status" => status).set(count as f64);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
