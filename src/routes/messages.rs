//! Read one message, list them, retry a failed one.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::views::{MessagePage, MessageView, StoredMessage};
use super::{cursor, views, AppState};
use crate::domain::MessageStatus;
use crate::error::{ApiError, ErrorBody};
use crate::redis::{self, CachedDelivery};
use crate::repository::{self, MessageFilter};

/// One message with its status; delivery data from Redis when cached.
#[utoipa::path(
    tag = "messages",
    security(("api_key" = [])),
    params(("id" = i64, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message", body = MessageView, example = json!({
            "id": 42, "phone_number": "+905551234567", "content": "Your code is 4721", "status": "sent",
            "attempts": 1, "provider_message_id": "67f2f8a8-ea58-4ed0-a6f9-ff217df4d849",
            "sent_at": "2026-11-29T12:00:01Z", "last_error": null, "created_at": "2026-11-29T12:00:00Z",
            "delivery_status": "delivered", "delivered_at": "2026-11-29T12:00:04Z", "delivery_error": null,
            "callback_url": null, "provider": "default", "encoding": "gsm7", "segments": 1,
            "priority": 0, "send_at": null, "expires_at": null,
            "delivery_source": "cache",
            "webhook_events": [{"id": 7, "message_id": 42, "type": "message.sent",
                "url": "https://hooks.example.com/sms-status", "status": "delivered", "attempts": 1,
                "last_error": null, "created_at": "2026-11-29T12:00:01Z", "delivered_at": "2026-11-29T12:00:01Z"}],
            "attempt_history": [{"provider": "default", "started_at": "2026-11-29T12:00:00.9Z", "duration_ms": 84,
                "http_status": 202, "error": null, "result": "accepted"}]
        })),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[get("/messages/{id}")]
pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut message = repository::find_message(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no message with id {id}")))?;
    let cached = match &state.redis {
        Some(pool) if message.status == MessageStatus::Sent => {
            redis::fetch(pool, id).await.unwrap_or_else(|error| {
                tracing::debug!(error = %error, "cache read failed; answering from the database");
                None
            })
        }
        _ => None,
    };
    let delivery_source = match cached {
        Some(CachedDelivery {
            message_id,
            sent_at,
        }) => {
            message.provider_message_id = Some(message_id);
            message.sent_at = Some(sent_at);
            "cache"
        }
        None => "database",
    };
    let (events, attempts) = futures_util::join!(
        repository::events_of_message(&state.pool, id),
        repository::attempts_of_message(&state.pool, id)
    );
    Ok(HttpResponse::Ok().json(MessageView {
        message: message.into(),
        delivery_source,
        webhook_events: views::all(events?),
        attempt_history: views::all(attempts?),
    }))
}

/// Puts a failed message back to pending with its attempts reset: the next
/// tick sends it again.
#[utoipa::path(
    tag = "messages",
    security(("api_key" = [])),
    params(("id" = i64, Path, description = "The message's id")),
    responses(
        (status = 200, description = "Pending again", body = StoredMessage, example = json!({
            "id": 43, "phone_number": "+905551234567", "content": "Your code is 9123", "status": "pending",
            "attempts": 0, "provider_message_id": null, "sent_at": null,
            "last_error": "provider answered 400 Bad Request", "created_at": "2026-11-29T12:00:00Z",
            "delivery_status": null, "delivered_at": null, "delivery_error": null, "callback_url": null, "provider": null,
            "encoding": "gsm7", "segments": 1, "priority": 0, "send_at": null, "expires_at": null
        })),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such message", body = ErrorBody),
        (status = 409, description = "The message is not failed", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[post("/messages/{id}/retry")]
pub async fn retry(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if let Some(message) = repository::retry_failed(&state.pool, id).await? {
        tracing::info!(message_id = id, "failed message put back to pending");
        return Ok(HttpResponse::Ok().json(StoredMessage::from(message)));
    }
    match repository::find_message(&state.pool, id).await? {
        Some(message) => Err(ApiError::Conflict(format!(
            "message {id} is {}; only a failed message can be retried",
            message.status
        ))),
        None => Err(ApiError::NotFound(format!("no message with id {id}"))),
    }
}

/// Filters and page of the message list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only messages in this status.
    #[param(inline)]
    status: Option<MessageStatus>,
    /// Only messages created at or after this time (RFC 3339).
    created_after: Option<DateTime<Utc>>,
    /// Only messages created before this time (RFC 3339).
    created_before: Option<DateTime<Utc>>,
}

/// Every message, newest first, optionally filtered by status and creation
/// time, keyset-paginated.
#[utoipa::path(
    tag = "messages",
    security(("api_key" = [])),
    params(ListQuery, cursor::PageQuery),
    responses(
        (status = 200, description = "One page, newest first", body = MessagePage, example = json!({
            "items": [{
                "id": 43, "phone_number": "+905551234567", "content": "Your code is 9123", "status": "failed",
                "attempts": 1, "provider_message_id": null, "sent_at": null,
                "last_error": "provider answered 400 Bad Request", "created_at": "2026-11-29T12:00:00Z",
                "delivery_status": null, "delivered_at": null, "delivery_error": null, "callback_url": null, "provider": null,
                "encoding": "gsm7", "segments": 1, "priority": 0, "send_at": null, "expires_at": null
            }],
            "next_cursor": null
        })),
        (status = 400, description = "Bad filter, limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[get("/messages")]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
    page: web::Query<cursor::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = cursor::page_size(page.limit)?;
    let filter = MessageFilter {
        status: query.status,
        created_after: query.created_after,
        created_before: query.created_before,
        before_id: cursor::start_after(page.cursor.as_deref(), |key| key.parse().ok())?,
    };
    let mut items = views::all(repository::list_messages(&state.pool, &filter, limit + 1).await?);
    let next_cursor = cursor::paginate(&mut items, limit, |last: &StoredMessage| {
        last.id.to_string()
    });
    Ok(HttpResponse::Ok().json(MessagePage { items, next_cursor }))
}
