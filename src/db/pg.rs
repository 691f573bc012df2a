//! PostgreSQL: the connection manager (with a prepared-statement cache per connection),
//! opening and migrating a database, and what its errors mean to the seam.
//!
//! The client is the synchronous `postgres` crate: every use is on a blocking thread,
//! through [`super::Db::read`]/[`super::Db::write`], like SQLite's. Each client owns a
//! small runtime of its own, which must not be dropped on an async thread (it panics):
//! pooled connections are dropped on blocking threads or r2d2's own, and the pool itself
//! is dropped on a thread of its own ([`PgPool`]'s `Drop`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, Config, IsolationLevel, NoTls, Statement};
use r2d2::{Pool, PooledConnection};

use super::{DbError, OpenError};

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// How long connecting to the server may take (unless the URL says `connect_timeout`):
/// an unreachable server at start fails within it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection (which includes connecting anew
/// after the server came back) before it is answered 503 `database_unavailable`.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// The same wait while the last attempt to connect failed: the server is away, and each
/// request should learn it quickly rather than hold its client for the whole wait. (The
/// pool keeps trying to connect meanwhile; the first success ends this.)
const POOL_WAIT_WHILE_DOWN: Duration = Duration::from_millis(500);
/// refinery's history table.
const HISTORY_TABLE: &str = "refinery_schema_history";

/// One pooled connection: the client and the statements it has prepared, by their text
/// as the table modules write it.
pub(crate) struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    /// Begins a transaction: SERIALIZABLE for writes (two processes exchanging the same
    /// refresh token cannot both commit), REPEATABLE READ for reads (one snapshot).
    pub(super) fn begin(&mut self, write: bool) -> Result<PgTx<'_>, postgres::Error> {
        let PgConn { client, statements } = self;
        let level =
            if write { IsolationLevel::Serializable } else { IsolationLevel::RepeatableRead };
        let tx = client.build_transaction().isolation_level(level).start()?;
        Ok(PgTx { tx, statements })
    }
}

/// An open transaction with its connection's statement cache.
pub(crate) struct PgTx<'c> {
    tx: postgres::Transaction<'c>,
    statements: &'c mut HashMap<String, Statement>,
}

type Params<'a> = [&'a (dyn postgres::types::ToSql + Sync)];

impl PgTx<'_> {
    /// The prepared statement for `sql`, prepared on first use (with its `?N` parameters
    /// written `$N`) and kept for the life of the connection.
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(&dollar_params(sql))?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub(super) fn execute(
        &mut self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.execute(&s, params)
    }

    pub(super) fn query(
        &mut self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query(&s, params)
    }

    /// Runs statements without parameters, unprepared (savepoints).
    pub(super) fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.tx.batch_execute(sql)
    }

    pub(super) fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }
}

/// The table modules write parameters SQLite's way, `?N`; PostgreSQL's are `$N`. (No
/// statement has a `?` inside a string literal.)
pub(super) fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Makes and checks pooled connections.
pub(crate) struct Manager {
    config: Config,
    /// Whether the last attempt to connect failed (shared with [`PgPool`]).
    down: Arc<AtomicBool>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        let mut client = self.config.connect(NoTls).inspect_err(|_| {
            self.down.store(true, Ordering::Relaxed);
        })?;
        self.down.store(false, Ordering::Relaxed);
        // Every statement sessiond runs is written for an index (the SQLite plan tests
        // and the EXPLAIN test at realistic sizes prove it). On small tables the planner
        // would still pick sequential scans, and under SERIALIZABLE a sequential scan
        // takes a predicate lock on the whole table, so that every concurrent write to it
        // becomes a conflict and a retry (PostgreSQL's documentation on serializable
        // isolation advises steering the planner to index scans for this reason).
        client.batch_execute("SET enable_seqscan = off")?;
        Ok(PgConn { client, statements: HashMap::new() })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    /// A connection the server closed (restarted, terminated it) is thrown away when it
    /// comes back to the pool; the next checkout connects anew.
    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// The pool, dropped on a thread of its own: its clients must not be dropped on an async
/// thread, and the last `Db` clone may well be dropped on one.
pub(crate) struct PgPool(Option<Pool<Manager>>, Arc<AtomicBool>);

impl PgPool {
    pub(super) fn get(&self) -> Result<PooledConnection<Manager>, r2d2::Error> {
        let wait = if self.1.load(Ordering::Relaxed) { POOL_WAIT_WHILE_DOWN } else { POOL_WAIT };
        match &self.0 {
            Some(pool) => pool.get_timeout(wait),
            None => unreachable!("the pool is only taken when dropped"),
        }
    }

