//! The operator console: one page, its style and its script, built into the
//! binary; it reads and drives the API from the browser (docs/console.md).

use actix_web::{get, HttpResponse};

const PAGE: &str = include_str!("console/index.html");
const STYLE: &str = include_str!("console/console.css");
const SCRIPT: &str = include_str!("console/console.js");

/// Nothing but this service's own files, and no framing.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}

/// The operator console.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The console page", content_type = "text/html", body = String))
)]
#[get("/")]
pub async fn console() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// The console's style.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The console's style", content_type = "text/css", body = String))
)]
#[get("/console.css")]
pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

/// The console's script.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The console's script", content_type = "text/javascript", body = String))
)]
#[get("/console.js")]
pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}
