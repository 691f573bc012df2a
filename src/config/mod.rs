//! Configuration: built-in defaults, then `config.toml`, then `SESSIOND_<SECTION>_<KEY>`
//! environment variables, then CLI flags; validated before anything is served.
//!
//! This file holds the settings and their defaults; `load.rs` merges file, environment
//! and flags; `validate.rs` checks ranges and relations; `secret.rs` keeps the JWT secret
//! unprintable; `database.rs` tells SQLite from PostgreSQL and keeps the URL's password
//! unprintable.

mod database;
mod load;
mod secret;
mod validate;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::client_addr::TrustedProxies;
use crate::db::Synchronous;

pub use database::{DatabaseTarget, DatabaseUrl};
pub use load::env_vars;
pub use secret::Secret;

/// A configuration problem: the process exits with status 2 and prints this one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub(crate) fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub session: SessionConfig,
    pub testing: TestingConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub log_format: LogFormat,
    /// How long a request's head, and then its body, may take to arrive.
    pub request_timeout_seconds: i64,
    /// How long open requests may run on after SIGINT/SIGTERM before the server exits.
    pub shutdown_grace_seconds: i64,
    /// Reverse proxies whose forwarding headers name the client (empty: none).
    pub trusted_proxies: TrustedProxies,
}

impl ServerConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.try_into().unwrap_or(0))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds.try_into().unwrap_or(0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub path: String,
    /// Empty: SQLite at `path`. `postgres://…` or `postgresql://…`: PostgreSQL.
    pub url: DatabaseUrl,
    pub pool_size: u32,
    pub synchronous: Synchronous,
    /// Writes queued while a transaction is in flight share the next one (one commit for
    /// many); false: a transaction per write.
    pub group_commit: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_secret: Secret,
    pub access_token_minutes: i64,
    pub max_failed_logins: u32,
    pub failed_login_window_minutes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub idle_minutes_default: i64,
    pub idle_minutes_min: i64,
    pub idle_minutes_max: i64,
    pub absolute_minutes_default: i64,
    pub absolute_minutes_min: i64,
    pub absolute_minutes_max: i64,
    pub reuse_grace_seconds: i64,
    pub retention_days: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestingConfig {
    pub clock_control: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            log_format: LogFormat::Text,
            request_timeout_seconds: 30,
            shutdown_grace_seconds: 10,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            path: "data/sessiond.db".into(),
            url: DatabaseUrl::default(),
            pool_size: 8,
            synchronous: Synchronous::Full,
            group_commit: true,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: Secret::default(),
            access_token_minutes: 5,
            max_failed_logins: 5,
            failed_login_window_minutes: 15,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_minutes_default: 1440,
            idle_minutes_min: 15,
            idle_minutes_max: 43200,
            absolute_minutes_default: 10080,
            absolute_minutes_min: 60,
            absolute_minutes_max: 129_600,
            reuse_grace_seconds: 10,
            retention_days: 30,
        }
    }
}

/// The longest time any setting may describe: 100 years, in minutes. Far beyond any
/// sensible session, and far from overflowing the time arithmetic.
pub const MAX_MINUTES: i64 = 100 * 365 * 24 * 60;
pub(crate) const MAX_POOL_SIZE: i64 = 1024;
/// The longest `server.request_timeout_seconds` and `server.shutdown_grace_seconds`.
pub const MAX_SERVER_SECONDS: i64 = 3600;

/// The shortest configured JWT secret accepted (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
pub(crate) const ENV_PREFIX: &str = "SESSIOND_";

/// FlagOverrides given on the command line; they win over everything else.
#[derive(Debug, Default, Clone)]
pub struct FlagOverrides {
    pub database: Option<String>,
    pub listen: Option<String>,
}

/// Where the configuration file comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `--config PATH`: the file must exist and be readable.
    Explicit(PathBuf),
    /// No flag: `config.toml` in the working directory if present, else defaults.
    Default,
}
