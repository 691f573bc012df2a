//! `GET /accounts/me/audit-events`.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;

use super::ApiQuery;
use crate::auth::Owner;
use crate::error::ApiError;
use crate::service::accounts::{self, AuditPage};
use crate::state::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
    before: Option<Uuid>,
}

pub async fn list(
    State(state): State<AppState>,
    Owner(caller): Owner,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Unprocessable(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    Ok(Json(accounts::audit_page(&state.db, caller.user.account_id, q.before, limit).await?))
}
