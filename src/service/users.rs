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

/// The id of a new user of `account`: a UUID of version 8 whose first 6 bytes are the
/// account id's first 6 bytes, the other 74 bits random. On SQLite the token table and
/// its indexes over live tokens and over ended sessions are keyed by user first, so one
/// account's users then sit side by side in them, and the account's bulk revoke writes
/// the account's own pages and one shared page at each end of its range, instead of a
/// shared page at each end of every user's rows (docs/PERFORMANCE.md, issue 11). This
/// relies on account ids being random in those 6 bytes (version 4, `accounts::create`).
/// The prefix tells a member of the account nothing new (the account's id is in
/// `/accounts/me`); to anyone else, two ids with the same prefix belong to one account.
pub fn new_id(account: Uuid) -> Uuid {
    let mut bytes = *Uuid::new_v4().as_bytes();
    bytes[..6].copy_from_slice(&account.as_bytes()[..6]);
    Uuid::new_v8(bytes)
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
        let id = new_id(account_id);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_id_starts_with_its_accounts_and_is_random_after() {
        let account = Uuid::new_v4();
        let (a, b) = (new_id(account), new_id(account));
        assert_eq!(a.as_bytes()[..6], account.as_bytes()[..6]);
        assert_eq!(b.as_bytes()[..6], account.as_bytes()[..6]);
        assert_ne!(a, b, "random after the account's prefix");
        assert_eq!(a.get_version_num(), 8);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
    }
}
