//! Account-level operations: creation, the session policy, bulk revocation, the audit
//! trail.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::Error;
use super::caller::{Caller, read_as, write_as};
use crate::db::{Db, Tx, accounts, audit_events, refresh_tokens};
use crate::policy::{Bounds, Overrides, PolicyChange, SessionPolicy};
use crate::revocation::{Reason, Stamp};
use crate::state::AppState;

pub async fn create(db: &Db, name: String, now: DateTime<Utc>) -> Result<Uuid, Error> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(Error::Invalid("name must not be empty".into()));
    }
    db.write(move |tx| -> Result<Uuid, Error> {
        let id = Uuid::new_v4();
        accounts::insert(tx, id, &name, now)?;
        audit_events::insert(
            tx,
            &audit_events::NewEvent {
                account_id: id,
                user_id: None,
                action: "account.created",
                resource_type: "account",
                resource_id: Some(id.to_string()),
                details: json!({ "name": name }),
            },
            now,
        )?;
        Ok(id)
    })
    .await
}

pub async fn policy(db: &Db, bounds: Bounds, account_id: Uuid) -> Result<SessionPolicy, Error> {
    let overrides = db.read(move |tx| accounts::overrides(tx, account_id)).await?;
    Ok(bounds.view(overrides))
}

/// Reads the account's overrides and applies `change` to them, validated: the first
/// step of both the real change and its preview.
fn planned(
    tx: &Tx<'_>,
    bounds: Bounds,
    account_id: Uuid,
    change: PolicyChange,
) -> Result<(Overrides, Overrides), Error> {
    let old = accounts::overrides(tx, account_id)?;
    Ok((old, bounds.apply(old, change)?))
}

/// Validates and applies a merge-patch to the caller's account's overrides, with its
/// audit row, in one transaction (the read of the current values included), the caller
/// authorised again in it ([`write_as`]).
pub async fn change_policy(
    state: &AppState,
    caller: Caller,
    change: PolicyChange,
) -> Result<SessionPolicy, Error> {
    let bounds = state.bounds;
    let next = write_as(&state.db, &state.clock, caller, move |tx, actor, now| {
        let account_id = actor.account_id;
        let (old, new) = planned(tx, bounds, account_id, change)?;
        accounts::set_overrides(tx, account_id, new)?;
        let (eff_old, eff_new) = (bounds.effective(old), bounds.effective(new));
        audit_events::insert(
            tx,
            &audit_events::NewEvent {
                account_id,
                user_id: Some(actor.id),
                action: "account.session_policy_update",
                resource_type: "account",
                resource_id: Some(account_id.to_string()),
                details: json!({
                    "old": old,
                    "new": new,
                    "effective_old": eff_old,
                    "effective_new": eff_new,
                }),
            },
            now,
        )?;
        Ok(new)
    })
    .await?;
    Ok(bounds.view(next))
}

/// What a policy change would do, written nowhere.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyPreview {
    #[serde(flatten)]
    pub policy: SessionPolicy,
    /// The sessions alive now that the new policy would end at their next refresh.
    /// Only in the answer to `?dry_run=true`.
    #[schema(required = false)]
    pub sessions_ending: usize,
}

/// The preview of [`change_policy`]: the same validation, then each live session judged
/// by the rule the refresh applies
/// ([`Effective::expiry`](crate::policy::Effective::expiry)) under the old and new policy.
/// A session already over under the old policy is not counted: the change does not end
/// it (and a looser policy may revive it). The caller is authorised again as for the
/// real change.
pub async fn preview_policy(
    state: &AppState,
    caller: Caller,
    change: PolicyChange,
) -> Result<PolicyPreview, Error> {
    let bounds = state.bounds;
    read_as(&state.db, &state.clock, caller, move |tx, actor, now| {
        let account_id = actor.account_id;
        let (old, new) = planned(tx, bounds, account_id, change)?;
        let (old_e, new_e) = (bounds.effective(old), bounds.effective(new));
        let sessions_ending = refresh_tokens::live_session_times(tx, account_id)?
            .into_iter()
            .filter(|s| {
                old_e.expiry(now, s.started, s.last_active).is_none()
                    && new_e.expiry(now, s.started, s.last_active).is_some()
            })
            .count();
        Ok(PolicyPreview { policy: bounds.view(new), sessions_ending })
    })
    .await
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RevokeScope {
    #[default]
    All,
    Others,
}

impl RevokeScope {
    /// The user whose tokens the revoke leaves alone.
    fn kept_user(self, actor: Uuid) -> Option<Uuid> {
        match self {
            RevokeScope::All => None,
            RevokeScope::Others => Some(actor),
        }
    }

    fn reason(self) -> Reason {
        match self {
            RevokeScope::All => Reason::RevokedAll,
            RevokeScope::Others => Reason::RevokedOthers,
        }
    }
}

/// Revokes the account's live refresh tokens — all, or all but every session of the
/// calling user — as one UPDATE that stamps each with the audit event, with exactly that
/// one audit row, in one transaction, the caller authorised again in it. Returns how
/// many. With `dry_run`, counts the same rows (the same `WHERE`) and writes nothing.
pub async fn revoke_sessions(
    state: &AppState,
    caller: Caller,
    scope: RevokeScope,
    dry_run: bool,
) -> Result<usize, Error> {
    let (db, clock) = (&state.db, &state.clock);
    if dry_run {
        return read_as(db, clock, caller, move |tx, actor, _| {
            let keep = scope.kept_user(actor.id);
            Ok(refresh_tokens::count_account(tx, actor.account_id, keep)?)
        })
        .await;
    }
    write_as(db, clock, caller, move |tx, actor, now| {
        let (account_id, keep) = (actor.account_id, scope.kept_user(actor.id));
        let event = Uuid::new_v4();
        let stamp = Stamp::audited(now, scope.reason(), event);
        let revoked = refresh_tokens::revoke_account(tx, account_id, keep, stamp)?;
        audit_events::insert_with_id(
            tx,
            event,
            &audit_events::NewEvent {
                account_id,
                user_id: Some(actor.id),
                action: "account.sessions_revoked_bulk",
                resource_type: "account",
                resource_id: Some(account_id.to_string()),
                details: json!({ "scope": scope, "revoked_count": revoked }),
            },
            now,
        )?;
        Ok(revoked)
    })
    .await
}

#[derive(Debug)]
pub struct AuditPage {
    pub items: Vec<audit_events::Event>,
    pub next_before: Option<Uuid>,
}

/// Newest first. `next_before` is set when a further page may exist.
pub async fn audit_page(
    db: &Db,
    account_id: Uuid,
    before: Option<Uuid>,
    limit: u32,
) -> Result<AuditPage, Error> {
    let items = db.read(move |tx| audit_events::page(tx, account_id, before, limit)).await?;
    let next_before = if items.len() == limit as usize { items.last().map(|e| e.id) } else { None };
    Ok(AuditPage { items, next_before })
}

/// The emails of the account's users by id (inactive users included): the names an audit
/// trail shows for its actors.
pub async fn directory(
    db: &Db,
    account_id: Uuid,
) -> Result<std::collections::HashMap<Uuid, String>, Error> {
    let rows = db.read(move |tx| crate::db::users::emails_in_account(tx, account_id)).await?;
    Ok(rows.into_iter().collect())
}
