//! The parts of the OpenAPI document that no handler describes: title,
//! tags, the bearer scheme.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
        (name = "suppressions", description = "Numbers that never receive another message"),
        (name = "webhooks", description = "Status events to the client: dead events and their retry"),
        (name = "provider", description = "What the provider reports back: delivery receipts"),
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
