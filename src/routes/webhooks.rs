//! The webhook outbox: dead events, and retrying one.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::views::{self, WebhookEvent, WebhookEventPage};
use super::{cursor, AppState};
use crate::domain::EventStatus;
use crate::error::{ApiError, ErrorBody};
use crate::repository;

/// Which events to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only `dead` events are listed: the ones that need a look.
    #[param(inline, value_type = String, pattern = "^dead$", example = "dead")]
    status: String,
}

/// Events given up on after `WEBHOOK_MAX_ATTEMPTS`, newest first,
/// keyset-paginated.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "dead_webhook_events",
    security(("api_key" = [])),
    params(EventsQuery, cursor::PageQuery),
    responses(
        (status = 200, description = "One page, newest first", body = WebhookEventPage, example = json!({
            "items": [{"id": 7, "message_id": 42, "type": "message.sent",
                "url": "https://hooks.example.com/sms-status", "status": "dead", "attempts": 10,
                "last_error": "answered 500 Internal Server Error", "created_at": "2026-11-29T12:00:01Z",
                "delivered_at": null}],
            "next_cursor": null
        })),
        (status = 400, description = "A status other than dead, a bad limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[get("/webhooks/events")]
pub async fn events(
    state: web::Data<AppState>,
    query: web::Query<EventsQuery>,
    page: web::Query<cursor::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.status != EventStatus::Dead.as_str() {
        return Err(ApiError::BadRequest(
            "status must be dead: only dead events are listed".into(),
        ));
    }
    let limit = cursor::page_size(page.limit)?;
    let before = cursor::start_after(page.cursor.as_deref(), |key| key.parse().ok())?;
    let mut items = views::all(repository::dead_events(&state.pool, before, limit + 1).await?);
    let next_cursor =
        cursor::paginate(&mut items, limit, |last: &WebhookEvent| last.id.to_string());
    Ok(HttpResponse::Ok().json(WebhookEventPage { items, next_cursor }))
}

/// Puts a dead event back in the outbox with its attempts reset: it is
/// posted again at once.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "retry_webhook_event",
    security(("api_key" = [])),
    params(("id" = i64, Path, description = "The event's id")),
    responses(
        (status = 200, description = "Pending again", body = WebhookEvent, example = json!({
            "id": 7, "message_id": 42, "type": "message.sent", "url": "https://hooks.example.com/sms-status",
            "status": "pending", "attempts": 0, "last_error": "answered 500 Internal Server Error",
            "created_at": "2026-11-29T12:00:01Z", "delivered_at": null
        })),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 409, description = "The event is not dead", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[post("/webhooks/events/{id}/retry")]
pub async fn retry(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if let Some(event) = repository::retry_dead_event(&state.pool, id).await? {
        tracing::info!(event_id = id, "dead webhook event put back in the outbox");
        return Ok(HttpResponse::Ok().json(WebhookEvent::from(event)));
    }
    match repository::event_status(&state.pool, id).await? {
        Some(status) => Err(ApiError::Conflict(format!(
            "event {id} is {status}; only a dead event can be retried"
        ))),
        None => Err(ApiError::NotFound(format!("no webhook event with id {id}"))),
    }
}
