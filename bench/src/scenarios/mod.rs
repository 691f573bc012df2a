//! The seven scenarios of issue 3, the eighth of issue 13 and the PostgreSQL one of issue
//! 12. Each takes the shared [`Bench`] context and answers
//! its figures (see `report.rs`); none asserts a target: the report does the comparing.

pub mod ceiling;
pub mod cold_start;
pub mod login;
pub mod login_memory;
pub mod policy;
pub mod postgres;
pub mod refresh;
pub mod revoke;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::seed::{self, Seeder, Tenant};
use crate::server::Server;
use crate::sizes::Sizes;

/// What every scenario needs: the server binary, a scratch directory on a real disk,
/// the sizes, and the one argon2 hash every seeded user shares.
pub struct Bench {
    pub bin: PathBuf,
    pub scratch: PathBuf,
    pub sizes: Sizes,
    pub password_hash: String,
    /// `database.group_commit` of every server started (`--no-group-commit` turns it off
    /// for the whole run); scenario 1 also runs its control without it regardless.
    pub group_commit: bool,
}

/// `database.synchronous`, as the server's environment sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sync {
    Full,
    Normal,
}

impl Sync {
    pub fn env(self) -> (&'static str, &'static str) {
        ("SESSIOND_DATABASE_SYNCHRONOUS", self.name())
    }

    pub fn name(self) -> &'static str {
        match self {
            Sync::Full => "full",
            Sync::Normal => "normal",
        }
    }

    pub fn storage(self) -> sessiond::db::Synchronous {
        match self {
            Sync::Full => sessiond::db::Synchronous::Full,
            Sync::Normal => sessiond::db::Synchronous::Normal,
        }
    }
}

/// The data set of the refresh, policy, memory and login scenarios.
pub struct MainData {
    /// Refresh tokens of live sessions, rotated by scenario 1.
    pub sessions: Vec<String>,
    /// A session of the owner whose policy scenario 4 reads and writes.
    pub policy_owner: String,
    /// Users who log in (scenario 7), all with [`seed::PASSWORD`].
    pub login_emails: Vec<String>,
}

impl Bench {
    /// A new, empty directory under the scratch directory.
    pub fn dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.scratch.join(format!("{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// A migrated, empty database file in a new directory.
    pub async fn fresh_db(&self, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let dir = self.dir(name)?;
        let db = dir.join("sessiond.db");
        seed::migrate(&self.bin, &dir, &db).await?;
        Ok((dir, db))
    }

    /// Seeds the main data set into the migrated file `db`.
    pub fn seed_main(&self, db: &Path) -> anyhow::Result<MainData> {
        let sizes = &self.sizes;
        let mut seeder = Seeder::open(db, &self.password_hash)?;
        let data = seeder.write(|tx, rows| {
            let tenants: Vec<Tenant> = (0..sizes.accounts)
                .map(|i| rows.tenant(tx, &format!("tenant{i}"), 9))
                .collect::<anyhow::Result<_>>()?;
            let users: Vec<_> = tenants.iter().flat_map(|t| t.users.iter().copied()).collect();
            let sessions = (0..sizes.sessions)
                .map(|i| rows.session(tx, users[i % users.len()]))
                .collect::<anyhow::Result<_>>()?;
            let policy = rows.tenant(tx, "policy", 0)?;
            let policy_owner = rows.session(tx, policy.owner)?;
            let login = rows.tenant(tx, "login", 0)?;
            let login_emails = (0..sizes.login_clients)
                .map(|i| {
                    let email = format!("login{i}@login.test");
                    rows.user(tx, login.account, &email, "engineer").map(|_| email)
                })
                .collect::<anyhow::Result<_>>()?;
            Ok(MainData { sessions, policy_owner, login_emails })
        })?;
        seeder.close()?;
        Ok(data)
    }

    /// Starts a server on `db` with `synchronous`, logging at the default level.
    pub async fn serve(&self, dir: &Path, db: &Path, sync: Sync) -> anyhow::Result<Server> {
        self.serve_grouped(dir, db, sync, self.group_commit).await
    }

    /// [`Bench::serve`] with group commit on or off.
    pub async fn serve_grouped(
        &self,
        dir: &Path,
        db: &Path,
        sync: Sync,
        grouped: bool,
    ) -> anyhow::Result<Server> {
        let db = db.to_str().context("database path is not UTF-8")?;
        let group = ("SESSIOND_DATABASE_GROUP_COMMIT", if grouped { "true" } else { "false" });
        let (server, _) = Server::start(&self.bin, dir, db, &[sync.env(), group]).await?;
        Ok(server)
    }
}

/// The body of a login or refresh answer.
#[derive(Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// Exchanges `refresh_token` once over HTTP; answers the new pair.
pub async fn refresh_once(server: &Server, refresh_token: &str) -> anyhow::Result<TokenPair> {
    let mut conn = crate::client::Conn::open(server.addr).await?;
    let body = serde_json::to_vec(&serde_json::json!({ "refresh_token": refresh_token }))?;
    let (status, body) = conn.send(&crate::client::Call::post("/auth/refresh", None, body)).await?;
    anyhow::ensure!(status.is_success(), "refresh: {status} {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).context("refresh answer")
}

/// One `GET /healthz` that must answer 200.
pub async fn healthy(server: &Server) -> anyhow::Result<()> {
    let mut conn = crate::client::Conn::open(server.addr).await?;
    let (status, body) = conn.send(&crate::client::Call::get("/healthz", None)).await?;
    anyhow::ensure!(status.is_success(), "healthz: {status} {}", String::from_utf8_lossy(&body));
    Ok(())
}
