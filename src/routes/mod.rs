//! The HTTP API, one file per group of endpoints, described by OpenAPI from
//! the handlers themselves: a route is registered and documented by the
//! same `service(...)` call. Handlers reach the pipeline only through
//! messages to the `SchedulerActor` and the `ReceiptActor`, and the database through the
//! repository; what they answer is shaped by `views.rs`, never by a row.

mod api_doc;
mod auth;
mod batch;
mod body;
mod console;
mod cursor;
mod enqueue;
mod fallback;
mod health;
mod messages;
mod messaging;
mod receipts;
mod sent;
mod state;
mod suppressions;
mod views;
mod webhooks;

use actix_web::middleware::from_fn;
use utoipa_actix_web::service_config::ServiceConfig;

pub use api_doc::ApiDoc;
pub use fallback::Fallback;
pub use state::AppState;
pub use views::message_json;

/// Registers every route, documented.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(console::console)
        .service(console::style)
        .service(console::script)
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(receipts::receive)
        .service(
            utoipa_actix_web::scope("/api")
                .wrap(from_fn(auth::require_api_key))
                .service(messaging::start)
                .service(messaging::stop)
                .service(messaging::status)
                .service(messaging::activity)
                // Before `/messages/{id}`, which would otherwise match
                // "sent" and "batch".
                .service(sent::sent)
                .service(batch::batch)
                .service(messages::list)
                .service(enqueue::create)
                .service(messages::get)
                .service(messages::retry)
                .service(suppressions::add)
                .service(suppressions::list)
                .service(suppressions::remove)
                .service(webhooks::events)
                .service(webhooks::retry),
        );
}
