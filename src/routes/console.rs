//! The operator console: one page, built into the binary, that reads and
//! drives the API from the browser (see docs/console.md).

use actix_web::{get, HttpResponse};

/// The page, with its style and script inline: nothing is fetched from
/// anywhere but this service.
const PAGE: &str = include_str!("console/index.html");

/// The operator console.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The console page", content_type = "text/html", body = String))
)]
#[get("/")]
pub async fn console() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(PAGE)
}
