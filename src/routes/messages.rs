//! Enqueue a message, read one, list them, and page through the sent ones.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{cursor, AppState};
use crate::domain::{Content, PhoneNumber};
use crate::error::{ApiError, ErrorBody};
use crate::redis::{self, CachedDelivery};
use crate::repository::{self, MessageFilter, SentMessage, StoredMessage};

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

/// A message to enqueue.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// E.164: `+`, then 7 to 15 digits, the first not 0.
    #[schema(example = "+905551234567", pattern = r"^\+[1-9][0-9]{6,14}$")]
    phone_number: String,
    /// 1 to 160 characters (not bytes), without NUL.
    #[schema(
        example = "Your code is 4721",
        min_length = 1,
        max_length = 160,
        pattern = r"^[^\u0000]*$"
    )]
    content: String,
}

/// Stores a pending message; the next tick picks it up.
#[utoipa::path(
    tag = "messages",
    security(("api_key" = [])),
    request_body = NewMessage,
    responses(
        (status = 201, description = "Stored, pending", body = StoredMessage, example = json!({
            "id": 42, "phone_number": "+905551234567", "content": "Your code is 4721", "status": "pending",
            "attempts": 0, "provider_message_id": null, "sent_at": null, "last_error": null,
            "created_at": "2026-11-29T12:00:00Z"
        })),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid phone number or content", body = ErrorBody, example = json!({
            "error": "validation_failed",
            "message": "phone_number must start with + and the country code, as in +905551234567"
        })),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[post("/messages")]
pub async fn create(
    state: web::Data<AppState>,
    body: web::Json<NewMessage>,
) -> Result<HttpResponse, ApiError> {
    let phone_number = PhoneNumber::parse(&body.phone_number).map_err(ApiError::Invalid)?;
    let content = Content::parse(&body.content).map_err(ApiError::Invalid)?;
    let stored = repository::insert_message(&state.pool, &phone_number, &content).await?;
    tracing::info!(message_id = stored.id, "message enqueued");
    Ok(HttpResponse::Created().json(stored))
}

/// One message, with where its delivery data came from.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    #[serde(flatten)]
    message: StoredMessage,
    /// `cache` when `provider_message_id` and `sent_at` came from Redis,
    /// else `database`.
    #[schema(example = "cache")]
    delivery_source: &'static str,
}

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
            "delivery_source": "cache"
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
        Some(pool) if message.status == "sent" => {
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
    Ok(HttpResponse::Ok().json(MessageView {
        message,
        delivery_source,
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
            "last_error": "provider answered 400 Bad Request", "created_at": "2026-11-29T12:00:00Z"
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
        return Ok(HttpResponse::Ok().json(message));
    }
    match repository::find_message(&state.pool, id).await? {
        Some(message) => Err(ApiError::Conflict(format!(
            "message {id} is {}; only a failed message can be retried",
            message.status
        ))),
        None => Err(ApiError::NotFound(format!("no message with id {id}"))),
    }
}

/// `?limit=` and `?cursor=` of the sent list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100; 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One page of the sent list.
#[derive(Serialize, ToSchema)]
pub struct SentPage {
    items: Vec<SentMessage>,
    /// Pass back as `?cursor=` for the next page; null on the last page.
    next_cursor: Option<String>,
}

fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    Ok(limit)
}

/// Keeps `limit` rows of the `limit + 1` fetched; the cursor of the last one
/// when there was one more.
fn paginate<T>(items: &mut Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Option<String> {
    if items.len() <= limit as usize {
        return None;
    }
    items.truncate(limit as usize);
    items.last().map(|last| cursor::encode(&key(last)))
}

/// Sent messages, newest first, keyset-paginated.
#[utoipa::path(
    tag = "messages",
    security(("api_key" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page, newest first", body = SentPage, example = json!({
            "items": [{
                "id": 42, "phone_number": "+905551234567", "content": "Your code is 4721",
                "message_id": "67f2f8a8-ea58-4ed0-a6f9-ff217df4d849", "sent_at": "2026-11-29T12:00:01Z"
            }],
            "next_cursor": "MTc5NTk1MjM4MjkwNzY1OC40Mg"
        })),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[get("/messages/sent")]
pub async fn sent(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_size(query.limit)?;
    let after = cursor::start_after(query.cursor.as_deref(), parse_sent_key)?;
    let mut items = repository::sent_page(&state.pool, after, limit + 1).await?;
    let next_cursor = paginate(&mut items, limit, |last| {
        format!("{}.{}", last.sent_at.timestamp_micros(), last.id)
    });
    Ok(HttpResponse::Ok().json(SentPage { items, next_cursor }))
}

fn parse_sent_key(key: &str) -> Option<(DateTime<Utc>, i64)> {
    let (micros, id) = key.split_once('.')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
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
    /// 1 to 100; 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The state of a message.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Pending,
    Sending,
    Sent,
    Failed,
}

impl MessageStatus {
    fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Failed => "failed",
        }
    }
}

/// One page of the message list.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    items: Vec<StoredMessage>,
    /// Pass back as `?cursor=` (with the same filters) for the next page;
    /// null on the last page.
    next_cursor: Option<String>,
}

/// Every message, newest first, optionally filtered by status and creation
/// time, keyset-paginated.
#[utoipa::path(
    tag = "messages",
    security(("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page, newest first", body = MessagePage, example = json!({
            "items": [{
                "id": 43, "phone_number": "+905551234567", "content": "Your code is 9123", "status": "failed",
                "attempts": 1, "provider_message_id": null, "sent_at": null,
                "last_error": "provider answered 400 Bad Request", "created_at": "2026-11-29T12:00:00Z"
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
) -> Result<HttpResponse, ApiError> {
    let limit = page_size(query.limit)?;
    let filter = MessageFilter {
        status: query.status.map(MessageStatus::as_str),
        created_after: query.created_after,
        created_before: query.created_before,
        before_id: cursor::start_after(query.cursor.as_deref(), |key| key.parse().ok())?,
    };
    let mut items = repository::list_messages(&state.pool, &filter, limit + 1).await?;
    let next_cursor = paginate(&mut items, limit, |last| last.id.to_string());
    Ok(HttpResponse::Ok().json(MessagePage { items, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_cursor_round_trips() {
        let sent_at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let key = format!("{}.{}", sent_at.timestamp_micros(), 42);
        assert_eq!(
            cursor::decode(&cursor::encode(&key), parse_sent_key).unwrap(),
            (sent_at, 42)
        );
    }

    #[test]
    fn a_foreign_cursor_is_refused() {
        let foreign = [
            "",
            "!!!",
            "bm90IGEgY3Vyc29y",
            &cursor::encode("1.x"),
            &cursor::encode("x.1"),
        ];
        for candidate in foreign {
            assert!(
                cursor::decode(candidate, parse_sent_key).is_err(),
                "{candidate}"
            );
        }
    }
}
