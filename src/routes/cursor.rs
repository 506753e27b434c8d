//! Opaque page cursors: the key of the last row of a page, base64url, so
//! that clients pass it back without reading it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

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

/// `?limit=`: 1 to 100, 20 when absent.
pub fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
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
pub fn paginate<T>(items: &mut Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Option<String> {
    if items.len() <= limit as usize {
        return None;
    }
    items.truncate(limit as usize);
    items.last().map(|last| encode(&key(last)))
}

/// `?limit=` and `?cursor=`: where a page starts and how long it is.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100; 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
