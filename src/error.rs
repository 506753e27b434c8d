//! Errors of the HTTP API, mapped in one place to the SPEC's
//! `{"error": "<code>", "message": "<human text>"}` shape.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

/// What went wrong with a request.
#[derive(Debug, derive_more::Display, derive_more::Error)]
pub enum ApiError {
    /// The request cannot be read: malformed JSON, a bad query or path.
    #[display("{_0}")]
    BadRequest(#[error(not(source))] String),
    /// The request was read but its values are not acceptable.
    #[display("{_0}")]
    Invalid(#[error(not(source))] String),
    /// The body is over the limit.
    #[display("the request body is over {_0} bytes")]
    TooLarge(#[error(not(source))] usize),
    /// The body is not JSON.
    #[display("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// Missing or wrong API key.
    #[display("a valid API key is required: Authorization: Bearer <key>")]
    Unauthorized,
    /// Missing or wrong receipt key.
    #[display("a valid x-receipt-key header is required")]
    WrongReceiptKey,
    /// The resource is not in a state that allows this.
    #[display("{_0}")]
    Conflict(#[error(not(source))] String),
    /// The path exists, not with this method.
    #[display("{_0}")]
    MethodNotAllowed(#[error(not(source))] String),
    /// No such resource.
    #[display("{_0}")]
    NotFound(#[error(not(source))] String),
    /// PostgreSQL did not answer.
    #[display("the database is unavailable; try again shortly")]
    Unavailable(sqlx::Error),
    /// A receipt could not be stored (PostgreSQL did not take it).
    #[display("the receipt was not stored; send it again shortly")]
    ReceiptNotStored,
    /// The scheduler did not answer (it is restarting).
    #[display("the scheduler is restarting; try again shortly")]
    SchedulerUnavailable,
    /// Anything else; the cause is logged, not shown.
    #[display("internal error")]
    Internal(sqlx::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => ApiError::Unavailable(error),
            other => ApiError::Internal(other),
        }
    }
}

/// Every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: bad_request, validation_failed, payload_too_large,
    /// unsupported_media_type, unauthorized, not_found, database_unavailable,
    /// scheduler_unavailable, internal.
    #[schema(example = "validation_failed")]
    error: &'static str,
    /// What went wrong, for a person.
    #[schema(example = "content must be at most 160 characters, not 171")]
    message: String,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Invalid(_) => "validation_failed",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unauthorized | ApiError::WrongReceiptKey => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Unavailable(_) | ApiError::ReceiptNotStored => "database_unavailable",
            ApiError::SchedulerUnavailable => "scheduler_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// For `JsonConfig::error_handler`: bad syntax is a 400, a well-formed
    /// body of the wrong shape a 422.
    pub fn from_json(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
        let api_error = match error {
            JsonPayloadError::OverflowKnownLength { limit, .. }
            | JsonPayloadError::Overflow { limit } => ApiError::TooLarge(limit),
            JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
            JsonPayloadError::Deserialize(error) if error.is_data() => {
                ApiError::Invalid(error.to_string())
            }
            JsonPayloadError::Deserialize(error) => {
                ApiError::BadRequest(format!("malformed JSON: {error}"))
            }
            other => ApiError::BadRequest(other.to_string()),
        };
        api_error.into()
    }

    /// For `QueryConfig::error_handler`.
    pub fn from_query(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
        ApiError::BadRequest(format!("bad query string: {error}")).into()
    }

    /// For `PathConfig::error_handler`.
    pub fn from_path(error: PathError, _: &HttpRequest) -> actix_web::Error {
        ApiError::BadRequest(format!("bad path: {error}")).into()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized | ApiError::WrongReceiptKey => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_)
            | ApiError::ReceiptNotStored
            | ApiError::SchedulerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Unavailable(cause) | ApiError::Internal(cause) = self {
            tracing::error!(error = %cause, "request failed");
        }
        HttpResponse::build(self.status_code()).json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}

/// Why the service could not start.
#[derive(Debug, derive_more::Display, derive_more::Error, derive_more::From)]
pub enum StartupError {
    #[display("DATABASE_URL is not a valid PostgreSQL URL: {_0}")]
    #[from(ignore)]
    DatabaseUrl(sqlx::Error),
    #[display("cannot reach PostgreSQL: {_0}")]
    Database(sqlx::Error),
    #[display("cannot apply the migrations: {_0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[display("MIGRATE_ON_START is false and migrations are pending ({_0}): run `message-dispatcher migrate` first")]
    #[from(ignore)]
    MigrationsPending(#[error(not(source))] String),
    #[display("REDIS_URL is not a valid Redis URL: {_0}")]
    RedisUrl(bb8_redis::redis::RedisError),
    #[display("cannot listen on HTTP_ADDR: {_0}")]
    Listen(std::io::Error),
}
