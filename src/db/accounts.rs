//! `accounts`: tenants and their session-policy overrides.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::{DbError, Tx, to_ms};
use crate::policy::Overrides;

pub fn insert(tx: &Tx<'_>, id: Uuid, name: &str, now: DateTime<Utc>) -> Result<(), DbError> {
    tx.conn().execute(
        "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![id.to_string(), name, to_ms(now)],
    )?;
    Ok(())
}

pub fn exists(tx: &Tx<'_>, id: Uuid) -> Result<bool, DbError> {
    let found = tx
        .conn()
        .prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")?
        .query_row([id.to_string()], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

pub fn overrides(tx: &Tx<'_>, id: Uuid) -> Result<Overrides, DbError> {
    tx.conn()
        .prepare_cached("SELECT idle_minutes, absolute_minutes FROM accounts WHERE id = ?1")?
        .query_row([id.to_string()], |r| {
            Ok(Overrides { idle_minutes: r.get(0)?, absolute_minutes: r.get(1)? })
        })
        .optional()?
        .ok_or(DbError::NotFound)
}

pub fn set_overrides(tx: &Tx<'_>, id: Uuid, o: Overrides) -> Result<(), DbError> {
    let changed = tx.conn().execute(
        "UPDATE accounts SET idle_minutes = ?2, absolute_minutes = ?3 WHERE id = ?1",
        params![id.to_string(), o.idle_minutes, o.absolute_minutes],
    )?;
    if changed == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
