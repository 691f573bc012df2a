//! Scenario 2, the in-process ceiling: the refresh transaction (look the token up,
//! rotate it, insert its successor) run directly against the storage layer — the
//! library's own `db` functions, so the same SQL — on one pooled connection, one
//! transaction after the other, no HTTP. Scenario 1 is reported as a share of this.
//!
//! It goes through the same door as the server (`Db::write`: the writer queue, a hop to
//! the blocking pool, an IMMEDIATE transaction) and runs the server's own `exchange`
//! inside it, JWT signing included; only HTTP, JSON and the client are left out.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sessiond::auth::jwt::Keys;
use sessiond::auth::refresh;
use sessiond::clock::Clock;
use sessiond::config::SessionConfig;
use sessiond::db::{Db, DbError, Tx};
use sessiond::policy::Bounds;
use sessiond::service::sessions;

use super::{Bench, Sync};
use crate::load::{Recorded, Summary};

#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub synchronous: Sync,
    #[serde(flatten)]
    pub figures: Summary,
}

pub async fn run(bench: &Bench, sync: Sync) -> anyhow::Result<Ceiling> {
    let (_dir, path) = bench.fresh_db(&format!("ceiling-{}", sync.name())).await?;
    let data = bench.seed_main(&path)?;
    let path = path.to_str().map(str::to_owned);
    let path = path.ok_or_else(|| anyhow::anyhow!("database path is not UTF-8"))?;
    let db = tokio::task::spawn_blocking(move || Db::open_with(&path, 1, sync.storage())).await??;
    let keys = Arc::new(Keys::new(&[7u8; 32], 5));
    let bounds = Bounds::from(&SessionConfig::default());
    let clock = Clock::system();
    let mut keys_of: Vec<Vec<u8>> = data.sessions.iter().map(|t| refresh::lookup_key(t)).collect();

    let phases = bench.sizes.ceiling;
    let start = Instant::now();
    let (measure_from, end) = (start + phases.warmup, start + phases.warmup + phases.measure);
    let mut out = Recorded::new(phases.measure)?;
    let mut i = 0;
    loop {
        let began = Instant::now();
        if began >= end {
            break;
        }
        let presented = keys_of[i].clone();
        let now = clock.now();
        // Minting is part of the server's refresh too (random bytes, base64, SHA-256).
        let minted = refresh::mint(now);
        let (keys, successor) = (keys.clone(), minted.key.clone());
        let result =
            db.write(move |tx| rotate(tx, &presented, &successor, now, bounds, &keys)).await;
        match result {
            Ok(()) => {
                keys_of[i] = minted.key;
                if began >= measure_from {
                    let us = began.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
                    out.hist.saturating_record(us);
                }
            }
            Err(e) => out.note(format!("{e:#}")),
        }
        i = (i + 1) % keys_of.len();
    }
    Ok(Ceiling { synchronous: sync, figures: out.summary() })
}

/// The server's own refresh decision (`service::sessions::exchange`), the same function
/// the HTTP handler runs inside its transaction; a refusal here is an error, since every
/// seeded session is live.
fn rotate(
    tx: &Tx<'_>,
    presented: &[u8],
    successor_key: &[u8],
    now: DateTime<Utc>,
    bounds: Bounds,
    keys: &Keys,
) -> Result<(), DbError> {
    let grace = TimeDelta::seconds(SessionConfig::default().reuse_grace_seconds);
    match sessions::exchange(tx, presented, successor_key, now, bounds, grace, keys) {
        Ok(Ok(_access)) => Ok(()),
        Ok(Err(denied)) => Err(DbError::Conflict(format!("refresh refused: {denied:?}"))),
        Err(e) => Err(DbError::Other(anyhow::anyhow!("{e:#}"))),
    }
}
