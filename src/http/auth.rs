//! `/auth/*`: login, refresh, logout, me.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiJson, Now};
use crate::auth::{AuthUser, Role};
use crate::error::ApiError;
use crate::service;
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

/// Layered on the token endpoints: their answers — tokens, refusals, body errors — must
/// never be cached.
pub(super) async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub async fn login(
    State(state): State<AppState>,
    Now(now): Now,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(sessions::login(&state, &body.email, body.password, client, now).await?))
}

pub async fn refresh(
    State(state): State<AppState>,
    Now(now): Now,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    let pair = sessions::refresh(&state, &body.refresh_token, now).await;
    state.metrics.refresh(refresh_result(&pair));
    Ok(Json(pair?))
}

/// The `result` label of a refresh: `ok`, or the 401's `detail`.
fn refresh_result(r: &Result<TokenPair, service::Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(service::Error::RefreshDenied(d)) => d.detail(),
        Err(_) => "internal_error",
    }
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
