//! `/accounts/me/security/sessions`: the owner's list of active sessions, and the revoke
//! of one.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::Now;
use crate::auth::Owner;
use crate::error::{ApiError, ErrorBody};
use crate::service::account_sessions::{self, ActiveSession};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<ActiveSession>,
}

/// The account's active sessions, most recently active first.
#[utoipa::path(get, path = "/accounts/me/security/sessions", tag = "owner",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Active sessions", body = SessionList)))]
pub async fn list(
    State(state): State<AppState>,
    Now(now): Now,
    Owner(caller): Owner,
) -> Result<Json<SessionList>, ApiError> {
    let account = caller.user.account_id;
    let items =
        account_sessions::list(&state.db, state.bounds, account, caller.session_id, now).await?;
    Ok(Json(SessionList { items }))
}

/// Revokes one session. Any id that names no active session of the caller's account —
/// not a UUID, or a path segment axum cannot decode — is the same 404.
#[utoipa::path(delete, path = "/accounts/me/security/sessions/{session_id}", tag = "owner",
    security(("bearerAuth" = [])),
    params(("session_id" = String, Path, description = "The session's id (a UUID)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "`session_not_found`", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Owner(owner): Owner,
    session_id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Ok(Path(session_id)) = session_id else {
        return Err(ApiError::NotFound("session_not_found".into()));
    };
    account_sessions::revoke(&state, owner.caller(), &session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
