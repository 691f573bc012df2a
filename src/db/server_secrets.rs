//! `server_secrets`: secrets every process of a deployment must share. On PostgreSQL,
//! with `auth.jwt_secret` empty, the signing secret generated on first start is kept here
//! (several processes sign and verify with the same one). SQLite keeps it in a 0600 file
//! beside the database instead (`auth::jwt`), and never reads this table.

use super::{DbError, Tx};

/// The secret called `name`: the one stored, or else `candidate`, stored now. Processes
/// starting together all answer the same one (the first to commit wins).
pub fn get_or_insert(tx: &Tx<'_>, name: &str, candidate: &str) -> Result<String, DbError> {
    tx.execute(
        "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        &[&name, &candidate],
    )?;
    tx.query_one("SELECT value FROM server_secrets WHERE name = ?1", &[&name], |r| r.text(0))
}
