//! Opening the database: the connection pool (SQLite's, or PostgreSQL's in `pg.rs`), the
//! PRAGMAs every SQLite connection gets, and the embedded migrations (one folder per
//! dialect, the same versions in each).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use super::checkpoint;
use super::writer::{MAX_GROUP, Writer};
use super::{DbError, pg, preflight};
use crate::metrics::{Metrics, PoolState};

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// How long a writer waits for another process's (or connection's) lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// A pool of configured connections to SQLite or to PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pools: Pools,
    /// Writers of this process queue here, in order, and queued writes commit together
    /// (`writer.rs`): on SQLite instead of polling its lock (which `busy_timeout` still
    /// arbitrates against other processes, e.g. the CLI); on PostgreSQL so that they do
    /// not abort each other (see `open_with`).
    pub(super) writer: Arc<Writer>,
    /// Where pool waits and committed revocations are counted (disabled for the CLI).
    pub(super) metrics: Metrics,
}

#[derive(Clone)]
enum Pools {
    Sqlite {
        pool: Pool<SqliteConnectionManager>,
        /// For `:memory:`: one connection held for the life of the process, because an
        /// in-memory database disappears when its last connection closes.
        _memory_anchor: Option<Arc<Mutex<Connection>>>,
    },
    Postgres(Arc<pg::PgPool>),
}

/// Which database a [`Db`] keeps its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `database.path` (or `--database`) names a PostgreSQL database by its URL scheme.
    pub fn of(target: &str) -> Backend {
        if target.starts_with("postgres://") || target.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// A pooled connection of either backend. Lives on a blocking thread's stack for one
/// transaction: its size costs nothing there, a `Box` would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
pub(super) enum Conn {
    Sqlite(PooledConnection<SqliteConnectionManager>),
    Pg(PooledConnection<pg::Manager>),
}

/// A pause before a transaction that lost a race runs again: a few milliseconds,
/// doubling with each attempt up to about a tenth of a second, with jitter so that the
/// racers do not meet again.
pub(super) fn backoff(attempt: u32) {
    use rand::Rng;
    let ms = rand::rng().random_range(1..=4u64) << attempt.min(5);
    // A blocking thread of the database pool: sleeping here holds up nothing async.
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(ms));
}

/// How long a commit waits for the disk: SQLite's `synchronous` setting (WAL mode), the
/// `database.synchronous` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit reaches the disk (fsync) before it is acknowledged: an answered
    /// revoke survives power loss too, not only a crash of the process.
    #[default]
    Full,
    /// The log is synced at checkpoints only: commits survive a crash of the process, but
    /// the last ones before a power loss or OS crash can be lost. See docs/PERFORMANCE.md
    /// for what it buys.
    Normal,
}

impl Synchronous {
    fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the database directory {path}")]
    Directory { path: String, source: std::io::Error },
    #[error("cannot open the database {path}")]
    Open { path: String, source: anyhow::Error },
    #[error("cannot connect to the database at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("cannot migrate the database {path}")]
    Migrate { path: String, source: anyhow::Error },
    #[error(
        "the database {path} is damaged or is not a SQLite database (SQLite says: {reason}); it \
         was left as it was: restore it from a backup"
    )]
    Corrupt { path: String, reason: String },
    #[error(
        "the database {path} is at schema version {found}, newer than this sessiond knows \
         ({known}); it was left as it was: run a newer sessiond"
    )]
    NewerSchema { path: String, found: i64, known: i64 },
    #[error(
        "the database {path} holds tables but no sessiond migration history (another \
         application's database?); it was left as it was"
    )]
    Foreign { path: String },
}

impl Db {
    /// Opens (creating if needed) the database at `path` — `:memory:` for a private
    /// in-memory database shared by every pooled connection of this process — and applies
    /// pending migrations.
    ///
    /// One connection is opened directly first and migrated: a file that cannot be
    /// opened, or is no database, fails here at once with one clear error, instead of
    /// after the pool's wait for a connection.
    ///
    /// A `postgres://` (or `postgresql://`) URL opens a PostgreSQL database instead (see
    /// `pg.rs`). Blocking: call it on a blocking thread.
    pub fn open(path: &str, pool_size: u32) -> Result<Db, OpenError> {
        Db::open_with(path, pool_size, Synchronous::default())
    }

