//! Why a refresh token stopped working. Every revoking statement stamps its rows with a
//! [`Reason`] and, when an audited action did it, that action's audit event id — in the
//! same statement that revokes them — so a refused refresh can say why (contract §4c).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// The `reason` of a refused refresh. All but `UnknownToken` are also stored on the
/// token that was revoked (`refresh_tokens.revoke_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    UnknownToken,
    LoggedOut,
    Rotated,
    ReuseDetected,
    RevokedAll,
    RevokedOthers,
    RevokedSingle,
    UserDisabled,
    PasswordChanged,
    IdleTimeout,
    AbsoluteTimeout,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::UnknownToken,
        Reason::LoggedOut,
        Reason::Rotated,
        Reason::ReuseDetected,
        Reason::RevokedAll,
        Reason::RevokedOthers,
        Reason::RevokedSingle,
        Reason::UserDisabled,
        Reason::PasswordChanged,
        Reason::IdleTimeout,
        Reason::AbsoluteTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownToken => "unknown_token",
            Reason::LoggedOut => "logged_out",
            Reason::Rotated => "rotated",
            Reason::ReuseDetected => "reuse_detected",
            Reason::RevokedAll => "revoked_all",
            Reason::RevokedOthers => "revoked_others",
            Reason::RevokedSingle => "revoked_single",
            Reason::UserDisabled => "user_disabled",
            Reason::PasswordChanged => "password_changed",
            Reason::IdleTimeout => "idle_timeout",
            Reason::AbsoluteTimeout => "absolute_timeout",
        }
    }

    /// The stored form back; `None` for text this version does not know.
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What a revoking statement writes on every row it revokes.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub at: DateTime<Utc>,
    pub reason: Reason,
    /// The audit event of the action that revoked the token, when there is one.
    pub event: Option<Uuid>,
    /// The limit a timeout applied, so that the token presented again can still say it.
    pub limit_minutes: Option<i64>,
}

impl Stamp {
    pub fn new(at: DateTime<Utc>, reason: Reason) -> Self {
        Stamp { at, reason, event: None, limit_minutes: None }
    }

    /// A stamp that points at the audit event `event`, which the same transaction writes.
    pub fn audited(at: DateTime<Utc>, reason: Reason, event: Uuid) -> Self {
        Stamp { at, reason, event: Some(event), limit_minutes: None }
    }

    /// A timeout's stamp.
    pub fn timed_out(at: DateTime<Utc>, reason: Reason, limit_minutes: i64) -> Self {
        Stamp { at, reason, event: None, limit_minutes: Some(limit_minutes) }
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn stored_names_round_trip_and_match_serde() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).ok(), Some(serde_json::json!(r.as_str())));
        }
        assert_eq!(Reason::parse("nope"), None);
    }
}
