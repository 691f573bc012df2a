//! `/auth/*`: login, refresh, logout, me.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiJson, Now};
use crate::auth::{AuthUser, Role};
use crate::error::{ApiError, ErrorBody, RefreshRefusal};
use crate::service;
use crate::service::sessions::{self, ClientInfo, TokenPair};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
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

/// Password login: starts a session.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "A new session's token pair", body = TokenPair, headers(("cache-control" = String))),
        (status = 401, description = "`invalid_credentials`: wrong password, unknown email or inactive user", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many failed logins for this email from this address; retry after `Retry-After` seconds", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until the failure window closes"), ("cache-control" = String))),
    ))]
pub async fn login(
    State(state): State<AppState>,
    Now(now): Now,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(sessions::login(&state, &body.email, body.password, client, now).await?))
}

/// Exchanges a refresh token for a new pair (rotation).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses(
        (status = 200, description = "The next token pair of the session", body = TokenPair, headers(("cache-control" = String))),
        (status = 401, description = "Refused, with the reason (contract §4c)", body = RefreshRefusal, headers(("cache-control" = String))),
    ))]
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

/// Ends the session a refresh token belongs to; 204 whatever the token.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshBody,
    responses((status = 204, description = "Logged out (or nothing to do)")))]
pub async fn logout(
    State(state): State<AppState>,
    Now(now): Now,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    sessions::logout(&state, &body.refresh_token, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    #[schema(min_length = 8, max_length = 1024)]
    new_password: String,
    /// End every other session of the user (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    sign_out_other_sessions: bool,
}

fn yes() -> bool {
    true
}

/// Changes the caller's own password.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = PasswordBody,
    security(("bearerAuth" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "`not_authenticated`: no valid token, or the session, the user or the token ended before the change was written", body = ErrorBody),
        (status = 403, description = "`invalid_credentials`: the current password is wrong", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many wrong passwords (logins and password changes) for this email from this address; retry after `Retry-After` seconds", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until the failure window closes"))),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    client: ClientInfo,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let PasswordBody { current_password, new_password, sign_out_other_sessions } = body;
    let (caller, sign_out) = (caller.caller(), sign_out_other_sessions);
    sessions::change_password(&state, caller, client, current_password, new_password, sign_out)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    id: Uuid,
    email: String,
    role: Role,
    account_id: Uuid,
}

/// The caller.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearerAuth" = [])),
    responses((status = 200, description = "The signed-in user", body = Me)))]
pub async fn me(caller: AuthUser) -> Json<Me> {
    let u = caller.user;
    Json(Me { id: u.id, email: u.email, role: u.role, account_id: u.account_id })
}
