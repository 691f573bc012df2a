//! Configuration: built-in defaults, then `config.toml`, then `SESSIOND_<SECTION>_<KEY>`
//! environment variables, then CLI flags; validated before anything is served.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::db::Synchronous;

/// A configuration problem: the process exits with status 2 and prints this one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
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

/// A string that never prints: `Debug` shows only whether it is set, and serialising
/// writes an empty string (serialising is only used to render the defaults).
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "Secret(unset)" } else { "Secret(***)" })
    }
}

/// A PostgreSQL connection URL (`database.url`). Its password never prints: `Display` and
/// `Debug` show [`DatabaseUrl::redacted`], serialising writes an empty string (only the
/// defaults are ever serialised), and only [`DatabaseUrl::expose`] hands out the whole URL,
/// for the database client.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("")
    }
}

/// What a redacted password reads as.
const REDACTED: &str = "***";

impl DatabaseUrl {
    /// Wraps `url` without checking it; [`DatabaseConfig::validate`] checks.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The URL with its password, for the database client only. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `value` (of `--database`) is a URL (`SCHEME://…`) rather than a file name.
    /// Any scheme counts, so that `mysql://…` is refused as a URL with the wrong scheme
    /// instead of becoming a strangely named SQLite file.
    pub fn looks_like_url(value: &str) -> bool {
        value.split_once("://").is_some_and(|(scheme, _)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
    }

    /// `postgres://user:***@host:port/db`: the URL with its password (and a `password`
    /// query parameter, which libpq also accepts) replaced by `***`. An unparsable URL
    /// shows only its scheme, since where its password starts cannot be told.
    pub fn redacted(&self) -> String {
        let Ok(mut url) = url::Url::parse(&self.0) else {
            let scheme = self.0.split_once("://").map_or("", |(s, _)| s);
            let scheme = if scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
                scheme
            } else {
                ""
            };
            return format!("{scheme}://{REDACTED} (unparsable)");
        };
        if url.password().is_some() {
            // Fails only for URLs that cannot have a password at all.
            let _ = url.set_password(Some(REDACTED));
        }
        if url.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("password")) {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("password") { REDACTED.into() } else { v };
                    (k.into_owned(), v.into_owned())
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url.to_string()
    }

    /// `HOST:PORT` (the port when given), for messages about reaching the database.
    pub fn host(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(url) => {
                let host = url.host_str().unwrap_or("localhost");
                url.port().map_or_else(|| host.to_owned(), |port| format!("{host}:{port}"))
            }
            Err(_) => "an unparsable address".into(),
        }
    }

    /// Checks the URL parses and names PostgreSQL. Messages never quote the URL.
    fn check(&self) -> Result<(), ConfigError> {
        let url = url::Url::parse(&self.0).map_err(|e| {
            err(format!("database.url is not a valid URL ({e}); expected postgres://USER:PASSWORD@HOST:PORT/DB"))
        })?;
        if !POSTGRES_SCHEMES.contains(&url.scheme()) {
            return Err(err(format!(
                "database.url must start with postgres:// or postgresql://, not {}://",
                url.scheme()
            )));
        }
        Ok(())
    }
}

const POSTGRES_SCHEMES: [&str; 2] = ["postgres", "postgresql"];

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("DatabaseUrl(unset)")
        } else {
            write!(f, "DatabaseUrl({})", self.redacted())
        }
    }
}

/// Which database the configuration names: what `Db::open` opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// `database.path`: a file, or `:memory:`.
    Sqlite { path: String },
    /// `database.url`.
    Postgres { url: DatabaseUrl },
}

impl fmt::Display for DatabaseTarget {
    /// The file name, or the URL without its password: fit for logs and messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseTarget::Sqlite { path } => f.write_str(path),
            DatabaseTarget::Postgres { url } => write!(f, "{url}"),
        }
    }
}

