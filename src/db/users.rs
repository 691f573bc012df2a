//! `users`: people who log in; each belongs to one account.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DbError, Row, TokenId, Tx, to_ms};
use crate::auth::Role;

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: String,
    pub role: Role,
    pub is_active: bool,
}

/// A user with the password hash. `Debug` leaves the hash out.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).finish_non_exhaustive()
    }
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub account_id: Uuid,
    /// Already normalised (lower-cased) by the caller.
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

/// Looked up on every authenticated request: the user behind an access token, if still
/// active and the token's session still has an unrevoked refresh token.
pub(super) const SESSION_STATE_SQL: &str = "SELECT id, account_id, email, role, is_active
     FROM users
     WHERE id = ?1 AND is_active = 1
       AND EXISTS (SELECT 1 FROM refresh_tokens t
                   WHERE t.session_id = ?2 AND t.user_id = users.id AND t.revoked_at IS NULL)";

fn user_from_row(r: &Row<'_>) -> Result<User, DbError> {
    Ok(User {
        id: r.uuid(0)?,
        account_id: r.uuid(1)?,
        email: r.text(2)?,
        role: r.text(3)?.parse().map_err(|e: String| DbError::Other(anyhow::anyhow!(e)))?,
        is_active: r.bool(4)?,
    })
}

pub fn insert(tx: &Tx<'_>, u: &NewUser<'_>, now: DateTime<Utc>) -> Result<(), DbError> {
    let result = tx.execute(
        "INSERT INTO users (id, account_id, email, password_hash, role, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            &u.id.to_string(),
            &u.account_id.to_string(),
            &u.email,
            &u.password_hash,
            &u.role.as_str(),
            &to_ms(now),
        ],
    );
    match result {
        Ok(_) => Ok(()),
        // The only unique column a new user can collide on (its id has 74 random bits).
        Err(DbError::Conflict(_)) => {
            Err(DbError::Conflict(format!("a user with email {} already exists", u.email)))
        }
        Err(e) => Err(e),
    }
}

pub fn credentials_by_email(tx: &Tx<'_>, email: &str) -> Result<Option<Credentials>, DbError> {
    tx.query_opt(
        "SELECT id, account_id, email, role, is_active, password_hash FROM users WHERE email = ?1",
        &[&email],
        |r| Ok(Credentials { user: user_from_row(r)?, password_hash: r.text(5)? }),
    )
}

/// See [`SESSION_STATE_SQL`].
pub fn active_in_live_session(
    tx: &Tx<'_>,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<Option<User>, DbError> {
    tx.query_opt(
        SESSION_STATE_SQL,
        &[&user_id.to_string(), &TokenId::new(session_id)],
        user_from_row,
    )
}

pub fn is_active(tx: &Tx<'_>, user_id: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .query_opt("SELECT is_active FROM users WHERE id = ?1", &[&user_id.to_string()], |r| {
            r.bool(0)
        })?
        .unwrap_or(false))
}

pub fn deactivate(tx: &Tx<'_>, user_id: Uuid) -> Result<(), DbError> {
    let changed =
        tx.execute("UPDATE users SET is_active = 0 WHERE id = ?1", &[&user_id.to_string()])?;
    if changed == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// The user's password hash, if the user exists and is active.
pub fn password_hash(tx: &Tx<'_>, user_id: Uuid) -> Result<Option<String>, DbError> {
    tx.query_opt(
        "SELECT password_hash FROM users WHERE id = ?1 AND is_active = 1",
        &[&user_id.to_string()],
        |r| r.text(0),
    )
}

/// Replaces the password hash, if it is still `expected`: two concurrent changes cannot
/// both pass a check against the old password. False when it was not.
pub fn replace_password_hash(
    tx: &Tx<'_>,
    user_id: Uuid,
    expected: &str,
    new_hash: &str,
) -> Result<bool, DbError> {
    let changed = tx.execute(
        "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
        &[&user_id.to_string(), &expected, &new_hash],
    )?;
    Ok(changed == 1)
}

/// Every user of an account, active or not: `(id, email)`, for naming the actors of its
/// audit trail.
pub fn emails_in_account(tx: &Tx<'_>, account_id: Uuid) -> Result<Vec<(Uuid, String)>, DbError> {
    tx.query("SELECT id, email FROM users WHERE account_id = ?1", &[&account_id.to_string()], |r| {
        Ok((r.uuid(0)?, r.text(1)?))
    })
}
