//! [`Config::validate`]: what serde cannot check — ranges and the relations between keys.

use std::net::SocketAddr;

use super::{
    Config, ConfigError, MAX_MINUTES, MAX_POOL_SIZE, MAX_SERVER_SECONDS, MIN_JWT_SECRET_BYTES, err,
};

impl Config {
    /// Checks what serde cannot: ranges and the relations between keys. Every number has
    /// an upper bound too, so no later time arithmetic can overflow.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_listen(&self.server.listen)?;
        let server = &self.server;
        in_range(
            "server.request_timeout_seconds",
            server.request_timeout_seconds,
            1,
            MAX_SERVER_SECONDS,
        )?;
        in_range(
            "server.shutdown_grace_seconds",
            server.shutdown_grace_seconds,
            0,
            MAX_SERVER_SECONDS,
        )?;
        self.database.validate()?;
        in_range("database.pool_size", i64::from(self.database.pool_size), 1, MAX_POOL_SIZE)?;
        if !self.database.url.is_empty() && self.database.pool_size < 2 {
            // The hourly prune holds one pooled connection for its advisory lock while it
            // works through another: with one connection it would starve itself and every
            // request of a connection.
            return Err(err(format!(
                "database.pool_size must be at least 2 on PostgreSQL (database.url), got {}",
                self.database.pool_size
            )));
        }
        let secret = self.auth.jwt_secret.expose();
        if !secret.is_empty() && secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(err(format!(
                "auth.jwt_secret must be at least {MIN_JWT_SECRET_BYTES} bytes (or empty to generate one)"
            )));
        }
        let a = &self.auth;
        in_range("auth.access_token_minutes", a.access_token_minutes, 1, MAX_MINUTES)?;
        in_range("auth.max_failed_logins", i64::from(a.max_failed_logins), 1, i64::from(u32::MAX))?;
        in_range(
            "auth.failed_login_window_minutes",
            a.failed_login_window_minutes,
            1,
            MAX_MINUTES,
        )?;
        let s = &self.session;
        for (key, value) in [
            ("session.idle_minutes_min", s.idle_minutes_min),
            ("session.idle_minutes_max", s.idle_minutes_max),
            ("session.absolute_minutes_min", s.absolute_minutes_min),
            ("session.absolute_minutes_max", s.absolute_minutes_max),
        ] {
            in_range(key, value, 1, MAX_MINUTES)?;
        }
        ordered(
            "session.idle_minutes",
            s.idle_minutes_min,
            s.idle_minutes_default,
            s.idle_minutes_max,
        )?;
        ordered(
            "session.absolute_minutes",
            s.absolute_minutes_min,
            s.absolute_minutes_default,
            s.absolute_minutes_max,
        )?;
        if s.idle_minutes_default > s.absolute_minutes_default {
            return Err(err(format!(
                "session.idle_minutes_default ({}) must not exceed session.absolute_minutes_default ({})",
                s.idle_minutes_default, s.absolute_minutes_default
            )));
        }
        in_range("session.reuse_grace_seconds", s.reuse_grace_seconds, 0, MAX_MINUTES * 60)?;
        in_range("session.retention_days", s.retention_days, 1, MAX_MINUTES / (24 * 60))?;
        Ok(())
    }
}

fn in_range(key: &str, value: i64, min: i64, max: i64) -> Result<(), ConfigError> {
    if !(min..=max).contains(&value) {
        return Err(err(format!("{key} must be between {min} and {max}, got {value}")));
    }
    Ok(())
}

/// `HOST:PORT`, where HOST is an IP address or a name such as `localhost` (resolved when
/// binding). Set by `server.listen` or `--listen`.
fn check_listen(listen: &str) -> Result<(), ConfigError> {
    let ok = listen.parse::<SocketAddr>().is_ok()
        || listen.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains(char::is_whitespace) && port.parse::<u16>().is_ok()
        });
    if ok {
        Ok(())
    } else {
        Err(err(format!(
            "server.listen (or --listen) must be HOST:PORT such as 127.0.0.1:8080, got {listen:?}"
        )))
    }
}

fn ordered(prefix: &str, min: i64, default: i64, max: i64) -> Result<(), ConfigError> {
    if min > max {
        return Err(err(format!("{prefix}_min ({min}) must not exceed {prefix}_max ({max})")));
    }
    if default < min || default > max {
        return Err(err(format!(
            "{prefix}_default ({default}) must be between {prefix}_min ({min}) and {prefix}_max ({max})"
        )));
    }
    Ok(())
}
