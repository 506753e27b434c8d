//! The API key check of `/api/*`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::web;

use super::AppState;
use crate::error::ApiError;

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive and may be followed by more than one space (RFC 9110,
/// section 11.1; RFC 6750, section 2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// With `API_KEY` set, answers 401 unless the request carries
/// `Authorization: Bearer <key>` with a key it accepts, compared in
/// constant time.
pub async fn require_api_key(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = request.app_data::<web::Data<AppState>>() {
        if !state.api_keys.is_empty() {
            let presented = request
                .headers()
                .get(AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(bearer_token)
                .unwrap_or_default();
            // Every key is compared, so the time does not tell which matched.
            let valid = state.api_keys.iter().fold(false, |valid, key| {
                valid | key.matches(presented.as_bytes())
            });
            if !valid {
                return Err(ApiError::Unauthorized.into());
            }
        }
    }
    next.call(request).await
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer k3y", "bearer k3y", "BEARER k3y", "Bearer   k3y"] {
            assert_eq!(bearer_token(value), Some("k3y"), "{value:?}");
        }
        for value in ["Basic k3y", "Bearerk3y", "k3y", "Bearer"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
        assert_eq!(bearer_token("Bearer "), Some(""));
    }
}
