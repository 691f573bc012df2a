//! `refresh_tokens`: the chains of rotating tokens that carry sessions.
//!
//! Every revoking statement keeps `revoked_at IS NULL` in its `WHERE`: a row is stamped
//! once and concurrent revokers cannot both win. The bulk revokes (by session, user or
//! account) are served by the partial index over live tokens, keyed by user and session
//! (schema version 6): the table is clustered by the same key, so a revoke writes the
//! pages of its own users only.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Arg, DbError, Row, TokenId, Tx, to_ms};
use crate::policy::Overrides;
use crate::revocation::{Reason, Stamp};

/// The first token of a new session.
pub struct NewSession<'a> {
    pub id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    /// `auth::refresh::lookup_key` of the token, stored in the column `token_hash` (named
    /// when it held the bare SHA-256).
    pub key: &'a [u8],
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
    /// The client it was issued to, which its successor inherits.
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

pub fn insert_session(tx: &Tx<'_>, t: &NewSession<'_>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO refresh_tokens
           (id, session_id, user_id, token_hash, session_started_at, issued_at, user_agent, ip)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
        &[
            &TokenId::new(t.id),
            &TokenId::new(t.session_id),
            &t.user_id.to_string(),
            &t.key,
            &to_ms(t.now),
            &t.user_agent,
            &t.ip,
        ],
    )?;
    Ok(())
}

/// The successor of a rotated token: same session, start, client; issued now.
pub fn insert_successor(
    tx: &Tx<'_>,
    predecessor: &Presented,
    id: Uuid,
    key: &[u8],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let p = predecessor;
    tx.execute(
        "INSERT INTO refresh_tokens
           (id, session_id, user_id, token_hash, session_started_at, issued_at, user_agent, ip)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            &TokenId::new(id),
            &TokenId::new(p.session_id),
            &p.user_id.to_string(),
            &key,
            &to_ms(p.session_started_at),
            &to_ms(now),
            &p.user_agent,
            &p.ip,
        ],
    )?;
    Ok(())
}

pub(super) const FIND_PRESENTED_SQL: &str =
    "SELECT t.id, t.session_id, t.user_id, u.account_id, u.is_active,
            t.session_started_at, t.issued_at, t.revoked_at, t.replaced_by,
            t.revoke_reason, t.revoked_by_event, t.revoke_limit_minutes,
            a.idle_minutes, a.absolute_minutes, t.user_agent, t.ip
     FROM refresh_tokens t
     JOIN users u ON u.id = t.user_id
     JOIN accounts a ON a.id = u.account_id
     WHERE t.token_hash = ?1";

/// Looks a token up by its key (`auth::refresh::lookup_key`: the time prefix and SHA-256
/// stored in `token_hash`, under the unique index), joined to its user and account.
pub fn find_presented(tx: &Tx<'_>, key: &[u8]) -> Result<Option<Presented>, DbError> {
    tx.query_opt(FIND_PRESENTED_SQL, &[&key], |r| {
        Ok(Presented {
            id: r.uuid(0)?,
            session_id: r.uuid(1)?,
            user_id: r.uuid(2)?,
            account_id: r.uuid(3)?,
            user_active: r.bool(4)?,
            session_started_at: r.time(5)?,
            issued_at: r.time(6)?,
            revoked_at: r.opt_time(7)?,
            replaced_by: r.opt_uuid(8)?,
            end: ended(r, 9)?,
            overrides: Overrides { idle_minutes: r.opt_i64(12)?, absolute_minutes: r.opt_i64(13)? },
            user_agent: r.opt_text(14)?,
            ip: r.opt_text(15)?,
        })
    })
}

/// The columns every revoking statement sets: when, why, by which audit event (and, for
/// a timeout, the limit it applied). The stamp's parameters are `?1`-`?4`; a statement's
/// own start at `?5`.
macro_rules! stamp_columns {
    () => {
        "revoked_at = ?1, revoke_reason = ?2, revoked_by_event = ?3,
         revoke_limit_minutes = ?4"
    };
}

/// Runs a revoking statement with the stamp's parameters and its own (`?5` on), and
/// counts what it revoked (reported to the metrics once the transaction commits).
fn stamp_rows(tx: &Tx<'_>, sql: &str, own: &[&dyn Arg], stamp: Stamp) -> Result<usize, DbError> {
    let (at, reason) = (to_ms(stamp.at), stamp.reason.as_str());
    let event = stamp.event.map(|e| e.to_string());
    let mut params: Vec<&dyn Arg> = vec![&at, &reason, &event, &stamp.limit_minutes];
    params.extend_from_slice(own);
    let n = tx.execute(sql, &params)?;
    tx.count_revoked(stamp.reason, n);
    Ok(n)
}

/// One token by its whole key (the table's own, so no secondary index is read).
pub(super) const REVOKE_TOKEN_SQL: &str = concat!(
    "UPDATE refresh_tokens SET ",
    stamp_columns!(),
    ", replaced_by = ?5 WHERE user_id = ?6 AND session_id = ?7 AND id = ?8 AND revoked_at IS NULL"
);

/// Revokes one token: exchanged for `successor` by rotation, or ended (a timeout, an
/// inactive owner). False when it was already revoked. Within one IMMEDIATE transaction
/// that follows `find_presented` this cannot happen; the gate keeps it true regardless.
pub fn revoke_token(
    tx: &Tx<'_>,
    token: &Presented,
    successor: Option<Uuid>,
    stamp: Stamp,
) -> Result<bool, DbError> {
    let (user, session, id) =
        (token.user_id.to_string(), TokenId::new(token.session_id), TokenId::new(token.id));
    let successor = TokenId::opt(successor);
    Ok(stamp_rows(tx, REVOKE_TOKEN_SQL, &[&successor, &user, &session, &id], stamp)? == 1)
}

