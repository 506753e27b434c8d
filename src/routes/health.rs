//! Liveness and readiness.

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;

use super::AppState;
use crate::{cache, repository};

/// The longest readiness waits for PostgreSQL.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 while the process serves.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    postgres: &'static str,
    redis: &'static str,
}

/// 200 when PostgreSQL answers, else 503; says whether Redis answers, which
/// never makes the service unready.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let postgres = matches!(
        tokio::time::timeout(PING_TIMEOUT, repository::ping(&state.pool)).await,
        Ok(Ok(()))
    );
    let redis = match &state.redis {
        None => "disabled",
        Some(pool) if cache::ping(pool).await.is_ok() => "up",
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
