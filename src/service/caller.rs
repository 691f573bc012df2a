//! The caller of a writing request, authorised again inside the transaction that writes
//! (contract §6).
//!
//! The extractors check the bearer token when the request's headers arrive; its body may
//! come much later. Meanwhile the caller's session may be revoked, the user disabled, or
//! the access token expire. So every service function that writes on a signed-in user's
//! behalf takes a [`Caller`] rather than a looked-up user, and runs through [`write_as`]
//! (or [`read_as`] for a preview): the transaction reads the clock once it has begun,
//! checks the caller again at that instant, and hands the closure the user as it stands
//! and that instant, which is the one its audit rows carry.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::Error;
use crate::clock::Clock;
use crate::db::users::{self, User};
use crate::db::{Db, Tx};

/// Who sent an authenticated request, as its access token named them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    /// The session the access token was issued for.
    pub session_id: Uuid,
    /// The access token's `exp`: it is refused from this instant on.
    pub token_expires_at: DateTime<Utc>,
}

impl Caller {
    /// `exp` as the token carries it (seconds since the epoch).
    pub fn new(user_id: Uuid, session_id: Uuid, exp: i64) -> Self {
        // An `exp` beyond chrono's range is no expiry a signed token of ours can carry;
        // treating it as already past refuses it rather than trusting it.
        let token_expires_at = Utc.timestamp_opt(exp, 0).single().unwrap_or(DateTime::UNIX_EPOCH);
        Caller { user_id, session_id, token_expires_at }
    }

    /// The caller as they stand at `now` in `tx`: the access token unexpired (no leeway,
    /// as when it was first checked), the user active, the session not revoked.
    /// Otherwise [`Error::NotAuthenticated`].
    pub fn recheck(self, tx: &Tx<'_>, now: DateTime<Utc>) -> Result<User, Error> {
        if now >= self.token_expires_at {
            return Err(Error::NotAuthenticated);
        }
        users::active_in_live_session(tx, self.user_id, self.session_id)?
            .ok_or(Error::NotAuthenticated)
    }
}

/// Runs `f` in one write transaction on `caller`'s behalf: the instant is read from the
/// clock once the transaction has begun (after any writer ahead of it), the caller is
/// checked again at that instant, and `f` gets the user and the instant. Nothing is
/// written when the check fails. `f` may run more than once: a transaction that loses a
/// race with another process on PostgreSQL runs again, clock reading and check included.
pub async fn write_as<T, F>(db: &Db, clock: &Clock, caller: Caller, mut f: F) -> Result<T, Error>
where
    F: FnMut(&Tx<'_>, &User, DateTime<Utc>) -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    let clock = clock.clone();
    db.write(move |tx| {
        let now = clock.now();
        let user = caller.recheck(tx, now)?;
        f(tx, &user, now)
    })
    .await
}

/// [`write_as`] for a read: a preview answers only a caller who could make the change.
pub async fn read_as<T, F>(db: &Db, clock: &Clock, caller: Caller, mut f: F) -> Result<T, Error>
where
    F: FnMut(&Tx<'_>, &User, DateTime<Utc>) -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    let clock = clock.clone();
    db.read(move |tx| {
        let now = clock.now();
        let user = caller.recheck(tx, now)?;
        f(tx, &user, now)
    })
    .await
}
