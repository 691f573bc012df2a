//! The session-expiration policy: system bounds and defaults from the configuration,
//! per-account overrides, the effective values, the validation of a change, and the
//! timeout rules. Pure: no I/O, no clock.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::SessionConfig;

/// The system's bounds and defaults, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub idle_default: i64,
    pub idle_min: i64,
    pub idle_max: i64,
    pub absolute_default: i64,
    pub absolute_min: i64,
    pub absolute_max: i64,
}

impl From<&SessionConfig> for Bounds {
    fn from(c: &SessionConfig) -> Self {
        Self {
            idle_default: c.idle_minutes_default,
            idle_min: c.idle_minutes_min,
            idle_max: c.idle_minutes_max,
            absolute_default: c.absolute_minutes_default,
            absolute_min: c.absolute_minutes_min,
            absolute_max: c.absolute_minutes_max,
        }
    }
}

/// An account's overrides; `None` means "the system default".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Overrides {
    pub idle_minutes: Option<i64>,
    pub absolute_minutes: Option<i64>,
}

/// The limits that actually apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Effective {
    pub idle_minutes: i64,
    pub absolute_minutes: i64,
}

/// A merge-patch field: left out, `null`, or a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Unchanged,
    Clear,
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    /// Called only when the key is present (absent keys take `Default`), so `null`
    /// means clear.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Clear,
            Some(v) => Patch::Set(v),
        })
    }
}

impl<T> Patch<T> {
    fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Unchanged => current,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        }
    }
}

/// A requested change to an account's overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyChange {
    pub idle_minutes: Patch<i64>,
    pub absolute_minutes: Patch<i64>,
}

/// Why a change is refused; the messages are the contract's, word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("idle_minutes must be between {min} and {max}")]
    IdleOutOfBounds { min: i64, max: i64 },
    #[error("absolute_minutes must be between {min} and {max}")]
    AbsoluteOutOfBounds { min: i64, max: i64 },
    #[error("Effective idle ({idle}min) cannot exceed effective absolute ({absolute}min)")]
    IdleAboveAbsolute { idle: i64, absolute: i64 },
}

/// Which limit ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Absolute { limit_minutes: i64 },
    Idle { limit_minutes: i64 },
}

impl Bounds {
    pub fn effective(&self, o: Overrides) -> Effective {
        Effective {
            idle_minutes: o.idle_minutes.unwrap_or(self.idle_default),
            absolute_minutes: o.absolute_minutes.unwrap_or(self.absolute_default),
        }
    }

    /// Applies `change` to `current`, checking in the contract's order: idle bounds,
    /// absolute bounds, then effective idle against effective absolute.
    pub fn apply(
        &self,
        current: Overrides,
        change: PolicyChange,
    ) -> Result<Overrides, PolicyError> {
        if let Patch::Set(v) = change.idle_minutes
            && !(self.idle_min..=self.idle_max).contains(&v)
        {
            return Err(PolicyError::IdleOutOfBounds { min: self.idle_min, max: self.idle_max });
        }
        if let Patch::Set(v) = change.absolute_minutes
            && !(self.absolute_min..=self.absolute_max).contains(&v)
        {
            return Err(PolicyError::AbsoluteOutOfBounds {
                min: self.absolute_min,
                max: self.absolute_max,
            });
        }
        let next = Overrides {
            idle_minutes: change.idle_minutes.apply(current.idle_minutes),
            absolute_minutes: change.absolute_minutes.apply(current.absolute_minutes),
        };
        let e = self.effective(next);
        if e.idle_minutes > e.absolute_minutes {
            return Err(PolicyError::IdleAboveAbsolute {
                idle: e.idle_minutes,
                absolute: e.absolute_minutes,
            });
        }
        Ok(next)
    }

    /// The policy as the API shows it.
    pub fn view(&self, o: Overrides) -> SessionPolicy {
        let e = self.effective(o);
        SessionPolicy {
            idle_minutes: o.idle_minutes,
            absolute_minutes: o.absolute_minutes,
            effective_idle_minutes: e.idle_minutes,
            effective_absolute_minutes: e.absolute_minutes,
            idle_minutes_min: self.idle_min,
            idle_minutes_max: self.idle_max,
            absolute_minutes_min: self.absolute_min,
            absolute_minutes_max: self.absolute_max,
        }
    }
}

