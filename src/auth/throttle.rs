//! Login throttling (contract section 3): once `auth.max_failed_logins` logins for one
//! email from one client address have failed within `auth.failed_login_window_minutes`,
//! further attempts for that pair — a correct password included — are refused with 429
//! until the window has passed.
//!
//! - **The window** opens at the first failure of a pair and lasts the configured
//!   minutes; the pair is refused from its `max`-th failure until the window closes.
//!   After that the pair starts afresh (a new window at its next failure). Refused
//!   attempts do not count: a lockout always ends when its `Retry-After` says.
//! - **Every `invalid_credentials` answer counts**: a wrong password, an unknown email
//!   and an inactive user alike, so the throttle answers the same for emails that exist
//!   and emails that do not. A successful login clears the pair's failures.
//! - **The counts are in the database** (table `login_failures`, on SQLite and PostgreSQL
//!   alike), so every server process on one database counts the same failures, a restart
//!   forgets nothing, and `sessiond user unlock --email EMAIL` lifts a lockout for a
//!   running server. One statement per attempt, none held open while the password is
//!   hashed: [`LoginThrottle::begin`] reads the pair's row, [`Attempt::failed`] counts a
//!   failure with one upsert (which adds to whatever another process counted meanwhile),
//!   [`Attempt::succeeded`] deletes the row (only if there was one).
//! - **One attempt at a time per pair, within a process**: attempts for the same (email,
//!   address) are decided in turn, so a burst of concurrent guesses at one process cannot
//!   slip more than `max` password checks past the limit. Different pairs never wait for
//!   each other. Across processes, attempts of one pair that are in flight together may
//!   each pass the read before the others' failures are counted: with N processes, a
//!   burst can get up to N − 1 password checks more than `max` (each process still
//!   stops at the limit; the counts themselves are never lost).
//! - **The client address** is the one `ClientInfo` settles (the TCP peer, or what a
//!   proxy in `server.trusted_proxies` forwarded); the email is normalised (lower-cased)
//!   as at login.
//! - **Storage is bounded**: a row's key is a SHA-256 of address and email (a fixed 64
//!   hex characters whatever the email's length, neither stored in clear), plus the
//!   email's own SHA-256 for `user unlock`. A success deletes its pair's row; the
//!   server's hourly prune deletes the rows whose window has closed
//!   ([`LoginThrottle::prune`]). Nothing locked is ever forgotten early. In memory, a
//!   process keeps only the turns of the attempts it has in flight.
//!
//! Time is the request's instant from the server clock, so the test clock moves it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;

use crate::db::{Db, DbError, login_failures};

/// Rows deleted per write transaction by [`LoginThrottle::prune`].
const PRUNE_CHUNK: usize = 1000;

/// The throttle. Cheap to share behind an `Arc`.
pub struct LoginThrottle {
    db: Db,
    max_failures: u32,
    window: TimeDelta,
    /// The turn of each pair with an attempt in flight in this process.
    turns: Mutex<HashMap<PairKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// SHA-256 of the address and the normalised email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PairKey([u8; 32]);

impl PairKey {
    fn new(email: &str, ip: Option<&str>) -> Self {
        let mut h = Sha256::new();
        h.update(ip.unwrap_or("").as_bytes());
        h.update([0u8]);
        h.update(email.as_bytes());
        PairKey(h.finalize().into())
    }

    fn hex(&self) -> String {
        hex(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The key under which an email's failures from every address are found: the hex
/// SHA-256 of the normalised (lower-cased) email.
pub fn email_key(normalized_email: &str) -> String {
    hex(&Sha256::digest(normalized_email.as_bytes()))
}

/// A refused attempt: how long until the pair may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Whole seconds, rounded up, at least 1: the `Retry-After` value.
    pub retry_after_seconds: u64,
}

/// Why [`LoginThrottle::begin`] let no attempt through.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    #[error("too many failed logins; retry in {} s", .0.retry_after_seconds)]
    Throttled(Throttled),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// An attempt allowed through: its pair is held (in this process) until it is dropped.
/// Report the outcome with [`Attempt::failed`] or [`Attempt::succeeded`]; an attempt
/// dropped without either (an internal error) changes nothing.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    key: PairKey,
    email: String,
    ip: Option<String>,
    /// Whether the pair had a row when the attempt began: a success deletes it then.
    had_failures: bool,
    _turn: OwnedMutexGuard<()>,
}

impl LoginThrottle {
    /// A throttle counting in `db`: `max_failures` within `window_minutes`.
    pub fn new(db: Db, max_failures: u32, window_minutes: i64) -> Self {
        Self {
            db,
            max_failures: max_failures.max(1),
            window: TimeDelta::minutes(window_minutes),
            turns: Mutex::new(HashMap::new()),
        }
    }

