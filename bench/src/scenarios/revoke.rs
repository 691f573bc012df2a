//! Scenario 3: `POST /accounts/me/security/revoke-sessions` (scope `all`) for an account
//! with 100 to 100 000 live tokens, and the 1 000-token revoke again with 1 000 000 live
//! tokens of other accounts in the table.
//!
//! Each case has its own freshly migrated file and server. One revoke warms the cache
//! and is not counted; before each measured revoke the account's tokens are made live
//! again through a second connection (the owner's current token included, so the same
//! access token keeps working).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::Transaction;
use serde::Serialize;
use uuid::Uuid;

use super::cold_start::median_ms;
use super::{Bench, Sync, refresh_once};
use crate::client::{Call, Conn};
use crate::seed::{Rows, Seeder, Tenant};

#[derive(Debug, Clone, Serialize)]
pub struct Revoke {
    pub synchronous: Sync,
    /// Live tokens of the account (each revoke's `revoked_count`).
    pub tokens: usize,
    /// Live tokens of other accounts in the table.
    pub foreign: usize,
    pub revokes: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Revokes that did not answer 200 with `revoked_count` = `tokens`.
    pub errors: u64,
}

/// Every case the sizes ask for, on the default `synchronous`.
pub async fn run(bench: &Bench, sync: Sync) -> anyhow::Result<Vec<Revoke>> {
    let mut out = Vec::new();
    for &tokens in &bench.sizes.revoke_sizes {
        out.push(case(bench, sync, tokens, 0).await?);
    }
    let sizes = &bench.sizes;
    out.push(case(bench, sync, sizes.revoke_foreign_size, sizes.revoke_foreign).await?);
    Ok(out)
}

/// Other accounts' tokens are spread over this many tokens per user, one user per account.
const FOREIGN_TOKENS_PER_ACCOUNT: usize = 1000;

async fn case(bench: &Bench, sync: Sync, tokens: usize, foreign: usize) -> anyhow::Result<Revoke> {
    let (dir, db) = bench.fresh_db(&format!("revoke-{tokens}-{foreign}")).await?;
    let (tenant, owner_token) = seed(bench, &db, tokens, foreign)?;
    let server = bench.serve(&dir, &db, sync).await?;
    let access = refresh_once(&server, &owner_token).await?.access_token;
    let reviver = Reviver::open(&db, tenant.account)?;
    let mut conn = Conn::open(server.addr).await?;
    let call = Call::post(
        "/accounts/me/security/revoke-sessions",
        Some(&access),
        br#"{"scope":"all"}"#.to_vec(),
    );
    let mut took = Vec::new();
    let mut errors = 0;
    for rep in 0..=bench.sizes.revoke_reps {
        if rep > 0 {
            reviver.revive().await?;
        }
        let began = Instant::now();
        let (status, body) = conn.send(&call).await?;
        let elapsed = began.elapsed();
        let count = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["revoked_count"].as_u64());
        if !status.is_success() || count != Some(tokens as u64) {
            errors += 1;
            eprintln!("revoke of {tokens}: {status} {}", String::from_utf8_lossy(&body));
        } else if rep > 0 {
            took.push(elapsed);
        }
    }
    server.stop().await?;
    took.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, super::cold_start::ms);
    Ok(Revoke {
        synchronous: sync,
        tokens,
        foreign,
        revokes: took.len(),
        median_ms: median_ms(&mut took),
        min_ms: ms(took.first()),
        max_ms: ms(took.last()),
        errors,
    })
}

/// The account: an owner with one session (its token answered), and `tokens - 1` more
/// live tokens spread over 9 engineers, with random ids like the server's. Other
/// accounts' `foreign` tokens are written in between (the account's rows are spread
/// evenly through them, as years of interleaved activity would leave them), with
/// sequential keys so that a million rows seed in seconds.
fn seed(
    bench: &Bench,
    db: &Path,
    tokens: usize,
    foreign: usize,
) -> anyhow::Result<(Tenant, String)> {
    let mut seeder = Seeder::open(db, &bench.password_hash)?;
    let seeded = seeder.write(|tx, rows| {
        let tenant = rows.tenant(tx, "target", 9)?;
        let owner_token = rows.session(tx, tenant.owner)?;
        let members = &tenant.users[1..];
        let mut mine = (0..tokens.saturating_sub(1)).map(|i| members[i % members.len()]);
        let foreign_users = foreign_users(tx, rows, foreign)?;
        let every = match tokens.saturating_sub(1) {
            0 => usize::MAX,
            n => (foreign / n).max(1),
        };
        for i in 0..foreign {
            let user = foreign_users[i / FOREIGN_TOKENS_PER_ACCOUNT];
            let n = i as u128;
            let hash = [&[0xf0u8; 16][..], &n.to_be_bytes()[..]].concat();
            rows.token(
                tx,
                Uuid::from_u128(1 << 120 | n),
                Uuid::from_u128(2 << 120 | n),
                user,
                &hash,
            )?;
            if (i + 1) % every == 0
                && let Some(user) = mine.next()
            {
                rows.anonymous_token(tx, user)?;
            }
        }
        for user in mine {
            rows.anonymous_token(tx, user)?;
        }
        Ok((tenant, owner_token))
    })?;
    seeder.close()?;
    Ok(seeded)
}

fn foreign_users(tx: &Transaction<'_>, rows: &Rows, foreign: usize) -> anyhow::Result<Vec<Uuid>> {
    (0..foreign.div_ceil(FOREIGN_TOKENS_PER_ACCOUNT))
        .map(|i| rows.tenant(tx, &format!("foreign{i}"), 0).map(|t| t.owner))
        .collect()
}

/// Makes the account's revoked tokens live again between measured revokes — all but
/// the owner's first token, which was exchanged by rotation when the bench took its
/// access token.
struct Reviver {
    conn: std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>,
    account: Uuid,
}

impl Reviver {
    fn open(db: &Path, account: Uuid) -> anyhow::Result<Reviver> {
        let conn = rusqlite::Connection::open(db).context("opening the reviver connection")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(Reviver { conn: std::sync::Arc::new(std::sync::Mutex::new(conn)), account })
    }

    async fn revive(&self) -> anyhow::Result<()> {
        let (conn, account) = (self.conn.clone(), self.account.to_string());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let conn = conn.lock().map_err(|_| anyhow::anyhow!("reviver connection poisoned"))?;
            conn.execute(
                "UPDATE refresh_tokens SET revoked_at = NULL
                 WHERE replaced_by IS NULL
                   AND user_id IN (SELECT id FROM users WHERE account_id = ?1)",
                [account],
            )
            .context("making the account's tokens live again")?;
            Ok(())
        })
        .await?
    }
}