impl Effective {
    /// Whether a session started at `started` and last refreshed at `last_active` has
    /// ended by `now`. Absolute is checked first; both limits are inclusive (a session is
    /// alive at exactly its limit and over one instant later).
    pub fn expiry(
        &self,
        now: DateTime<Utc>,
        started: DateTime<Utc>,
        last_active: DateTime<Utc>,
    ) -> Option<Expiry> {
        // A limit too large to add (a stored override far beyond today's bounds) never
        // ends a session, rather than crashing the refresh.
        let passed = |from: DateTime<Utc>, minutes: i64| {
            TimeDelta::try_minutes(minutes)
                .and_then(|d| from.checked_add_signed(d))
                .is_some_and(|limit| now > limit)
        };
        if passed(started, self.absolute_minutes) {
            return Some(Expiry::Absolute { limit_minutes: self.absolute_minutes });
        }
        if passed(last_active, self.idle_minutes) {
            return Some(Expiry::Idle { limit_minutes: self.idle_minutes });
        }
        None
    }
}

/// `GET /accounts/me/security`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SessionPolicy {
    /// The account's override; `null`: the system default applies.
    #[schema(required = true)]
    pub idle_minutes: Option<i64>,
    /// The account's override; `null`: the system default applies.
    #[schema(required = true)]
    pub absolute_minutes: Option<i64>,
    pub effective_idle_minutes: i64,
    pub effective_absolute_minutes: i64,
    pub idle_minutes_min: i64,
    pub idle_minutes_max: i64,
    pub absolute_minutes_min: i64,
    pub absolute_minutes_max: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds::from(&SessionConfig::default())
    }

    fn change(idle: Patch<i64>, absolute: Patch<i64>) -> PolicyChange {
        PolicyChange { idle_minutes: idle, absolute_minutes: absolute }
    }

    #[test]
    fn effective_falls_back_to_defaults() {
        let e = bounds().effective(Overrides { idle_minutes: Some(30), absolute_minutes: None });
        assert_eq!(e, Effective { idle_minutes: 30, absolute_minutes: 10080 });
    }

    #[test]
    fn checks_run_in_contract_order() {
        let b = bounds();
        let none = Overrides::default();
        assert_eq!(
            b.apply(none, change(Patch::Set(1), Patch::Set(1))),
            Err(PolicyError::IdleOutOfBounds { min: 15, max: 43200 })
        );
        assert_eq!(
            b.apply(none, change(Patch::Set(20), Patch::Set(1))),
            Err(PolicyError::AbsoluteOutOfBounds { min: 60, max: 129_600 })
        );
        let e = b.apply(none, change(Patch::Set(43200), Patch::Unchanged));
        assert_eq!(e, Err(PolicyError::IdleAboveAbsolute { idle: 43200, absolute: 10080 }));
        assert_eq!(
            e.err().map(|e| e.to_string()).unwrap_or_default(),
            "Effective idle (43200min) cannot exceed effective absolute (10080min)"
        );
    }

    #[test]
    fn merge_patch_keeps_clears_and_sets() {
        let b = bounds();
        let cur = Overrides { idle_minutes: Some(30), absolute_minutes: Some(120) };
        assert_eq!(b.apply(cur, PolicyChange::default()), Ok(cur));
        // Clearing idle brings back the default 1440, above the absolute override 120.
        assert_eq!(
            b.apply(cur, change(Patch::Clear, Patch::Unchanged)),
            Err(PolicyError::IdleAboveAbsolute { idle: 1440, absolute: 120 })
        );
        assert_eq!(
            b.apply(cur, change(Patch::Unchanged, Patch::Set(200))),
            Ok(Overrides { idle_minutes: Some(30), absolute_minutes: Some(200) })
        );
        assert_eq!(b.apply(cur, change(Patch::Clear, Patch::Clear)), Ok(Overrides::default()));
    }

    #[test]
    fn bounds_are_inclusive() {
        let b = bounds();
        assert!(b.apply(Overrides::default(), change(Patch::Set(15), Patch::Set(60))).is_ok());
        assert!(b.apply(Overrides::default(), change(Patch::Set(14), Patch::Unchanged)).is_err());
    }

    #[test]
    fn absolute_is_checked_before_idle() {
        let e = Effective { idle_minutes: 15, absolute_minutes: 60 };
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(e.expiry(t0 + TimeDelta::minutes(15), t0, t0), None);
        assert_eq!(
            e.expiry(t0 + TimeDelta::minutes(15) + TimeDelta::milliseconds(1), t0, t0),
            Some(Expiry::Idle { limit_minutes: 15 })
        );
        assert_eq!(
            e.expiry(t0 + TimeDelta::minutes(61), t0, t0),
            Some(Expiry::Absolute { limit_minutes: 60 })
        );
        let last = t0 + TimeDelta::minutes(50);
        assert_eq!(e.expiry(t0 + TimeDelta::minutes(60), t0, last), None);
        let huge = Effective { idle_minutes: i64::MAX, absolute_minutes: i64::MAX };
        assert_eq!(huge.expiry(t0 + TimeDelta::days(365_000), t0, t0), None);
    }
}
