//! The shared state every handler receives. No globals: everything is passed.

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::auth::jwt::Keys;
use crate::auth::password::Hasher;
use crate::auth::throttle::LoginThrottle;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::policy::Bounds;

#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub keys: Arc<Keys>,
    pub clock: Clock,
    pub hasher: Hasher,
    pub bounds: Bounds,
    /// Work that outlives its request (the failed-login audit row); a graceful shutdown
    /// waits for it.
    pub background: TaskTracker,
    /// This app's Prometheus registry (`GET /metrics`).
    pub metrics: Metrics,
    /// Failed logins per (email, client address), counted in the database (see
    /// `auth::throttle`).
    pub login_throttle: Arc<LoginThrottle>,
}
