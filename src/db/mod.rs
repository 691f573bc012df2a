//! Storage: the only module that knows SQL, rusqlite or the PostgreSQL client.
//!
//! Every database call goes through [`Db::read`] or [`Db::write`]: the closure runs on
//! tokio's blocking pool, takes its pooled connection there, and runs inside one
//! transaction (IMMEDIATE for writes on SQLite, so a writer never fails on a lock
//! upgrade; SERIALIZABLE on PostgreSQL, retried as a whole on a serialization failure).
//! The per-table modules take a [`Tx`] and the instant `now`; they never read a clock.
//!
//! Two dialects, one seam: a [`Tx`] wraps either backend's transaction, and the table
//! modules write each statement once, with `?N` parameters (rewritten to `$N` for
//! PostgreSQL when it is first prepared), bound through [`Arg`] and read through [`Row`].
//! Both schemas store the same representation — UUIDs as text, instants as 64-bit
//! milliseconds, flags as 0/1 integers, JSON as text, hashes as bytes — so the statements
//! are the same text on both. One exception: on SQLite the token table's own ids (token,
//! session, successor) are 16-byte blobs since schema version 7, bound through
//! [`TokenId`], which binds text on PostgreSQL. Where the dialects differ, the
//! difference is kept beside the statement.

pub mod accounts;
pub mod audit_events;
pub mod backup;
mod checkpoint;
pub mod login_failures;
pub mod maintenance;
mod pg;
mod pool;
mod preflight;
pub mod refresh_tokens;
pub mod server_secrets;
pub mod sessions;
pub mod users;
mod writer;

use std::cell::{Cell, RefCell};

use crate::revocation::Reason;
use chrono::{DateTime, Utc};

pub use pool::{Backend, Db, OpenError, Synchronous};
pub use writer::MAX_GROUP;

/// What storage can fail with. Only `error.rs` turns these into HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached (a PostgreSQL server that went away): the request
    /// may succeed later; the pool reconnects by itself.
    #[error("database unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && f.code == rusqlite::ErrorCode::ConstraintViolation
            && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        {
            return DbError::Conflict("unique constraint".into());
        }
        DbError::Other(anyhow::Error::new(e).context("sqlite"))
    }
}

/// A statement parameter, bindable on both backends. Implemented for the types the
/// table modules bind: `i64`, `String`, `&str`, byte slices and vectors, and `Option`s
/// of them (`NULL`). No `bool`: flags are 0/1 integers on both backends.
pub(crate) trait Arg: Sync {
    fn sqlite(&self) -> &dyn rusqlite::ToSql;
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Arg for T {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        self
    }
}

/// A token's or session's id as a parameter: 16 bytes on SQLite, where the token table
/// stores its own ids (`id`, `session_id`, `replaced_by`) as `BLOB`s since schema
/// version 7 (16 bytes where the text takes 36: the clustered key shrinks from 108 to 68
/// bytes, in the table and in every index entry), and the hyphenated text on
/// PostgreSQL, whose columns stay `TEXT`. `None` binds `NULL`. Any statement that
/// compares those columns binds them through this, never as a string: a string never
/// equals a blob, and STRICT rejects one stored in a `BLOB` column.
pub(crate) struct TokenId {
    bytes: Option<[u8; 16]>,
    text: Option<String>,
}

impl TokenId {
    pub fn new(id: uuid::Uuid) -> TokenId {
        TokenId::opt(Some(id))
    }

    pub fn opt(id: Option<uuid::Uuid>) -> TokenId {
        TokenId { bytes: id.map(|i| *i.as_bytes()), text: id.map(|i| i.to_string()) }
    }
}

impl Arg for TokenId {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        &self.bytes
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        &self.text
    }
}

/// One result row of either backend.
pub(crate) enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

fn column_error(idx: usize, e: impl std::fmt::Display) -> DbError {
    DbError::Other(anyhow::anyhow!("reading column {idx}: {e}"))
}

