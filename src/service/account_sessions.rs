//! The owner's view of the account's sessions: the list of active ones, and the revoke of
//! one of them.
//!
//! A session is *active* when its newest token is unrevoked and the account's policy as
//! it stands now has not ended it — the same rule, from [`crate::policy`], that a refresh
//! applies. An expired session that nobody has presented since is not revoked yet, but is
//! neither listed nor revocable (404), since it can no longer be used.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::Error;
use super::caller::{Caller, write_as};
use crate::auth::Role;
use crate::db::sessions::LiveSession;
use crate::db::{Db, audit_events, refresh_tokens, sessions};
use crate::policy::Bounds;
use crate::revocation::{Reason, Stamp};
use crate::state::AppState;

/// One active session, as `GET /accounts/me/security/sessions` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActiveSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub started_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    /// The last instant the session is alive without a refresh (`null` only for a limit
    /// beyond representable time).
    #[schema(required = true)]
    pub idle_expires_at: Option<DateTime<Utc>>,
    /// The last instant the session is alive at all.
    #[schema(required = true)]
    pub absolute_expires_at: Option<DateTime<Utc>>,
    /// As sent at login.
    #[schema(required = true)]
    pub user_agent: Option<String>,
    /// The client address at login.
    #[schema(required = true)]
    pub ip: Option<String>,
    /// The session of the caller's own access token.
    pub current: bool,
}

/// `Some` when the policy as it stands at `now` has not ended the session.
fn active(
    s: LiveSession,
    bounds: Bounds,
    now: DateTime<Utc>,
    current: Uuid,
) -> Option<ActiveSession> {
    let effective = bounds.effective(s.overrides);
    if effective.expiry(now, s.started_at, s.last_active_at).is_some() {
        return None;
    }
    let deadlines = effective.deadlines(s.started_at, s.last_active_at);
    Some(ActiveSession {
        current: s.session_id == current,
        session_id: s.session_id,
        user_id: s.user_id,
        email: s.email,
        role: s.role,
        started_at: s.started_at,
        last_active_at: s.last_active_at,
        idle_expires_at: deadlines.idle,
        absolute_expires_at: deadlines.absolute,
        user_agent: s.user_agent,
        ip: s.ip,
    })
}

/// The account's active sessions, most recently active first.
pub async fn list(
    db: &Db,
    bounds: Bounds,
    account_id: Uuid,
    current_session: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<ActiveSession>, Error> {
    let live = db.read(move |tx| sessions::live_by_account(tx, account_id)).await?;
    Ok(live.into_iter().filter_map(|s| active(s, bounds, now, current_session)).collect())
}

fn not_found() -> Error {
    Error::NotFound("session_not_found".into())
}

/// Revokes one active session of the caller's account, with its audit row, in one
/// transaction, the caller authorised again in it. Anything else — not a UUID, unknown,
/// another account's, already over — is `session_not_found`.
pub async fn revoke(state: &AppState, caller: Caller, session_id: &str) -> Result<(), Error> {
    let session_id = Uuid::parse_str(session_id).map_err(|_| not_found())?;
    let bounds = state.bounds;
    write_as(&state.db, &state.clock, caller, move |tx, actor, now| {
        let account_id = actor.account_id;
        let session = sessions::live_in_account(tx, session_id, account_id)?
            .and_then(|s| active(s, bounds, now, Uuid::nil()))
            .ok_or_else(not_found)?;
        // The audit row first: its id is what the revoked tokens will point to.
        let event = audit_events::insert(
            tx,
            &audit_events::NewEvent {
                account_id,
                user_id: Some(actor.id),
                action: "account.session_revoked",
                resource_type: "session",
                resource_id: Some(session_id.to_string()),
                details: json!({ "session_id": session_id, "target_user_id": session.user_id }),
            },
            now,
        )?;
        refresh_tokens::revoke_session(
            tx,
            session.user_id,
            session_id,
            Stamp::audited(now, Reason::RevokedSingle, event),
        )?;
        Ok(())
    })
    .await
}
