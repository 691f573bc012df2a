//! The session lifecycle: login, refresh (rotation), logout.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;
use tracing::Instrument;
use uuid::Uuid;

use super::caller::{Caller, read_as, write_as};
use super::{Error, RefreshDenied, normalize_email};
use crate::auth::jwt::Keys;
use crate::auth::{password, refresh};
use crate::db::users::User;
use crate::db::{Db, Tx, audit_events, refresh_tokens, users};
use crate::policy::{Bounds, Expiry};
use crate::revocation::{Reason, Stamp};
use crate::state::AppState;

/// What the client told us about itself at login, kept with the session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// The body of a login or refresh answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// An HS256 JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; exchanged at `/auth/refresh`, one use each.
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// The access token's lifetime in seconds.
    pub expires_in: i64,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

/// A password login, behind the login throttle: a pair (email, client address) with too
/// many recent failures is refused before its password is even checked.
pub async fn login(
    state: &AppState,
    email: &str,
    password: String,
    client: ClientInfo,
    now: DateTime<Utc>,
) -> Result<TokenPair, Error> {
    let email = normalize_email(email);
    let attempt = state.login_throttle.begin(&email, client.ip.as_deref(), now).await?;
    let result = authenticate(state, email, password, client, now).await;
    match &result {
        Ok(_) => {
            // The session exists already: a failure to forget old failures must not
            // take it back. They stay counted until the next success or their window ends.
            if let Err(e) = attempt.succeeded().await {
                tracing::error!(error = format!("{e:#}"), "could not clear the login failures");
            }
        }
        // Not counted, not answered: a failure that cannot be counted must not be free.
        Err(Error::InvalidCredentials) => attempt.failed(now).await?,
        Err(_) => {}
    }
    result
}

async fn authenticate(
    state: &AppState,
    email: String,
    password: String,
    client: ClientInfo,
    now: DateTime<Utc>,
) -> Result<TokenPair, Error> {
    let creds = state.db.read(move |tx| users::credentials_by_email(tx, &email)).await?;
    let (user, phc) = creds.map(|c| (c.user, c.password_hash)).unzip();
    let password_ok = state.hasher.verify(password, phc).await?;
    let Some(user) = user else {
        return Err(Error::InvalidCredentials);
    };
    if !password_ok || !user.is_active {
        let reason = if password_ok { "user_inactive" } else { "invalid_password" };
        // Not awaited: a known email must not take longer to refuse than an unknown one
        // (which has no account to file a row under), or the answer time would tell
        // which emails exist. Tracked, so a graceful shutdown still writes it.
        let write = audit_login_failed(state.db.clone(), user, reason, client.ip, now);
        state.background.spawn(write.instrument(tracing::Span::current()));
        return Err(Error::InvalidCredentials);
    }

    let minted = refresh::mint(now);
    let keys = state.keys.clone();
    let access_token = state
        .db
        .write(move |tx| -> Result<String, Error> {
            // A `user disable` may have committed since the password was checked.
            if !users::is_active(tx, user.id)? {
                return Err(Error::InvalidCredentials);
            }
            let session_id = refresh::new_id(now);
            refresh_tokens::insert_session(
                tx,
                &refresh_tokens::NewSession {
                    id: refresh::new_id(now),
                    session_id,
                    user_id: user.id,
                    key: &minted.key,
                    now,
                    user_agent: client.user_agent.as_deref(),
                    ip: client.ip.as_deref(),
                },
            )?;
            audit_events::insert(
                tx,
                &audit_events::NewEvent {
                    account_id: user.account_id,
                    user_id: Some(user.id),
                    action: "auth.login",
                    resource_type: "session",
                    resource_id: Some(session_id.to_string()),
                    details: json!({ "ip": client.ip, "user_agent": client.user_agent }),
                },
                now,
            )?;
            keys.issue(user.id, session_id, now).map_err(|e| Error::Internal(e.into()))
        })
        .await?;
    Ok(pair(state, access_token, minted.token))
}

async fn audit_login_failed(
    db: Db,
    user: User,
    reason: &'static str,
    ip: Option<String>,
    now: DateTime<Utc>,
) {
    let event = audit_events::NewEvent {
        account_id: user.account_id,
        user_id: Some(user.id),
        action: "auth.login_failed",
        resource_type: "user",
        resource_id: Some(user.id.to_string()),
        details: json!({ "reason": reason, "ip": ip }),
    };
    if let Err(e) = db.write(move |tx| audit_events::insert(tx, &event, now)).await {
        tracing::error!(error = format!("{e:#}"), "cannot write auth.login_failed");
    }
}

fn pair(state: &AppState, access_token: String, refresh_token: String) -> TokenPair {
    TokenPair {
        access_token,
        refresh_token,
        token_type: "bearer",
        expires_in: state.keys.lifetime_seconds(),
    }
}

