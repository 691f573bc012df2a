//! `/accounts/me/security/sessions`: the owner's list of active sessions, and the revoke
//! of one.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::Now;
use crate::auth::Owner;
use crate::error::ApiError;
use crate::service::account_sessions::{self, ActiveSession};
use crate::state::AppState;

#[derive(Serialize)]
pub struct SessionList {
    items: Vec<ActiveSession>,
}

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

/// Any id that names no active session of the caller's account — not a UUID, or a path
/// segment axum cannot decode — is the same 404.
pub async fn revoke(
    State(state): State<AppState>,
    Now(now): Now,
    Owner(caller): Owner,
    session_id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Ok(Path(session_id)) = session_id else {
        return Err(ApiError::NotFound("session_not_found".into()));
    };
    account_sessions::revoke(&state.db, state.bounds, &caller.user, &session_id, now).await?;
    Ok(StatusCode::NO_CONTENT)
}
