//! The sent list: sent messages, newest first, keyset-paginated.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};

use super::views::{self, SentPage};
use super::{cursor, AppState};
use crate::error::{ApiError, ErrorBody};
use crate::repository;

/// Sent messages, newest first, keyset-paginated.
#[utoipa::path(
    tag = "messages",
    security(("api_key" = [])),
    params(cursor::PageQuery),
    responses(
        (status = 200, description = "One page, newest first", body = SentPage, example = json!({
            "items": [{
                "id": 42, "phone_number": "+905551234567", "content": "Your code is 4721",
                "message_id": "67f2f8a8-ea58-4ed0-a6f9-ff217df4d849", "sent_at": "2026-11-29T12:00:01Z",
                "encoding": "gsm7", "segments": 1, "priority": 0
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
    query: web::Query<cursor::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = cursor::page_size(query.limit)?;
    let after = cursor::start_after(query.cursor.as_deref(), parse_sent_key)?;
    let mut items = views::all(repository::sent_page(&state.pool, after, limit + 1).await?);
    let next_cursor = cursor::paginate(&mut items, limit, |last: &views::SentMessage| {
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