impl Row<'_> {
    pub fn i64(&self, idx: usize) -> Result<i64, DbError> {
        self.opt_i64(idx)?.ok_or_else(|| column_error(idx, "unexpected NULL"))
    }

    pub fn opt_i64(&self, idx: usize) -> Result<Option<i64>, DbError> {
        match self {
            Row::Sqlite(r) => r.get(idx).map_err(|e| column_error(idx, e)),
            Row::Pg(r) => r.try_get(idx).map_err(|e| column_error(idx, e)),
        }
    }

    /// A flag: a 0/1 integer column, or a boolean expression (PostgreSQL's `EXISTS`).
    pub fn bool(&self, idx: usize) -> Result<bool, DbError> {
        match self {
            Row::Sqlite(r) => r.get(idx).map_err(|e| column_error(idx, e)),
            Row::Pg(r)
                if r.columns().get(idx).map(|c| c.type_())
                    == Some(&postgres::types::Type::BOOL) =>
            {
                r.try_get(idx).map_err(|e| column_error(idx, e))
            }
            Row::Pg(_) => Ok(self.i64(idx)? != 0),
        }
    }

    pub fn text(&self, idx: usize) -> Result<String, DbError> {
        self.opt_text(idx)?.ok_or_else(|| column_error(idx, "unexpected NULL"))
    }

    pub fn opt_text(&self, idx: usize) -> Result<Option<String>, DbError> {
        match self {
            Row::Sqlite(r) => r.get(idx).map_err(|e| column_error(idx, e)),
            Row::Pg(r) => r.try_get(idx).map_err(|e| column_error(idx, e)),
        }
    }

    /// UUIDs are stored as their hyphenated text, but for the token table's own ids on
    /// SQLite: 16 bytes (see [`TokenId`]).
    pub fn uuid(&self, idx: usize) -> Result<uuid::Uuid, DbError> {
        self.opt_uuid(idx)?.ok_or_else(|| column_error(idx, "unexpected NULL"))
    }

    pub fn opt_uuid(&self, idx: usize) -> Result<Option<uuid::Uuid>, DbError> {
        use rusqlite::types::ValueRef;
        let parsed = match self {
            Row::Sqlite(r) => match r.get_ref(idx).map_err(|e| column_error(idx, e))? {
                ValueRef::Null => return Ok(None),
                ValueRef::Blob(b) => uuid::Uuid::from_slice(b),
                ValueRef::Text(t) => uuid::Uuid::try_parse_ascii(t),
                other => return Err(column_error(idx, format!("a UUID of type {other:?}"))),
            },
            Row::Pg(_) => match self.opt_text(idx)? {
                None => return Ok(None),
                Some(t) => uuid::Uuid::parse_str(&t),
            },
        };
        parsed.map(Some).map_err(|e| column_error(idx, e))
    }

    /// Instants are stored as milliseconds since the Unix epoch.
    pub fn time(&self, idx: usize) -> Result<DateTime<Utc>, DbError> {
        instant(idx, self.i64(idx)?)
    }

    pub fn opt_time(&self, idx: usize) -> Result<Option<DateTime<Utc>>, DbError> {
        self.opt_i64(idx)?.map(|ms| instant(idx, ms)).transpose()
    }

    /// JSON stored as text.
    pub fn json(&self, idx: usize) -> Result<serde_json::Value, DbError> {
        serde_json::from_str(&self.text(idx)?).map_err(|e| column_error(idx, e))
    }
}

fn instant(idx: usize, ms: i64) -> Result<DateTime<Utc>, DbError> {
    use chrono::TimeZone;
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| column_error(idx, format!("instant {ms} out of range")))
}

/// Instants are stored as milliseconds since the Unix epoch.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// One open transaction, handed to the storage functions of each table. The wrapper keeps
/// the backends' types inside this module tree.
pub struct Tx<'c> {
    inner: TxInner<'c>,
    /// Revocations made in this transaction, counted in the metrics once it commits.
    revoked: RefCell<Vec<(Reason, usize)>>,
    /// Set when a statement failed in a way that running the whole transaction again may
    /// cure (PostgreSQL: a serialization failure or deadlock, or a connection lost before
    /// the commit). [`Db::run`] then retries the closure, a bounded number of times.
    retry: Cell<bool>,
    /// Set when any statement failed. On PostgreSQL a failed statement aborts the whole
    /// transaction and its COMMIT silently rolls back: a closure that swallowed the error
    /// and returned `Ok` must not be reported as committed.
    failed: Cell<bool>,
}

