//! Domain operations: what the HTTP handlers and the CLI call. Each one reads `now`
//! from its caller, runs its writes in one transaction with their audit row, and
//! answers with a domain error that `error.rs` (or the CLI) maps to the outside.

pub mod account_sessions;
pub mod accounts;
pub mod caller;
pub mod maintenance;
pub mod sessions;
pub mod users;

use uuid::Uuid;

use crate::auth::throttle::BeginError;
use crate::db::DbError;
use crate::policy::PolicyError;
use crate::revocation::Reason;

pub use caller::Caller;

/// Why a refresh was refused: the contract's `detail`, plus (§4c) a `reason` and, where
/// it applies, the limit that ran out or the audit event that revoked the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDenied {
    /// `limit_minutes` only for a token that already failed a timeout, presented again.
    InvalidToken {
        reason: Reason,
        audit_event_id: Option<Uuid>,
        limit_minutes: Option<i64>,
    },
    IdleTimeout {
        limit_minutes: i64,
    },
    AbsoluteTimeout {
        limit_minutes: i64,
    },
}

impl RefreshDenied {
    pub fn invalid(reason: Reason) -> Self {
        RefreshDenied::InvalidToken { reason, audit_event_id: None, limit_minutes: None }
    }

    pub fn detail(self) -> &'static str {
        match self {
            RefreshDenied::InvalidToken { .. } => "invalid_refresh_token",
            RefreshDenied::IdleTimeout { .. } => "session_idle_timeout",
            RefreshDenied::AbsoluteTimeout { .. } => "session_absolute_timeout",
        }
    }

    pub fn reason(self) -> Reason {
        match self {
            RefreshDenied::InvalidToken { reason, .. } => reason,
            RefreshDenied::IdleTimeout { .. } => Reason::IdleTimeout,
            RefreshDenied::AbsoluteTimeout { .. } => Reason::AbsoluteTimeout,
        }
    }

    pub fn limit_minutes(self) -> Option<i64> {
        match self {
            RefreshDenied::InvalidToken { limit_minutes, .. } => limit_minutes,
            RefreshDenied::IdleTimeout { limit_minutes }
            | RefreshDenied::AbsoluteTimeout { limit_minutes } => Some(limit_minutes),
        }
    }

    pub fn audit_event_id(self) -> Option<Uuid> {
        match self {
            RefreshDenied::InvalidToken { audit_event_id, .. } => audit_event_id,
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins; retry in {retry_after_seconds} s")]
    TooManyAttempts { retry_after_seconds: u64 },
    /// A signed-in user's password check failed (changing the password): 403, since the
    /// caller is authenticated.
    #[error("current password is wrong")]
    WrongPassword,
    /// The caller's session or account ended while the request ran.
    #[error("not authenticated")]
    NotAuthenticated,
    #[error("refresh refused: {}", .0.detail())]
    RefreshDenied(RefreshDenied),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached now (PostgreSQL gone away); worth trying again.
    #[error("the database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => Error::NotFound("not_found".into()),
            DbError::Conflict(msg) => Error::Conflict(msg),
            DbError::Unavailable(e) => Error::Unavailable(e),
            DbError::Other(e) => Error::Internal(e),
        }
    }
}

impl From<BeginError> for Error {
    fn from(e: BeginError) -> Self {
        match e {
            BeginError::Throttled(t) => {
                Error::TooManyAttempts { retry_after_seconds: t.retry_after_seconds }
            }
            BeginError::Db(e) => e.into(),
        }
    }
}

/// Emails are unique and matched case-insensitively: stored and looked up lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.to_lowercase()
}