    pub(super) fn state(&self) -> r2d2::State {
        match &self.0 {
            Some(pool) => pool.state(),
            None => unreachable!("the pool is only taken when dropped"),
        }
    }
}

impl Drop for PgPool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("sessiond-pg-close".into())
                .spawn(move || drop(pool));
        }
    }
}

/// `user@host:port/dbname` of a URL: what errors and logs show of it, never the password.
pub(crate) fn shown(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, port)| match h {
            postgres::config::Host::Tcp(host) => format!("{host}:{port}"),
            postgres::config::Host::Unix(dir) => format!("{}:{port}", dir.display()),
        })
        .collect();
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = config.get_dbname().unwrap_or("");
    format!("{user}{}/{db}", hosts.join(","))
}

/// Opens a pool on the database at `url` and applies pending migrations, once however
/// many processes start together (an advisory lock). The first connection is made
/// directly: an unreachable or refusing server fails here, at once, with one line that
/// names it and says why.
pub(super) fn open(url: &str, pool_size: u32) -> Result<PgPool, OpenError> {
    let mut config: Config = url.parse().map_err(|e: postgres::Error| OpenError::Open {
        // The URL did not parse: show none of it, it may hold a password.
        path: "(the database URL)".to_owned(),
        source: anyhow::anyhow!("{e}"),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("sessiond");
    let target = shown(&config);
    let mut first = config
        .connect(NoTls)
        .map_err(|e| OpenError::Connect { target: target.clone(), reason: reason(&e) })?;
    migrate(&mut first, &target)?;
    drop(first);
    let down = Arc::new(AtomicBool::new(false));
    let manager = Manager { config, down: down.clone() };
    let pool = Pool::builder()
        .max_size(pool_size)
        .min_idle(Some(1))
        // A connection the server closed is found out when it is used, and that
        // transaction runs again on a new one (`classify`): no round trip per checkout.
        .test_on_check_out(false)
        .connection_timeout(POOL_WAIT)
        .build(manager)
        .map_err(|e| OpenError::Connect { target: target.clone(), reason: e.to_string() })?;
    Ok(PgPool(Some(pool), down))
}

/// The preflight checks and the migrations, under a session-level advisory lock keyed by
/// the schema: a second process starting at the same moment waits, then finds nothing
/// left to apply.
fn migrate(client: &mut Client, target: &str) -> Result<(), OpenError> {
    let fail = |e: postgres::Error| OpenError::Migrate {
        path: target.to_owned(),
        source: anyhow::anyhow!(reason(&e)),
    };
    const LOCK_KEY: &str = "hashtext('sessiond migrations ' || current_schema())";
    client.execute(&format!("SELECT pg_advisory_lock({LOCK_KEY})"), &[]).map_err(fail)?;
    let runner = embedded::migrations::runner();
    let known = runner.get_migrations().iter().map(|m| i64::from(m.version())).max();
    let migrated = preflight(client, target, known.unwrap_or(0)).and_then(|()| {
        // Grouped: every pending migration and its history row commit in one transaction
        // (PostgreSQL's DDL is transactional), so a failure leaves the schema as it was.
        runner.set_grouped(true).run(client).map(|_| ()).map_err(|e| OpenError::Migrate {
            path: target.to_owned(),
            source: anyhow::anyhow!(migration_reason(&e)),
        })
    });
    let unlocked =
        client.execute(&format!("SELECT pg_advisory_unlock({LOCK_KEY})"), &[]).map_err(fail);
    migrated.and(unlocked.map(|_| ()))
}

/// SQLite's preflight, where it applies: a schema that holds tables but no sessiond
/// migration history (another application's) is refused, and so is one migrated by a
/// newer sessiond. (Damage is the server's own business on PostgreSQL.)
fn preflight(client: &mut Client, target: &str, known: i64) -> Result<(), OpenError> {
    let fail = |e: postgres::Error| OpenError::Open {
        path: target.to_owned(),
        source: anyhow::anyhow!(reason(&e)),
    };
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .map_err(fail)?
        .get(0);
    if tables == 0 {
        return Ok(());
    }
    let history: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&HISTORY_TABLE])
        .map_err(fail)?
        .get(0);
    if !history {
        return Err(OpenError::Foreign { path: target.to_owned() });
    }
    let found: Option<i32> = client
        .query_one(&format!("SELECT max(version) FROM {HISTORY_TABLE}"), &[])
        .map_err(fail)?
        .get(0);
    if let Some(found) = found.map(i64::from).filter(|v| *v > known) {
        return Err(OpenError::NewerSchema { path: target.to_owned(), found, known });
    }
    Ok(())
}

