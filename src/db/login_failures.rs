//! `login_failures`: the login throttle's counts, one row per (email, client address)
//! pair that has failures in its current window. The rules are in `auth::throttle`; each
//! attempt costs one statement here, and none of them is held open while a password is
//! hashed. Every statement is the same text on SQLite and PostgreSQL.

use chrono::{DateTime, TimeDelta, Utc};

use super::{DbError, Row, Tx, to_ms};

/// A pair's failures in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub failures: i64,
    /// When the window opened: the instant of its first failure.
    pub window_start: DateTime<Utc>,
}

fn failures(r: &Row<'_>) -> Result<Failures, DbError> {
    Ok(Failures { failures: r.i64(0)?, window_start: r.time(1)? })
}

pub const FIND_SQL: &str =
    "SELECT failures, window_start_ms FROM login_failures WHERE pair_key = ?1";

/// The pair's row, if it has one (its window may have closed since).
pub fn find(tx: &Tx<'_>, pair_key: &str) -> Result<Option<Failures>, DbError> {
    tx.query_opt(FIND_SQL, &[&pair_key], failures)
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
    tx.query_one(RECORD_SQL, &[&pair_key, &email_key, &to_ms(now), &opened_after], failures)
}

/// Forgets the pair's failures (a successful login). Returns the rows deleted (0 or 1).
pub fn clear(tx: &Tx<'_>, pair_key: &str) -> Result<usize, DbError> {
    tx.execute("DELETE FROM login_failures WHERE pair_key = ?1", &[&pair_key])
}

pub const CLEAR_EMAIL_SQL: &str = "DELETE FROM login_failures WHERE email_key = ?1";

/// Forgets the email's failures from every address (`sessiond user unlock`).
pub fn clear_email(tx: &Tx<'_>, email_key: &str) -> Result<usize, DbError> {
    tx.execute(CLEAR_EMAIL_SQL, &[&email_key])
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
    tx.execute(DELETE_CLOSED_SQL, &[&to_ms(opened_before), &limit])
}

/// How many pairs have a row (for tests).
pub fn count(tx: &Tx<'_>) -> Result<u64, DbError> {
    let n = tx.query_one("SELECT COUNT(*) FROM login_failures", &[], |r| r.i64(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
