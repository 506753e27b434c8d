//! The HTTP API, one file per group of endpoints, described by OpenAPI from
//! the handlers themselves: a route is registered and documented by the
//! same `service(...)` call. Handlers reach the pipeline only through
//! messages to the `SchedulerActor`.

mod cursor;
mod health;
mod messages;
mod messaging;

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;

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
    /// The keys `/api/*` accepts: `API_KEY`, and `API_KEY_PREVIOUS` while a
    /// rotation is under way. Empty: no check.
    pub api_keys: Vec<Secret>,
    pub metrics: PrometheusHandle,
}

/// The parts of the document that no handler describes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "message-dispatcher",
        description = "Drains a PostgreSQL table of outgoing SMS messages into an HTTP provider at a controlled rate. \
                       Errors are `{\"error\": \"<code>\", \"message\": \"<text>\"}`. With `API_KEY` set, every `/api` \
                       route needs `Authorization: Bearer <key>`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "messaging", description = "Automatic sending: start, stop, status"),
        (name = "messages", description = "Enqueue and read messages"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Registers every route, documented.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(
            utoipa_actix_web::scope("/api")
                .wrap(from_fn(require_api_key))
                .service(messaging::start)
                .service(messaging::stop)
                .service(messaging::status)
                // Before `/messages/{id}`, which would otherwise match "sent".
                .service(messages::sent)
                .service(messages::list)
                .service(messages::create)
                .service(messages::get),
        );
}

/// Any other path, in the SPEC's error shape.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        request.method(),
        request.path()
    )))
}

/// With `API_KEY` set, answers 401 unless the request carries
/// `Authorization: Bearer <key>` with a key it accepts, compared in
/// constant time.
async fn require_api_key(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = request.app_data::<web::Data<AppState>>() {
        if !state.api_keys.is_empty() {
            let presented = request
                .headers()
                .get(AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or_default();
            let valid = state.api_keys.iter().fold(false, |valid, key| {
                valid | bool::from(presented.as_bytes().ct_eq(key.expose().as_bytes()))
            });
            if !valid {
                return Err(ApiError::Unauthorized.into());
            }
        }
    }
    next.call(request).await
}
