//! Enqueue a message, read one, and page through the sent ones.

use actix_web::{get, post, web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::cache::{self, CachedDelivery};
use crate::domain::{Content, PhoneNumber};
use crate::error::ApiError;
use crate::repository::{self, SentMessage, StoredMessage};

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

/// A message to enqueue.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    phone_number: String,
    content: String,
}

/// Stores a pending message; the next tick picks it up.
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
#[derive(Serialize)]
struct MessageView {
    #[serde(flatten)]
    message: StoredMessage,
    /// `cache` when the delivery data came from Redis, else `database`.
    delivery_source: &'static str,
}

/// One message with its status; delivery data from Redis when cached.
#[get("/messages/{id}")]
pub async fn get(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut message = repository::find_message(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no message with id {id}")))?;
    let cached = match &state.redis {
        Some(pool) if message.status == "sent" => {
            cache::fetch(pool, id).await.unwrap_or_else(|error| {
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

/// `?limit=` and `?cursor=` of the sent list.
#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct SentPage {
    items: Vec<SentMessage>,
    /// Null on the last page.
    next_cursor: Option<String>,
}

/// Sent messages, newest first, keyset-paginated.
#[get("/messages/sent")]
pub async fn sent(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut items = repository::sent_page(&state.pool, after, limit + 1).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| encode_cursor(last.sent_at, last.id))
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(SentPage { items, next_cursor }))
}

/// The key of a row, opaque to clients.
fn encode_cursor(sent_at: DateTime<Utc>, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", sent_at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, i64), ApiError> {
    let invalid = || ApiError::BadRequest("cursor is not one this service issued".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('.').ok_or_else(invalid)?;
    let sent_at = micros
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    Ok((sent_at, id.parse().map_err(|_| invalid())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        let sent_at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        assert_eq!(
            decode_cursor(&encode_cursor(sent_at, 42)).unwrap(),
            (sent_at, 42)
        );
    }

    #[test]
    fn a_foreign_cursor_is_refused() {
        for cursor in [
            "",
            "!!!",
            "bm90IGEgY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("1.x"),
            &URL_SAFE_NO_PAD.encode("x.1"),
        ] {
            assert!(decode_cursor(cursor).is_err(), "{cursor}");
        }
    }
}
