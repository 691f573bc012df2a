//! `refresh_tokens`: the chains of rotating tokens that carry sessions.
//!
//! Every revoking statement keeps `revoked_at IS NULL` in its `WHERE`: a row is stamped
//! once and concurrent revokers cannot both win. The bulk revokes (by session, user or
//! account) are served by partial indexes over live tokens only.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, ToSql, named_params, params};
use uuid::Uuid;

use super::column::{opt_time, opt_uuid, time, uuid};
use super::{DbError, Tx, to_ms};
use crate::policy::Overrides;
use crate::revocation::{Reason, Stamp};

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
    /// The token it was exchanged for, when it was rotated (rather than revoked otherwise).
    pub replaced_by: Option<Uuid>,
    /// Why it was revoked (no reason before schema version 2).
    pub end: Ended,
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
            t.session_started_at, t.issued_at, t.revoked_at, t.replaced_by,
            t.revoke_reason, t.revoked_by_event, t.revoke_limit_minutes,
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
                replaced_by: opt_uuid(r, 8)?,
                end: ended(r, 9)?,
                overrides: Overrides { idle_minutes: r.get(12)?, absolute_minutes: r.get(13)? },
            })
        })
        .optional()?)
}

/// The columns every revoking statement sets: when, why, by which audit event (and, for
/// a timeout, the limit it applied).
macro_rules! stamp_columns {
    () => {
        "revoked_at = :at, revoke_reason = :reason, revoked_by_event = :event,
         revoke_limit_minutes = :limit"
    };
}

/// Runs a revoking statement with its own parameters and the stamp's, and counts what it
/// revoked (reported to the metrics once the transaction commits).
fn stamp_rows(
    tx: &Tx<'_>,
    sql: &str,
    own: &[(&str, &dyn ToSql)],
    stamp: Stamp,
) -> Result<usize, DbError> {
    let (at, reason) = (to_ms(stamp.at), stamp.reason.as_str());
    let event = stamp.event.map(|e| e.to_string());
    let mut params = own.to_vec();
    params.extend_from_slice(&[
        (":at", &at as &dyn ToSql),
        (":reason", &reason),
        (":event", &event),
        (":limit", &stamp.limit_minutes),
    ]);
    let n = tx.conn().prepare_cached(sql)?.execute(params.as_slice())?;
    tx.count_revoked(stamp.reason, n);
    Ok(n)
}

/// Revokes one token: exchanged for `successor` by rotation, or ended (a timeout, an
/// inactive owner). False when it was already revoked. Within one IMMEDIATE transaction
/// that follows `find_presented` this cannot happen; the gate keeps it true regardless.
pub fn revoke_token(
    tx: &Tx<'_>,
    id: Uuid,
    successor: Option<Uuid>,
    stamp: Stamp,
) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE refresh_tokens SET ",
        stamp_columns!(),
        ", replaced_by = :successor WHERE id = :id AND revoked_at IS NULL"
    );
    let (id, successor) = (id.to_string(), successor.map(|s| s.to_string()));
    let own: [(&str, &dyn ToSql); 2] = [(":id", &id), (":successor", &successor)];
    Ok(stamp_rows(tx, sql, &own, stamp)? == 1)
}

pub(super) const REVOKE_SESSION_SQL: &str = concat!(
    "UPDATE refresh_tokens SET ",
    stamp_columns!(),
    " WHERE session_id = :session AND revoked_at IS NULL"
);

/// Revokes every live token of one session.
pub fn revoke_session(tx: &Tx<'_>, session_id: Uuid, stamp: Stamp) -> Result<usize, DbError> {
    stamp_rows(tx, REVOKE_SESSION_SQL, &[(":session", &session_id.to_string())], stamp)
}

pub(super) const REVOKE_USER_SQL: &str = concat!(
    "UPDATE refresh_tokens SET ",
    stamp_columns!(),
    " WHERE user_id = :user AND revoked_at IS NULL AND (:keep IS NULL OR session_id <> :keep)"
);

/// Revokes every live token of one user, except those of session `keep` when given.
pub fn revoke_user(
    tx: &Tx<'_>,
    user_id: Uuid,
    keep: Option<Uuid>,
    stamp: Stamp,
) -> Result<usize, DbError> {
    let (user, keep) = (user_id.to_string(), keep.map(|s| s.to_string()));
    stamp_rows(tx, REVOKE_USER_SQL, &[(":user", &user), (":keep", &keep)], stamp)
}

