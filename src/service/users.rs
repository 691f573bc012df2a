//! User administration (the operator's CLI): create, disable, unlock.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{Error, normalize_email};
use crate::auth::Role;
use crate::auth::throttle;
use crate::db::{Db, accounts, audit_events, login_failures, refresh_tokens, users};
use crate::revocation::{Reason, Stamp};

/// A plausible email: one `@` with something on both sides, no spaces or control
/// characters, at most 254 bytes.
pub fn check_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok { Ok(()) } else { Err(format!("{email:?} is not an email address")) }
}

pub async fn create(
    db: &Db,
    account_id: Uuid,
    email: &str,
    role: Role,
    password_hash: String,
    now: DateTime<Utc>,
) -> Result<Uuid, Error> {
    let email = normalize_email(email);
    db.write(move |tx| -> Result<Uuid, Error> {
        if !accounts::exists(tx, account_id)? {
            return Err(Error::NotFound(format!("no account with id {account_id}")));
        }
        let id = Uuid::new_v4();
        users::insert(
            tx,
            &users::NewUser { id, account_id, email: &email, password_hash: &password_hash, role },
            now,
        )?;
        audit_events::insert(
            tx,
            &audit_events::NewEvent {
                account_id,
                user_id: None,
                action: "user.created",
                resource_type: "user",
                resource_id: Some(id.to_string()),
                details: json!({ "email": email, "role": role }),
            },
            now,
        )?;
        Ok(id)
    })
    .await
}

/// Marks the user inactive and revokes all of their refresh tokens, in one transaction.
/// Returns the user's id and how many tokens were revoked.
pub async fn disable(db: &Db, email: &str, now: DateTime<Utc>) -> Result<(Uuid, usize), Error> {
    let email = normalize_email(email);
    db.write(move |tx| -> Result<(Uuid, usize), Error> {
        let user = users::credentials_by_email(tx, &email)?
            .map(|c| c.user)
            .ok_or_else(|| Error::NotFound(format!("no user with email {email}")))?;
        users::deactivate(tx, user.id)?;
        let event = Uuid::new_v4();
        let stamp = Stamp::audited(now, Reason::UserDisabled, event);
        let revoked = refresh_tokens::revoke_user(tx, user.id, None, stamp)?;
        audit_events::insert_with_id(
            tx,
            event,
            &audit_events::NewEvent {
                account_id: user.account_id,
                user_id: None,
                action: "user.disabled",
                resource_type: "user",
                resource_id: Some(user.id.to_string()),
                details: json!({ "revoked_count": revoked }),
            },
            now,
        )?;
        Ok((user.id, revoked))
    })
    .await
}

/// Lifts the login throttle's lockout of a user: forgets the failed logins counted for
/// their email from every client address, with audit `user.unlocked`, in one
/// transaction. A running server sees it at the user's next attempt (the counts are in
/// the database). Returns the user's id and how many (email, address) pairs were cleared.
pub async fn unlock(db: &Db, email: &str, now: DateTime<Utc>) -> Result<(Uuid, usize), Error> {
    let email = normalize_email(email);
    db.write(move |tx| -> Result<(Uuid, usize), Error> {
        let user = users::credentials_by_email(tx, &email)?
            .map(|c| c.user)
            .ok_or_else(|| Error::NotFound(format!("no user with email {email}")))?;
        let cleared = login_failures::clear_email(tx, &throttle::email_key(&email))?;
        audit_events::insert(
            tx,
            &audit_events::NewEvent {
                account_id: user.account_id,
                user_id: None,
                action: "user.unlocked",
                resource_type: "user",
                resource_id: Some(user.id.to_string()),
                details: json!({ "email": email, "cleared": cleared }),
            },
            now,
        )?;
        Ok((user.id, cleared))
    })
    .await
}
