//! `accounts`: tenants and their session-policy overrides.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DbError, Tx, to_ms};
use crate::policy::Overrides;

pub fn insert(tx: &Tx<'_>, id: Uuid, name: &str, now: DateTime<Utc>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
        &[&id.to_string(), &name, &to_ms(now)],
    )?;
    Ok(())
}

pub fn exists(tx: &Tx<'_>, id: Uuid) -> Result<bool, DbError> {
    let found =
        tx.query_opt("SELECT 1 FROM accounts WHERE id = ?1", &[&id.to_string()], |_| Ok(()))?;
    Ok(found.is_some())
}

pub fn overrides(tx: &Tx<'_>, id: Uuid) -> Result<Overrides, DbError> {
    tx.query_opt(
        "SELECT idle_minutes, absolute_minutes FROM accounts WHERE id = ?1",
        &[&id.to_string()],
        |r| Ok(Overrides { idle_minutes: r.opt_i64(0)?, absolute_minutes: r.opt_i64(1)? }),
    )?
    .ok_or(DbError::NotFound)
}

pub fn set_overrides(tx: &Tx<'_>, id: Uuid, o: Overrides) -> Result<(), DbError> {
    let changed = tx.execute(
        "UPDATE accounts SET idle_minutes = ?2, absolute_minutes = ?3 WHERE id = ?1",
        &[&id.to_string(), &o.idle_minutes, &o.absolute_minutes],
    )?;
    if changed == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