/// The account's live tokens that the bulk revoke selects: every user of the account,
/// except user `keep` when given. Shared by the revoke and its dry-run count, so that a
/// preview counts exactly the rows the real call stamps.
macro_rules! account_live_tokens {
    () => {
        " WHERE revoked_at IS NULL
            AND user_id IN (SELECT id FROM users WHERE account_id = :account)
            AND (:keep IS NULL OR user_id <> :keep)"
    };
}

/// The bulk revoke, one statement.
pub(super) const REVOKE_ACCOUNT_SQL: &str =
    concat!("UPDATE refresh_tokens SET ", stamp_columns!(), account_live_tokens!());

/// The bulk revoke's dry run.
pub(super) const COUNT_ACCOUNT_SQL: &str =
    concat!("SELECT count(*) FROM refresh_tokens", account_live_tokens!());

pub fn revoke_account(
    tx: &Tx<'_>,
    account_id: Uuid,
    keep_user: Option<Uuid>,
    stamp: Stamp,
) -> Result<usize, DbError> {
    let (account, keep) = (account_id.to_string(), keep_user.map(|u| u.to_string()));
    stamp_rows(tx, REVOKE_ACCOUNT_SQL, &[(":account", &account), (":keep", &keep)], stamp)
}

/// How many tokens [`revoke_account`] would revoke now.
pub fn count_account(
    tx: &Tx<'_>,
    account_id: Uuid,
    keep_user: Option<Uuid>,
) -> Result<usize, DbError> {
    let n: i64 = tx.conn().prepare_cached(COUNT_ACCOUNT_SQL)?.query_row(
        named_params! {
            ":account": account_id.to_string(),
            ":keep": keep_user.map(|u| u.to_string()),
        },
        |r| r.get(0),
    )?;
    usize::try_from(n).map_err(|e| DbError::Other(e.into()))
}

/// How a session ended: its last token, the one revoked and never exchanged (at most
/// one per session; the prune index over such tokens finds it in one probe).
pub(super) const SESSION_END_SQL: &str =
    "SELECT revoke_reason, revoked_by_event, revoke_limit_minutes FROM refresh_tokens
     WHERE session_id = ?1 AND revoked_at IS NOT NULL AND replaced_by IS NULL
     ORDER BY revoked_at DESC LIMIT 1";

/// Why the session ended, if it has (and its last token is still there: pruning removes
/// old history).
pub fn session_end(tx: &Tx<'_>, session_id: Uuid) -> Result<Option<Ended>, DbError> {
    Ok(tx
        .conn()
        .prepare_cached(SESSION_END_SQL)?
        .query_row([session_id.to_string()], |r| ended(r, 0))
        .optional()?)
}

/// What a revoked token records about its end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ended {
    pub reason: Option<Reason>,
    pub event: Option<Uuid>,
    pub limit_minutes: Option<i64>,
}

/// `revoke_reason, revoked_by_event, revoke_limit_minutes` from column `i` on.
fn ended(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Ended> {
    Ok(Ended {
        reason: r.get::<_, Option<String>>(i)?.as_deref().and_then(Reason::parse),
        event: opt_uuid(r, i + 1)?,
        limit_minutes: r.get(i + 2)?,
    })
}

pub(super) const LIVE_SESSION_TIMES_SQL: &str = "SELECT session_started_at, issued_at
     FROM refresh_tokens
     WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM users WHERE account_id = ?1)";

/// When a live session started and was last refreshed (its live token's
/// `session_started_at` and `issued_at`).
#[derive(Debug, Clone, Copy)]
pub struct SessionTimes {
    pub started: DateTime<Utc>,
    pub last_active: DateTime<Utc>,
}

/// Every live session of the account: what a policy change is judged against.
pub fn live_session_times(tx: &Tx<'_>, account_id: Uuid) -> Result<Vec<SessionTimes>, DbError> {
    let mut stmt = tx.conn().prepare_cached(LIVE_SESSION_TIMES_SQL)?;
    let rows = stmt.query_map([account_id.to_string()], |r| {
        Ok(SessionTimes { started: time(r, 0)?, last_active: time(r, 1)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
