//! `login_failures`: the login throttle's counts, one row per (email, client address)
//! pair that has failures in its current window. The rules are in `auth::throttle`; each
//! attempt costs one statement here, and none of them is held open while a password is
//! hashed.

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{OptionalExtension, params};

use super::{DbError, Tx, column, to_ms};

/// A pair's failures in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub failures: i64,
    /// When the window opened: the instant of its first failure.
    pub window_start: DateTime<Utc>,
}

pub const FIND_SQL: &str =
    "SELECT failures, window_start_ms FROM login_failures WHERE pair_key = ?1";

/// The pair's row, if it has one (its window may have closed since).
pub fn find(tx: &Tx<'_>, pair_key: &str) -> Result<Option<Failures>, DbError> {
    Ok(tx
        .conn()
        .prepare_cached(FIND_SQL)?
        .query_row([pair_key], |r| {
            Ok(Failures { failures: r.get(0)?, window_start: column::time(r, 1)? })
        })
        .optional()?)
}

/// One failure more within a window still open at `?4` (the instant one window before
/// now), or the first failure of a new window that opens at `?3` (now). The `CASE`s read
/// the row as it was before the update, in SQLite and PostgreSQL alike.
pub const RECORD_SQL: &str =
    "INSERT INTO login_failures (pair_key, email_key, failures, window_start_ms)
     VALUES (?1, ?2, 1, ?3)
     ON CONFLICT (pair_key) DO UPDATE SET
         failures = CASE WHEN login_failures.window_start_ms > ?4
                         THEN login_failures.failures + 1 ELSE 1 END,
         window_start_ms = CASE WHEN login_failures.window_start_ms > ?4
                                THEN login_failures.window_start_ms ELSE ?3 END
     RETURNING failures, window_start_ms";

/// Counts a failure for the pair, in one statement: a second process counting the same
/// pair at the same instant adds its own, never overwrites it. Returns the pair's count.
pub fn record(
    tx: &Tx<'_>,
    pair_key: &str,
    email_key: &str,
    now: DateTime<Utc>,
    window: TimeDelta,
) -> Result<Failures, DbError> {
    let opened_after = to_ms(now) - window.num_milliseconds();
    Ok(tx
        .conn()
        .prepare_cached(RECORD_SQL)?
        .query_row(params![pair_key, email_key, to_ms(now), opened_after], |r| {
            Ok(Failures { failures: r.get(0)?, window_start: column::time(r, 1)? })
        })?)
}

/// Forgets the pair's failures (a successful login). Returns the rows deleted (0 or 1).
pub fn clear(tx: &Tx<'_>, pair_key: &str) -> Result<usize, DbError> {
    Ok(tx
        .conn()
        .prepare_cached("DELETE FROM login_failures WHERE pair_key = ?1")?
        .execute([pair_key])?)
}

pub const CLEAR_EMAIL_SQL: &str = "DELETE FROM login_failures WHERE email_key = ?1";

/// Forgets the email's failures from every address (`sessiond user unlock`).
pub fn clear_email(tx: &Tx<'_>, email_key: &str) -> Result<usize, DbError> {
    Ok(tx.conn().execute(CLEAR_EMAIL_SQL, [email_key])?)
}

pub const DELETE_CLOSED_SQL: &str = "DELETE FROM login_failures WHERE pair_key IN
     (SELECT pair_key FROM login_failures WHERE window_start_ms <= ?1
      ORDER BY window_start_ms LIMIT ?2)";

/// Deletes up to `limit` rows whose window opened at or before `opened_before` (so has
/// closed), oldest first. Returns how many.
pub fn delete_closed(
    tx: &Tx<'_>,
    opened_before: DateTime<Utc>,
    limit: usize,
) -> Result<usize, DbError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(tx
        .conn()
        .prepare_cached(DELETE_CLOSED_SQL)?
        .execute(params![to_ms(opened_before), limit])?)
}

/// How many pairs have a row (for tests and the metrics).
pub fn count(tx: &Tx<'_>) -> Result<u64, DbError> {
    let n: i64 = tx.conn().query_row("SELECT COUNT(*) FROM login_failures", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
