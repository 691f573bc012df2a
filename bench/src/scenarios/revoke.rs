//! Scenario 3: `POST /accounts/me/security/revoke-sessions` (scope `all`) for an account
//! with 100 to 100 000 live tokens, and the 1 000-token revoke again with 1 000 000 live
//! tokens of other accounts in the table.
//!
//! Each account size has its own freshly migrated file and server. One revoke warms the
//! cache and is not counted; before each measured revoke the account's tokens are made
//! live again through a second connection (the owner's current token included, so the
//! same access token keeps working), and the log is checkpointed and truncated, so the
//! log's size afterwards says how many pages the revoke wrote.
//!
//! The file with other accounts' rows holds two accounts of the same size: one whose
//! tokens are spread evenly through the others' (as years of interleaved activity leave
//! them: the realistic case, and the one the target is about), and one whose tokens were
//! written in one block (the control: same statement, same table, dense pages). Every
//! account but the block one is revoked under both `synchronous` settings. Under FULL,
//! the account of the same size alone (its own file and server) and those two take
//! turns, revoke by revoke: the target's ratio compares revokes of the same minutes,
//! not of runs minutes apart on a machine whose speed drifts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::Transaction;
use serde::Serialize;
use uuid::Uuid;

use super::cold_start::median_ms;
use super::{Bench, Sync, refresh_once};
use crate::client::{Call, Conn};
use crate::seed::{Rows, Seeder, Tenant};
use crate::server::Server;

#[derive(Debug, Clone, Serialize)]
pub struct Revoke {
    pub synchronous: Sync,
    /// Live tokens of the account (each revoke's `revoked_count`).
    pub tokens: usize,
    /// Live tokens of other accounts in the table.
    pub foreign: usize,
    /// "alone", "spread" (through the other accounts' rows) or "block" (written together).
    pub layout: &'static str,
    pub revokes: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Pages the revoke wrote to the log (median).
    pub pages_written: u64,
    /// Revokes that did not answer 200 with `revoked_count` = `tokens`.
    pub errors: u64,
}

pub async fn run(bench: &Bench) -> anyhow::Result<Vec<Revoke>> {
    let mut out = Vec::new();
    let (tokens, foreign) = (bench.sizes.revoke_foreign_size, bench.sizes.revoke_foreign);
    // The account alone of the size compared with the one among others: its file is kept
    // for that comparison, where it is revoked under FULL in turns with the other.
    let mut compared = None;
    for &size in &bench.sizes.revoke_sizes {
        let (dir, db) = bench.fresh_db(&format!("revoke-{size}")).await?;
        let mut target = seed_alone(bench, &db, size)?;
        let kept = size == tokens && foreign > 0;
        for sync in [Sync::Full, Sync::Normal] {
            if kept && sync == Sync::Full {
                continue;
            }
            let server = bench.serve(&dir, &db, sync).await?;
            let case = (size, 0, "alone");
            out.push(measure(bench, &server, &db, &mut target, sync, case).await?);
            server.stop().await?;
        }
        if kept {
            compared = Some((dir, db, target));
        } else {
            std::fs::remove_dir_all(&dir).context("removing a revoke database")?;
        }
    }

    let (dir, db) = bench.fresh_db("revoke-foreign").await?;
    let (mut spread, mut block) = seed_with_foreign(bench, &db, tokens, foreign)?;
    for sync in [Sync::Full, Sync::Normal] {
        let server = bench.serve(&dir, &db, sync).await?;
        if sync == Sync::Full {
            // Alone, spread and in one block take turns, revoke by revoke, so that the
            // ratio's two sides sample the same minutes of the machine.
            let mut turns = Vec::new();
            let mut alone_server = None;
            if let Some((dir, db, target)) = compared.as_mut() {
                let alone = alone_server.insert(bench.serve(dir, db, sync).await?);
                turns.push(Turn::start(alone, db, target, (tokens, 0, "alone")).await?);
            }
            turns.push(Turn::start(&server, &db, &mut spread, (tokens, foreign, "spread")).await?);
            turns.push(Turn::start(&server, &db, &mut block, (tokens, foreign, "block")).await?);
            for rep in 0..=bench.sizes.revoke_reps {
                for turn in &mut turns {
                    turn.revoke(rep).await?;
                }
            }
            for turn in turns {
                let row = turn.finish(sync).await?;
                if row.foreign == 0 {
                    // In its place among the other accounts alone, before the NORMAL row.
                    let at = out.iter().position(|r| r.tokens == row.tokens).unwrap_or(out.len());
                    out.insert(at, row);
                } else {
                    out.push(row);
                }
            }
            if let Some(alone) = alone_server {
                alone.stop().await?;
            }
        } else {
            let case = (tokens, foreign, "spread");
            out.push(measure(bench, &server, &db, &mut spread, sync, case).await?);
        }
        server.stop().await?;
    }
    std::fs::remove_dir_all(&dir).context("removing a revoke database")?;
    if let Some((dir, _, _)) = compared {
        std::fs::remove_dir_all(&dir).context("removing a revoke database")?;
    }
    Ok(out)
}

