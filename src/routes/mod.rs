//! The HTTP API, one file per group of endpoints, described by OpenAPI from
//! the handlers themselves: a route is registered and documented by the
//! same `service(...)` call. Handlers reach the pipeline only through
//! messages to the `SchedulerActor`.

mod console;
mod cursor;
mod health;
mod messages;
mod messaging;

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use std::sync::Arc;

use actix_web::http::header::{HeaderValue, ALLOW, AUTHORIZATION};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::actors::SchedulerActor;
use crate::configuration::{DispatchScope, Secret};
use crate::error::ApiError;
use crate::redis::RedisPool;

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
    cfg.service(console::console)
        .service(console::style)
        .service(console::script)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(
            utoipa_actix_web::scope("/api")
                .wrap(from_fn(require_api_key))
                .service(messaging::start)
                .service(messaging::stop)
                .service(messaging::status)
                .service(messaging::activity)
                // Before `/messages/{id}`, which would otherwise match "sent".
                .service(messages::sent)
                .service(messages::list)
                .service(messages::create)
                .service(messages::get)
                .service(messages::retry),
        );
}

/// The paths of the OpenAPI document and their methods, to answer a
/// request that matches no route: 405 with `Allow` when the path exists
/// with other methods, else 404, both in the SPEC's error shape.
#[derive(Clone)]
pub struct Fallback(Arc<Vec<(Vec<String>, Vec<String>)>>);

impl Fallback {
    /// Learns the routes from the document.
    pub fn new(openapi: &utoipa::openapi::OpenApi) -> Self {
        let routes = openapi
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_owned).collect();
                let methods = serde_json::to_value(item)
                    .ok()
                    .and_then(|item| {
                        item.as_object()
                            .map(|o| o.keys().map(|m| m.to_uppercase()).collect())
                    })
                    .unwrap_or_default();
                (segments, methods)
            })
            .collect();
        Fallback(Arc::new(routes))
    }

    fn allowed(&self, path: &str) -> Option<&[String]> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(template, methods)| {
            let matches = template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || t.starts_with('{'));
            matches.then_some(methods.as_slice())
        })
    }

    /// Answers a request no route took.
    pub async fn answer(self, request: HttpRequest) -> HttpResponse {
        let (method, path) = (request.method(), request.path());
        match self.allowed(path) {
            Some(methods) => {
                let error = ApiError::MethodNotAllowed(format!(
                    "{path} takes {}, not {method}",
                    methods.join(", ")
                ));
                let mut response = error.error_response();
                if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
                    response.headers_mut().insert(ALLOW, allow);
                }
                response
            }
            None => ApiError::NotFound(format!("no route for {method} {path}")).error_response(),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive and may be followed by more than one space (RFC 9110,
/// section 11.1; RFC 6750, section 2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
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
                .and_then(bearer_token)
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

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer k3y", "bearer k3y", "BEARER k3y", "Bearer   k3y"] {
            assert_eq!(bearer_token(value), Some("k3y"), "{value:?}");
        }
        for value in ["Basic k3y", "Bearerk3y", "k3y", "Bearer"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
        assert_eq!(bearer_token("Bearer "), Some(""));
    }
}
