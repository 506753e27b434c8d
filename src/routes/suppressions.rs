//! The suppression list: `POST`, `GET` and `DELETE /api/suppressions`.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{cursor, views, AppState};
use crate::domain::PhoneNumber;
use crate::error::{ApiError, ErrorBody};
use crate::repository::{self, SuppressionRow};

/// A number to suppress.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    #[schema(example = "+905551234567", pattern = r"^\+[1-9][0-9]{6,14}$")]
    phone_number: String,
    /// Why, up to 500 characters (kept in `last_error` of the messages it
    /// stops).
    #[schema(example = "replied STOP", max_length = 500)]
    #[serde(default)]
    reason: String,
}

/// A suppressed number.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suppression {
    phone_number: String,
    reason: String,
    created_at: DateTime<Utc>,
}

impl From<SuppressionRow> for Suppression {
    fn from(row: SuppressionRow) -> Self {
        Suppression {
            phone_number: row.phone_number,
            reason: row.reason,
            created_at: row.created_at,
        }
    }
}

/// One page of the list.
#[derive(Serialize, ToSchema)]
pub struct SuppressionPage {
    items: Vec<Suppression>,
    /// Pass back as `?cursor=` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// Suppresses a number: its pending messages, and any later one, end
/// `failed` (`suppressed: <reason>`) without a provider call. Idempotent:
/// a repeat keeps the first reason.
#[utoipa::path(
    tag = "suppressions",
    security(("api_key" = [])),
    request_body = NewSuppression,
    responses(
        (status = 201, description = "Suppressed", body = Suppression, example = json!({
            "phone_number": "+905551234567", "reason": "replied STOP", "created_at": "2026-12-03T10:00:00Z"
        })),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid phone number, or a reason over 500 characters", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[post("/suppressions")]
pub async fn add(
    state: web::Data<AppState>,
    body: web::Json<NewSuppression>,
) -> Result<HttpResponse, ApiError> {
    let phone_number = PhoneNumber::parse(&body.phone_number).map_err(ApiError::Invalid)?;
    if body.reason.chars().count() > 500 || body.reason.contains('\0') {
        return Err(ApiError::Invalid(
            "reason must be at most 500 characters, without NUL".into(),
        ));
    }
    let webhook_url = state.webhook_url.as_deref();
    let (row, failed) =
        repository::suppress(&state.pool, &phone_number, &body.reason, webhook_url).await?;
    tracing::info!(failed, "number suppressed; its pending messages failed");
    Ok(HttpResponse::Created().json(Suppression::from(row)))
}

/// The suppressed numbers, by number, a page at a time.
#[utoipa::path(
    tag = "suppressions",
    security(("api_key" = [])),
    params(cursor::PageQuery),
    responses(
        (status = 200, description = "One page, by number", body = SuppressionPage),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[get("/suppressions")]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<cursor::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = cursor::page_size(query.limit)?;
    let after = cursor::start_after(query.cursor.as_deref(), |key| {
        PhoneNumber::parse(key).ok().map(|_| key.to_owned())
    })?;
    let rows = repository::suppressions_page(&state.pool, after.as_deref(), limit + 1).await?;
    let mut items: Vec<Suppression> = views::all(rows);
    let next_cursor = cursor::paginate(&mut items, limit, |last| last.phone_number.clone());
    Ok(HttpResponse::Ok().json(SuppressionPage { items, next_cursor }))
}

/// Lets messages go to a number again (those already failed stay failed).
#[utoipa::path(
    tag = "suppressions",
    security(("api_key" = [])),
    params(("phone_number" = String, Path, description = "The number, E.164, with its +")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "Not on the list", body = ErrorBody),
        (status = 503, description = "PostgreSQL unavailable", body = ErrorBody),
    )
)]
#[delete("/suppressions/{phone_number}")]
pub async fn remove(
    state: web::Data<AppState>,
    phone_number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_listed = || ApiError::NotFound(format!("{phone_number} is not suppressed"));
    let number = PhoneNumber::parse(&phone_number).map_err(|_| not_listed())?;
    match repository::unsuppress(&state.pool, &number).await? {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(not_listed()),
    }
}
