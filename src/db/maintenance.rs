//! Pruning old refresh tokens: the statements behind `sessiond prune` and the server's
//! hourly prune (see `service::maintenance` for the rules).
//!
//! Candidates are found in read transactions, which never hold up a writer (WAL), and
//! deleted by rowid in short write transactions of at most one batch each. (`rowid` is
//! SQLite's implicit key; the PostgreSQL schema has a column of that name that plays its
//! part, so the statements are the same on both.)

use chrono::{DateTime, Utc};

use super::{DbError, Tx, to_ms};
use crate::policy::Overrides;

/// Where a scan of live tokens stopped: their session id and rowid (the order of the
/// partial index over live tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCursor {
    session_id: String,
    rowid: i64,
}

/// Where a scan of revoked tokens stopped: their revocation instant and rowid (the order
/// of the index over revoked tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedCursor {
    revoked_at_ms: i64,
    rowid: i64,
}

/// A live token found by the scan; whether its session is over is decided again when it
/// is deleted.
#[derive(Debug, Clone)]
pub struct LiveCandidate {
    pub rowid: i64,
    pub cursor: LiveCursor,
}

/// What the prune needs to know of a live token to apply the policy to it.
#[derive(Debug, Clone, Copy)]
pub struct LiveToken {
    pub session_started_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub overrides: Overrides,
}

/// Live tokens issued before `cutoff`, in index order after `after`, at most `limit`.
pub(super) const LIVE_ISSUED_BEFORE_SQL: &str = "SELECT rowid, session_id FROM refresh_tokens
     WHERE revoked_at IS NULL AND issued_at < ?1
       AND session_id >= ?2 AND (session_id > ?2 OR rowid > ?3)
     ORDER BY session_id, rowid
     LIMIT ?4";

pub fn live_issued_before(
    tx: &Tx<'_>,
    cutoff: DateTime<Utc>,
    after: Option<&LiveCursor>,
    limit: usize,
) -> Result<Vec<LiveCandidate>, DbError> {
    tx.query(
        LIVE_ISSUED_BEFORE_SQL,
        &[
            &to_ms(cutoff),
            // Every session id sorts after "": the first batch starts at the beginning.
            &after.map_or("", |c| c.session_id.as_str()),
            &after.map_or(0, |c| c.rowid),
            &i64::try_from(limit).unwrap_or(i64::MAX),
        ],
        |r| {
            let rowid = r.i64(0)?;
            Ok(LiveCandidate { rowid, cursor: LiveCursor { session_id: r.text(1)?, rowid } })
        },
    )
}

/// The token at `rowid` if it is still live, with its account's policy as it stands now.
pub fn live_token(tx: &Tx<'_>, rowid: i64) -> Result<Option<LiveToken>, DbError> {
    tx.query_opt(
        "SELECT t.session_started_at, t.issued_at, a.idle_minutes, a.absolute_minutes
         FROM refresh_tokens t
         JOIN users u ON u.id = t.user_id
         JOIN accounts a ON a.id = u.account_id
         WHERE t.rowid = ?1 AND t.revoked_at IS NULL",
        &[&rowid],
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
    pub rowid: i64,
    pub session_ended: bool,
    pub cursor: RevokedCursor,
}

/// Tokens revoked before `cutoff`, oldest first, after `after`, at most `limit`; each
/// with whether its session has neither a live token nor ended since the cutoff. A
/// session ends with the revoke of its last token (one never exchanged), the latest
/// revoke of the session. Served by the index over revoked tokens and, per session, the
/// indexes over live tokens and over the tokens that ended sessions.
pub(super) const REVOKED_BEFORE_SQL: &str = "SELECT t.rowid, t.revoked_at,
            NOT EXISTS (SELECT 1 FROM refresh_tokens s
                        WHERE s.session_id = t.session_id AND s.revoked_at IS NULL)
            AND NOT EXISTS (SELECT 1 FROM refresh_tokens s
                            WHERE s.session_id = t.session_id AND s.replaced_by IS NULL
                              AND s.revoked_at >= ?1)
     FROM refresh_tokens t
     WHERE t.revoked_at IS NOT NULL AND t.revoked_at < ?1 AND t.revoked_at >= ?2
       AND (t.revoked_at > ?2 OR t.rowid > ?3)
     ORDER BY t.revoked_at, t.rowid
     LIMIT ?4";

pub fn revoked_before(
    tx: &Tx<'_>,
    cutoff: DateTime<Utc>,
    after: Option<RevokedCursor>,
    limit: usize,
) -> Result<Vec<RevokedCandidate>, DbError> {
    let (after_ms, after_rowid) =
        after.map_or((i64::MIN, i64::MIN), |c| (c.revoked_at_ms, c.rowid));
    tx.query(
        REVOKED_BEFORE_SQL,
        &[&to_ms(cutoff), &after_ms, &after_rowid, &i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            let rowid = r.i64(0)?;
            Ok(RevokedCandidate {
                rowid,
                cursor: RevokedCursor { revoked_at_ms: r.i64(1)?, rowid },
                session_ended: r.bool(2)?,
            })
        },
    )
}

/// Deletes one token by rowid; 1 if it was there.
pub fn delete_token(tx: &Tx<'_>, rowid: i64) -> Result<usize, DbError> {
    tx.execute("DELETE FROM refresh_tokens WHERE rowid = ?1", &[&rowid])
}
