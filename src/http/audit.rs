//! `GET /accounts/me/audit-events`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiQuery;
use crate::auth::Owner;
use crate::db::audit_events::Event;
use crate::error::ApiError;
use crate::service::accounts;
use crate::state::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// The page as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct AuditPageOut {
    items: Vec<AuditEventOut>,
    /// Pass as `before` for the next page; `null` on a short (last) page.
    #[schema(required = true)]
    next_before: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
struct AuditEventOut {
    id: Uuid,
    action: String,
    /// `null` for the operator's CLI.
    #[schema(required = true)]
    user_id: Option<Uuid>,
    resource_type: String,
    #[schema(required = true)]
    resource_id: Option<String>,
    #[schema(value_type = Object)]
    details: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl From<Event> for AuditEventOut {
    fn from(e: Event) -> Self {
        Self {
            id: e.id,
            action: e.action,
            user_id: e.user_id,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            details: e.details,
            created_at: e.created_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Only events written before this one.
    before: Option<Uuid>,
}

/// The account's audit trail, newest first.
#[utoipa::path(get, path = "/accounts/me/audit-events", tag = "owner", security(("bearerAuth" = [])),
    params(AuditQuery),
    responses((status = 200, description = "A page of events", body = AuditPageOut)))]
pub async fn list(
    State(state): State<AppState>,
    Owner(caller): Owner,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageOut>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Unprocessable(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let page = accounts::audit_page(&state.db, caller.user.account_id, q.before, limit).await?;
    Ok(Json(AuditPageOut {
        items: page.items.into_iter().map(AuditEventOut::from).collect(),
        next_before: page.next_before,
    }))
}
