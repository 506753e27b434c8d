//! Opaque page cursors: the key of the last row of a page, base64url, so
//! that clients pass it back without reading it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::ApiError;

/// Wraps a row key.
pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// Where a page starts: after the key of `cursor`, or at the beginning when
/// it is absent or empty.
pub fn start_after<T>(
    cursor: Option<&str>,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    match cursor {
        None | Some("") => Ok(None),
        Some(cursor) => decode(cursor, parse).map(Some),
    }
}

/// Unwraps a cursor with `parse`; anything this service did not issue is a
/// 400.
pub fn decode<T>(cursor: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|key| parse(&key))
        .ok_or_else(|| ApiError::BadRequest("cursor is not one this service issued".into()))
}
