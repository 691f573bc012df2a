//! Domain operations: what the HTTP handlers and the CLI call. Each one reads `now`
//! from its caller, runs its writes in one transaction with their audit row, and
//! answers with a domain error that `error.rs` (or the CLI) maps to the outside.

pub mod accounts;
pub mod sessions;
pub mod users;

use crate::db::DbError;
use crate::policy::PolicyError;

/// Why a refresh was refused. The `detail` strings are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDenied {
    InvalidToken,
    IdleTimeout { limit_minutes: i64 },
    AbsoluteTimeout { limit_minutes: i64 },
}

impl RefreshDenied {
    pub fn detail(self) -> &'static str {
        match self {
            RefreshDenied::InvalidToken => "invalid_refresh_token",
            RefreshDenied::IdleTimeout { .. } => "session_idle_timeout",
            RefreshDenied::AbsoluteTimeout { .. } => "session_absolute_timeout",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins; retry in {retry_after_seconds} s")]
    TooManyAttempts { retry_after_seconds: u64 },
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
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => Error::NotFound("not_found".into()),
            DbError::Conflict(msg) => Error::Conflict(msg),
            DbError::Other(e) => Error::Internal(e),
        }
    }
}

/// Emails are unique and matched case-insensitively: stored and looked up lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.to_lowercase()
}
