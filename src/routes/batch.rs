//! `POST /api/messages/batch`: up to 10,000 messages, stored all or none.

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body;
use super::enqueue::NewMessage;
use super::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::repository;

/// The most messages one batch holds.
const MAX_ITEMS: usize = 10_000;
/// The largest batch body: 10,000 messages of 160 four-byte characters fit.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Messages to enqueue together.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBatch {
    /// 1 to 10,000 messages, each as for `POST /api/messages`.
    #[schema(min_items = 1, max_items = 10000)]
    messages: Vec<NewMessage>,
}

/// The ids of a stored batch, in the order of its messages.
#[derive(Serialize, ToSchema)]
pub struct StoredBatch {
    ids: Vec<i64>,
}

/// What is wrong with one message of a batch.
#[derive(Serialize, ToSchema)]
pub struct BadItem {
    /// Its place in `messages`, from 0.
    index: usize,
    message: String,
}

/// A batch refused: none of it was stored.
#[derive(Serialize, ToSchema)]
pub struct BadBatch {
    /// `validation_failed`.
    error: &'static str,
    message: String,
    /// Every bad message, in order.
    items: Vec<BadItem>,
}

/// Stores every message of the batch with one statement, or none of them.
#[utoipa::path(
    tag = "messages",
    security(("api_key" = [])),
    request_body = NewBatch,
    responses(
        (status = 201, description = "All stored, pending; their ids in order", body = StoredBatch,
         example = json!({"ids": [101, 102, 103]})),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 413, description = "Body over 8 MiB", body = ErrorBody),
        (status = 422, description = "Bad messages, each with its index; none stored", body = BadBatch,
         example = json!({"error": "validation_failed", "message": "1 of 3 messages is invalid; none was stored",
                          "items": [{"index": 1, "message": "content must be 1 to 160 characters"}]})),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[post("/messages/batch")]
pub async fn batch(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let batch: NewBatch = body::json_within(payload, MAX_BATCH_BYTES, "batch").await?;
    if !(1..=MAX_ITEMS).contains(&batch.messages.len()) {
        let message = format!(
            "a batch holds 1 to {MAX_ITEMS} messages, not {}",
            batch.messages.len()
        );
        return Ok(refused(message, Vec::new()));
    }
    let (mut messages, mut bad) = (Vec::with_capacity(batch.messages.len()), Vec::new());
    for (index, message) in batch.messages.iter().enumerate() {
        match message.checked(&state.allowed_hosts) {
            Ok(message) => messages.push(message),
            Err(message) => bad.push(BadItem { index, message }),
        }
    }
    if !bad.is_empty() {
        let verb = if bad.len() == 1 { "is" } else { "are" };
        let total = batch.messages.len();
        let message = format!(
            "{} of {total} messages {verb} invalid; none was stored",
            bad.len()
        );
        return Ok(refused(message, bad));
    }
    let ids = repository::insert_messages(&state.pool, &messages).await?;
    tracing::info!(messages = ids.len(), "batch enqueued");
    Ok(HttpResponse::Created().json(StoredBatch { ids }))
}

/// The 422 of a batch: what is wrong, and each bad item.
fn refused(message: String, items: Vec<BadItem>) -> HttpResponse {
    HttpResponse::UnprocessableEntity().json(BadBatch {
        error: "validation_failed",
        message,
        items,
    })
}