enum TxInner<'c> {
    Sqlite(rusqlite::Transaction<'c>),
    Pg(RefCell<pg::PgTx<'c>>),
}

impl Tx<'_> {
    /// Notes `count` tokens revoked for `cause`; they reach the metrics only if this
    /// transaction commits.
    pub fn count_revoked(&self, cause: Reason, count: usize) {
        self.revoked.borrow_mut().push((cause, count));
    }

    /// The SQLite connection, for SQLite-only work (tests of query plans).
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            TxInner::Sqlite(tx) => Some(tx),
            TxInner::Pg(_) => None,
        }
    }

    fn pg_error(&self, e: postgres::Error) -> DbError {
        self.failed.set(true);
        let (err, retry) = pg::classify(e);
        if retry {
            self.retry.set(true);
        }
        err
    }

    /// Runs one statement; the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, args: &[&dyn Arg]) -> Result<usize, DbError> {
        match &self.inner {
            TxInner::Sqlite(tx) => {
                let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.sqlite()).collect();
                Ok(tx.prepare_cached(sql)?.execute(params.as_slice())?)
            }
            TxInner::Pg(tx) => {
                let params: Vec<_> = args.iter().map(|a| a.pg()).collect();
                let n = tx.borrow_mut().execute(sql, &params).map_err(|e| self.pg_error(e))?;
                usize::try_from(n).map_err(|e| DbError::Other(e.into()))
            }
        }
    }

    /// Runs a query and reads every row with `f`.
    pub(crate) fn query<T>(
        &self,
        sql: &str,
        args: &[&dyn Arg],
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        match &self.inner {
            TxInner::Sqlite(tx) => {
                let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.sqlite()).collect();
                let mut stmt = tx.prepare_cached(sql)?;
                let mut rows = stmt.query(params.as_slice())?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            TxInner::Pg(tx) => {
                let params: Vec<_> = args.iter().map(|a| a.pg()).collect();
                let rows = tx.borrow_mut().query(sql, &params).map_err(|e| self.pg_error(e))?;
                rows.iter().map(|r| f(&Row::Pg(r))).collect()
            }
        }
    }

    /// Runs a query and reads its first row, if any, with `f`.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        match &self.inner {
            TxInner::Sqlite(tx) => {
                let params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.sqlite()).collect();
                let mut stmt = tx.prepare_cached(sql)?;
                let mut rows = stmt.query(params.as_slice())?;
                match rows.next()? {
                    Some(r) => Ok(Some(f(&Row::Sqlite(r))?)),
                    None => Ok(None),
                }
            }
            TxInner::Pg(tx) => {
                let params: Vec<_> = args.iter().map(|a| a.pg()).collect();
                let rows = tx.borrow_mut().query(sql, &params).map_err(|e| self.pg_error(e))?;
                rows.first().map(|r| f(&Row::Pg(r))).transpose()
            }
        }
    }

    /// Runs a query that always answers one row (an aggregate) and reads it with `f`.
    pub(crate) fn query_one<T>(
        &self,
        sql: &str,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, args, f)?
            .ok_or_else(|| DbError::Other(anyhow::anyhow!("a query answered no row: {sql}")))
    }
}

