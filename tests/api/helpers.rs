//! `TestApp`: a real server on loopback, built like production, plus seeding helpers.

use std::path::PathBuf;
use std::sync::OnceLock;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond::auth::Role;
use sessiond::auth::password::hash_blocking;
use sessiond::config::{DatabaseTarget, DatabaseUrl};
use sessiond::state::AppState;
use sessiond::{App, Config};
use tempfile::TempDir;
use tokio::sync::oneshot;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    /// Holds the database file (if any) for the app's lifetime.
    _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
}

/// One response, its body parsed as JSON where it is JSON (`Value::Null` otherwise).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("<no detail>")
    }

    #[track_caller]
    pub fn assert(&self, status: u16, detail: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.detail(), detail, "body: {}", self.text);
        assert_eq!(self.body.as_object().map(|o| o.len()), Some(1), "only detail: {}", self.text);
        assert!(
            self.headers["content-type"].to_str().unwrap().starts_with("application/json"),
            "errors are JSON"
        );
    }
}

impl Resp {
    /// A refused refresh (contract §4c): 401 with `detail` and `reason`, `limit_minutes`
    /// exactly on the timeouts (also a timed-out token presented again), and nothing else
    /// but an optional `audit_event_id`.
    #[track_caller]
    pub fn refused(&self, detail: &str, reason: &str) -> &Self {
        assert_eq!(self.status.as_u16(), 401, "body: {}", self.text);
        assert_eq!(self.detail(), detail, "body: {}", self.text);
        assert_eq!(self.body["reason"], reason, "body: {}", self.text);
        let keys: Vec<&str> = self.body.as_object().unwrap().keys().map(String::as_str).collect();
        for k in &keys {
            assert!(
                ["detail", "reason", "limit_minutes", "audit_event_id"].contains(k),
                "unexpected field {k}: {}",
                self.text
            );
        }
        let timeout = reason.ends_with("_timeout");
        assert_eq!(keys.contains(&"limit_minutes"), timeout, "limit_minutes: {}", self.text);
        self
    }

    /// The audit event a refused refresh names, if any.
    pub fn audit_event_id(&self) -> Option<&str> {
        self.body.get("audit_event_id").map(|v| v.as_str().expect("audit_event_id is a string"))
    }
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
}

/// An account with one user of each role.
pub struct Tenant {
    pub account: Uuid,
    pub owner: TestUser,
    pub admin: TestUser,
    pub engineer: TestUser,
}

/// The PostgreSQL server the suite runs on, when `SESSIOND_TEST_DATABASE_URL` is set (a
/// `postgres://` URL of a server where the user may create schemas); otherwise SQLite.
pub fn pg_url() -> Option<String> {
    std::env::var("SESSIOND_TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty())
}

/// The backend this run of the suite uses, printed once.
pub fn backend_name() -> &'static str {
    static PRINTED: OnceLock<&'static str> = OnceLock::new();
    PRINTED.get_or_init(|| {
        let name = if pg_url().is_some() { "postgres" } else { "sqlite" };
        eprintln!("sessiond tests: database backend = {name}");
        name
    })
}

/// True (after saying why on stderr) when the suite runs on PostgreSQL: for tests about
/// SQLite itself (its files, backups, query plans, `:memory:`), which run in the SQLite
/// pass and would only repeat it.
pub fn sqlite_only(what: &str) -> bool {
    if pg_url().is_some() {
        eprintln!("skipped on PostgreSQL (runs in the SQLite pass): {what}");
        return true;
    }
    false
}

/// Runs `f` with a client of the test server, on a thread of its own: the synchronous
/// client must not be used (or dropped) on an async thread.
pub fn with_pg<T: Send>(url: &str, f: impl FnOnce(&mut postgres::Client) -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut client = postgres::Client::connect(url, postgres::NoTls)
                .unwrap_or_else(|e| panic!("connecting to the test database: {e}"));
            f(&mut client)
        })
        .join()
        .unwrap()
    })
}

