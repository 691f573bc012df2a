//! Account-level operations: creation, the session policy, bulk revocation, the audit
//! trail.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::Error;
use crate::db::users::User;
use crate::db::{Db, accounts, audit_events, refresh_tokens};
use crate::metrics::RevokeCause;
use crate::policy::{Bounds, Overrides, PolicyChange, SessionPolicy};

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

/// Validates and applies a merge-patch to the account's overrides, with its audit row,
/// in one transaction (the read of the current values included).
pub async fn change_policy(
    db: &Db,
    bounds: Bounds,
    actor: &User,
    change: PolicyChange,
    now: DateTime<Utc>,
) -> Result<SessionPolicy, Error> {
    let (account_id, actor_id) = (actor.account_id, actor.id);
    let next = db
        .write(move |tx| -> Result<Overrides, Error> {
            let old = accounts::overrides(tx, account_id)?;
            let new = bounds.apply(old, change)?;
            accounts::set_overrides(tx, account_id, new)?;
            let (eff_old, eff_new) = (bounds.effective(old), bounds.effective(new));
            audit_events::insert(
                tx,
                &audit_events::NewEvent {
                    account_id,
                    user_id: Some(actor_id),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RevokeScope {
    #[default]
    All,
    Others,
}

impl RevokeScope {
    fn cause(self) -> RevokeCause {
        match self {
            RevokeScope::All => RevokeCause::RevokedAll,
            RevokeScope::Others => RevokeCause::RevokedOthers,
        }
    }
}

/// Revokes the account's live refresh tokens — all, or all but every session of the
/// calling user — as one UPDATE, with exactly one audit row, in one transaction.
/// Returns how many.
pub async fn revoke_sessions(
    db: &Db,
    actor: &User,
    scope: RevokeScope,
    now: DateTime<Utc>,
) -> Result<usize, Error> {
    let (account_id, actor_id) = (actor.account_id, actor.id);
    db.write(move |tx| -> Result<usize, Error> {
        let keep = match scope {
            RevokeScope::All => None,
            RevokeScope::Others => Some(actor_id),
        };
        let revoked = refresh_tokens::revoke_account(tx, account_id, keep, now)?;
        tx.count_revoked(scope.cause(), revoked);
        audit_events::insert(
            tx,
            &audit_events::NewEvent {
                account_id,
                user_id: Some(actor_id),
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
