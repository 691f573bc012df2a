//! `/auth/*`: login, refresh, logout, me.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiJson, Now};
use crate::auth::{AuthUser, Role};
use crate::error::ApiError;
use crate::service::sessions::{self, ClientInfo, TokenPair};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Answers of the token endpoints — tokens or refusals — must never be cached.
fn no_store(result: Result<TokenPair, ApiError>) -> Response {
    let mut response = match result {
        Ok(pair) => Json(pair).into_response(),
        Err(e) => e.into_response(),
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub async fn login(
    State(state): State<AppState>,
    Now(now): Now,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginBody>,
) -> Response {
    no_store(
        sessions::login(&state, &body.email, body.password, client, now).await.map_err(Into::into),
    )
}

pub async fn refresh(
    State(state): State<AppState>,
    Now(now): Now,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Response {
    no_store(sessions::refresh(&state, &body.refresh_token, now).await.map_err(Into::into))
}

pub async fn logout(
    State(state): State<AppState>,
    Now(now): Now,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    sessions::logout(&state, &body.refresh_token, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct Me {
    id: Uuid,
    email: String,
    role: Role,
    account_id: Uuid,
}

pub async fn me(caller: AuthUser) -> Json<Me> {
    let u = caller.user;
    Json(Me { id: u.id, email: u.email, role: u.role, account_id: u.account_id })
}