/// An account to revoke: its id and a live session of its owner.
struct Target {
    tenant: Tenant,
    owner_token: String,
}

/// What a row measures: the account's tokens, other accounts' tokens, the layout.
type Case = (usize, usize, &'static str);

/// Every revoke of one account, the warm-up first.
async fn measure(
    bench: &Bench,
    server: &Server,
    db: &Path,
    target: &mut Target,
    sync: Sync,
    case: Case,
) -> anyhow::Result<Revoke> {
    let mut turn = Turn::start(server, db, target, case).await?;
    for rep in 0..=bench.sizes.revoke_reps {
        turn.revoke(rep).await?;
    }
    turn.finish(sync).await
}

/// One account's revokes on one server, one at a time, so that accounts can take turns.
struct Turn {
    case: Case,
    reviver: Reviver,
    conn: Conn,
    call: Call,
    took: Vec<Duration>,
    pages: Vec<u64>,
    errors: u64,
}

impl Turn {
    /// Takes an access token for the account's owner and opens the connections.
    async fn start(
        server: &Server,
        db: &Path,
        target: &mut Target,
        case: Case,
    ) -> anyhow::Result<Turn> {
        let pair = refresh_once(server, &target.owner_token).await?;
        // The next measurement of this account (on another server) refreshes from here.
        target.owner_token = pair.refresh_token;
        let reviver = Reviver::open(db, target.tenant.account)?;
        let conn = Conn::open(server.addr).await?;
        let call = Call::post(
            "/accounts/me/security/revoke-sessions",
            Some(&pair.access_token),
            br#"{"scope":"all"}"#.to_vec(),
        );
        let (took, pages) = (Vec::new(), Vec::new());
        Ok(Turn { case, reviver, conn, call, took, pages, errors: 0 })
    }

    /// Revoke number `rep`: 0 warms the cache and is not counted; the others follow a
    /// revival of the account's tokens.
    async fn revoke(&mut self, rep: usize) -> anyhow::Result<()> {
        let tokens = self.case.0;
        if rep > 0 {
            self.reviver.revive().await?;
        }
        let began = Instant::now();
        let (status, body) = self.conn.send(&self.call).await?;
        let elapsed = began.elapsed();
        let count = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["revoked_count"].as_u64());
        if !status.is_success() || count != Some(tokens as u64) {
            self.errors += 1;
            eprintln!("revoke of {tokens}: {status} {}", String::from_utf8_lossy(&body));
        } else if rep > 0 {
            self.took.push(elapsed);
            self.pages.push(self.reviver.log_pages());
        }
        Ok(())
    }

    /// The row, once the account is live again (for a later measurement of it).
    async fn finish(mut self, sync: Sync) -> anyhow::Result<Revoke> {
        self.reviver.revive().await?;
        let (tokens, foreign, layout) = self.case;
        let mut took = self.took;
        took.sort();
        self.pages.sort_unstable();
        let ms = |d: Option<&Duration>| d.map_or(0.0, super::cold_start::ms);
        Ok(Revoke {
            synchronous: sync,
            tokens,
            foreign,
            layout,
            revokes: took.len(),
            min_ms: ms(took.first()),
            max_ms: ms(took.last()),
            median_ms: median_ms(&mut took),
            pages_written: self.pages.get(self.pages.len() / 2).copied().unwrap_or(0),
            errors: self.errors,
        })
    }
}