/// A fresh, empty schema on the test server; the URL whose connections use it (as their
/// `search_path`). Schemas are left behind: the test cluster is thrown away after a run.
pub fn fresh_pg_schema(url: &str) -> String {
    let schema = format!("t_{}", Uuid::new_v4().simple());
    with_pg(url, |c| c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap());
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// The database a configuration names, as `Db::open` takes it: the file (or `:memory:`),
/// or the PostgreSQL URL (with its password: for the tests' own connections only).
pub fn db_target(config: &Config) -> String {
    match config.database.target() {
        DatabaseTarget::Sqlite { path } => path,
        DatabaseTarget::Postgres { url } => url.expose().to_owned(),
    }
}

/// A config for tests: loopback on any port, test clock on, and a private database: in
/// memory, or a fresh schema on PostgreSQL when `SESSIOND_TEST_DATABASE_URL` is set.
pub fn test_config() -> Config {
    backend_name();
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".into();
    match pg_url() {
        Some(url) => c.database.url = DatabaseUrl::new(fresh_pg_schema(&url)),
        None => c.database.path = ":memory:".into(),
    }
    c.testing.clock_control = true;
    c
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config();
        adjust(&mut config);
        Self::spawn_config(config, dir).await
    }

    /// On a database that [`TestApp::sql`] can reach behind the server's back: a file
    /// in a fresh temporary directory on SQLite, a fresh schema on PostgreSQL.
    pub async fn spawn_inspectable() -> TestApp {
        Self::spawn_inspectable_with(|_| {}).await
    }

    pub async fn spawn_inspectable_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        if pg_url().is_some() {
            Self::spawn_with(adjust).await
        } else {
            Self::spawn_on_file_with(adjust).await
        }
    }

    /// Runs `sql` on the app's database directly, behind the server's back (either
    /// backend: [`TestApp::spawn_inspectable`]), with `?1`, `?2`, … replaced by the text
    /// literals `params`. Every value comes back as text (`None` for NULL).
    pub fn sql(&self, sql: &str, params: &[&str]) -> Vec<Vec<Option<String>>> {
        let mut text = sql.to_owned();
        for (i, p) in params.iter().enumerate().rev() {
            text = text.replace(&format!("?{}", i + 1), &format!("'{}'", p.replace('\'', "''")));
        }
        let target = &db_target(&self.state.config);
        if target.starts_with("postgres") {
            return with_pg(target, |c| {
                let mut rows = Vec::new();
                for m in c.simple_query(&text).unwrap_or_else(|e| panic!("{text}: {e}")) {
                    if let postgres::SimpleQueryMessage::Row(r) = m {
                        rows.push((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect());
                    }
                }
                rows
            });
        }
        let conn = rusqlite::Connection::open(target).unwrap();
        let mut stmt = conn.prepare(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let n = stmt.column_count();
        let mut rows = Vec::new();
        let mut q = stmt.raw_query();
        while let Some(r) = q.next().unwrap() {
            rows.push(
                (0..n)
                    .map(|i| match r.get::<_, rusqlite::types::Value>(i).unwrap() {
                        rusqlite::types::Value::Null => None,
                        rusqlite::types::Value::Integer(v) => Some(v.to_string()),
                        rusqlite::types::Value::Real(v) => Some(v.to_string()),
                        rusqlite::types::Value::Text(v) => Some(v),
                        // The token table's own ids (16 bytes on SQLite since schema
                        // version 7) read as the text PostgreSQL holds.
                        rusqlite::types::Value::Blob(v) if v.len() == 16 => {
                            uuid::Uuid::from_slice(&v).ok().map(|u| u.to_string())
                        }
                        rusqlite::types::Value::Blob(v) => Some(format!("{v:?}")),
                    })
                    .collect(),
            );
        }
        rows
    }

    /// The SQL expression that compares with the token table's own ids (`id`,
    /// `session_id`, `replaced_by`) given parameter `?n` as a UUID's text: those columns
    /// are 16 bytes on SQLite (schema version 7), text on PostgreSQL.
    pub fn token_id_param(&self, n: usize) -> String {
        if db_target(&self.state.config).starts_with("postgres") {
            format!("?{n}")
        } else {
            format!("unhex(replace(?{n}, '-', ''))")
        }
    }

    /// The SQL expression that compares with a BLOB/BYTEA column (`token_hash`) given
    /// parameter `?n` as lowercase hex.
    pub fn bytes_param(&self, n: usize) -> String {
        if db_target(&self.state.config).starts_with("postgres") {
            format!("decode(?{n}, 'hex')")
        } else {
            format!("unhex(?{n})")
        }
    }

    /// The SQL expression that reads a BLOB/BYTEA column as lowercase hex.
    pub fn hex_of(&self, column: &str) -> String {
        if db_target(&self.state.config).starts_with("postgres") {
            format!("encode({column}, 'hex')")
        } else {
            format!("lower(hex({column}))")
        }
    }

    /// [`TestApp::sql`] for a statement that may fail: its error message.
    pub fn try_sql(&self, sql: &str, params: &[&str]) -> Result<(), String> {
        let mut text = sql.to_owned();
        for (i, p) in params.iter().enumerate().rev() {
            text = text.replace(&format!("?{}", i + 1), &format!("'{}'", p.replace('\'', "''")));
        }
        let target = db_target(&self.state.config);
        if target.starts_with("postgres") {
            return with_pg(&target, |c| c.batch_execute(&text).map_err(|e| format!("{e:?}")));
        }
        let conn = rusqlite::Connection::open(&target).unwrap();
        conn.execute_batch(&text).map_err(|e| e.to_string())
    }

    /// On a database file in a fresh temporary directory (SQLite, whatever the backend of
    /// the run: for tests about the file).
    pub async fn spawn_on_file() -> TestApp {
        Self::spawn_on_file_with(|_| {}).await
    }

    pub async fn spawn_on_file_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config();
        config.database.path = dir.path().join("sessiond.db").to_string_lossy().into_owned();
        config.database.url = DatabaseUrl::default();
        adjust(&mut config);
        Self::spawn_config(config, dir).await
    }

    pub async fn spawn_config(config: Config, dir: TempDir) -> TestApp {
        config.validate().unwrap();
        let app = App::build(config).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run(async move {
            let _ = rx.await;
        }));
        TestApp { base, client: reqwest::Client::new(), state, _dir: dir, shutdown: Some(tx) }
    }

    pub fn db_path(&self) -> PathBuf {
        PathBuf::from(&self.state.config.database.path)
    }

    pub async fn account(&self, name: &str) -> Uuid {
        sessiond::service::accounts::create(&self.state.db, name.into(), self.state.clock.now())
            .await
            .unwrap()
    }

    pub async fn user(&self, account: Uuid, email: &str, role: Role) -> TestUser {
        let id = sessiond::service::users::create(
            &self.state.db,
            account,
            email,
            role,
            password_hash(),
            self.state.clock.now(),
        )
        .await
        .unwrap();
        TestUser { id, email: email.into() }
    }

    /// A fresh account with an owner, an admin and an engineer.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let account = self.account(name).await;
        let slug = name.to_lowercase().replace(' ', "-");
        Tenant {
            account,
            owner: self.user(account, &format!("owner@{slug}.test"), Role::Owner).await,
            admin: self.user(account, &format!("admin@{slug}.test"), Role::Admin).await,
            engineer: self.user(account, &format!("eng@{slug}.test"), Role::Engineer).await,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    /// A raw request: any headers, any body bytes.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.request(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn try_login(&self, email: &str, password: &str) -> Resp {
        self.post("/auth/login", None, json!({ "email": email, "password": password })).await
    }

    pub async fn login(&self, user: &TestUser) -> Tokens {
        self.login_with(user, PASSWORD).await
    }

    pub async fn login_with(&self, user: &TestUser, password: &str) -> Tokens {
        let r = self.try_login(&user.email, password).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        tokens(&r)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Resp {
        self.post("/auth/refresh", None, json!({ "refresh_token": refresh_token })).await
    }

    /// A refresh that must succeed; returns the new pair.
    pub async fn rotate(&self, refresh_token: &str) -> Tokens {
        let r = self.refresh(refresh_token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        tokens(&r)
    }

    /// A policy change that must succeed.
    pub async fn set_policy(&self, owner_access: &str, body: Value) -> Resp {
        let r = self.patch("/accounts/me/security", owner_access, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r
    }

    /// Moves the server clock forward through the HTTP route.
    pub async fn advance(&self, seconds: i64) {
        let r = self.post("/_test/clock", None, json!({ "advance_seconds": seconds })).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    /// The account's audit events with `action`, newest first.
    pub async fn audit(&self, owner_token: &str, action: &str) -> Vec<Value> {
        let r = self.get("/accounts/me/audit-events?limit=200", owner_token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    }

    /// Whether an access token is accepted right now.
    pub async fn access_ok(&self, access: &str) -> bool {
        let r = self.get("/auth/me", access).await;
        match r.status.as_u16() {
            200 => true,
            401 => {
                r.assert(401, "not_authenticated");
                false
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn tokens(r: &Resp) -> Tokens {
    Tokens {
        access: r.body["access_token"].as_str().unwrap().to_owned(),
        refresh: r.body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, text, body }
}

/// Hashing is deliberately slow; every test user shares one hash of [`PASSWORD`].
pub fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_blocking(PASSWORD).unwrap()).clone()
}

/// The session id an access token carries (its `sid` claim).
pub fn session_of(access: &str) -> String {
    use base64::Engine;
    let payload = access.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

/// A stored refresh token's row, found by the token itself (only its key, a time prefix and
/// the token's SHA-256, is stored):
/// `(id, revoked_at, replaced_by)`.
pub type StoredToken = (String, Option<i64>, Option<String>);

/// Where stored tokens are looked up: a SQLite file, or a PostgreSQL database by URL.
pub enum Store {
    Sqlite(rusqlite::Connection),
    Pg(String),
}

impl Store {
    /// The store of a database: a file path or a `postgres://` URL.
    pub fn open(target: &str) -> Store {
        if target.starts_with("postgres") {
            Store::Pg(target.to_owned())
        } else {
            Store::Sqlite(rusqlite::Connection::open(target).unwrap())
        }
    }
}

pub fn stored_token(store: &Store, token: &str) -> Option<StoredToken> {
    let hash = sessiond::auth::refresh::lookup_key(token);
    let sql = "SELECT id, revoked_at, replaced_by FROM refresh_tokens WHERE token_hash = ?1";
    match store {
        Store::Sqlite(conn) => {
            // The ids are 16 bytes on SQLite (schema version 7).
            let text = |b: Vec<u8>| uuid::Uuid::from_slice(&b).unwrap().to_string();
            conn.query_row(sql, [hash], |r| {
                let (id, successor): (Vec<u8>, Option<Vec<u8>>) = (r.get(0)?, r.get(2)?);
                Ok((text(id), r.get(1)?, successor.map(text)))
            })
            .ok()
        }
        Store::Pg(url) => with_pg(url, |c| {
            let row = c.query_opt(&sql.replace("?1", "$1"), &[&hash]).unwrap()?;
            Some((row.get(0), row.get(1), row.get(2)))
        }),
    }
}

/// Every token handed out is stored, and every acknowledged rotation `(old, new)` is
/// recorded as such: `old` revoked and replaced by `new`.
#[track_caller]
pub fn assert_tokens_and_rotations_kept(
    conn: &Store,
    issued: &[String],
    rotations: &[(String, String)],
) {
    for t in issued {
        assert!(
            stored_token(conn, t).is_some(),
            "a refresh token acknowledged to the client was lost"
        );
    }
    for (old, new) in rotations {
        let (_, revoked_at, replaced_by) = stored_token(conn, old).unwrap();
        let (new_id, _, _) = stored_token(conn, new).unwrap();
        assert!(
            revoked_at.is_some() && replaced_by == Some(new_id),
            "an acknowledged rotation was lost"
        );
    }
}