/// Exchanges a refresh token for a new pair, in one transaction: look the token up,
/// refuse it (revoking it, or its whole session on reuse) or rotate it.
pub async fn refresh(
    state: &AppState,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<TokenPair, Error> {
    let key = refresh::lookup_key(presented);
    let minted = refresh::mint(now);
    let keys = state.keys.clone();
    let bounds = state.bounds;
    let grace = TimeDelta::seconds(state.config.session.reuse_grace_seconds);
    let outcome = state
        .db
        .write(move |tx| exchange(tx, &key, &minted.key, now, bounds, grace, &keys))
        .await?;
    match outcome {
        Ok(access) => Ok(pair(state, access, minted.token)),
        Err(denied) => Err(Error::RefreshDenied(denied)),
    }
}

/// The refresh decision, inside its write transaction, in the contract's order. A
/// refusal still commits what it revoked. Answers the new access token on success.
/// Public for the benchmark's in-process ceiling, which runs exactly this.
pub fn exchange(
    tx: &Tx<'_>,
    presented_key: &[u8],
    successor_key: &[u8],
    now: DateTime<Utc>,
    bounds: Bounds,
    reuse_grace: TimeDelta,
    keys: &Keys,
) -> Result<Result<String, RefreshDenied>, Error> {
    let Some(p) = refresh_tokens::find_presented(tx, presented_key)? else {
        return Ok(Err(RefreshDenied::invalid(Reason::UnknownToken)));
    };
    if let Some(revoked_at) = p.revoked_at {
        return Ok(Err(match p.replaced_by {
            Some(_) if now - revoked_at > reuse_grace => reuse_detected(tx, &p, now)?,
            Some(_) => RefreshDenied::invalid(Reason::Rotated),
            None => ended(p.end),
        }));
    }
    if !p.user_active {
        refresh_tokens::revoke_token(tx, &p, None, Stamp::new(now, Reason::UserDisabled))?;
        return Ok(Err(RefreshDenied::invalid(Reason::UserDisabled)));
    }
    if let Some(expiry) =
        bounds.effective(p.overrides).expiry(now, p.session_started_at, p.issued_at)
    {
        let (denied, reason) = match expiry {
            Expiry::Absolute { limit_minutes } => {
                (RefreshDenied::AbsoluteTimeout { limit_minutes }, Reason::AbsoluteTimeout)
            }
            Expiry::Idle { limit_minutes } => {
                (RefreshDenied::IdleTimeout { limit_minutes }, Reason::IdleTimeout)
            }
        };
        let limit = denied.limit_minutes().unwrap_or_default();
        refresh_tokens::revoke_token(tx, &p, None, Stamp::timed_out(now, reason, limit))?;
        return Ok(Err(denied));
    }
    let successor = refresh::new_id(now);
    if !refresh_tokens::revoke_token(tx, &p, Some(successor), Stamp::new(now, Reason::Rotated))? {
        return Ok(Err(RefreshDenied::invalid(Reason::Rotated)));
    }
    refresh_tokens::insert_successor(tx, &p, successor, successor_key, now)?;
    // Signed inside the transaction: if signing failed, the rotation rolls back and the
    // presented token stays valid.
    let access = keys.issue(p.user_id, p.session_id, now).map_err(|e| Error::Internal(e.into()))?;
    Ok(Ok(access))
}

/// The refusal of a token revoked other than by rotation: what its revocation recorded.
fn ended(end: refresh_tokens::Ended) -> RefreshDenied {
    RefreshDenied::InvalidToken {
        // No reason: revoked before causes were recorded (schema version 1).
        reason: end.reason.unwrap_or(Reason::UnknownToken),
        audit_event_id: end.event,
        limit_minutes: end.limit_minutes,
    }
}

/// A token already exchanged by rotation came back after the grace window: someone holds
/// a copy. End the whole session, audited. If the session had already ended, nothing is
/// revoked or written, and the answer is why it ended (a stale tab's old token after a
/// logout is told `logged_out`, not raised as an alarm).
fn reuse_detected(
    tx: &Tx<'_>,
    p: &refresh_tokens::Presented,
    now: DateTime<Utc>,
) -> Result<RefreshDenied, Error> {
    let event = Uuid::new_v4();
    let stamp = Stamp::audited(now, Reason::ReuseDetected, event);
    let revoked = refresh_tokens::revoke_session(tx, p.user_id, p.session_id, stamp)?;
    // Audited only when it ended a live session: a replay against a session already over
    // changes nothing, and auditing it would let anyone holding an old token grow the
    // audit table, one synced write per request.
    if revoked == 0 {
        // The session's last token is gone when pruning removed it: nothing to tell.
        let end = refresh_tokens::session_end(tx, p.user_id, p.session_id)?;
        return Ok(end.map_or(RefreshDenied::invalid(Reason::UnknownToken), ended));
    }
    audit_events::insert_with_id(
        tx,
        event,
        &audit_events::NewEvent {
            account_id: p.account_id,
            user_id: Some(p.user_id),
            action: "session.refresh_token_reused",
            resource_type: "session",
            resource_id: Some(p.session_id.to_string()),
            details: json!({ "session_id": p.session_id, "revoked_count": revoked }),
        },
        now,
    )?;
    tracing::warn!(
        session_id = %p.session_id,
        user_id = %p.user_id,
        revoked,
        "refresh token reuse detected: session revoked"
    );
    Ok(RefreshDenied::InvalidToken {
        reason: Reason::ReuseDetected,
        audit_event_id: Some(event),
        limit_minutes: None,
    })
}

/// Ends the session the token belongs to. Unknown or already revoked tokens are fine.
pub async fn logout(state: &AppState, presented: &str, now: DateTime<Utc>) -> Result<(), Error> {
    let key = refresh::lookup_key(presented);
    state
        .db
        .write(move |tx| -> Result<(), Error> {
            let Some(p) = refresh_tokens::find_presented(tx, &key)? else {
                return Ok(());
            };
            let event = Uuid::new_v4();
            let stamp = Stamp::audited(now, Reason::LoggedOut, event);
            let revoked = refresh_tokens::revoke_session(tx, p.user_id, p.session_id, stamp)?;
            if revoked > 0 {
                audit_events::insert_with_id(
                    tx,
                    event,
                    &audit_events::NewEvent {
                        account_id: p.account_id,
                        user_id: Some(p.user_id),
                        action: "auth.logout",
                        resource_type: "session",
                        resource_id: Some(p.session_id.to_string()),
                        details: json!({ "session_id": p.session_id }),
                    },
                    now,
                )?;
            }
            Ok(())
        })
        .await
}

/// A signed-in user's password change (contract §4c, §6). The caller's own session
/// stays; with `sign_out_others`, every other session of theirs ends, stamped with the
/// audit event. Answers how many tokens that revoked.
///
/// The current password is checked behind the login throttle of the user's email and
/// `client.ip`, as a login is: a wrong one counts as a failed login and writes
/// `auth.password_change_failed`; over the limit the answer is `TooManyAttempts`. The
/// caller is authorised again in every transaction, the writing one last of all
/// ([`write_as`]): a session revoked, a user disabled or a token expired while the
/// request ran is `NotAuthenticated`, with nothing written.
pub async fn change_password(
    state: &AppState,
    caller: Caller,
    client: ClientInfo,
    current: String,
    new: String,
    sign_out_others: bool,
) -> Result<usize, Error> {
    password::check_new_password(&new).map_err(Error::Invalid)?;
    let (db, clock) = (&state.db, &state.clock);
    let (email, stored) = read_as(db, clock, caller, |tx, user, _| {
        let stored = users::password_hash(tx, user.id)?.ok_or(Error::NotAuthenticated)?;
        Ok((user.email.clone(), stored))
    })
    .await?;
    let attempt = state.login_throttle.begin(&email, client.ip.as_deref(), clock.now()).await?;
    if !state.hasher.verify(current, Some(stored.clone())).await? {
        attempt.failed(clock.now()).await?;
        audit_password_change_failed(state, caller, client.ip).await?;
        return Err(Error::WrongPassword);
    }
    if let Err(e) = attempt.succeeded().await {
        // As at login: the earlier failures stay counted until their window ends.
        tracing::error!(error = format!("{e:#}"), "could not clear the login failures");
    }
    let new_hash = state.hasher.hash(new).await?;
    let keep = caller.session_id;
    write_as(db, clock, caller, move |tx, user, now| {
        // Changed by someone else since it was checked: the checked password is stale.
        if !users::replace_password_hash(tx, user.id, &stored, &new_hash)? {
            return Err(Error::WrongPassword);
        }
        let event = Uuid::new_v4();
        let revoked = if sign_out_others {
            let stamp = Stamp::audited(now, Reason::PasswordChanged, event);
            refresh_tokens::revoke_user(tx, user.id, Some(keep), stamp)?
        } else {
            0
        };
        audit_events::insert_with_id(
            tx,
            event,
            &audit_events::NewEvent {
                account_id: user.account_id,
                user_id: Some(user.id),
                action: "auth.password_changed",
                resource_type: "user",
                resource_id: Some(user.id.to_string()),
                details: json!({ "revoked_count": revoked }),
            },
            now,
        )?;
        Ok(revoked)
    })
    .await
}

/// The audit row of a wrong current password, written only while the caller is still
/// signed in (a caller signed out meanwhile gets `NotAuthenticated` instead).
async fn audit_password_change_failed(
    state: &AppState,
    caller: Caller,
    ip: Option<String>,
) -> Result<(), Error> {
    write_as(&state.db, &state.clock, caller, move |tx, user, now| {
        audit_events::insert(
            tx,
            &audit_events::NewEvent {
                account_id: user.account_id,
                user_id: Some(user.id),
                action: "auth.password_change_failed",
                resource_type: "user",
                resource_id: Some(user.id.to_string()),
                details: json!({ "reason": "invalid_password", "ip": ip }),
            },
            now,
        )?;
        Ok(())
    })
    .await
}
