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

fn load_flags(env: &[(&str, &str)], database: Option<&str>) -> Result<Config, ConfigError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let flags = FlagOverrides { database: database.map(str::to_owned), listen: None };
    let source = Source::Explicit(PathBuf::from("/dev/null"));
    Config::load(&source, env, &flags).map(|(c, _)| c)
}

const URL: &str = "postgres://sessiond:hunter2-secret@db.example:5433/sessiond";

#[test]
fn database_url_password_is_redacted_in_display_debug_and_target() {
    let url = DatabaseUrl::new(URL);
    assert_eq!(url.redacted(), "postgres://sessiond:***@db.example:5433/sessiond");
    assert_eq!(url.to_string(), url.redacted());
    assert_eq!(url.host(), "db.example:5433");
    let c = load_flags(&[("SESSIOND_DATABASE_URL", URL)], None).map_err(|e| e.0);
    let c = c.unwrap_or_else(|e| panic!("{e}"));
    let shown = format!("{c:?} {} {:?}", c.database.target(), c.database.target());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("postgres://sessiond:***@db.example:5433/sessiond"), "{shown}");
    assert_eq!(c.database.target(), DatabaseTarget::Postgres { url: url.clone() });
    assert_eq!(c.database.url.expose(), URL, "the client gets the real URL");
    // libpq also takes the password as a query parameter.
    let q = DatabaseUrl::new("postgresql://u@h/db?sslmode=require&password=hunter2-secret");
    assert_eq!(q.redacted(), "postgresql://u@h/db?sslmode=require&password=***");
    // A URL that cannot be parsed shows nothing past its scheme.
    let bad = DatabaseUrl::new("postgres://u:hunter2-secret@[bad/db");
    assert!(!bad.redacted().contains("hunter2"), "{}", bad.redacted());
    assert!(!format!("{bad:?}").contains("hunter2"));
    // Serialising (only ever of the defaults) writes nothing.
    let rendered = toml::to_string(&c).unwrap_or_default();
    assert!(!rendered.contains("hunter2") && rendered.contains("url = \"\""), "{rendered}");
}

#[test]
fn database_flag_with_a_postgres_scheme_sets_the_url_and_a_path_clears_it() {
    for url in [URL, "postgresql://u@localhost/db", "POSTGRES://u@localhost/db"] {
        let c = load_flags(&[], Some(url)).map_err(|e| e.0);
        let c = c.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(c.database.url.expose(), url);
        assert_eq!(c.database.path, DatabaseConfig::default().path, "path untouched");
        assert!(matches!(c.database.target(), DatabaseTarget::Postgres { .. }));
    }
    let c = load_flags(&[("SESSIOND_DATABASE_URL", URL)], Some("/tmp/x.db")).map_err(|e| e.0);
    let c = c.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.database.target(), DatabaseTarget::Sqlite { path: "/tmp/x.db".into() });
    let c = load_flags(&[], None).map_err(|e| e.0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.database.target(), DatabaseTarget::Sqlite { path: "data/sessiond.db".into() });
}

#[test]
fn database_url_errors_name_the_key_and_never_the_password() {
    let cases = [
        ("mysql://u:hunter2-secret@h/db", "postgres://"),
        ("http://u:hunter2-secret@h/db", "not http://"),
        ("postgres://u:hunter2-secret@h:99999/db", "not a valid URL"),
        ("not a url hunter2-secret", "not a valid URL"),
        // A raw '@' in the password: the client and the URL parser would split it apart.
        ("postgres://u:hunter2@secret@h/db", "%40"),
    ];
    for (url, needle) in cases {
        let e = load_flags(&[("SESSIOND_DATABASE_URL", url)], None).err().map(|e| e.0);
        let e = e.unwrap_or_default();
        assert!(e.contains("database.url") && e.contains(needle), "{url}: {e}");
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // A URL in database.path would be printed by Debug: refused, pointing at the key.
    let e = load_flags(&[("SESSIOND_DATABASE_PATH", URL)], None).err().map(|e| e.0);
    let e = e.unwrap_or_default();
    assert!(e.contains("database.path") && e.contains("database.url"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let e = load_flags(&[("SESSIOND_DATABASE_PATH", ":memory:")], Some(URL)).err();
    let e = e.map(|e| e.0).unwrap_or_default();
    assert!(e.contains(":memory:") && e.contains("database.url"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn a_bad_database_url_line_in_the_file_is_never_echoed() {
    // A quote inside the password breaks the TOML string: toml points at that line.
    let e = load_with(Some("[database]\nurl = \"postgres://u:hun\"ter2@h/db\"\n"), &[]);
    let e = e.err().map(|e| e.0).unwrap_or_default();
    assert!(e.contains("line 2") && e.contains("not shown"), "{e}");
    assert!(!e.contains("hun") && !e.contains("ter2"), "{e}");
}

#[test]
fn postgres_needs_two_pooled_connections() {
    let url = "postgres://u@localhost/db";
    let e = load_flags(&[("SESSIOND_DATABASE_POOL_SIZE", "1")], Some(url)).err().map(|e| e.0);
    assert!(e.unwrap_or_default().contains("database.pool_size must be at least 2"));
    assert!(load_flags(&[("SESSIOND_DATABASE_POOL_SIZE", "2")], Some(url)).is_ok());
    // SQLite is content with one.
    assert!(load_flags(&[("SESSIOND_DATABASE_POOL_SIZE", "1")], None).is_ok());
}

#[test]
fn group_commit_is_on_unless_turned_off() {
    assert!(Config::default().database.group_commit);
    let c = load_with(Some("[database]\ngroup_commit = false\n"), &[]).map_err(|e| e.0);
    assert_eq!(c.map(|c| c.database.group_commit), Ok(false));
    let env = [("SESSIOND_DATABASE_GROUP_COMMIT", "off")];
    let c = load_with(Some(""), &env).map_err(|e| e.0);
    assert_eq!(c.map(|c| c.database.group_commit), Ok(false));
    let e = load_with(Some("[database]\ngroup_commit = \"maybe\"\n"), &[]).err().map(|e| e.0);
    assert!(e.unwrap_or_default().contains("group_commit"));
}
