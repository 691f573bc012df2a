//! The one server clock. Every timestamp — token expiry, idle and absolute
//! timeouts, audit rows — is read from here, so the test clock moves them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// The system clock, plus an offset that only `/_test/clock` can move (and only
/// when `testing.clock_control` is on). Cloning shares the offset.
#[derive(Clone, Debug)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
    controllable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("the clock is not under test control")]
    NotControllable,
    #[error("advance_seconds must be between 0 and {max}")]
    OutOfRange { max: i64 },
}

/// The instant a request is handled at, read once from the clock when it arrives (the
/// HTTP layer stamps it; handlers and the token check read the same value).
#[derive(Debug, Clone, Copy)]
pub struct Now(pub DateTime<Utc>);

/// Far enough for any test (about 300 years), small enough never to overflow chrono.
const MAX_ADVANCE_SECONDS: i64 = 10_000_000_000;

impl Clock {
    pub fn system() -> Self {
        Self { offset_ms: Arc::new(AtomicI64::new(0)), controllable: false }
    }

    /// A clock that `/_test/clock` may move forward.
    pub fn controllable() -> Self {
        Self { offset_ms: Arc::new(AtomicI64::new(0)), controllable: true }
    }

    pub fn is_controllable(&self) -> bool {
        self.controllable
    }

    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward; it never goes back.
    pub fn advance(&self, seconds: i64) -> Result<DateTime<Utc>, ClockError> {
        if !self.controllable {
            return Err(ClockError::NotControllable);
        }
        if !(0..=MAX_ADVANCE_SECONDS).contains(&seconds) {
            return Err(ClockError::OutOfRange { max: MAX_ADVANCE_SECONDS });
        }
        let step = seconds * 1000;
        self.offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                cur.checked_add(step).filter(|total| *total <= MAX_ADVANCE_SECONDS * 1000)
            })
            .map_err(|_| ClockError::OutOfRange { max: MAX_ADVANCE_SECONDS })?;
        Ok(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_and_system_clock_refuses() {
        let clock = Clock::controllable();
        let before = clock.now();
        let after = clock.advance(3600).ok();
        assert!(after.is_some_and(|a| a - before >= TimeDelta::seconds(3600)));
        assert!(clock.advance(-1).is_err());
        assert!(Clock::system().advance(1).is_err());
    }
}