/// A claim from [`Db::try_lease`], given up when dropped.
pub struct Lease(#[allow(dead_code)] Option<pg::PgLease>);

/// How many times a transaction is run in all when PostgreSQL reports a serialization
/// failure or deadlock (or loses the connection before the commit).
const MAX_ATTEMPTS: u32 = 12;

impl Db {
    /// Runs `f` in a read transaction (one consistent snapshot) on the blocking pool.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_read(f).await
    }

    /// Runs `f` in a write transaction on the blocking pool: IMMEDIATE on SQLite,
    /// SERIALIZABLE on PostgreSQL, after the writes queued before it (see `writer.rs`:
    /// several queued writes share one transaction and one commit, each in a savepoint of
    /// its own). Answers once the commit holding `f`'s changes has succeeded; when `f`
    /// fails, its changes are rolled back and nobody else's. `f` may run more than once
    /// (PostgreSQL's serialization failures are retried; a group whose commit failed runs
    /// each write again alone): it must be safe to repeat, which it is when everything it
    /// does is inside the transaction.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (job, answer) = writer::Pending::new(f);
        if self.writer.push(Box::new(job)) {
            // Nobody is taking writes off the queue: this one starts. The drain goes on
            // even if the request that started it has gone away.
            let db = self.clone();
            tokio::task::spawn_blocking(move || db.drain_writes());
        }
        match answer.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(E::from(DbError::Other(anyhow::anyhow!(
                "the database writer stopped before answering"
            )))),
        }
    }

    /// Claims the housekeeping called `name` for this process, if no other process of the
    /// deployment holds it: `None` means another one is doing it now. On PostgreSQL an
    /// advisory lock, held (on a connection of its own) until the [`Lease`] is dropped;
    /// SQLite has one server per file and nothing to claim.
    pub async fn try_lease(&self, name: &'static str) -> Result<Option<Lease>, DbError> {
        if self.backend() == Backend::Sqlite {
            return Ok(Some(Lease(None)));
        }
        let db = self.clone();
        tokio::task::spawn_blocking(move || match db.connection()? {
            pool::Conn::Pg(conn) => {
                let lease = pg::PgLease::try_take(conn, name).map_err(|e| pg::classify(e).0)?;
                Ok(lease.map(|l| Lease(Some(l))))
            }
            pool::Conn::Sqlite(_) => Ok(Some(Lease(None))),
        })
        .await
        .map_err(|e| DbError::Other(anyhow::Error::new(e).context("taking a lease")))?
    }

    /// Answers once the database does.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.read(|tx| tx.query_one("SELECT 1", &[], |_| Ok(()))).await
    }

    /// Runs `f` in a read transaction on the blocking pool (again, after a lost race on
    /// PostgreSQL).
    async fn run_read<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        F: FnMut(&Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        let span = tracing::Span::current();
        let joined = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut attempt = 1;
            loop {
                let asked = std::time::Instant::now();
                let mut conn = db.connection().map_err(E::from)?;
                db.metrics.pool_wait(asked.elapsed());
                let (result, retry) = db.attempt_read(&mut conn, &mut f);
                if !retry || attempt >= MAX_ATTEMPTS {
                    return result;
                }
                drop(conn);
                tracing::debug!(attempt, "transaction lost a race (or its connection); retrying");
                pool::backoff(attempt);
                attempt += 1;
            }
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

    /// Runs `f` once in a read transaction on `conn`. Also says whether running it again
    /// may succeed where this attempt failed.
    fn attempt_read<T, E, F>(&self, conn: &mut pool::Conn, f: &mut F) -> (Result<T, E>, bool)
    where
        F: FnMut(&Tx<'_>) -> Result<T, E>,
        E: From<DbError>,
    {
        let tx = match self.begin(conn, false) {
            Ok(tx) => tx,
            Err((e, retry)) => return (Err(E::from(e)), retry),
        };
        let out = match f(&tx) {
            Ok(_) if tx.failed.get() => {
                let e = anyhow::anyhow!("a statement failed in a transaction that went on");
                return (Err(E::from(DbError::Other(e))), tx.retry.get());
            }
            Ok(out) => out,
            // Dropping the transaction rolls it back.
            Err(e) => return (Err(e), tx.retry.get()),
        };
        match self.commit(tx) {
            Ok(()) => (Ok(out), false),
            Err((e, retry)) => (Err(E::from(e)), retry),
        }
    }

    /// Begins a transaction on `conn`: a write one (IMMEDIATE on SQLite, SERIALIZABLE on
    /// PostgreSQL) or a read one (one snapshot). On failure, also whether trying again
    /// may succeed.
    fn begin<'c>(&self, conn: &'c mut pool::Conn, write: bool) -> Result<Tx<'c>, (DbError, bool)> {
        let inner = match conn {
            pool::Conn::Sqlite(c) => {
                let behavior = if write {
                    rusqlite::TransactionBehavior::Immediate
                } else {
                    rusqlite::TransactionBehavior::Deferred
                };
                TxInner::Sqlite(
                    c.transaction_with_behavior(behavior).map_err(|e| (DbError::from(e), false))?,
                )
            }
            pool::Conn::Pg(c) => TxInner::Pg(RefCell::new(c.begin(write).map_err(pg::classify)?)),
        };
        Ok(Tx {
            inner,
            revoked: RefCell::default(),
            retry: Cell::new(false),
            failed: Cell::new(false),
        })
    }

    /// Commits `tx` and counts what it revoked. On failure, also whether running the
    /// whole transaction again may succeed.
    fn commit(&self, tx: Tx<'_>) -> Result<(), (DbError, bool)> {
        let Tx { inner, revoked, .. } = tx;
        match inner {
            TxInner::Sqlite(tx) => tx.commit().map_err(|e| (DbError::from(e), false))?,
            TxInner::Pg(tx) => tx.into_inner().commit().map_err(pg::classify_commit)?,
        }
        for (cause, count) in revoked.into_inner() {
            self.metrics.revoked(cause, count);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
