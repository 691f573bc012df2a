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
//! - **One attempt at a time per pair**: attempts for the same (email, address) are
//!   decided in turn, so a burst of concurrent guesses cannot slip more than `max`
//!   password checks past the limit. Different pairs never wait for each other.
//! - **The client address** is the TCP peer's IP address (forwarding headers are not
//!   read), the email is normalised (lower-cased) as at login.
//! - **Memory is bounded**: at most [`MAX_TRACKED_PAIRS`] pairs are remembered (keys
//!   are a SHA-256 of address and email, a fixed 32 bytes whatever the email's length).
//!   When full, pairs whose window has closed are forgotten first, then pairs still
//!   under the limit (oldest window first), and only then locked pairs (the one closest
//!   to its end first). Pairs with an attempt in progress are never evicted.
//! - State lives in this process's memory: a restart forgets it, and several server
//!   processes on one database each count on their own.
//!
//! Time is the request's instant from the server clock, so the test clock moves it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;

/// How many (email, address) pairs are remembered at most: about 10 MB.
pub const MAX_TRACKED_PAIRS: usize = 65_536;

/// The throttle. Cheap to share behind an `Arc`.
pub struct LoginThrottle {
    max_failures: u32,
    window: TimeDelta,
    capacity: usize,
    pairs: Mutex<HashMap<PairKey, Entry>>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("max_failures", &self.max_failures)
            .field("window", &self.window)
            .field("tracked", &self.tracked())
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
}

struct Entry {
    failures: u32,
    /// When the current window opened: the instant of its first failure.
    window_start: DateTime<Utc>,
    /// Held by the attempt being decided for this pair; the next one waits for it.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Entry {
    fn fresh(now: DateTime<Utc>) -> Self {
        Entry { failures: 0, window_start: now, turn: Arc::new(tokio::sync::Mutex::new(())) }
    }

    fn in_use(&self) -> bool {
        Arc::strong_count(&self.turn) > 1
    }
}

/// A refused attempt: how long until the pair may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Whole seconds, rounded up, at least 1: the `Retry-After` value.
    pub retry_after_seconds: u64,
}

/// An attempt allowed through: its pair is held until it is dropped. Report the outcome
/// with [`Attempt::failed`] or [`Attempt::succeeded`]; an attempt dropped without either
/// (an internal error) changes nothing.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    key: PairKey,
    ip: Option<String>,
    _turn: OwnedMutexGuard<()>,
}

impl LoginThrottle {
    pub fn new(max_failures: u32, window_minutes: i64) -> Self {
        Self::with_capacity(max_failures, window_minutes, MAX_TRACKED_PAIRS)
    }

    pub fn with_capacity(max_failures: u32, window_minutes: i64, capacity: usize) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window: TimeDelta::minutes(window_minutes),
            capacity: capacity.max(1),
            pairs: Mutex::new(HashMap::new()),
        }
    }

    /// How many pairs are remembered now.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PairKey, Entry>> {
        // The map holds counters only; a panic elsewhere cannot leave it inconsistent.
        self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn window_open(&self, e: &Entry, now: DateTime<Utc>) -> bool {
        e.failures > 0 && now < e.window_start + self.window
    }

    /// Waits for the pair's turn, then lets the attempt through or refuses it.
    /// `email` must already be normalised.
    pub async fn begin(
        &self,
        email: &str,
        ip: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Attempt<'_>, Throttled> {
        let key = PairKey::new(email, ip);
        let turn = {
            let mut pairs = self.lock();
            self.make_room(&mut pairs, &key, now);
            pairs.entry(key).or_insert_with(|| Entry::fresh(now)).turn.clone()
        };
        let turn = turn.lock_owned().await;
        if let Some(e) = self.lock().get(&key)
            && e.failures >= self.max_failures
            && self.window_open(e, now)
        {
            let left = (e.window_start + self.window - now).num_milliseconds();
            let retry_after_seconds = u64::try_from((left + 999) / 1000).unwrap_or(1).max(1);
            return Err(Throttled { retry_after_seconds });
        }
        Ok(Attempt { throttle: self, key, ip: ip.map(str::to_owned), _turn: turn })
    }

    /// Frees room for `incoming` when the map is full. See the module docs for the order.
    fn make_room(
        &self,
        pairs: &mut HashMap<PairKey, Entry>,
        incoming: &PairKey,
        now: DateTime<Utc>,
    ) {
        if pairs.len() < self.capacity || pairs.contains_key(incoming) {
            return;
        }
        pairs.retain(|_, e| e.in_use() || self.window_open(e, now));
        if pairs.len() < self.capacity {
            return;
        }
        // Still full of live pairs: forget a quarter of them, so that a spray of new
        // emails pays this sort once per many insertions, not on every one.
        let target = self.capacity - self.capacity.div_ceil(4);
        let mut candidates: Vec<(bool, DateTime<Utc>, PairKey)> = pairs
            .iter()
            .filter(|(_, e)| !e.in_use())
            .map(|(k, e)| (e.failures >= self.max_failures, e.window_start, *k))
            .collect();
        candidates.sort_unstable_by_key(|(locked, start, _)| (*locked, *start));
        let excess = pairs.len().saturating_sub(target);
        for (_, _, k) in candidates.into_iter().take(excess) {
            pairs.remove(&k);
        }
    }
}

