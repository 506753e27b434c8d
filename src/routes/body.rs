//! Bodies read by hand, for the endpoints whose limit differs from the
//! 16 KiB of `JsonConfig`.

use actix_web::web;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Reads at most `limit` bytes of `payload` as JSON: 413 over the limit,
/// 400 naming `what` when it is not the JSON expected.
pub async fn json_within<T: DeserializeOwned>(
    payload: web::Payload,
    limit: usize,
    what: &str,
) -> Result<T, ApiError> {
    let body = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))?
        .map_err(|error| ApiError::BadRequest(format!("the body could not be read: {error}")))?;
    serde_json::from_slice(&body)
        .map_err(|error| ApiError::BadRequest(format!("malformed {what}: {error}")))
}
