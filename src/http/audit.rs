//! `GET /accounts/me/audit-events`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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
#[derive(Serialize)]
pub struct AuditPageOut {
    items: Vec<AuditEventOut>,
    next_before: Option<Uuid>,
}

#[derive(Serialize)]
struct AuditEventOut {
    id: Uuid,
    action: String,
    user_id: Option<Uuid>,
    resource_type: String,
    resource_id: Option<String>,
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

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
    before: Option<Uuid>,
}

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