/// The server's own message in one line, or the client's (connection refused, timed
/// out, name not resolved).
pub(super) fn reason(e: &postgres::Error) -> String {
    use std::error::Error as _;
    let text = match (e.as_db_error(), e.source()) {
        (Some(db), _) => db.message().to_owned(),
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn migration_reason(e: &refinery::Error) -> String {
    use std::error::Error as _;
    let doing = match e.kind() {
        refinery::error::Kind::Connection(doing, _) => doing.clone(),
        other => return other.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
    };
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(pg) = c.downcast_ref::<postgres::Error>() {
            return format!(
                "{}: {}",
                doing.split_whitespace().collect::<Vec<_>>().join(" "),
                reason(pg)
            );
        }
        cause = c.source();
    }
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a failed statement means: the error for the caller, and whether running the
/// whole transaction again may succeed (a serialization failure or deadlock; a
/// connection lost before the commit, which left nothing behind).
pub(super) fn classify(e: postgres::Error) -> (DbError, bool) {
    if let Some(code) = e.code() {
        if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            return (DbError::Other(anyhow::Error::new(e).context("serialization failure")), true);
        }
        if *code == SqlState::UNIQUE_VIOLATION {
            return (DbError::Conflict("unique constraint".into()), false);
        }
        if lost(code) {
            return (DbError::Unavailable(anyhow::Error::new(e)), true);
        }
        return (DbError::Other(anyhow::Error::new(e).context("postgres")), false);
    }
    if e.is_closed() || io_error(&e) {
        return (DbError::Unavailable(anyhow::Error::new(e)), true);
    }
    (DbError::Other(anyhow::Error::new(e).context("postgres")), false)
}

/// [`classify`] for a failed COMMIT: a serialization failure there rolled everything
/// back and may be retried, but a connection lost during the commit leaves its outcome
/// unknown, so that is answered as unavailable and never run again.
pub(super) fn classify_commit(e: postgres::Error) -> (DbError, bool) {
    let (err, retry) = classify(e);
    let retry = retry && !matches!(err, DbError::Unavailable(_));
    (err, retry)
}

/// SQLSTATEs of a server that is going away or not accepting connections: class 08
/// (connection exception), 57P01-57P03 (administrator shutdown, crash shutdown, cannot
/// connect now).
fn lost(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
}

fn io_error(e: &postgres::Error) -> bool {
    use std::error::Error as _;
    let mut cause = e.source();
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A claim on work that one process of a deployment should do at a time (the hourly
/// prune): a session-level advisory lock, held on a pooled connection of its own until
/// the lease is dropped. If that connection dies, the server releases the lock.
pub(crate) struct PgLease {
    conn: Option<PooledConnection<Manager>>,
    name: &'static str,
}

/// The advisory-lock key of `name` in the current schema (two deployments in two schemas
/// of one database do not hold up each other).
const LEASE_KEY: &str = "hashtext('sessiond lease ' || $1 || ' ' || current_schema())";

impl PgLease {
    /// Takes the lease if no other session holds it. Blocking.
    pub(super) fn try_take(
        mut conn: PooledConnection<Manager>,
        name: &'static str,
    ) -> Result<Option<PgLease>, postgres::Error> {
        let got: bool = conn
            .client
            .query_one(&format!("SELECT pg_try_advisory_lock({LEASE_KEY})"), &[&name])?
            .get(0);
        Ok(got.then_some(PgLease { conn: Some(conn), name }))
    }
}

impl Drop for PgLease {
    /// Unlocks and gives the connection back, on a blocking thread (a client must not be
    /// dropped on an async one).
    fn drop(&mut self) {
        let (Some(mut conn), name) = (self.conn.take(), self.name) else { return };
        let release = move || {
            let sql = format!("SELECT pg_advisory_unlock({LEASE_KEY})");
            if let Err(e) = conn.client.execute(&sql, &[&name]) {
                tracing::debug!(error = %e, "releasing the {name} lease (the server does on disconnect)");
            }
            drop(conn);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(release)),
            Err(_) => release(),
        }
    }
}