pub(super) const REVOKE_SESSION_SQL: &str = concat!(
    "UPDATE refresh_tokens SET ",
    stamp_columns!(),
    " WHERE user_id = ?5 AND session_id = ?6 AND revoked_at IS NULL"
);

/// Revokes every live token of one session (of user `user_id`: the tokens are found by
/// user and session, side by side).
pub fn revoke_session(
    tx: &Tx<'_>,
    user_id: Uuid,
    session_id: Uuid,
    stamp: Stamp,
) -> Result<usize, DbError> {
    let (user, session) = (user_id.to_string(), TokenId::new(session_id));
    stamp_rows(tx, REVOKE_SESSION_SQL, &[&user, &session], stamp)
}

pub(super) const REVOKE_USER_SQL: &str = concat!(
    "UPDATE refresh_tokens SET ",
    stamp_columns!(),
    // CAST: PostgreSQL cannot infer the type of a parameter from `?6 IS NULL` alone.
    " WHERE user_id = ?5 AND revoked_at IS NULL
        AND (CAST(?6 AS TEXT) IS NULL OR session_id <> ?6)"
);

/// Revokes every live token of one user, except those of session `keep` when given.
pub fn revoke_user(
    tx: &Tx<'_>,
    user_id: Uuid,
    keep: Option<Uuid>,
    stamp: Stamp,
) -> Result<usize, DbError> {
    let (user, keep) = (user_id.to_string(), TokenId::opt(keep));
    stamp_rows(tx, REVOKE_USER_SQL, &[&user, &keep], stamp)
}

/// The account's live tokens that the bulk revoke selects: every user of the account,
/// except user `keep` when given. Shared by the revoke and its dry-run count, so that a
/// preview counts exactly the rows the real call stamps. Its two parameters (account,
/// kept user) are numbered by the caller: after the stamp's in the revoke. CAST:
/// PostgreSQL cannot infer the type of a parameter from `?N IS NULL` alone.
macro_rules! account_live_tokens {
    ($account:literal, $keep:literal) => {
        concat!(
            " WHERE revoked_at IS NULL
            AND user_id IN (SELECT id FROM users WHERE account_id = ",
            $account,
            ")
            AND (CAST(",
            $keep,
            " AS TEXT) IS NULL OR user_id <> ",
            $keep,
            ")"
        )
    };
}

/// The bulk revoke, one statement.
pub(super) const REVOKE_ACCOUNT_SQL: &str =
    concat!("UPDATE refresh_tokens SET ", stamp_columns!(), account_live_tokens!("?5", "?6"));

/// The bulk revoke's dry run.
pub(super) const COUNT_ACCOUNT_SQL: &str =
    concat!("SELECT count(*) FROM refresh_tokens", account_live_tokens!("?1", "?2"));

pub fn revoke_account(
    tx: &Tx<'_>,
    account_id: Uuid,
    keep_user: Option<Uuid>,
    stamp: Stamp,
) -> Result<usize, DbError> {
    let (account, keep) = (account_id.to_string(), keep_user.map(|u| u.to_string()));
    stamp_rows(tx, REVOKE_ACCOUNT_SQL, &[&account, &keep], stamp)
}

/// How many tokens [`revoke_account`] would revoke now.
pub fn count_account(
    tx: &Tx<'_>,
    account_id: Uuid,
    keep_user: Option<Uuid>,
) -> Result<usize, DbError> {
    let (account, keep) = (account_id.to_string(), keep_user.map(|u| u.to_string()));
    let n = tx.query_one(COUNT_ACCOUNT_SQL, &[&account, &keep], |r| r.i64(0))?;
    usize::try_from(n).map_err(|e| DbError::Other(e.into()))
}

/// How a session ended: its last token, the one revoked and never exchanged (at most
/// one per session; the prune index over such tokens finds it in one probe).
pub(super) const SESSION_END_SQL: &str =
    "SELECT revoke_reason, revoked_by_event, revoke_limit_minutes FROM refresh_tokens
     WHERE user_id = ?1 AND session_id = ?2 AND revoked_at IS NOT NULL AND replaced_by IS NULL
     ORDER BY revoked_at DESC LIMIT 1";

/// Why the session (of user `user_id`) ended, if it has (and its last token is still
/// there: pruning removes old history).
pub fn session_end(tx: &Tx<'_>, user_id: Uuid, session_id: Uuid) -> Result<Option<Ended>, DbError> {
    let (user, session) = (user_id.to_string(), TokenId::new(session_id));
    tx.query_opt(SESSION_END_SQL, &[&user, &session], |r| ended(r, 0))
}

/// What a revoked token records about its end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ended {
    pub reason: Option<Reason>,
    pub event: Option<Uuid>,
    pub limit_minutes: Option<i64>,
}

/// `revoke_reason, revoked_by_event, revoke_limit_minutes` from column `i` on.
fn ended(r: &Row<'_>, i: usize) -> Result<Ended, DbError> {
    Ok(Ended {
        reason: r.opt_text(i)?.as_deref().and_then(Reason::parse),
        event: r.opt_uuid(i + 1)?,
        limit_minutes: r.opt_i64(i + 2)?,
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
    tx.query(LIVE_SESSION_TIMES_SQL, &[&account_id.to_string()], |r| {
        Ok(SessionTimes { started: r.time(0)?, last_active: r.time(1)? })
    })
}
