//! Seeding a database file directly, before a server starts on it: accounts, users and
//! live sessions in one transaction with prepared statements, on a schema made by the
//! real `sessiond migrate`. Seeding through the API would cost one argon2 login per
//! session, and would leave argon2's memory in the server's peak RSS.

use std::path::Path;

use anyhow::Context;
use rusqlite::{Connection, Transaction, params};
use uuid::Uuid;

/// The password of every seeded user.
pub const PASSWORD: &str = "bench-password-not-secret";

/// A database file being seeded. Bulk-write settings: no sync and a rollback journal
/// (a WAL would hold every seeded page twice); the file goes back to WAL when closed.
pub struct Seeder {
    conn: Connection,
    /// Every seeded row is created "now", so sessions are live under the default policy.
    pub now_ms: i64,
    /// One argon2 hash of [`PASSWORD`], shared by every user: hashing is deliberately slow.
    password_hash: String,
}

/// An account with its owner and members.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub account: Uuid,
    pub owner: Uuid,
    /// Owner first.
    pub users: Vec<Uuid>,
}

impl Seeder {
    pub fn open(path: &Path, password_hash: &str) -> anyhow::Result<Seeder> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA cache_size = -131072;",
        )
        .context("seeding pragmas")?;
        let now_ms = sessiond::clock::Clock::system().now().timestamp_millis();
        Ok(Seeder { conn, now_ms, password_hash: password_hash.to_owned() })
    }

    /// Runs `f` in one transaction and commits it.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>, &Rows) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let rows = Rows { now_ms: self.now_ms, password_hash: self.password_hash.clone() };
        let tx = self.conn.transaction().context("begin")?;
        let out = f(&tx, &rows)?;
        tx.commit().context("commit")?;
        Ok(out)
    }

    /// Puts the file back in WAL mode (as the server keeps it) and closes it.
    pub fn close(self) -> anyhow::Result<()> {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .context("back to WAL")?;
        anyhow::ensure!(mode == "wal", "journal_mode is {mode}, not wal");
        self.conn.close().map_err(|(_, e)| e).context("closing the seeded database")
    }
}

/// Row writers, within a seeding transaction.
pub struct Rows {
    now_ms: i64,
    password_hash: String,
}

impl Rows {
    pub fn account(&self, tx: &Transaction<'_>, name: &str) -> anyhow::Result<Uuid> {
        let id = Uuid::new_v4();
        tx.prepare_cached("INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)")?
            .execute(params![id.to_string(), name, self.now_ms])
            .context("inserting an account")?;
        Ok(id)
    }

    pub fn user(
        &self,
        tx: &Transaction<'_>,
        account: Uuid,
        email: &str,
        role: &str,
    ) -> anyhow::Result<Uuid> {
        let id = sessiond::service::users::new_id(account);
        tx.prepare_cached(
            "INSERT INTO users (id, account_id, email, password_hash, role, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            id.to_string(),
            account.to_string(),
            email,
            self.password_hash,
            role,
            self.now_ms
        ])
        .with_context(|| format!("inserting user {email}"))?;
        Ok(id)
    }

    /// An account named `name` with an owner and `members` engineers.
    pub fn tenant(
        &self,
        tx: &Transaction<'_>,
        name: &str,
        members: usize,
    ) -> anyhow::Result<Tenant> {
        let account = self.account(tx, name)?;
        let owner = self.user(tx, account, &format!("owner@{name}.test"), "owner")?;
        let mut users = vec![owner];
        for i in 0..members {
            users.push(self.user(tx, account, &format!("user{i}@{name}.test"), "engineer")?);
        }
        Ok(Tenant { account, owner, users })
    }

    /// A live session of `user`, as a login makes it; answers its refresh token.
    pub fn session(&self, tx: &Transaction<'_>, user: Uuid) -> anyhow::Result<String> {
        let minted = sessiond::auth::refresh::mint(self.now());
        self.token(tx, self.new_id(), self.new_id(), user, &minted.key)?;
        Ok(minted.token)
    }

    /// One live token row. Ids are stored like the server's (the token's and session's as 16
    /// bytes, the user's as text); `key` (`refresh::lookup_key`) must be unique.
    pub fn token(
        &self,
        tx: &Transaction<'_>,
        id: Uuid,
        session: Uuid,
        user: Uuid,
        key: &[u8],
    ) -> anyhow::Result<()> {
        tx.prepare_cached(
            "INSERT INTO refresh_tokens
               (id, session_id, user_id, token_hash, session_started_at, issued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?
        .execute(params![id.as_bytes(), session.as_bytes(), user.to_string(), key, self.now_ms])
        .context("inserting a refresh token")?;
        Ok(())
    }

    /// A live token nobody holds (no token string exists for it), with ids as the server
    /// would have made them.
    pub fn anonymous_token(&self, tx: &Transaction<'_>, user: Uuid) -> anyhow::Result<()> {
        let key = sessiond::auth::refresh::mint(self.now()).key;
        self.token(tx, self.new_id(), self.new_id(), user, &key)
    }

    /// A token or session id as the server makes one at the seed's instant.
    pub fn new_id(&self) -> Uuid {
        sessiond::auth::refresh::new_id(self.now())
    }

    /// The seed's instant.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.now_ms).unwrap_or_default()
    }
}

/// `sessiond migrate --database FILE`: the real schema, made by the real binary.
pub async fn migrate(bin: &Path, cwd: &Path, db: &Path) -> anyhow::Result<()> {
    let db = db.to_str().context("database path is not UTF-8")?;
    crate::server::cli(bin, cwd, &["--database", db, "migrate"]).await.map(drop)
}