    /// How many pairs have an attempt in flight in this process now.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PairKey, Arc<tokio::sync::Mutex<()>>>> {
        // The map holds turns only; a panic elsewhere cannot leave it inconsistent.
        self.turns.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for the pair's turn, then reads its failures and lets the attempt through
    /// or refuses it. `email` must already be normalised.
    pub async fn begin(
        &self,
        email: &str,
        ip: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Attempt<'_>, BeginError> {
        let key = PairKey::new(email, ip);
        let turn = self.lock().entry(key).or_default().clone();
        let turn = turn.lock_owned().await;
        // From here the attempt owns the turn: dropped on any return, it leaves the map.
        let mut attempt = Attempt {
            throttle: self,
            key,
            email: email.to_owned(),
            ip: ip.map(str::to_owned),
            had_failures: false,
            _turn: turn,
        };
        let pair = key.hex();
        let found = self.db.read(move |tx| login_failures::find(tx, &pair)).await?;
        let Some(found) = found else { return Ok(attempt) };
        let window_end = found.window_start + self.window;
        if found.failures >= i64::from(self.max_failures) && now < window_end {
            let left = (window_end - now).num_milliseconds();
            let retry_after_seconds = u64::try_from((left + 999) / 1000).unwrap_or(1).max(1);
            return Err(BeginError::Throttled(Throttled { retry_after_seconds }));
        }
        attempt.had_failures = true;
        Ok(attempt)
    }

    /// Deletes the rows whose window has closed by `now`, in chunks; returns how many.
    /// The server runs it with its hourly prune.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<u64, DbError> {
        let opened_before = now - self.window;
        let mut deleted = 0;
        loop {
            let n = self
                .db
                .write(move |tx| login_failures::delete_closed(tx, opened_before, PRUNE_CHUNK))
                .await?;
            deleted += n as u64;
            if n < PRUNE_CHUNK {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }
}

impl Attempt<'_> {
    /// The attempt was refused (`invalid_credentials`): count it.
    pub async fn failed(self, now: DateTime<Utc>) -> Result<(), DbError> {
        let t = self.throttle;
        let (pair, email, window) = (self.key.hex(), email_key(&self.email), t.window);
        let counted =
            t.db.write(move |tx| login_failures::record(tx, &pair, &email, now, window)).await?;
        if counted.failures == i64::from(t.max_failures) {
            tracing::warn!(
                ip = self.ip.as_deref().unwrap_or("unknown"),
                failures = counted.failures,
                "login throttled: too many failed attempts for one email from this address"
            );
        }
        Ok(())
    }

    /// The login succeeded: the pair's failures are forgotten.
    pub async fn succeeded(self) -> Result<(), DbError> {
        if self.had_failures {
            let pair = self.key.hex();
            self.throttle.db.write(move |tx| login_failures::clear(tx, &pair)).await?;
        }
        Ok(())
    }
}

impl Drop for Attempt<'_> {
    /// The pair's turn leaves the map once nobody else waits for it.
    fn drop(&mut self) {
        let mut turns = self.throttle.lock();
        // This attempt's own guard holds one reference besides the map's.
        if turns.get(&self.key).is_some_and(|turn| Arc::strong_count(turn) <= 2) {
            turns.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000)
    }

    fn throttle(max: u32, window_minutes: i64) -> LoginThrottle {
        LoginThrottle::new(Db::open(":memory:", 2).expect("open"), max, window_minutes)
    }

    async fn fail(t: &LoginThrottle, email: &str, ip: &str, now: DateTime<Utc>) {
        match t.begin(email, Some(ip), now).await {
            Ok(a) => a.failed(now).await.expect("counted"),
            Err(e) => panic!("refused too early: {e:?}"),
        }
    }

    async fn refused(t: &LoginThrottle, email: &str, ip: &str, now: DateTime<Utc>) -> Option<u64> {
        match t.begin(email, Some(ip), now).await {
            Ok(_) => None,
            Err(BeginError::Throttled(t)) => Some(t.retry_after_seconds),
            Err(e) => panic!("{e}"),
        }
    }

    async fn rows(t: &LoginThrottle) -> u64 {
        t.db.read(login_failures::count).await.expect("count")
    }

