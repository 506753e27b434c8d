//! The HTTP API, one file per group of endpoints. Handlers reach the
//! pipeline only through messages to the `SchedulerActor`.

mod health;
mod messages;
mod messaging;

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::{from_fn, Next};
use actix_web::web;
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use crate::actors::SchedulerActor;
use crate::cache::RedisPool;
use crate::configuration::{DispatchScope, Secret};
use crate::error::ApiError;

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub redis: Option<RedisPool>,
    pub scheduler: Addr<SchedulerActor>,
    pub batch_size: u32,
    pub interval_ms: u64,
    pub scope: DispatchScope,
    pub instance_id: String,
    pub api_key: Option<Secret>,
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(
            web::scope("/api")
                .wrap(from_fn(require_api_key))
                .service(messaging::start)
                .service(messaging::stop)
                .service(messaging::status)
                // Before `/messages/{id}`, which would otherwise match "sent".
                .service(messages::sent)
                .service(messages::create)
                .service(messages::get),
        )
        .default_service(web::to(not_found));
}

/// Any other path, in the SPEC's error shape.
async fn not_found(request: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        request.method(),
        request.path()
    )))
}

/// With `API_KEY` set, answers 401 unless the request carries
/// `Authorization: Bearer <API_KEY>`, compared in constant time.
async fn require_api_key(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expected = request
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.api_key.clone());
    if let Some(expected) = expected {
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let valid = presented
            .is_some_and(|key| bool::from(key.as_bytes().ct_eq(expected.expose().as_bytes())));
        if !valid {
            return Err(ApiError::Unauthorized.into());
        }
    }
    next.call(request).await
}
