//! `ApiError`: the one place where errors become HTTP statuses and `{"detail": …}`
//! bodies. Internal errors are logged with their cause chain and answered with
//! `internal_error` only.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::DbError;
use crate::revocation::Reason;
use crate::service::{self, RefreshDenied};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    /// The request body did not arrive within `server.request_timeout_seconds`.
    #[error("request timeout")]
    RequestTimeout,
    #[error("{0}")]
    Unprocessable(String),
    #[error("not authenticated")]
    NotAuthenticated,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many attempts")]
    TooManyAttempts { retry_after_seconds: u64 },
    #[error("refresh refused")]
    RefreshDenied(RefreshDenied),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached (PostgreSQL gone away): 503, the client may retry.
    #[error("database unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn not_found() -> Self {
        ApiError::NotFound("not_found".into())
    }

    /// The status this error answers with (the owner console renders the same statuses as
    /// HTML pages).
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotAuthenticated
            | ApiError::InvalidCredentials
            | ApiError::RefreshDenied(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> &str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::Unprocessable(msg) | ApiError::NotFound(msg) | ApiError::Conflict(msg) => msg,
            ApiError::NotAuthenticated => "not_authenticated",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::RefreshDenied(d) => d.detail(),
            ApiError::Forbidden(detail) => detail,
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unavailable(_) => "database_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(e) => tracing::error!(error = format!("{e:#}"), "request failed"),
            ApiError::Unavailable(e) => {
                tracing::warn!(error = format!("{e:#}"), "database unavailable")
            }
            ApiError::MalformedJson(why) => tracing::debug!(why, "malformed JSON body"),
            _ => {}
        }
        let body = match self {
            ApiError::RefreshDenied(d) => json!(RefreshRefusal::from(d)),
            _ => json!(ErrorBody { detail: self.detail() }),
        };
        let mut response = (self.status(), Json(body)).into_response();
        match self {
            ApiError::NotAuthenticated => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyAttempts { retry_after_seconds } => {
                response.headers_mut().insert(header::RETRY_AFTER, retry_after_seconds.into());
            }
            _ => {}
        }
        response
    }
}

/// Every error's body but a refused refresh's.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    /// A code such as `not_authenticated`, or a sentence for shape errors (422).
    detail: &'a str,
}

/// The body of a refused refresh: the contract's `detail`, which front ends already act
/// on, and why (§4c).
#[derive(Serialize, ToSchema)]
pub struct RefreshRefusal {
    /// `invalid_refresh_token`, `session_idle_timeout` or `session_absolute_timeout`.
    detail: &'static str,
    reason: Reason,
    /// The effective limit that ran out; on the two timeout details only.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit_minutes: Option<i64>,
    /// The audit event of the action that revoked the token, where one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_event_id: Option<Uuid>,
}

impl From<RefreshDenied> for RefreshRefusal {
    fn from(d: RefreshDenied) -> Self {
        RefreshRefusal {
            detail: d.detail(),
            reason: d.reason(),
            limit_minutes: d.limit_minutes(),
            audit_event_id: d.audit_event_id(),
        }
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        match e {
            service::Error::InvalidCredentials => ApiError::InvalidCredentials,
            service::Error::TooManyAttempts { retry_after_seconds } => {
                ApiError::TooManyAttempts { retry_after_seconds }
            }
            service::Error::WrongPassword => ApiError::Forbidden("invalid_credentials"),
            service::Error::NotAuthenticated => ApiError::NotAuthenticated,
            service::Error::RefreshDenied(d) => ApiError::RefreshDenied(d),
            service::Error::Policy(p) => ApiError::Unprocessable(p.to_string()),
            service::Error::Invalid(msg) => ApiError::Unprocessable(msg),
            service::Error::NotFound(msg) => ApiError::NotFound(msg),
            service::Error::Conflict(msg) => ApiError::Conflict(msg),
            service::Error::Unavailable(e) => ApiError::Unavailable(e),
            service::Error::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        service::Error::from(e).into()
    }
}