    #[tokio::test]
    async fn refuses_from_the_threshold_until_the_window_ends() {
        let t = throttle(3, 15);
        for _ in 0..3 {
            fail(&t, "a@x", "1.1.1.1", t0()).await;
        }
        assert_eq!(
            refused(&t, "a@x", "1.1.1.1", t0() + TimeDelta::seconds(60)).await,
            Some(14 * 60)
        );
        let last_ms = t0() + TimeDelta::minutes(15) - TimeDelta::milliseconds(1);
        assert_eq!(refused(&t, "a@x", "1.1.1.1", last_ms).await, Some(1));
        assert_eq!(refused(&t, "a@x", "1.1.1.1", t0() + TimeDelta::minutes(15)).await, None);
    }

    #[tokio::test]
    async fn pairs_are_separate_and_success_clears() {
        let t = throttle(2, 15);
        fail(&t, "a@x", "1.1.1.1", t0()).await;
        fail(&t, "a@x", "1.1.1.1", t0()).await;
        assert!(refused(&t, "a@x", "1.1.1.1", t0()).await.is_some());
        assert!(refused(&t, "a@x", "2.2.2.2", t0()).await.is_none());
        assert!(refused(&t, "b@x", "1.1.1.1", t0()).await.is_none());
        fail(&t, "c@x", "1.1.1.1", t0()).await;
        if let Ok(a) = t.begin("c@x", Some("1.1.1.1"), t0()).await {
            a.succeeded().await.expect("cleared");
        }
        fail(&t, "c@x", "1.1.1.1", t0()).await;
        assert!(refused(&t, "c@x", "1.1.1.1", t0()).await.is_none(), "the success reset it");
    }

    #[tokio::test]
    async fn a_success_leaves_nothing_behind() {
        let t = throttle(2, 15);
        fail(&t, "u0@x", "1.1.1.1", t0()).await;
        for i in 0..100 {
            if let Ok(a) = t.begin(&format!("u{i}@x"), Some("1.1.1.1"), t0()).await {
                a.succeeded().await.expect("succeeded");
            }
        }
        assert_eq!(rows(&t).await, 0, "no row in the database");
        assert_eq!(t.in_flight(), 0, "no turn in memory");
    }

    /// The table replaces the old in-memory bound: a spray of failing pairs never
    /// evicts a locked one, nothing stays in memory, and the prune deletes exactly the
    /// rows whose window has closed.
    #[tokio::test]
    async fn a_spray_evicts_nothing_and_the_prune_deletes_closed_windows_only() {
        let t = throttle(2, 15);
        fail(&t, "victim@x", "1.1.1.1", t0()).await;
        fail(&t, "victim@x", "1.1.1.1", t0()).await;
        for i in 0..2000 {
            let now = t0() + TimeDelta::milliseconds(i);
            fail(&t, &format!("spray{i}@x"), "6.6.6.6", now).await;
        }
        assert_eq!(t.in_flight(), 0);
        assert_eq!(rows(&t).await, 2001);
        assert!(refused(&t, "victim@x", "1.1.1.1", t0()).await.is_some(), "still locked");
        // Half of the spray's windows have closed 15 minutes and 1 s after t0.
        let later = t0() + TimeDelta::minutes(15) + TimeDelta::milliseconds(999);
        assert_eq!(t.prune(later).await.expect("prune"), 1001, "the victim and 1000 of the spray");
        assert_eq!(rows(&t).await, 1000);
        assert!(refused(&t, "victim@x", "1.1.1.1", later).await.is_none(), "window over");
        fail(&t, "spray1999@x", "6.6.6.6", later).await;
        assert_eq!(refused(&t, "spray1999@x", "6.6.6.6", later).await, Some(1), "still open");
    }

    #[tokio::test]
    async fn unlock_by_email_clears_every_address() {
        let t = throttle(1, 15);
        for ip in ["1.1.1.1", "2.2.2.2"] {
            fail(&t, "a@x", ip, t0()).await;
        }
        fail(&t, "b@x", "1.1.1.1", t0()).await;
        let key = email_key("a@x");
        let cleared = t.db.write(move |tx| login_failures::clear_email(tx, &key)).await;
        assert_eq!(cleared.expect("cleared"), 2);
        assert!(refused(&t, "a@x", "1.1.1.1", t0()).await.is_none());
        assert!(refused(&t, "a@x", "2.2.2.2", t0()).await.is_none());
        assert!(refused(&t, "b@x", "1.1.1.1", t0()).await.is_some(), "another email stays");
    }
}
