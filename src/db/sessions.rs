//! Sessions as an owner sees them: the live (unrevoked) newest token of each session of
//! an account, with its user. Whether a session is still within its timeouts is the
//! policy's call, made by the caller with the overrides read here.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DbError, Row, TokenId, Tx};
use crate::auth::Role;
use crate::policy::Overrides;

/// A session with an unrevoked token. Rotation revokes the presented token before its
/// successor is inserted, so a session has at most one, and it is its newest.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub started_at: DateTime<Utc>,
    /// The login or refresh that issued the live token: the idle clock starts here.
    pub last_active_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The account's policy overrides as they stand now.
    pub overrides: Overrides,
}

/// The account's users through `users_by_account`, their live tokens through the partial
/// index over unrevoked tokens: revoked history and other accounts are never read.
/// Most recently active first.
pub(super) const LIVE_BY_ACCOUNT_SQL: &str =
    "SELECT t.session_id, t.user_id, u.email, u.role, t.session_started_at, t.issued_at,
            t.user_agent, t.ip, a.idle_minutes, a.absolute_minutes
     FROM users u
     JOIN accounts a ON a.id = u.account_id
     JOIN refresh_tokens t ON t.user_id = u.id AND t.revoked_at IS NULL
     WHERE u.account_id = ?1 AND u.is_active = 1
     ORDER BY t.issued_at DESC, t.session_id";

/// One session of the account, by id: the account's users through `users_by_account`,
/// and for each one probe of the index over live tokens (keyed by user, then session).
pub(super) const LIVE_IN_ACCOUNT_SQL: &str =
    "SELECT t.session_id, t.user_id, u.email, u.role, t.session_started_at, t.issued_at,
            t.user_agent, t.ip, a.idle_minutes, a.absolute_minutes
     FROM users u
     JOIN accounts a ON a.id = u.account_id
     JOIN refresh_tokens t
       ON t.user_id = u.id AND t.session_id = ?1 AND t.revoked_at IS NULL
     WHERE u.account_id = ?2 AND u.is_active = 1
     ORDER BY t.issued_at DESC
     LIMIT 1";

fn live_from_row(r: &Row<'_>) -> Result<LiveSession, DbError> {
    Ok(LiveSession {
        session_id: r.uuid(0)?,
        user_id: r.uuid(1)?,
        email: r.text(2)?,
        role: r.text(3)?.parse().map_err(|e: String| DbError::Other(anyhow::anyhow!(e)))?,
        started_at: r.time(4)?,
        last_active_at: r.time(5)?,
        user_agent: r.opt_text(6)?,
        ip: r.opt_text(7)?,
        overrides: Overrides { idle_minutes: r.opt_i64(8)?, absolute_minutes: r.opt_i64(9)? },
    })
}

/// Every session of the account with a live token, most recently active first.
pub fn live_by_account(tx: &Tx<'_>, account_id: Uuid) -> Result<Vec<LiveSession>, DbError> {
    tx.query(LIVE_BY_ACCOUNT_SQL, &[&account_id.to_string()], live_from_row)
}

/// The session, if it has a live token and belongs to an active user of the account.
pub fn live_in_account(
    tx: &Tx<'_>,
    session_id: Uuid,
    account_id: Uuid,
) -> Result<Option<LiveSession>, DbError> {
    tx.query_opt(
        LIVE_IN_ACCOUNT_SQL,
        &[&TokenId::new(session_id), &account_id.to_string()],
        live_from_row,
    )
}
