//! Day-2 housekeeping: pruning old refresh tokens (the `prune` command and the server's
//! hourly run, which also deletes the login throttle's closed windows), keeping the metrics registry tidy, and online backups.
//!
//! # What the prune deletes
//!
//! With `cutoff = now - session.retention_days`, a refresh token is deleted when its
//! whole session is over and has been since before the cutoff:
//!
//! - a session with no live token whose every token was revoked before the cutoff
//!   (logout, revocation, rotation, a refusal for a timeout): all its tokens;
//! - a live token issued before the cutoff whose session had already ended by the cutoff
//!   under its account's policy *as it stands now* (the same rule as a refresh, from
//!   [`crate::policy`]): "expired more than `retention_days` ago". The rest of its
//!   session's tokens then fall under the first rule.
//!
//! Never deleted: any token of a session that is still live — including the rotated
//! tokens reuse detection looks up, however old, for as long as their session can still
//! be ended by it — and anything revoked or expired within the retention period.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::Error;
use crate::db::backup::{self, Backed, BackupError};
use crate::db::maintenance::TokenKey;
use crate::db::{Db, Tx, maintenance};
use crate::metrics::Metrics;
use crate::policy::Bounds;
use crate::state::AppState;

/// Tokens examined per scan (a read transaction, which holds up no writer).
pub const PRUNE_BATCH: usize = 1000;

/// Tokens deleted per write transaction. Each deleted row touches several index pages
/// spread over the file (ids and hashes are random), so a chunk is kept small: a refresh
/// queued behind it waits milliseconds, not the whole prune.
pub const DELETE_CHUNK: usize = 100;

/// How a prune shares the database's one writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Chunk after chunk, letting only the writers already queued go between them: for a
    /// database nobody is using.
    FullSpeed,
    /// After each chunk, rest [`GENTLE_REST_FACTOR`] times as long as it took (at least
    /// [`GENTLE_MIN_REST`]): the prune holds the write lock a quarter of the time at most,
    /// and the writers of a server beside the `prune` command, which poll SQLite's lock
    /// rather than queue for it, find it free.
    Gentle,
}

pub const GENTLE_REST_FACTOR: u32 = 3;
pub const GENTLE_MIN_REST: Duration = Duration::from_millis(5);

/// Deletes the refresh tokens that are over and past retention (see the module docs), in
/// chunks, at full speed. Returns how many were deleted.
pub async fn prune(
    db: &Db,
    bounds: Bounds,
    retention_days: i64,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    prune_paced(db, bounds, retention_days, now, Pace::FullSpeed).await
}

/// [`prune`] at the given pace: [`Pace::Gentle`] for the server's own prune and the
/// `prune` command.
pub async fn prune_paced(
    db: &Db,
    bounds: Bounds,
    retention_days: i64,
    now: DateTime<Utc>,
    pace: Pace,
) -> Result<u64, Error> {
    let cutoff = TimeDelta::try_days(retention_days)
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| Error::Invalid(format!("retention of {retention_days} days")))?;
    let expired = prune_expired(db, bounds, cutoff, pace).await?;
    let ended = prune_ended(db, cutoff, pace).await?;
    Ok(expired + ended)
}

/// Applies `delete` (which answers how many rows it deleted) to each token, in key
/// order (neighbouring rows share pages), one write transaction per [`DELETE_CHUNK`],
/// resting after each as `pace` says.
async fn delete_rows<F>(
    db: &Db,
    pace: Pace,
    mut keys: Vec<TokenKey>,
    delete: F,
) -> Result<u64, Error>
where
    F: Fn(&Tx<'_>, &TokenKey) -> Result<u64, Error> + Clone + Send + 'static,
{
    keys.sort_unstable();
    let mut deleted = 0;
    for chunk in keys.chunks(DELETE_CHUNK) {
        let (chunk, delete) = (chunk.to_vec(), delete.clone());
        let started = std::time::Instant::now();
        let n = db
            .write(move |tx| chunk.iter().map(|key| delete(tx, key)).sum::<Result<u64, _>>())
            .await?;
        // Counted as each chunk commits: a prune stopped by a shutdown still shows.
        db.metrics().pruned(n);
        deleted += n;
        match pace {
            // The writer queue is fair: whoever waited behind this chunk goes next.
            Pace::FullSpeed => tokio::task::yield_now().await,
            Pace::Gentle => {
                let rest = (started.elapsed() * GENTLE_REST_FACTOR).max(GENTLE_MIN_REST);
                tokio::time::sleep(rest).await;
            }
        }
    }
    Ok(deleted)
}

/// Live tokens of sessions that the policy ended before the cutoff.
async fn prune_expired(
    db: &Db,
    bounds: Bounds,
    cutoff: DateTime<Utc>,
    pace: Pace,
) -> Result<u64, Error> {
    let (mut deleted, mut after) = (0, None);
    loop {
        let from = after.clone();
        let batch = db
            .read(move |tx| maintenance::live_issued_before(tx, cutoff, from.as_ref(), PRUNE_BATCH))
            .await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.key.clone());
        let full = batch.len() == PRUNE_BATCH;
        let keys = batch.into_iter().map(|c| c.key).collect();
        deleted += delete_rows(db, pace, keys, move |tx, key| {
            // Read again under the write lock: the token may have been refreshed or the
            // policy loosened since the scan.
            let Some(t) = maintenance::live_token(tx, key)? else { return Ok(0) };
            let effective = bounds.effective(t.overrides);
            if effective.expiry(cutoff, t.session_started_at, t.issued_at).is_none() {
                return Ok(0);
            }
            Ok(maintenance::delete_token(tx, key)? as u64)
        })
        .await?;
        if !full {
            break;
        }
    }
    Ok(deleted)
}

