//! `audit_events`: one row for every change, written in the change's own transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DbError, Row, Tx, to_ms};

pub struct NewEvent<'a> {
    pub account_id: Uuid,
    /// Who did it; `None` for the operator's CLI.
    pub user_id: Option<Uuid>,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug)]
pub struct Event {
    pub id: Uuid,
    pub action: String,
    pub user_id: Option<Uuid>,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub details: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Inserts an event and returns its id.
pub fn insert(tx: &Tx<'_>, e: &NewEvent<'_>, now: DateTime<Utc>) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    insert_with_id(tx, id, e, now)?;
    Ok(id)
}

/// Inserts an event under an id chosen beforehand: a revoking statement stamps its rows
/// with the id first, and the event, which records how many rows that was, follows.
pub fn insert_with_id(
    tx: &Tx<'_>,
    id: Uuid,
    e: &NewEvent<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO audit_events
           (id, account_id, user_id, action, resource_type, resource_id, details, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            &id.to_string(),
            &e.account_id.to_string(),
            &e.user_id.map(|u| u.to_string()),
            &e.action,
            &e.resource_type,
            &e.resource_id,
            &e.details.to_string(),
            &to_ms(now),
        ],
    )?;
    Ok(())
}

fn event_from_row(r: &Row<'_>) -> Result<Event, DbError> {
    Ok(Event {
        id: r.uuid(0)?,
        action: r.text(1)?,
        user_id: r.opt_uuid(2)?,
        resource_type: r.text(3)?,
        resource_id: r.opt_text(4)?,
        details: r.json(5)?,
        created_at: r.time(6)?,
    })
}

/// A page of the account's events, newest first, strictly older than `before` when
/// given. An unknown `before` (or another account's) yields an empty page.
pub fn page(
    tx: &Tx<'_>,
    account_id: Uuid,
    before: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Event>, DbError> {
    // CAST: PostgreSQL cannot infer the type of a parameter from `?2 IS NULL` alone.
    tx.query(
        "SELECT id, action, user_id, resource_type, resource_id, details, created_at
         FROM audit_events
         WHERE account_id = ?1
           AND (CAST(?2 AS TEXT) IS NULL OR seq < (SELECT seq FROM audit_events
                                                   WHERE id = ?2 AND account_id = ?1))
         ORDER BY seq DESC
         LIMIT ?3",
        &[&account_id.to_string(), &before.map(|b| b.to_string()), &i64::from(limit)],
        event_from_row,
    )
}
