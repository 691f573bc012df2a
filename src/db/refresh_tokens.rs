//! `refresh_tokens`: the chains of rotating tokens that carry sessions.
//!
//! Every revoking statement keeps `revoked_at IS NULL` in its `WHERE`: a row is stamped
//! once and concurrent revokers cannot both win. The bulk revokes (by session, user or
//! account) are served by partial indexes over live tokens only.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::column::{opt_time, time, uuid};
use super::{DbError, Tx, to_ms};
use crate::policy::Overrides;

/// The first token of a new session.
pub struct NewSession<'a> {
    pub id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub token_hash: &'a [u8],
    pub now: DateTime<Utc>,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// A presented refresh token with everything the refresh decision needs: its session,
/// its owner's state and the owner's account policy as it stands now.
#[derive(Debug)]
pub struct Presented {
    pub id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub account_id: Uuid,
    pub user_active: bool,
    pub session_started_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it was exchanged by rotation (rather than revoked otherwise).
    pub rotated: bool,
    pub overrides: Overrides,
}

pub fn insert_session(tx: &Tx<'_>, t: &NewSession<'_>) -> Result<(), DbError> {
    tx.conn()
        .prepare_cached(
            "INSERT INTO refresh_tokens
               (id, session_id, user_id, token_hash, session_started_at, issued_at, user_agent, ip)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
        )?
        .execute(params![
            t.id.to_string(),
            t.session_id.to_string(),
            t.user_id.to_string(),
            t.token_hash,
            to_ms(t.now),
            t.user_agent,
            t.ip
        ])?;
    Ok(())
}

/// The successor of a rotated token: same session, start, client; issued now.
pub fn insert_successor(
    tx: &Tx<'_>,
    predecessor: Uuid,
    id: Uuid,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.conn()
        .prepare_cached(
            "INSERT INTO refresh_tokens
               (id, session_id, user_id, token_hash, session_started_at, issued_at, user_agent, ip)
             SELECT ?2, session_id, user_id, ?3, session_started_at, ?4, user_agent, ip
             FROM refresh_tokens WHERE id = ?1",
        )?
        .execute(params![predecessor.to_string(), id.to_string(), token_hash, to_ms(now)])?;
    Ok(())
}

pub(super) const FIND_PRESENTED_SQL: &str =
    "SELECT t.id, t.session_id, t.user_id, u.account_id, u.is_active,
            t.session_started_at, t.issued_at, t.revoked_at, t.replaced_by IS NOT NULL,
            a.idle_minutes, a.absolute_minutes
     FROM refresh_tokens t
     JOIN users u ON u.id = t.user_id
     JOIN accounts a ON a.id = u.account_id
     WHERE t.token_hash = ?1";

/// Looks a token up by its hash (the unique index), joined to its user and account.
pub fn find_presented(tx: &Tx<'_>, token_hash: &[u8]) -> Result<Option<Presented>, DbError> {
    Ok(tx
        .conn()
        .prepare_cached(FIND_PRESENTED_SQL)?
        .query_row([token_hash], |r| {
            Ok(Presented {
                id: uuid(r, 0)?,
                session_id: uuid(r, 1)?,
                user_id: uuid(r, 2)?,
                account_id: uuid(r, 3)?,
                user_active: r.get(4)?,
                session_started_at: time(r, 5)?,
                issued_at: time(r, 6)?,
                revoked_at: opt_time(r, 7)?,
                rotated: r.get(8)?,
                overrides: Overrides { idle_minutes: r.get(9)?, absolute_minutes: r.get(10)? },
            })
        })
        .optional()?)
}

/// Revokes one token: exchanged for `successor` by rotation, or ended (a timeout, an
/// inactive owner). False when it was already revoked. Within one IMMEDIATE transaction
/// that follows `find_presented` this cannot happen; the gate keeps it true regardless.
pub fn revoke_token(
    tx: &Tx<'_>,
    id: Uuid,
    successor: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let changed = tx
        .conn()
        .prepare_cached(
            "UPDATE refresh_tokens SET revoked_at = ?2, replaced_by = ?3
             WHERE id = ?1 AND revoked_at IS NULL",
        )?
        .execute(params![id.to_string(), to_ms(now), successor.map(|s| s.to_string())])?;
    Ok(changed == 1)
}

pub(super) const REVOKE_SESSION_SQL: &str =
    "UPDATE refresh_tokens SET revoked_at = ?2 WHERE session_id = ?1 AND revoked_at IS NULL";

/// Revokes every live token of one session.
pub fn revoke_session(tx: &Tx<'_>, session_id: Uuid, now: DateTime<Utc>) -> Result<usize, DbError> {
    Ok(tx
        .conn()
        .prepare_cached(REVOKE_SESSION_SQL)?
        .execute(params![session_id.to_string(), to_ms(now)])?)
}

pub(super) const REVOKE_USER_SQL: &str =
    "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL";

/// Revokes every live token of one user.
pub fn revoke_user(tx: &Tx<'_>, user_id: Uuid, now: DateTime<Utc>) -> Result<usize, DbError> {
    Ok(tx
        .conn()
        .prepare_cached(REVOKE_USER_SQL)?
        .execute(params![user_id.to_string(), to_ms(now)])?)
}

/// The bulk revoke, one statement: every live token of every user of the account,
/// except those of `keep_user` when given.
pub(super) const REVOKE_ACCOUNT_SQL: &str = "UPDATE refresh_tokens SET revoked_at = ?2
     WHERE revoked_at IS NULL
       AND user_id IN (SELECT id FROM users WHERE account_id = ?1)
       AND (?3 IS NULL OR user_id <> ?3)";

pub fn revoke_account(
    tx: &Tx<'_>,
    account_id: Uuid,
    keep_user: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    Ok(tx.conn().prepare_cached(REVOKE_ACCOUNT_SQL)?.execute(params![
        account_id.to_string(),
        to_ms(now),
        keep_user.map(|u| u.to_string())
    ])?)
}