impl Attempt<'_> {
    /// The attempt was refused (`invalid_credentials`): count it.
    pub fn failed(self, now: DateTime<Utc>) {
        let t = self.throttle;
        let mut pairs = t.lock();
        t.make_room(&mut pairs, &self.key, now);
        let e = pairs.entry(self.key).or_insert_with(|| Entry::fresh(now));
        if t.window_open(e, now) {
            e.failures = e.failures.saturating_add(1);
        } else {
            e.failures = 1;
            e.window_start = now;
        }
        if e.failures == t.max_failures {
            tracing::warn!(
                ip = self.ip.as_deref().unwrap_or("unknown"),
                failures = e.failures,
                "login throttled: too many failed attempts for one email from this address"
            );
        }
    }

    /// The login succeeded: the pair's failures are forgotten.
    pub fn succeeded(self) {
        if let Some(e) = self.throttle.lock().get_mut(&self.key) {
            e.failures = 0;
        }
    }
}

impl Drop for Attempt<'_> {
    /// A pair with nothing to remember and nobody else waiting is removed at once, so
    /// successful logins leave nothing behind.
    fn drop(&mut self) {
        let mut pairs = self.throttle.lock();
        if let Some(e) = pairs.get(&self.key)
            // This attempt's own guard holds one reference besides the map's.
            && Arc::strong_count(&e.turn) <= 2
            && e.failures == 0
        {
            pairs.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000)
    }

    async fn fail(t: &LoginThrottle, email: &str, ip: &str, now: DateTime<Utc>) {
        match t.begin(email, Some(ip), now).await {
            Ok(a) => a.failed(now),
            Err(e) => panic!("refused too early: {e:?}"),
        }
    }

    #[tokio::test]
    async fn refuses_from_the_threshold_until_the_window_ends() {
        let t = LoginThrottle::new(3, 15);
        for _ in 0..3 {
            fail(&t, "a@x", "1.1.1.1", t0()).await;
        }
        let refused = t.begin("a@x", Some("1.1.1.1"), t0() + TimeDelta::seconds(60)).await;
        assert_eq!(refused.err(), Some(Throttled { retry_after_seconds: 14 * 60 }));
        let last_ms = t0() + TimeDelta::minutes(15) - TimeDelta::milliseconds(1);
        assert_eq!(
            t.begin("a@x", Some("1.1.1.1"), last_ms).await.err(),
            Some(Throttled { retry_after_seconds: 1 })
        );
        assert!(t.begin("a@x", Some("1.1.1.1"), t0() + TimeDelta::minutes(15)).await.is_ok());
    }

    #[tokio::test]
    async fn pairs_are_separate_and_success_clears() {
        let t = LoginThrottle::new(2, 15);
        fail(&t, "a@x", "1.1.1.1", t0()).await;
        fail(&t, "a@x", "1.1.1.1", t0()).await;
        assert!(t.begin("a@x", Some("1.1.1.1"), t0()).await.is_err());
        assert!(t.begin("a@x", Some("2.2.2.2"), t0()).await.is_ok());
        assert!(t.begin("b@x", Some("1.1.1.1"), t0()).await.is_ok());
        fail(&t, "c@x", "1.1.1.1", t0()).await;
        if let Ok(a) = t.begin("c@x", Some("1.1.1.1"), t0()).await {
            a.succeeded();
        }
        fail(&t, "c@x", "1.1.1.1", t0()).await;
        assert!(t.begin("c@x", Some("1.1.1.1"), t0()).await.is_ok(), "the success reset it");
    }

    #[tokio::test]
    async fn a_success_leaves_nothing_behind() {
        let t = LoginThrottle::new(2, 15);
        for i in 0..100 {
            if let Ok(a) = t.begin(&format!("u{i}@x"), Some("1.1.1.1"), t0()).await {
                a.succeeded();
            }
        }
        assert_eq!(t.tracked(), 0);
    }

    #[tokio::test]
    async fn memory_is_bounded_and_locked_pairs_are_evicted_last() {
        let t = LoginThrottle::with_capacity(2, 15, 100);
        fail(&t, "victim@x", "1.1.1.1", t0()).await;
        fail(&t, "victim@x", "1.1.1.1", t0()).await;
        for i in 0..10_000 {
            let now = t0() + TimeDelta::milliseconds(i);
            fail(&t, &format!("spray{i}@x"), "6.6.6.6", now).await;
            assert!(t.tracked() <= 100);
        }
        assert!(t.begin("victim@x", Some("1.1.1.1"), t0()).await.is_err(), "still locked");
        // Once windows have closed, the next pair that finds the map full sweeps them all.
        let later = t0() + TimeDelta::minutes(16);
        for i in 0..100 {
            fail(&t, &format!("late{i}@x"), "6.6.6.6", later).await;
        }
        assert!(t.tracked() <= 100);
        assert!(t.begin("victim@x", Some("1.1.1.1"), later).await.is_ok(), "window over");
    }
}
