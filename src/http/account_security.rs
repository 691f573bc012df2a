//! `/accounts/me/security*`: the owner's session policy and bulk revocation.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
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

/// The writing endpoints' one query parameter. Unknown ones are refused (422): a client
/// that misspells `dry_run` must not get the real change instead of a preview.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    #[serde(default)]
    dry_run: bool,
}

/// Merge-patch body: a key left out is unchanged, `null` clears, an integer sets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatchBody {
    #[serde(default)]
    idle_minutes: Patch<i64>,
    #[serde(default)]
    absolute_minutes: Patch<i64>,
}

/// The policy after the change; with `?dry_run=true`, the policy it would be and
/// `sessions_ending`, nothing written.
pub async fn patch_policy(
    State(state): State<AppState>,
    Now(now): Now,
    Owner(caller): Owner,
    ApiQuery(query): ApiQuery<DryRun>,
    ApiJson(body): ApiJson<PolicyPatchBody>,
) -> Result<Response, ApiError> {
    let change =
        PolicyChange { idle_minutes: body.idle_minutes, absolute_minutes: body.absolute_minutes };
    let (db, bounds) = (&state.db, state.bounds);
    Ok(if query.dry_run {
        let account = caller.user.account_id;
        Json(accounts::preview_policy(db, bounds, account, change, now).await?).into_response()
    } else {
        Json(accounts::change_policy(db, bounds, &caller.user, change, now).await?).into_response()
    })
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
    /// Present (and true) only on a preview.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
}

pub async fn revoke_sessions(
    State(state): State<AppState>,
    Now(now): Now,
    Owner(caller): Owner,
    ApiQuery(DryRun { dry_run }): ApiQuery<DryRun>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<Revoked>, ApiError> {
    let revoked_count =
        accounts::revoke_sessions(&state.db, &caller.user, body.scope, dry_run, now).await?;
    Ok(Json(Revoked { revoked_count, dry_run }))
}