    /// [`Db::open`] with an explicit `synchronous` setting for every SQLite connection
    /// (PostgreSQL's durability is the server's own setting).
    pub fn open_with(
        path: &str,
        pool_size: u32,
        synchronous: Synchronous,
    ) -> Result<Db, OpenError> {
        if Backend::of(path) == Backend::Postgres {
            let pool = pg::open(path, pool_size)?;
            return Ok(Db {
                pools: Pools::Postgres(Arc::new(pool)),
                // The writers of one process queue on PostgreSQL too. Not for correctness
                // (SERIALIZABLE and the retry give that, also across processes), but
                // because serializable transactions of one process that run side by side
                // abort each other: under 64 concurrent writers (concurrency.rs), the
                // policy changes, bulk revokes and refreshes of one account formed
                // read/write cycles faster than 8 retries could resolve them, and
                // requests failed. Queued, a process has one writer in flight; only
                // transactions of different processes can conflict, and their rare
                // conflicts are retried.
                writer: Arc::new(Writer::new(MAX_GROUP)),
                metrics: Metrics::disabled(),
            });
        }
        Db::open_sqlite(path, pool_size, synchronous)
    }

    fn open_sqlite(path: &str, pool_size: u32, synchronous: Synchronous) -> Result<Db, OpenError> {
        let open_err = |e: rusqlite::Error| OpenError::Open {
            path: path.to_owned(),
            source: anyhow::anyhow!(preflight::reason(&e)),
        };
        let (target, flags, on_disk) = if path == ":memory:" {
            let uri = format!("file:/sessiond-{}?vfs=memdb", uuid::Uuid::new_v4());
            (uri, memory_flags(), false)
        } else {
            create_parent_dir(path)?;
            create_private(path)?;
            (path.to_owned(), OpenFlags::default(), true)
        };
        let mut first = Connection::open_with_flags(&target, flags).map_err(open_err)?;
        first.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let runner = embedded::migrations::runner();
        let known = runner.get_migrations().iter().map(|m| i64::from(m.version())).max();
        if on_disk {
            preflight::check(&first, path, known.unwrap_or(0))?;
        }
        // Migrations commit without waiting for the disk: on a new file that is a dozen
        // fsyncs, most of a cold start (docs/PERFORMANCE.md). Still safe: WAL with NORMAL
        // never corrupts, the migrations commit as one group (below), a lost group is
        // applied again at the next start, and the first commit of a pooled connection
        // (FULL by default) syncs the log, migration frames included.
        configure(&mut first, on_disk, Synchronous::Normal).map_err(open_err)?;
        // Grouped: every pending migration and its history row commit in one transaction,
        // so a crash or a failing step leaves the schema as it was, never half-migrated
        // (refinery's default commits each migration apart from its history row).
        runner.set_grouped(true).run(&mut first).map_err(|e| OpenError::Migrate {
            path: path.to_owned(),
            source: anyhow::anyhow!(preflight::migration_reason(&e)),
        })?;
        // The migrations committed outside the writer: a long log they left is copied now
        // (as SQLite's auto-checkpoint would have), and this thread's count is used up.
        checkpoint::if_due(&first);
        let manager = SqliteConnectionManager::file(&target)
            .with_flags(flags)
            .with_init(move |c| configure(c, on_disk, synchronous));
        let pool = build_pool(manager, pool_size)
            .map_err(|source| OpenError::Open { path: path.to_owned(), source })?;
        let memory_anchor = (!on_disk).then(|| Arc::new(Mutex::new(first)));
        Ok(Db {
            pools: Pools::Sqlite { pool, _memory_anchor: memory_anchor },
            writer: Arc::new(Writer::new(MAX_GROUP)),
            metrics: Metrics::disabled(),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// This database with queued writes committed together (`true`, the default) or each
    /// in a transaction of its own (`database.group_commit = false`). Call it before the
    /// first write.
    pub fn with_group_commit(mut self, on: bool) -> Db {
        self.writer = Arc::new(Writer::new(if on { MAX_GROUP } else { 1 }));
        self
    }

    /// This database, counting into `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Db {
        self.metrics = metrics;
        self
    }

    /// Where this database's work is counted.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Open and idle pooled connections, for the metrics.
    pub fn pool_state(&self) -> PoolState {
        let state = match &self.pools {
            Pools::Sqlite { pool, .. } => pool.state(),
            Pools::Postgres(pg) => pg.state(),
        };
        PoolState { connections: state.connections, idle: state.idle_connections }
    }

    /// A pooled connection. Only ever called from a blocking thread.
    pub(super) fn connection(&self) -> Result<Conn, DbError> {
        match &self.pools {
            Pools::Sqlite { pool, .. } => pool.get().map(Conn::Sqlite).map_err(|e| {
                DbError::Other(anyhow::Error::new(e).context("no database connection available"))
            }),
            // No connection within the wait: the server is away (or every connection is
            // busy for that long); either way, try again later.
            Pools::Postgres(pg) => pg.get().map(Conn::Pg).map_err(|e| {
                DbError::Unavailable(anyhow::Error::new(e).context("no database connection"))
            }),
        }
    }

    /// A pooled SQLite connection (tests of SQLite's own settings and plans).
    #[cfg(test)]
    pub(super) fn sqlite_connection(&self) -> PooledConnection<SqliteConnectionManager> {
        match &self.pools {
            Pools::Sqlite { pool, .. } => pool.get().expect("sqlite connection"),
            Pools::Postgres(_) => panic!("not a SQLite database"),
        }
    }
}

/// SQLite's `memdb` VFS: a named in-memory database that every connection of this process
/// can open, with ordinary file locking (so `busy_timeout` works), unlike shared-cache mode.
fn memory_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

fn create_parent_dir(path: &str) -> Result<(), OpenError> {
    match Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir)
            .map_err(|source| OpenError::Directory { path: dir.display().to_string(), source }),
        None => Ok(()),
    }
}