/// The account: an owner with one session (its token answered), and `tokens - 1` more
/// live tokens spread over 9 engineers, with random ids like the server's.
fn seed_alone(bench: &Bench, db: &Path, tokens: usize) -> anyhow::Result<Target> {
    let mut seeder = Seeder::open(db, &bench.password_hash)?;
    let target = seeder.write(|tx, rows| {
        let (target, members) = account(tx, rows, "target")?;
        for i in 0..tokens.saturating_sub(1) {
            rows.anonymous_token(tx, members[i % members.len()])?;
        }
        Ok(target)
    })?;
    seeder.close()?;
    Ok(target)
}

/// Two accounts of `tokens` each among `foreign` tokens of other accounts: the "spread"
/// one written in between the others' rows, the "block" one all at the end. Other
/// accounts' rows have sequential ids and hashes so that a million of them seed in
/// seconds (neither index is touched by a revoke).
fn seed_with_foreign(
    bench: &Bench,
    db: &Path,
    tokens: usize,
    foreign: usize,
) -> anyhow::Result<(Target, Target)> {
    let mut seeder = Seeder::open(db, &bench.password_hash)?;
    let seeded = seeder.write(|tx, rows| {
        let (spread, spread_members) = account(tx, rows, "spread")?;
        let (block, block_members) = account(tx, rows, "block")?;
        let foreign_users = foreign_users(tx, rows, foreign)?;
        let mine = tokens.saturating_sub(1);
        let every = foreign.checked_div(mine).map_or(usize::MAX, |e| e.max(1));
        let mut placed = 0;
        for i in 0..foreign {
            let user = foreign_users[i / FOREIGN_TOKENS_PER_ACCOUNT];
            let n = i as u128;
            let hash = [&[0xf0u8; 16][..], &n.to_be_bytes()[..]].concat();
            // Session ids as the server makes them, at the seed's instant.
            rows.token(tx, Uuid::from_u128(1 << 120 | n), rows.new_id(), user, &hash)?;
            if (i + 1) % every == 0 && placed < mine {
                rows.anonymous_token(tx, spread_members[placed % spread_members.len()])?;
                placed += 1;
            }
        }
        for i in placed..mine {
            rows.anonymous_token(tx, spread_members[i % spread_members.len()])?;
        }
        for i in 0..mine {
            rows.anonymous_token(tx, block_members[i % block_members.len()])?;
        }
        Ok((spread, block))
    })?;
    seeder.close()?;
    Ok(seeded)
}

/// An account with an owner (with one live session) and 9 engineers.
fn account(tx: &Transaction<'_>, rows: &Rows, name: &str) -> anyhow::Result<(Target, Vec<Uuid>)> {
    let tenant = rows.tenant(tx, name, 9)?;
    let owner_token = rows.session(tx, tenant.owner)?;
    let members = tenant.users[1..].to_vec();
    Ok((Target { tenant, owner_token }, members))
}

/// Other accounts' tokens: this many per account, each account with one user.
const FOREIGN_TOKENS_PER_ACCOUNT: usize = 1000;

fn foreign_users(tx: &Transaction<'_>, rows: &Rows, foreign: usize) -> anyhow::Result<Vec<Uuid>> {
    (0..foreign.div_ceil(FOREIGN_TOKENS_PER_ACCOUNT))
        .map(|i| rows.tenant(tx, &format!("foreign{i}"), 0).map(|t| t.owner))
        .collect()
}

/// Between measured revokes: makes the account's revoked tokens live again — all but the
/// owner's first token, exchanged by rotation when the bench took its access token —
/// then checkpoints and truncates the log, so that it holds only the next revoke.
struct Reviver {
    conn: std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>,
    account: Uuid,
    wal: PathBuf,
}

/// A log frame: a 24-byte header and one 4 KiB page.
const WAL_FRAME_BYTES: u64 = 24 + 4096;

impl Reviver {
    fn open(db: &Path, account: Uuid) -> anyhow::Result<Reviver> {
        let conn = rusqlite::Connection::open(db).context("opening the reviver connection")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        Ok(Reviver { conn: std::sync::Arc::new(std::sync::Mutex::new(conn)), account, wal })
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
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .context("truncating the log")?;
            Ok(())
        })
        .await?
    }

    /// Pages in the log now (0 if it cannot be read).
    fn log_pages(&self) -> u64 {
        std::fs::metadata(&self.wal).map_or(0, |m| m.len().saturating_sub(32) / WAL_FRAME_BYTES)
    }
}
