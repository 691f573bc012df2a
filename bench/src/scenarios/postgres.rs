//! Scenario 9 (issue 12): the PostgreSQL backend beside SQLite. Refresh at 16 clients
//! against one `sessiond serve` and against three sharing one database (the clients dealt
//! out evenly over them, as a balancer would), and the bulk revoke of 10 000 tokens.
//!
//! Runs only with `--postgres URL`: a server where the bench may create (and drops at the
//! end) a scratch database, e.g. the cluster `bash .ci/postgres` starts. The schema is
//! made by the real `sessiond migrate`; the rows are seeded directly (one transaction) in
//! the same representation the server writes, as the SQLite scenarios seed their files.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use super::cold_start::median_ms;
use super::refresh::{deal, gather};
use super::{Bench, healthy, refresh_once};
use crate::client::{Call, Conn};
use crate::load::{self, Summary};
use crate::server::{Server, cpu_of};

#[derive(Debug, Clone, Serialize)]
pub struct PgRefresh {
    /// `sessiond serve` processes on the one database.
    pub processes: usize,
    pub clients: usize,
    #[serde(flatten)]
    pub figures: Summary,
    /// CPU per request of all the server processes together, and of the load generator,
    /// in microseconds. PostgreSQL's own CPU is not in it (it is another process tree).
    pub server_cpu_us: f64,
    pub client_cpu_us: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PgRevoke {
    /// Live tokens of the account (each revoke's `revoked_count`).
    pub tokens: usize,
    pub revokes: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PgFigures {
    /// `SHOW server_version`.
    pub server_version: String,
    pub refresh: Vec<PgRefresh>,
    pub revoke: Vec<PgRevoke>,
}

impl PgFigures {
    pub fn errors(&self) -> u64 {
        self.refresh.iter().map(|r| r.figures.errors).sum::<u64>()
            + self.revoke.iter().map(|r| r.errors).sum::<u64>()
    }
}

pub async fn run(bench: &Bench, admin_url: &str) -> anyhow::Result<PgFigures> {
    let admin = connect(admin_url).await.context("connecting to --postgres")?;
    let server_version: String =
        admin.query_one("SHOW server_version", &[]).await.context("server_version")?.get(0);
    let name = format!("sessiond_bench_{}", Uuid::new_v4().simple());
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.context("CREATE DATABASE")?;
    let url = with_database(admin_url, &name)?;
    let result = measure(bench, &url).await;
    // Dropped whatever happened; FORCE ends connections a killed server left behind.
    let dropped =
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    let (refresh, revoke) = result?;
    dropped.context("DROP DATABASE")?;
    Ok(PgFigures { server_version, refresh, revoke })
}

async fn measure(bench: &Bench, url: &str) -> anyhow::Result<(Vec<PgRefresh>, Vec<PgRevoke>)> {
    let dir = bench.dir("postgres")?;
    crate::server::cli(&bench.bin, &dir, &["--database", url, "migrate"]).await?;
    let db = connect(url).await?;
    let mut seeded = seed(bench, &db).await?;

    let mut refresh = Vec::new();
    for &processes in &bench.sizes.pg_processes {
        let mut servers = Vec::new();
        for _ in 0..processes {
            let (server, _) = Server::start(&bench.bin, &dir, url, &[]).await?;
            healthy(&server).await?;
            servers.push(server);
        }
        let clients = bench.sizes.pg_clients;
        let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
        let cpu = |servers: &[Server]| -> anyhow::Result<Duration> {
            servers.iter().map(Server::cpu).sum::<anyhow::Result<Duration>>()
        };
        let (server_before, client_before) = (cpu(&servers)?, cpu_of("/proc/self/stat")?);
        let refreshers = deal(std::mem::take(&mut seeded.sessions), clients);
        let (recorded, back) = load::drive_spread(&addrs, refreshers, bench.sizes.refresh).await?;
        seeded.sessions = gather(back);
        let sent = recorded.sent.max(1) as f64;
        let per_request = |d: Duration| d.as_secs_f64() * 1e6 / sent;
        refresh.push(PgRefresh {
            processes,
            clients,
            figures: recorded.summary(),
            server_cpu_us: per_request(cpu(&servers)?.saturating_sub(server_before)),
            client_cpu_us: per_request(cpu_of("/proc/self/stat")?.saturating_sub(client_before)),
        });
        for server in servers {
            server.stop().await?;
        }
    }

    let (server, _) = Server::start(&bench.bin, &dir, url, &[]).await?;
    let revoke = vec![revoke(bench, &server, &db, &mut seeded).await?];
    server.stop().await?;
    drop(db);
    std::fs::remove_dir_all(&dir).context("removing the postgres scratch directory")?;
    Ok((refresh, revoke))
}

/// What the seeding made: refresh tokens of live sessions, and the account to revoke.
struct Seeded {
    sessions: Vec<String>,
    revoke_account: Uuid,
    revoke_owner_token: String,
}

/// One account whose users hold `sizes.sessions` live sessions (scenario 1's data set,
/// smaller), and one with an owner's session and `pg_revoke_tokens - 1` more live tokens
/// over 9 engineers.
async fn seed(bench: &Bench, db: &Client) -> anyhow::Result<Seeded> {
    let at = sessiond::clock::Clock::system().now();
    let now = at.timestamp_millis();
    let hash = bench.password_hash.as_str();
    db.batch_execute("BEGIN").await?;
    let (_, users) = tenant(db, "refresh", 9, hash, now).await?;
    let mut sessions = Vec::with_capacity(bench.sizes.sessions);
    let insert = db
        .prepare(
            "INSERT INTO refresh_tokens
               (id, session_id, user_id, token_hash, session_started_at, issued_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .await?;
    let session = |user: Uuid| {
        let minted = sessiond::auth::refresh::mint(at);
        let new_id = || sessiond::auth::refresh::new_id(at).to_string();
        let params = (new_id(), new_id(), user.to_string());
        (minted, params)
    };
    for i in 0..bench.sizes.sessions {
        let (minted, (id, sid, user)) = session(users[i % users.len()]);
        db.execute(&insert, &[&id, &sid, &user, &minted.key.as_slice(), &now]).await?;
        sessions.push(minted.token);
    }
    let (account, users) = tenant(db, "revoke", 9, hash, now).await?;
    let (minted, (id, sid, owner)) = session(users[0]);
    db.execute(&insert, &[&id, &sid, &owner, &minted.key.as_slice(), &now]).await?;
    let members: Vec<String> = users[1..].iter().map(Uuid::to_string).collect();
    let others = i64::try_from(bench.sizes.pg_revoke_tokens.saturating_sub(1))?;
    // Random ids (gen_random_uuid: PostgreSQL 13+; the server's are time-ordered, version
    // 7, which SQL cannot make before PostgreSQL 18) and random keys (the server's start
    // with the minting time). The revoke reaches its rows by user, changes no key, and its
    // new index entries land among other tokens' either way.
    db.execute(
        "INSERT INTO refresh_tokens
           (id, session_id, user_id, token_hash, session_started_at, issued_at)
         SELECT gen_random_uuid()::text, gen_random_uuid()::text,
                ($1::text[])[1 + g % cardinality($1::text[])],
                decode(md5(random()::text || g::text) || md5(random()::text), 'hex'), $2, $2
         FROM generate_series(1, $3::bigint) AS g",
        &[&members, &now, &others],
    )
    .await
    .context("seeding the tokens to revoke")?;
    db.batch_execute("COMMIT").await?;
    db.batch_execute("VACUUM ANALYZE").await?;
    Ok(Seeded { sessions, revoke_account: account, revoke_owner_token: minted.token })
}

/// An account with an owner and `members` engineers; answers its id and its users, owner
/// first.
async fn tenant(
    db: &Client,
    name: &str,
    members: usize,
    password_hash: &str,
    now: i64,
) -> anyhow::Result<(Uuid, Vec<Uuid>)> {
    let account = Uuid::new_v4();
    db.execute(
        "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)",
        &[&account.to_string(), &name, &now],
    )
    .await?;
    let mut users = Vec::new();
    for i in 0..=members {
        let (email, role) = if i == 0 {
            (format!("owner@{name}.test"), "owner")
        } else {
            (format!("user{i}@{name}.test"), "engineer")
        };
        let id = sessiond::service::users::new_id(account);
        db.execute(
            "INSERT INTO users (id, account_id, email, password_hash, role, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&id.to_string(), &account.to_string(), &email, &password_hash, &role, &now],
        )
        .await?;
        users.push(id);
    }
    Ok((account, users))
}

/// The revoke of the account's `pg_revoke_tokens` live tokens, as the client sees it,
/// after one warm-up revoke; between revokes the tokens are made live again and the
/// table vacuumed (outside the measurement), so each revoke meets the same table.
async fn revoke(
    bench: &Bench,
    server: &Server,
    db: &Client,
    seeded: &mut Seeded,
) -> anyhow::Result<PgRevoke> {
    let tokens = bench.sizes.pg_revoke_tokens;
    let pair = refresh_once(server, &seeded.revoke_owner_token).await?;
    seeded.revoke_owner_token = pair.refresh_token;
    let call = Call::post(
        "/accounts/me/security/revoke-sessions",
        Some(&pair.access_token),
        br#"{"scope":"all"}"#.to_vec(),
    );
    let mut conn = Conn::open(server.addr).await?;
    let (mut took, mut errors) = (Vec::new(), 0);
    for rep in 0..=bench.sizes.revoke_reps {
        if rep > 0 {
            revive(db, seeded.revoke_account).await?;
        }
        let began = Instant::now();
        let (status, body) = conn.send(&call).await?;
        let elapsed = began.elapsed();
        let count = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["revoked_count"].as_u64());
        if !status.is_success() || count != Some(tokens as u64) {
            errors += 1;
            eprintln!("postgres revoke of {tokens}: {status} {}", String::from_utf8_lossy(&body));
        } else if rep > 0 {
            took.push(elapsed);
        }
    }
    took.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, super::cold_start::ms);
    Ok(PgRevoke {
        tokens,
        revokes: took.len(),
        median_ms: median_ms(&mut took),
        min_ms: ms(took.first()),
        max_ms: ms(took.last()),
        errors,
    })
}

/// Makes the account's revoked tokens live again — all but those exchanged by rotation —
/// then vacuums, so that the dead row versions the update leaves do not pile up.
async fn revive(db: &Client, account: Uuid) -> anyhow::Result<()> {
    db.execute(
        "UPDATE refresh_tokens
         SET revoked_at = NULL, revoke_reason = NULL, revoked_by_event = NULL,
             revoke_limit_minutes = NULL
         WHERE replaced_by IS NULL
           AND user_id IN (SELECT id FROM users WHERE account_id = $1)",
        &[&account.to_string()],
    )
    .await
    .context("making the account's tokens live again")?;
    db.batch_execute("VACUUM ANALYZE refresh_tokens").await.context("vacuum")?;
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("sessiond-bench: postgres connection: {e}");
        }
    });
    Ok(client)
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).context("--postgres is not a URL")?;
    parsed.set_path(&format!("/{name}"));
    Ok(parsed.to_string())
}
