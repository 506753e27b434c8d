//! Delivery receipts from the provider.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{body, AppState};
use crate::domain::{Receipt, ReceiptStatus};
use crate::error::{ApiError, ErrorBody};
use crate::pipeline::RecordReceipt;

/// The header that carries `RECEIPT_AUTH_KEY`.
const RECEIPT_KEY_HEADER: &str = "x-receipt-key";
/// The largest receipt read.
const MAX_RECEIPT_BYTES: usize = 16 * 1024;

/// What the provider reports of a message it accepted.
#[derive(Deserialize, ToSchema)]
pub struct ReceiptBody {
    /// The provider's id, as it answered the send: 1 to 256 characters,
    /// none of them a control character.
    #[serde(rename = "messageId")]
    #[schema(
        example = "67f2f8a8-ea58-4ed0-a6f9-ff217df4d849",
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    message_id: String,
    #[schema(inline)]
    status: ReceiptStatus,
    /// Why it was not delivered, when it was not.
    #[serde(default)]
    error: Option<String>,
    /// When the provider learnt it (RFC 3339).
    at: DateTime<Utc>,
}

/// Stores a delivery receipt: applied to the message that holds its
/// `messageId`, or kept until one does. A repeat, or a receipt older than
/// the one applied, changes nothing and is accepted too.
#[utoipa::path(
    tag = "provider",
    request_body = ReceiptBody,
    params(("x-receipt-key" = Option<String>, Header, description = "RECEIPT_AUTH_KEY, when it is set")),
    responses(
        (status = 202, description = "Stored"),
        (status = 400, description = "Malformed JSON, an unknown status or a bad messageId", body = ErrorBody),
        (status = 401, description = "Missing or wrong x-receipt-key", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable: send it again later", body = ErrorBody),
    )
)]
#[post("/provider/receipts")]
pub async fn receive(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_key(&state, &request)?;
    let body: ReceiptBody = body::json_within(payload, MAX_RECEIPT_BYTES, "receipt").await?;
    let receipt = Receipt::parse(
        &body.message_id,
        body.status,
        body.error.as_deref(),
        body.at,
    )
    .map_err(ApiError::BadRequest)?;
    let stored = state
        .receipts
        .send(RecordReceipt { receipt })
        .await
        .unwrap_or(false);
    if !stored {
        return Err(ApiError::ReceiptNotStored);
    }
    Ok(HttpResponse::Accepted().finish())
}

/// With `RECEIPT_AUTH_KEY` set, 401 unless `x-receipt-key` holds it
/// (compared in constant time).
fn check_key(state: &AppState, request: &HttpRequest) -> Result<(), ApiError> {
    let Some(key) = &state.receipt_key else {
        return Ok(());
    };
    let presented = request
        .headers()
        .get(RECEIPT_KEY_HEADER)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    if key.matches(presented) {
        Ok(())
    } else {
        Err(ApiError::WrongReceiptKey)
    }
}
