//! Storage: the only module that knows SQL or rusqlite.
//!
//! Every database call goes through [`Db::read`] or [`Db::write`]: the closure runs on
//! tokio's blocking pool, takes its pooled connection there, and runs inside one
//! transaction (IMMEDIATE for writes, so a writer never fails on a lock upgrade).
//! The per-table modules take a [`Tx`] and the instant `now`; they never read a clock.

pub mod accounts;
pub mod audit_events;
pub mod backup;
pub mod login_failures;
pub mod maintenance;
mod pool;
mod preflight;
pub mod refresh_tokens;
pub mod sessions;
pub mod users;

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;
use tokio::sync::OwnedSemaphorePermit;

use crate::revocation::Reason;

pub use pool::{Db, OpenError, Synchronous};

/// What storage can fail with. Only `error.rs` turns these into HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Other(anyhow::Error::new(e).context("sqlite"))
    }
}

/// One open transaction, handed to the storage functions of each table. The wrapper keeps
/// rusqlite's types inside this module tree.
pub struct Tx<'c> {
    tx: rusqlite::Transaction<'c>,
    /// Revocations made in this transaction, counted in the metrics once it commits.
    revoked: RefCell<Vec<(Reason, usize)>>,
}

impl Tx<'_> {
    fn conn(&self) -> &rusqlite::Connection {
        &self.tx
    }

    /// Notes `count` tokens revoked for `cause`; they reach the metrics only if this
    /// transaction commits.
    pub fn count_revoked(&self, cause: Reason, count: usize) {
        self.revoked.borrow_mut().push((cause, count));
    }
}

impl Db {
    /// Runs `f` in a read transaction (one consistent snapshot) on the blocking pool.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run(TransactionBehavior::Deferred, None, f).await
    }

    /// Runs `f` in an IMMEDIATE write transaction on the blocking pool. It commits when `f`
    /// returns `Ok` and rolls back otherwise.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let queued = std::time::Instant::now();
        let permit = self.writer.clone().acquire_owned().await.map_err(|e| {
            E::from(DbError::Other(anyhow::Error::new(e).context("database writer queue closed")))
        })?;
        self.metrics.writer_wait(queued.elapsed());
        // The permit travels with the work: it is released when the transaction has ended
        // (committed or rolled back), even if the request that asked for it has gone away.
        self.run(TransactionBehavior::Immediate, Some(permit), f).await
    }

    /// Answers once the database does.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.read(|tx| Ok(tx.conn().query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    /// Runs `f` in a transaction on the blocking pool. `permit` (the writer queue's) is
    /// held until the transaction has ended: released before the commit, the next writer
    /// would begin while this one still commits, meet SQLite's lock and sleep in its busy
    /// handler (one sleep per commit under load, strace; docs/PERFORMANCE.md).
    async fn run<T, E, F>(
        &self,
        behavior: TransactionBehavior,
        permit: Option<OwnedSemaphorePermit>,
        f: F,
    ) -> Result<T, E>
    where
        F: FnOnce(&Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        let span = tracing::Span::current();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _entered = span.enter();
            let asked = std::time::Instant::now();
            let mut conn = db.connection().map_err(E::from)?;
            db.metrics.pool_wait(asked.elapsed());
            let tx = conn.transaction_with_behavior(behavior).map_err(DbError::from)?;
            let tx = Tx { tx, revoked: RefCell::default() };
            let out = f(&tx)?;
            let Tx { tx, revoked } = tx;
            tx.commit().map_err(DbError::from)?;
            for (cause, count) in revoked.into_inner() {
                db.metrics.revoked(cause, count);
            }
            Ok(out)
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(E::from(DbError::Other(
                anyhow::Error::new(e).context("database task was cancelled"),
            ))),
        }
    }
}

/// Instants are stored as milliseconds since the Unix epoch.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Column readers that convert stored text and numbers to domain types inside
/// rusqlite's own error type, so row closures build their structs in one go.
pub(crate) mod column {
    use chrono::{DateTime, TimeZone, Utc};
    use rusqlite::Row;
    use rusqlite::types::Type;
    use uuid::Uuid;

    fn bad(
        idx: usize,
        ty: Type,
        e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(idx, ty, e.into())
    }

    fn parse_uuid(idx: usize, text: &str) -> rusqlite::Result<Uuid> {
        Uuid::parse_str(text).map_err(|e| bad(idx, Type::Text, e))
    }

    fn instant(idx: usize, ms: i64) -> rusqlite::Result<DateTime<Utc>> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| bad(idx, Type::Integer, format!("instant {ms} out of range")))
    }

    /// UUIDs are stored as their hyphenated text.
    pub fn uuid(r: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
        parse_uuid(idx, &r.get::<_, String>(idx)?)
    }

    pub fn opt_uuid(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Uuid>> {
        r.get::<_, Option<String>>(idx)?.map(|t| parse_uuid(idx, &t)).transpose()
    }

    pub fn time(r: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
        instant(idx, r.get(idx)?)
    }

    pub fn opt_time(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
        r.get::<_, Option<i64>>(idx)?.map(|ms| instant(idx, ms)).transpose()
    }

    /// JSON stored as text.
    pub fn json(r: &Row<'_>, idx: usize) -> rusqlite::Result<serde_json::Value> {
        serde_json::from_str(&r.get::<_, String>(idx)?).map_err(|e| bad(idx, Type::Text, e))
    }
}

#[cfg(test)]
mod tests;
