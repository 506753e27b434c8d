//! The answer to a request that no route takes: 405 with `Allow` when the
//! path exists with other methods, else 404, both in the SPEC's error shape.

use std::sync::Arc;

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

    /// Answers a request no route took.
    pub async fn answer(self, request: HttpRequest) -> HttpResponse {
        let (method, path) = (request.method(), request.path());
        match self.allowed(path) {
            Some(methods) => {
                let error = ApiError::MethodNotAllowed(format!(
                    "{path} takes {}, not {method}",
                    methods.join(", ")
                ));
                let mut response = error.error_response();
                if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
                    response.headers_mut().insert(ALLOW, allow);
                }
                response
            }
            None => ApiError::NotFound(format!("no route for {method} {path}")).error_response(),
        }
    }
}