/// Tokens of sessions with nothing live and nothing revoked since the cutoff. Such a
/// session can never come back (no token is ever un-revoked, and a successor is only
/// issued for a live token), so the scan's verdict still holds when the rows are deleted.
async fn prune_ended(db: &Db, cutoff: DateTime<Utc>, pace: Pace) -> Result<u64, Error> {
    let (mut deleted, mut after) = (0, None);
    loop {
        let from = after.clone();
        let batch = db
            .read(move |tx| maintenance::revoked_before(tx, cutoff, from.as_ref(), PRUNE_BATCH))
            .await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.cursor.clone());
        let full = batch.len() == PRUNE_BATCH;
        let doomed = batch.into_iter().filter(|c| c.session_ended).map(|c| c.key).collect();
        deleted +=
            delete_rows(db, pace, doomed, |tx, key| Ok(maintenance::delete_token(tx, key)? as u64))
                .await?;
        if !full {
            break;
        }
    }
    Ok(deleted)
}

/// The server's background prune: first after `first`, then every `every`, until `stop`.
/// A failed run is logged and retried at the next tick.
pub async fn prune_periodically(
    state: AppState,
    first: Duration,
    every: Duration,
    stop: CancellationToken,
) {
    let mut wait = first;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = every;
        // One process of a deployment prunes at a time (PostgreSQL: an advisory lock);
        // the others skip this round.
        let _lease = match state.db.try_lease("prune").await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tracing::debug!("another process is pruning; skipping this round");
                state.metrics.prune_round(false);
                continue;
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "prune failed");
                continue;
            }
        };
        state.metrics.prune_round(true);
        let (db, bounds) = (&state.db, state.bounds);
        let retention = state.config.session.retention_days;
        let started = std::time::Instant::now();
        let run = prune_paced(db, bounds, retention, state.clock.now(), Pace::Gentle);
        let result = tokio::select! {
            () = stop.cancelled() => return,
            result = run => result,
        };
        match result {
            Ok(deleted) => {
                let ms = started.elapsed().as_millis();
                tracing::info!(deleted, ms, retention_days = retention, "pruned refresh tokens");
            }
            Err(e) => tracing::error!(error = format!("{e:#}"), "prune failed"),
        }
        // The login throttle's rows whose window has closed (auth::throttle).
        let run = state.login_throttle.prune(state.clock.now());
        let result = tokio::select! {
            () = stop.cancelled() => return,
            result = run => result,
        };
        match result {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned closed login-failure windows"),
            Err(e) => tracing::error!(error = format!("{e:#}"), "login-failure prune failed"),
        }
    }
}

/// How often buffered histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Keeps the metrics registry's memory bounded between scrapes, until `stop`.
pub async fn metrics_upkeep(metrics: Metrics, stop: CancellationToken) {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => metrics.upkeep(),
        }
    }
}

/// How often a backup that found the database busy is tried again, and how many times.
const BACKUP_RETRY: Duration = Duration::from_millis(200);
const BACKUP_TRIES: u32 = 25;

/// Writes a consistent copy of the database at `source` to `dest` with SQLite's online
/// backup API; see [`crate::db::backup`]. A busy source is retried for a few seconds.
pub async fn backup(source: &Path, dest: &Path) -> Result<Backed, BackupError> {
    let mut tries = 0;
    loop {
        let (s, d) = (source.to_owned(), dest.to_owned());
        let attempt = tokio::task::spawn_blocking(move || backup::copy(&s, &d))
            .await
            .map_err(|e| BackupError::Other(anyhow::Error::new(e).context("backup task")))?;
        tries += 1;
        match attempt {
            Err(BackupError::Busy) if tries < BACKUP_TRIES => {
                tokio::time::sleep(BACKUP_RETRY).await
            }
            other => return other,
        }
    }
}