/// A new database file is created empty with mode 0600 before SQLite opens it: it holds
/// password hashes and who logged in from where, and SQLite would make it 0644 (its
/// `-wal` and `-shm` files take the database file's mode). An existing file is left as
/// it is.
fn create_private(path: &str) -> Result<(), OpenError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(OpenError::Open { path: path.to_owned(), source: e.into() }),
    }
}

fn build_pool(
    manager: SqliteConnectionManager,
    pool_size: u32,
) -> anyhow::Result<Pool<SqliteConnectionManager>> {
    // One connection is opened eagerly (start-up stays fast); the rest on demand.
    let pool = Pool::builder()
        .max_size(pool_size)
        .min_idle(Some(1))
        // A connection to a local file does not go stale. r2d2's default check ran
        // `SELECT 1` on every checkout: 3 % of the server's CPU under refresh load (perf).
        .test_on_check_out(false)
        .connection_timeout(POOL_WAIT)
        .build(manager)?;
    Ok(pool)
}

/// Run on every new connection.
fn configure(
    conn: &mut Connection,
    on_disk: bool,
    synchronous: Synchronous,
) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")?;
    if on_disk {
        // WAL: readers never block the writer. synchronous=FULL (the default): a commit
        // that was acknowledged survives power loss too, not only a process crash — a
        // revoke that answered 200 must stay revoked.
        // synchronous first: on a new file, switching to WAL is itself a commit.
        conn.pragma_update(None, "synchronous", synchronous.pragma_value())?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
        // Checkpoints past 1 000 log pages wait until the commit is answered (checkpoint.rs).
        checkpoint::install(conn);
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.pool_state();
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .field("connections", &state.connections)
            .field("idle", &state.idle)
            .finish()
    }
}
