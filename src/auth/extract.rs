//! `AuthUser` and `Owner`: the bearer token checked, then the user *and* the token's
//! session looked up, so a disable, a role change or a revoke takes effect at once.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::clock::Now;
use crate::db::users::{self, User};
use crate::error::ApiError;
use crate::service::Caller;
use crate::state::AppState;

use super::Role;

/// An authenticated caller with a live session.
#[derive(Debug)]
pub struct AuthUser {
    pub user: User,
    pub session_id: Uuid,
    /// The access token's `exp` (seconds since the epoch).
    pub token_exp: i64,
}

impl AuthUser {
    /// Who to authorise again inside a writing transaction (see [`Caller`]).
    pub fn caller(&self) -> Caller {
        Caller::new(self.user.id, self.session_id, self.token_exp)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Now(now) = Now::from_request_parts(parts, state).await?;
        let token = bearer_token(parts).ok_or(ApiError::NotAuthenticated)?;
        let claims = state.keys.verify(token, now).map_err(|e| {
            tracing::debug!(error = %e, "bearer token refused");
            ApiError::NotAuthenticated
        })?;
        let (user_id, session_id, token_exp) = (claims.sub, claims.sid, claims.exp);
        let user = state
            .db
            .read(move |tx| users::active_in_live_session(tx, user_id, session_id))
            .await?
            .ok_or(ApiError::NotAuthenticated)?;
        let span = tracing::Span::current();
        span.record("user_id", tracing::field::display(user.id));
        span.record("account_id", tracing::field::display(user.account_id));
        Ok(AuthUser { user, session_id, token_exp })
    }
}

/// `Authorization: Bearer <token>` (the scheme is case-insensitive). A request with more
/// than one `Authorization` header has none: which one counts would be anyone's guess
/// (a proxy may pick the last), so it is not authenticated.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An authenticated caller whose role is `owner`; anyone else gets 403 `owner_required`.
#[derive(Debug)]
pub struct Owner(pub AuthUser);

impl FromRequestParts<AppState> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        if caller.user.role != Role::Owner {
            return Err(ApiError::Forbidden("owner_required"));
        }
        Ok(Owner(caller))
    }
}
