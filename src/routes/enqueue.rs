//! Enqueue: one message, idempotently, or a batch of them, all or none
//! (SPEC Part 2, "Enqueue: idempotent, and in bulk").

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::views::StoredMessage;
use super::AppState;
use crate::domain::{CallbackUrl, Content, PhoneNumber, Schedule};
use crate::error::{ApiError, ErrorBody};
use crate::repository::{self, Enqueued, Idempotency, MessageToStore};

/// A message to enqueue.
#[derive(Deserialize, Serialize, ToSchema)]
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
    /// Where this message's status events go, instead of `WEBHOOK_URL`:
    /// `http` or `https`, and with `WEBHOOK_ALLOWED_HOSTS` set, one of them.
    #[schema(
        example = "https://hooks.example.com/sms-status",
        max_length = 2048,
        pattern = r"^https?://(([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+)(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$"
    )]
    #[serde(default)]
    callback_url: Option<String>,
    /// 0 to 9, higher sent first (default 0); a message waits at most
    /// `PRIORITY_MAX_WAIT_MS` behind higher ones.
    #[schema(example = 9, minimum = 0, maximum = 9)]
    #[serde(default)]
    priority: Option<i64>,
    /// Not sent before this time.
    #[serde(default)]
    send_at: Option<DateTime<Utc>>,
    /// Not sent after this time: it then ends `failed`, `expired ...`,
    /// without a provider call. Or `ttl_seconds`, not both.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    /// Expires this long after it is stored (1 to 2592000).
    #[schema(example = 300, minimum = 1, maximum = 2592000)]
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

impl NewMessage {
    /// The message to store, or what is wrong with it.
    pub(super) fn checked(&self, allowed_hosts: &[String]) -> Result<MessageToStore, String> {
        Ok(MessageToStore {
            phone_number: PhoneNumber::parse(&self.phone_number)?,
            content: Content::parse(&self.content)?,
            callback_url: self
                .callback_url
                .as_deref()
                .map(|url| CallbackUrl::parse(url, allowed_hosts))
                .transpose()?,
            schedule: Schedule::parse(
                self.priority,
                self.send_at,
                self.expires_at,
                self.ttl_seconds,
            )?,
        })
    }

    /// A digest of the request, to tell a repeat from another request.
    fn digest(&self) -> Vec<u8> {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(canonical).to_vec()
    }
}

/// The headers `POST /api/messages` reads.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct EnqueueHeaders {
    /// 1 to 255 visible ASCII characters: a repeat of the same request with
    /// the same key answers 200 with the message stored the first time;
    /// another request with it is a 409.
    #[param(
        rename = "Idempotency-Key",
        pattern = "^[!-~]{1,255}$",
        min_length = 1,
        max_length = 255
    )]
    idempotency_key: Option<String>,
}

/// The `Idempotency-Key` header, when given; a 400 when it is not 1 to 255
/// visible ASCII characters.
fn idempotency_key(request: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = request.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key))
        }
        _ => Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        )),
    }
}

/// Stores a pending message; the next tick picks it up. With an
/// `Idempotency-Key`, a repeat stores nothing.
#[utoipa::path(
    tag = "messages",
    security(("api_key" = [])),
    request_body = NewMessage,
    params(EnqueueHeaders),
    responses(
        (status = 201, description = "Stored, pending", body = StoredMessage, example = json!({
            "id": 42, "phone_number": "+905551234567", "content": "Your code is 4721", "status": "pending",
            "attempts": 0, "provider_message_id": null, "sent_at": null, "last_error": null,
            "created_at": "2026-11-29T12:00:00Z",
            "delivery_status": null, "delivered_at": null, "delivery_error": null, "callback_url": null, "provider": null,
            "encoding": "gsm7", "segments": 1, "priority": 0, "send_at": null, "expires_at": null
        })),
        (status = 200, description = "A repeat of an earlier request with the same Idempotency-Key: the message stored then", body = StoredMessage),
        (status = 400, description = "Malformed JSON, or a malformed Idempotency-Key", body = ErrorBody),
        (status = 409, description = "The Idempotency-Key was used with another request", body = ErrorBody),
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
    request: HttpRequest,
    body: web::Json<NewMessage>,
) -> Result<HttpResponse, ApiError> {
    let message = body
        .checked(&state.allowed_hosts)
        .map_err(ApiError::Invalid)?;
    let key = idempotency_key(&request)?;
    let digest = body.digest();
    let idempotency = key.map(|key| Idempotency {
        key,
        request_digest: &digest,
    });
    match repository::insert_message(&state.pool, &message, idempotency).await? {
        Enqueued::Created(row) => {
            tracing::info!(message_id = row.id, "message enqueued");
            Ok(HttpResponse::Created().json(StoredMessage::from(row)))
        }
        Enqueued::Repeated(row) => Ok(HttpResponse::Ok().json(StoredMessage::from(row))),
        Enqueued::KeyReused => Err(ApiError::Conflict(
            "this Idempotency-Key was used with another request".into(),
        )),
    }
}
