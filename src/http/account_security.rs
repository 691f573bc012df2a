//! `/accounts/me/security*`: the owner's session policy and bulk revocation.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiQuery, Now};
use crate::auth::Owner;
use crate::error::ApiError;
use crate::policy::{Patch, PolicyChange, SessionPolicy};
use crate::service::accounts::{self, RevokeScope};
use crate::state::AppState;

pub async fn get_policy(
    State(state): State<AppState>,
    Owner(caller): Owner,
) -> Result<Json<SessionPolicy>, ApiError> {
    Ok(Json(accounts::policy(&state.db, state.bounds, caller.user.account_id).await?))
}

/// The writing endpoints take no query parameters. Refusing unknown ones matters: a
/// client asking for a preview (`?dry_run=true`, not served here) must not get the real
/// change instead.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

/// Merge-patch body: a key left out is unchanged, `null` clears, an integer sets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatchBody {
    #[serde(default)]
    idle_minutes: Patch<i64>,
    #[serde(default)]
    absolute_minutes: Patch<i64>,
}

pub async fn patch_policy(
    State(state): State<AppState>,
    Now(now): Now,
    Owner(caller): Owner,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    ApiJson(body): ApiJson<PolicyPatchBody>,
) -> Result<Json<SessionPolicy>, ApiError> {
    let change =
        PolicyChange { idle_minutes: body.idle_minutes, absolute_minutes: body.absolute_minutes };
    Ok(Json(accounts::change_policy(&state.db, state.bounds, &caller.user, change, now).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    #[serde(default)]
    scope: RevokeScope,
}

#[derive(Serialize)]
pub struct Revoked {
    revoked_count: usize,
}

pub async fn revoke_sessions(
    State(state): State<AppState>,
    Now(now): Now,
    Owner(caller): Owner,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<Revoked>, ApiError> {
    let revoked_count = accounts::revoke_sessions(&state.db, &caller.user, body.scope, now).await?;
    Ok(Json(Revoked { revoked_count }))
}
