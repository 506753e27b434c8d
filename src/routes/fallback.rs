//! The answer to a request that no route takes: 405 with `Allow` when the
//! path exists with other methods, else 404, both in the SPEC's error shape.

use std::sync::Arc;

use actix_web::error::{InternalError, PathError};
use actix_web::http::header::{HeaderValue, ALLOW};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;

/// The paths of the OpenAPI document and their methods, to answer a
/// request that matches no route: 405 with `Allow` when the path exists
/// with other methods, else 404, both in the SPEC's error shape.
#[derive(Clone)]
pub struct Fallback(Arc<Vec<(Vec<String>, Vec<String>)>>);

impl Fallback {
    /// Learns the routes from the document.
    pub fn new(openapi: &utoipa::openapi::OpenApi) -> Self {
        let routes = openapi
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_owned).collect();
                let methods = serde_json::to_value(item)
                    .ok()
                    .and_then(|item| {
                        item.as_object()
                            .map(|o| o.keys().map(|m| m.to_uppercase()).collect())
                    })
                    .unwrap_or_default();
                (segments, methods)
            })
            .collect();
        Fallback(Arc::new(routes))
    }

    fn allowed(&self, path: &str) -> Option<&[String]> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(template, methods)| {
            let matches = template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || t.starts_with('{'));
            matches.then_some(methods.as_slice())
        })
    }

    /// The methods of the documented path that is `path` itself, with no
    /// placeholder in it.
    fn literal(&self, path: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|(template, _)| template.join("/") == path)
            .map(|(_, methods)| methods.as_slice())
    }

    /// Answers a request no route took.
    pub async fn answer(self, request: HttpRequest) -> HttpResponse {
        let (method, path) = (request.method(), request.path());
        match self.allowed(path) {
            Some(methods) => not_allowed(&request, methods),
            None => ApiError::NotFound(format!("no route for {method} {path}")).error_response(),
        }
    }

    /// Answers a path a route took but could not read: 405 when the path is
    /// a documented one of other methods (`GET /api/messages/batch` reaches
    /// `GET /api/messages/{id}`), else the 400 of a bad path.
    pub fn path_error(&self, error: PathError, request: &HttpRequest) -> actix_web::Error {
        match self.literal(request.path()) {
            Some(methods) => {
                InternalError::from_response(error, not_allowed(request, methods)).into()
            }
            None => ApiError::from_path(error, request),
        }
    }
}

/// 405, with `Allow`: `methods`.
fn not_allowed(request: &HttpRequest, methods: &[String]) -> HttpResponse {
    let error = ApiError::MethodNotAllowed(format!(
        "{} takes {}, not {}",
        request.path(),
        methods.join(", "),
        request.method()
    ));
    let mut response = error.error_response();
    if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
        response.headers_mut().insert(ALLOW, allow);
    }
    response
}
