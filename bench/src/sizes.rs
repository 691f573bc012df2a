//! How big each scenario is: the full run (each scenario well under a minute on two
//! cores) and the quick one (the whole bench in seconds, for the smoke test).

use std::time::Duration;

use crate::load::Phases;

#[derive(Debug, Clone)]
pub struct Sizes {
    /// Accounts seeded for the refresh scenarios, each with an owner and 9 engineers.
    pub accounts: usize,
    /// Live sessions rotated by scenario 1, spread over those users.
    pub sessions: usize,
    pub refresh_clients: Vec<usize>,
    pub refresh: Phases,
    pub ceiling: Phases,
    pub revoke_sizes: Vec<usize>,
    /// Tokens of other accounts in the table for the "foreign rows" revoke.
    pub revoke_foreign: usize,
    /// The account size revoked among the foreign rows (and compared without them).
    pub revoke_foreign_size: usize,
    /// Measured revokes per size (after one unmeasured warm-up revoke).
    pub revoke_reps: usize,
    pub policy: Phases,
    pub cold_starts: usize,
    pub login_clients: usize,
    pub login: Phases,
    /// Refreshing clients alongside the login storm (and in its baseline).
    pub storm_refreshers: usize,
    pub storm: Phases,
    /// Scenario 8: this many logins in all, from this many clients at once.
    pub memory_logins: usize,
    pub memory_login_clients: usize,
    /// Scenario 9 (PostgreSQL, with `--postgres`): server processes on one database for
    /// each refresh run, the clients of those runs, and the tokens of the revoke.
    pub pg_processes: Vec<usize>,
    pub pg_clients: usize,
    pub pg_revoke_tokens: usize,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            accounts: 10,
            sessions: 1000,
            refresh_clients: vec![1, 16, 64],
            refresh: phases(1.0, 6.0),
            ceiling: phases(0.5, 5.0),
            revoke_sizes: vec![100, 1_000, 10_000, 100_000],
            revoke_foreign: 1_000_000,
            revoke_foreign_size: 1_000,
            revoke_reps: 5,
            policy: phases(0.5, 5.0),
            cold_starts: 20,
            login_clients: 16,
            login: phases(1.0, 8.0),
            storm_refreshers: 4,
            storm: phases(1.0, 8.0),
            memory_logins: 200,
            memory_login_clients: 16,
            pg_processes: vec![1, 3],
            pg_clients: 16,
            pg_revoke_tokens: 10_000,
        }
    }

    pub fn quick() -> Sizes {
        Sizes {
            accounts: 2,
            sessions: 128,
            refresh_clients: vec![1, 16, 64],
            refresh: phases(0.1, 0.3),
            ceiling: phases(0.1, 0.3),
            revoke_sizes: vec![100, 1_000],
            revoke_foreign: 10_000,
            revoke_foreign_size: 1_000,
            revoke_reps: 2,
            policy: phases(0.1, 0.3),
            cold_starts: 3,
            login_clients: 4,
            login: phases(0.2, 0.5),
            storm_refreshers: 2,
            storm: phases(0.2, 0.5),
            memory_logins: 12,
            memory_login_clients: 4,
            pg_processes: vec![1, 3],
            pg_clients: 16,
            pg_revoke_tokens: 1_000,
        }
    }
}

fn phases(warmup_s: f64, measure_s: f64) -> Phases {
    Phases {
        warmup: Duration::from_secs_f64(warmup_s),
        measure: Duration::from_secs_f64(measure_s),
    }
}