impl DatabaseConfig {
    /// PostgreSQL when `database.url` is set, else SQLite at `database.path`.
    pub fn target(&self) -> DatabaseTarget {
        if self.url.is_empty() {
            DatabaseTarget::Sqlite { path: self.path.clone() }
        } else {
            DatabaseTarget::Postgres { url: self.url.clone() }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if DatabaseUrl::looks_like_url(&self.path) {
            // Only `database.url` is kept out of logs and `Debug`: a URL goes there.
            return Err(err(
                "database.path holds a URL: set database.url (SESSIOND_DATABASE_URL, or \
                 --database URL) instead",
            ));
        }
        if self.url.is_empty() {
            if self.path.is_empty() {
                return Err(err("database.path must not be empty"));
            }
            return Ok(());
        }
        self.url.check()?;
        if self.path == ":memory:" {
            return Err(err(
                "database.path = \":memory:\" has no meaning with database.url (PostgreSQL): \
                 leave database.path unset, or database.url empty for SQLite",
            ));
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { listen: "127.0.0.1:8080".into(), log_format: LogFormat::Text }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            path: "data/sessiond.db".into(),
            url: DatabaseUrl::default(),
            pool_size: 8,
            synchronous: Synchronous::Full,
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
const MAX_POOL_SIZE: i64 = 1024;

/// The shortest configured JWT secret accepted (HS256 wants at least 256 bits).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
const ENV_PREFIX: &str = "SESSIOND_";

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

impl Config {
    /// Builds the configuration in precedence order (flag > environment > file > default)
    /// and validates it. Every error names the key, variable or flag at fault.
    pub fn load(
        source: &Source,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &FlagOverrides,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut table = toml::Table::try_from(Config::default())
            .map_err(|e| err(format!("internal: cannot render defaults: {e}")))?;
        if let Some((path, text)) = read_source(source)? {
            // Parsed straight into `Config` first, so unknown keys and wrong types are
            // reported with the line they stand on.
            toml::from_str::<Config>(&text).map_err(|e| file_err(&path, &text, &e))?;
            let file: toml::Table =
                toml::from_str(&text).map_err(|e| file_err(&path, &text, &e))?;
            merge(&mut table, file);
        }
        let warnings = apply_env(&mut table, env)?;
        if let Some(db) = &flags.database {
            // `--database` names the whole database: a URL moves it to PostgreSQL, a path
            // (or `:memory:`) to SQLite, whatever the file or environment said.
            if DatabaseUrl::looks_like_url(db) {
                set(&mut table, "database", "url", toml::Value::String(db.clone()));
            } else {
                set(&mut table, "database", "path", toml::Value::String(db.clone()));
                set(&mut table, "database", "url", toml::Value::String(String::new()));
            }
        }
        if let Some(listen) = &flags.listen {
            set(&mut table, "server", "listen", toml::Value::String(listen.clone()));
        }
        let config = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| err(one_line(&e.to_string())))?;
        config.validate()?;
        Ok((config, warnings))
    }

    /// Checks what serde cannot: ranges and the relations between keys. Every number has
    /// an upper bound too, so no later time arithmetic can overflow.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_listen(&self.server.listen)?;
        self.database.validate()?;
        in_range("database.pool_size", i64::from(self.database.pool_size), 1, MAX_POOL_SIZE)?;
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

/// `PATH: line N: <that line>: <what is wrong>`. toml's own rendering quotes the source
/// too, but a line holding the JWT secret must never be printed: it is named instead.
fn file_err(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let Some(span) = e.span() else {
        return err(format!("{}: {}", path.display(), e.message()));
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default().trim();
    if line.contains("jwt_secret") {
        return err(format!(
            "{}: line {line_no}: auth.jwt_secret must be a string of at least {MIN_JWT_SECRET_BYTES} bytes (value not shown)",
            path.display()
        ));
    }
    err(format!("{}: line {line_no}: {line}: {}", path.display(), one_line(e.message())))
}

/// The `SESSIOND_*` variables of this process. Others are not looked at, so a variable
/// elsewhere that is not UTF-8 is no concern; one of ours that is not is an error.
pub fn env_vars() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (key, value) in std::env::vars_os() {
        let Some(key) = key.to_str().filter(|k| k.starts_with(ENV_PREFIX)).map(str::to_owned)
        else {
            continue;
        };
        let value = value.into_string().map_err(|_| err(format!("{key} is not valid UTF-8")))?;
        vars.push((key, value));
    }
    Ok(vars)
}

fn read_source(source: &Source) -> Result<Option<(PathBuf, String)>, ConfigError> {
    match source {
        Source::Explicit(path) => std::fs::read_to_string(path)
            .map(|text| Some((path.clone(), text)))
            .map_err(|e| err(format!("--config {}: {e}", path.display()))),
        Source::Default => {
            let path = Path::new("config.toml");
            match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some((path.to_path_buf(), text))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(err(format!("config.toml: {e}"))),
            }
        }
    }
}

/// Applies `SESSIOND_<SECTION>_<KEY>` variables, parsing each by the type of the key it
/// overrides. Variables that name no key are reported as warnings, not errors: the
/// prefix is also used by harnesses and wrappers for their own settings.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    let mut vars: Vec<(String, String)> =
        env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
    vars.sort();
    for (name, raw) in vars {
        let rest = name[ENV_PREFIX.len()..].to_ascii_lowercase();
        let Some((section, key, current)) = lookup_env_key(table, &rest) else {
            warnings.push(format!("ignoring {name}: it names no configuration key"));
            continue;
        };
        let value = match current {
            toml::Value::Integer(_) => raw
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| err(format!("{name} must be an integer, got {raw:?}")))?,
            toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
                "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
                _ => return Err(err(format!("{name} must be true or false, got {raw:?}"))),
            },
            _ => toml::Value::String(raw),
        };
        set(table, &section, &key, value);
    }
    Ok(warnings)
}

fn lookup_env_key(table: &toml::Table, rest: &str) -> Option<(String, String, toml::Value)> {
    let (section, key) = rest.split_once('_')?;
    let value = table.get(section)?.as_table()?.get(key)?.clone();
    Some((section.to_owned(), key.to_owned(), value))
}

fn set(table: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    let entry =
        table.entry(section.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(t) = entry {
        t.insert(key.to_owned(), value);
    }
}

/// Deep-merges `over` into `base`: sections merge key by key, values replace.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
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

/// toml and serde errors span several lines; the contract wants one.
fn one_line(msg: &str) -> String {
    msg.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
