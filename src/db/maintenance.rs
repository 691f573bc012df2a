//! Pruning old refresh tokens: the statements behind `sessiond prune` and the server's
//! hourly prune (see `service::maintenance` for the rules).
//!
//! Candidates are found in read transactions, which never hold up a writer (WAL), and
//! deleted by key in short write transactions of at most one batch each. A token's key is
//! the table's primary key (user, session, id) since schema version 6: on SQLite, where the
//! table is clustered by it, deleting in key order deletes neighbours together.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DbError, Row, TokenId, Tx, to_ms};
use crate::policy::Overrides;

/// A token's key: the primary key of the token table, in its order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenKey {
    user_id: String,
    session_id: Uuid,
    id: Uuid,
}

impl TokenKey {
    /// The key from columns `i` (user), `i + 1` (session) and `i + 2` (id).
    fn from_row(r: &Row<'_>, i: usize) -> Result<TokenKey, DbError> {
        Ok(TokenKey { user_id: r.text(i)?, session_id: r.uuid(i + 1)?, id: r.uuid(i + 2)? })
    }

    /// The key's three parameters, in its order.
    fn args(&self) -> (&String, TokenId, TokenId) {
        (&self.user_id, TokenId::new(self.session_id), TokenId::new(self.id))
    }
}

/// Where a scan of live tokens stopped: the last token's key (the order of the partial
/// index over live tokens).
pub type LiveCursor = TokenKey;

/// Where a scan of revoked tokens stopped: their revocation instant and id (the order of
/// the index over revoked tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCursor {
    revoked_at_ms: i64,
    id: Uuid,
}

/// A live token found by the scan; whether its session is over is decided again when it
/// is deleted. Its key is also the scan's cursor.
#[derive(Debug, Clone)]
pub struct LiveCandidate {
    pub key: TokenKey,
}

/// What the prune needs to know of a live token to apply the policy to it.
#[derive(Debug, Clone, Copy)]
pub struct LiveToken {
    pub session_started_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub overrides: Overrides,
}

/// Live tokens issued before `cutoff`, in index order after `after`, at most `limit`.
pub(super) const LIVE_ISSUED_BEFORE_SQL: &str = "SELECT user_id, session_id, id FROM refresh_tokens
     WHERE revoked_at IS NULL AND issued_at < ?1
       AND (user_id, session_id, id) > (?2, ?3, ?4)
     ORDER BY user_id, session_id, id
     LIMIT ?5";

pub fn live_issued_before(
    tx: &Tx<'_>,
    cutoff: DateTime<Utc>,
    after: Option<&LiveCursor>,
    limit: usize,
) -> Result<Vec<LiveCandidate>, DbError> {
    // Every key sorts after ("", nil, nil) (a user id is never empty): the first batch
    // starts at the beginning.
    let start = TokenKey { user_id: String::new(), session_id: Uuid::nil(), id: Uuid::nil() };
    let (user, session, id) = after.unwrap_or(&start).args();
    tx.query(
        LIVE_ISSUED_BEFORE_SQL,
        &[&to_ms(cutoff), user, &session, &id, &i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| Ok(LiveCandidate { key: TokenKey::from_row(r, 0)? }),
    )
}

/// The token `key` if it is still live, with its account's policy as it stands now.
pub fn live_token(tx: &Tx<'_>, key: &TokenKey) -> Result<Option<LiveToken>, DbError> {
    let (user, session, id) = key.args();
    tx.query_opt(
        "SELECT t.session_started_at, t.issued_at, a.idle_minutes, a.absolute_minutes
         FROM refresh_tokens t
         JOIN users u ON u.id = t.user_id
         JOIN accounts a ON a.id = u.account_id
         WHERE t.user_id = ?1 AND t.session_id = ?2 AND t.id = ?3 AND t.revoked_at IS NULL",
        &[user, &session, &id],
        |r| {
            Ok(LiveToken {
                session_started_at: r.time(0)?,
                issued_at: r.time(1)?,
                overrides: Overrides {
                    idle_minutes: r.opt_i64(2)?,
                    absolute_minutes: r.opt_i64(3)?,
                },
            })
        },
    )
}

/// A revoked token found by the scan, with whether its whole session ended before the
/// cutoff.
#[derive(Debug, Clone)]
pub struct RevokedCandidate {
    pub key: TokenKey,
    pub session_ended: bool,
    pub cursor: RevokedCursor,
}

/// Tokens revoked before `cutoff`, oldest first, after `after`, at most `limit`; each
/// with whether its session has neither a live token nor ended since the cutoff. A
/// session ends with the revoke of its last token (one never exchanged), the latest
/// revoke of the session. Served by the index over revoked tokens and, per session, the
/// indexes over live tokens and over the tokens that ended sessions (both keyed by user
/// and session).
pub(super) const REVOKED_BEFORE_SQL: &str = "SELECT t.user_id, t.session_id, t.id, t.revoked_at,
            NOT EXISTS (SELECT 1 FROM refresh_tokens s
                        WHERE s.user_id = t.user_id AND s.session_id = t.session_id
                          AND s.revoked_at IS NULL)
            AND NOT EXISTS (SELECT 1 FROM refresh_tokens s
                            WHERE s.user_id = t.user_id AND s.session_id = t.session_id
                              AND s.replaced_by IS NULL AND s.revoked_at >= ?1)
     FROM refresh_tokens t
     WHERE t.revoked_at IS NOT NULL AND t.revoked_at < ?1
       AND (t.revoked_at, t.id) > (?2, ?3)
     ORDER BY t.revoked_at, t.id
     LIMIT ?4";

pub fn revoked_before(
    tx: &Tx<'_>,
    cutoff: DateTime<Utc>,
    after: Option<&RevokedCursor>,
    limit: usize,
) -> Result<Vec<RevokedCandidate>, DbError> {
    // Every revoked token sorts after (i64::MIN, nil).
    let (after_ms, after_id) = after.map_or((i64::MIN, Uuid::nil()), |c| (c.revoked_at_ms, c.id));
    let after_id = TokenId::new(after_id);
    tx.query(
        REVOKED_BEFORE_SQL,
        &[&to_ms(cutoff), &after_ms, &after_id, &i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            let key = TokenKey::from_row(r, 0)?;
            let cursor = RevokedCursor { revoked_at_ms: r.i64(3)?, id: key.id };
            Ok(RevokedCandidate { key, cursor, session_ended: r.bool(4)? })
        },
    )
}

/// Deletes one token by key; 1 if it was there.
pub fn delete_token(tx: &Tx<'_>, key: &TokenKey) -> Result<usize, DbError> {
    let (user, session, id) = key.args();
    tx.execute(
        "DELETE FROM refresh_tokens WHERE user_id = ?1 AND session_id = ?2 AND id = ?3",
        &[user, &session, &id],
    )
}
