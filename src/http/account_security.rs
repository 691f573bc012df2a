//! `/accounts/me/security*`: the owner's session policy and bulk revocation.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiQuery};
use crate::auth::Owner;
use crate::error::ApiError;
use crate::policy::{Patch, PolicyChange, SessionPolicy};
use crate::service::accounts::{self, PolicyPreview, RevokeScope};
use crate::state::AppState;

/// The account's session policy.
#[utoipa::path(get, path = "/accounts/me/security", tag = "owner", security(("bearerAuth" = [])),
    responses((status = 200, description = "The policy", body = SessionPolicy)))]
pub async fn get_policy(
    State(state): State<AppState>,
    Owner(caller): Owner,
) -> Result<Json<SessionPolicy>, ApiError> {
    Ok(Json(accounts::policy(&state.db, state.bounds, caller.user.account_id).await?))
}

/// The writing endpoints' one query parameter. Unknown ones are refused (422): a client
/// that misspells `dry_run` must not get the real change instead of a preview.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DryRun {
    /// Validate and count, change nothing.
    #[serde(default)]
    #[param(default = false)]
    dry_run: bool,
}

/// Merge-patch body: a key left out is unchanged, `null` clears, an integer sets.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatchBody {
    /// Left out: unchanged; `null`: back to the default; an integer: set.
    #[serde(default)]
    #[schema(value_type = Option<i64>, required = false)]
    idle_minutes: Patch<i64>,
    /// Left out: unchanged; `null`: back to the default; an integer: set.
    #[serde(default)]
    #[schema(value_type = Option<i64>, required = false)]
    absolute_minutes: Patch<i64>,
}

/// The policy after the change; with `?dry_run=true`, the policy it would be and
/// `sessions_ending`, nothing written.
#[utoipa::path(patch, path = "/accounts/me/security", tag = "owner", security(("bearerAuth" = [])),
    params(DryRun), request_body = PolicyPatchBody,
    responses((status = 200, description = "The policy after the change (or, on a dry run, as it would be, with `sessions_ending`)", body = PolicyPreview)))]
pub async fn patch_policy(
    State(state): State<AppState>,
    Owner(owner): Owner,
    ApiQuery(query): ApiQuery<DryRun>,
    ApiJson(body): ApiJson<PolicyPatchBody>,
) -> Result<Response, ApiError> {
    let change =
        PolicyChange { idle_minutes: body.idle_minutes, absolute_minutes: body.absolute_minutes };
    let caller = owner.caller();
    Ok(if query.dry_run {
        Json(accounts::preview_policy(&state, caller, change).await?).into_response()
    } else {
        Json(accounts::change_policy(&state, caller, change).await?).into_response()
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    #[serde(default)]
    scope: RevokeScope,
}

#[derive(Serialize, ToSchema)]
pub struct Revoked {
    revoked_count: usize,
    /// Present (and true) only on a preview.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    dry_run: bool,
}

/// Revokes the account's sessions in bulk (or counts them, on a dry run).
#[utoipa::path(post, path = "/accounts/me/security/revoke-sessions", tag = "owner",
    security(("bearerAuth" = [])), params(DryRun), request_body = RevokeBody,
    responses((status = 200, description = "Tokens revoked (or that would be)", body = Revoked)))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Owner(owner): Owner,
    ApiQuery(DryRun { dry_run }): ApiQuery<DryRun>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<Revoked>, ApiError> {
    let revoked_count =
        accounts::revoke_sessions(&state, owner.caller(), body.scope, dry_run).await?;
    Ok(Json(Revoked { revoked_count, dry_run }))
}
