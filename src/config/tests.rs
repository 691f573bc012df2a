//! Unit tests of loading and validating the configuration.

use std::path::PathBuf;

use super::*;
use crate::db::Synchronous;

fn load_with(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
    let source = match file {
        Some(text) => {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).map_err(|e| err(e.to_string()))?;
            Source::Explicit(path)
        }
        None => Source::Explicit(PathBuf::from("/nonexistent/sessiond.toml")),
    };
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::load(&source, env, &FlagOverrides::default()).map(|(c, _)| c)
}

#[test]
fn defaults_are_valid() {
    assert!(Config::default().validate().is_ok());
}

#[test]
fn unknown_key_is_named() {
    let e = load_with(Some("[session]\nidle_minutes_mx = 5\n"), &[]).err().map(|e| e.0);
    assert!(e.unwrap_or_default().contains("idle_minutes_mx"));
}

#[test]
fn env_overrides_file_and_is_typed() {
    let c = load_with(
        Some("[session]\nidle_minutes_max = 5000\n"),
        &[
            ("SESSIOND_SESSION_IDLE_MINUTES_MAX", "6000"),
            ("SESSIOND_TESTING_CLOCK_CONTROL", "true"),
        ],
    )
    .ok();
    assert_eq!(c.as_ref().map(|c| c.session.idle_minutes_max), Some(6000));
    assert_eq!(c.map(|c| c.testing.clock_control), Some(true));
    let e = load_with(Some(""), &[("SESSIOND_DATABASE_POOL_SIZE", "many")]).err().map(|e| e.0);
    assert!(e.unwrap_or_default().contains("SESSIOND_DATABASE_POOL_SIZE"));
}

#[test]
fn synchronous_is_full_unless_set() {
    assert_eq!(Config::default().database.synchronous, Synchronous::Full);
    let c = load_with(Some(""), &[("SESSIOND_DATABASE_SYNCHRONOUS", "normal")]).ok();
    assert_eq!(c.map(|c| c.database.synchronous), Some(Synchronous::Normal));
    let e = load_with(Some("[database]\nsynchronous = \"off\"\n"), &[]).err().map(|e| e.0);
    assert!(e.unwrap_or_default().contains("synchronous"));
}

#[test]
fn min_above_max_and_default_outside_bounds_are_refused() {
    let e = load_with(Some("[session]\nidle_minutes_min = 50\nidle_minutes_max = 40\n"), &[]);
    assert!(e.err().map(|e| e.0).unwrap_or_default().contains("session.idle_minutes_min"));
    let e = load_with(Some("[session]\nabsolute_minutes_default = 30\n"), &[]);
    assert!(e.err().map(|e| e.0).unwrap_or_default().contains("absolute_minutes_default"));
    let e = load_with(
        Some("[session]\nidle_minutes_default = 5000\nabsolute_minutes_default = 4000\n"),
        &[],
    );
    assert!(e.err().map(|e| e.0).unwrap_or_default().contains("idle_minutes_default"));
}

#[test]
fn short_secret_is_refused_and_never_printed() {
    let e = load_with(Some("[auth]\njwt_secret = \"short\"\n"), &[]).err().map(|e| e.0);
    let e = e.unwrap_or_default();
    assert!(e.contains("auth.jwt_secret") && !e.contains("short\""));
    let c = load_with(Some("[auth]\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n"), &[]);
    let debug = format!("{:?}", c.ok());
    assert!(!debug.contains("0123456789abcdef") && debug.contains("Secret(***)"));
}

#[test]
fn missing_explicit_file_is_an_error() {
    let e = load_with(None, &[]).err().map(|e| e.0).unwrap_or_default();
    assert!(e.contains("--config"));
}

#[test]
fn server_timeouts_default_are_overridable_and_bounded() {
    let c = Config::default();
    assert_eq!((c.server.request_timeout_seconds, c.server.shutdown_grace_seconds), (30, 10));
    let c = load_with(
        Some("[server]\nrequest_timeout_seconds = 5\n"),
        &[("SESSIOND_SERVER_SHUTDOWN_GRACE_SECONDS", "0")],
    )
    .ok();
    assert_eq!(
        c.map(|c| (c.server.request_timeout(), c.server.shutdown_grace())).unwrap_or_default(),
        (std::time::Duration::from_secs(5), std::time::Duration::ZERO)
    );
    for (file, key) in [
        ("[server]\nrequest_timeout_seconds = 0\n", "server.request_timeout_seconds"),
        ("[server]\nrequest_timeout_seconds = 3601\n", "server.request_timeout_seconds"),
        ("[server]\nshutdown_grace_seconds = -1\n", "server.shutdown_grace_seconds"),
    ] {
        let e = load_with(Some(file), &[]).err().map(|e| e.0).unwrap_or_default();
        assert!(e.contains(key), "{file}: {e}");
    }
}

#[test]
fn trusted_proxies_from_file_and_env_and_bad_entries_named() {
    assert!(Config::default().server.trusted_proxies.is_empty());
    let c = load_with(Some("[server]\ntrusted_proxies = [\"10.0.0.1\", \"fd00::/8\"]\n"), &[]);
    let t = c.map(|c| c.server.trusted_proxies).unwrap_or_default();
    assert!(t.contains(std::net::IpAddr::from([10, 0, 0, 1])));
    assert_eq!(t.to_string(), "10.0.0.1/32,fd00::/8");
    let c = load_with(
        Some("[server]\ntrusted_proxies = [\"10.0.0.1\"]\n"),
        &[("SESSIOND_SERVER_TRUSTED_PROXIES", " 192.168.0.0/16 , ::1,")],
    );
    let t = c.map(|c| c.server.trusted_proxies.to_string()).unwrap_or_default();
    assert_eq!(t, "192.168.0.0/16,::1/128", "the environment replaces the file's list");
    let e = load_with(Some("[server]\ntrusted_proxies = [\"10.0.0.0/40\"]\n"), &[]);
    let e = e.err().map(|e| e.0).unwrap_or_default();
    assert!(e.contains("server.trusted_proxies") && e.contains("10.0.0.0/40"), "{e}");
    let e = load_with(Some(""), &[("SESSIOND_SERVER_TRUSTED_PROXIES", "10.0.0.1,proxy")]);
    let e = e.err().map(|e| e.0).unwrap_or_default();
    assert!(e.contains("server.trusted_proxies") && e.contains("proxy"), "{e}");
}
