//! Checks run on a database file before anything writes to it — before the WAL switch,
//! before migrations — so that a file sessiond must not run on is refused with one clear
//! line and left exactly as it was:
//!
//! - a file that is not a SQLite database, or is damaged (truncated, overwritten):
//!   SQLite's own header checks, then `PRAGMA quick_check`;
//! - a database whose migration history records a version newer than this binary knows
//!   (written by a newer sessiond): refinery would stop at it too, but with a message
//!   about files, and only after touching the history table;
//! - a database that holds tables but no sessiond migration history (another
//!   application's file): migrating it would add sessiond's tables to it.
//!
//! `quick_check` reads every page: measured at about 0.7 s for a 360 MB file, and well
//! under a millisecond for the small databases of tests and small deployments.

use rusqlite::{Connection, OptionalExtension};

use super::OpenError;

/// refinery's history table.
const HISTORY_TABLE: &str = "refinery_schema_history";

/// Refuses a database sessiond must not migrate or serve. Reads only.
pub(super) fn check(conn: &Connection, path: &str, known_version: i64) -> Result<(), OpenError> {
    let corrupt =
        |e: rusqlite::Error| OpenError::Corrupt { path: path.to_owned(), reason: reason(&e) };
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
        .map_err(corrupt)?;
    if tables == 0 {
        return Ok(()); // A new, empty database.
    }
    let history: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [HISTORY_TABLE],
            |r| r.get(0),
        )
        .optional()
        .map_err(corrupt)?;
    if history.is_none() {
        return Err(OpenError::Foreign { path: path.to_owned() });
    }
    let found: Option<i64> = conn
        .query_row(&format!("SELECT max(version) FROM {HISTORY_TABLE}"), [], |r| r.get(0))
        .map_err(corrupt)?;
    if let Some(found) = found.filter(|v| *v > known_version) {
        return Err(OpenError::NewerSchema { path: path.to_owned(), found, known: known_version });
    }
    let verdict: String =
        conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(corrupt)?;
    if verdict != "ok" {
        return Err(OpenError::Corrupt { path: path.to_owned(), reason: one_line(&verdict) });
    }
    Ok(())
}

/// SQLite's own message, once (rusqlite's `Display` repeats it with the error code).
pub(super) fn reason(e: &rusqlite::Error) -> String {
    one_line(&match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) if !msg.is_empty() => msg.clone(),
        // Its `Display` quotes the whole statement: a migration, many lines long.
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        rusqlite::Error::SqliteFailure(code, _) => code.to_string(),
        other => other.to_string(),
    })
}

/// What refinery was doing and SQLite's reason, in one line (refinery's own `Display`
/// quotes the failing migration's SQL).
pub(super) fn migration_reason(e: &refinery::Error) -> String {
    use std::error::Error as _;
    let doing = match e.kind() {
        refinery::error::Kind::Connection(doing, _) => doing.clone(),
        other => return one_line(&other.to_string()),
    };
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(sqlite) = c.downcast_ref::<rusqlite::Error>() {
            return format!("{}: {}", one_line(&doing), reason(sqlite));
        }
        cause = c.source();
    }
    one_line(&e.to_string())
}

/// The process reports a failed start in one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
