//! Extractors whose rejections are `ApiError`s: JSON bodies (415/413/400/422), query
//! strings (422), the request's instant, and what the client says about itself.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::client_addr::client_ip;
use crate::clock::Now;
use crate::error::ApiError;
use crate::service::sessions::ClientInfo;
use crate::state::AppState;

/// A JSON request body of type `T`.
///
/// - 415 unless `Content-Type` is `application/json` (parameters allowed) or another
///   `application/*+json`;
/// - 413 over [`super::MAX_BODY_BYTES`];
/// - 400 for anything that is not JSON (an empty body included);
/// - 422 for JSON of the wrong shape. Only objects are accepted: serde would otherwise
///   read a struct from an array.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedJson(e.body_text())
            }
        })?;
        parse_body(&body).map(ApiJson)
    }
}

/// The typed read first, straight from the bytes (serde sees duplicate keys and unknown
/// fields). Only when it fails is the body checked for well-formedness, to tell 400
/// (not JSON: bad syntax, bad UTF-8) from 422 (JSON of the wrong shape).
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde reads a struct from an array too; the contract wants objects only.
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match serde_json::from_slice::<T>(body) {
        Ok(value) if is_object => Ok(value),
        Ok(_) => Err(ApiError::Unprocessable("request body must be a JSON object".into())),
        Err(typed) => {
            std::str::from_utf8(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                // serde_json files a number beyond f64 (`1e400`) under syntax errors, but
                // such JSON is well-formed: a value out of range, so 422. serde_json has no
                // public error code for it, only this message.
                Err(e) if !e.to_string().starts_with("number out of range") => {
                    Err(ApiError::MalformedJson(e.to_string()))
                }
                _ if !is_object => {
                    Err(ApiError::Unprocessable("request body must be a JSON object".into()))
                }
                _ => Err(ApiError::Unprocessable(format!(
                    "invalid request body: {}",
                    strip_position(&typed)
                ))),
            }
        }
    }
}

/// serde_json appends " at line L column C"; the body is one line of JSON for most
/// clients, and the field name says more.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    let suffix_json =
        sub.len() > 5 && sub.get(sub.len() - 5..).is_some_and(|t| t.eq_ignore_ascii_case("+json"));
    kind.eq_ignore_ascii_case("application") && (sub.eq_ignore_ascii_case("json") || suffix_json)
}

/// A query string of type `T`; anything it cannot parse is a 422.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state).await.map(|Query(q)| ApiQuery(q)).map_err(
            |e| ApiError::Unprocessable(format!("invalid query string: {}", e.body_text())),
        )
    }
}

/// The request's [`Now`], stamped by the router's middleware.
impl<S: Send + Sync> FromRequestParts<S> for Now {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Now>()
            .copied()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("request time was not stamped")))
    }
}

/// The longest user agent kept with a session.
const MAX_USER_AGENT_CHARS: usize = 512;

/// The one place the client's address is settled (throttling, audit `ip`, the session
/// list): the TCP peer, or what a trusted proxy forwarded (`client_addr::client_ip`).
impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect());
        let ip =
            parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|ConnectInfo(peer)| {
                client_ip(peer.ip(), &parts.headers, &state.config.server.trusted_proxies)
                    .to_string()
            });
        Ok(ClientInfo { user_agent, ip })
    }
}
