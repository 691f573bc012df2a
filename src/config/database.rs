//! `database.url`: which database the configuration names (SQLite at `database.path`, or
//! PostgreSQL), and a URL type whose password never prints.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, DatabaseConfig, err};

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
        // The PostgreSQL client ends the user and password at the first `@`, the URL
        // parser above at the last: with a raw `@` in the password they would disagree on
        // where the host starts, and a refused connection would name part of the password
        // as the host. So a raw `@` before the host is refused.
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.matches('@').count() > 1 {
            return Err(err(
                "database.url has more than one '@' before the host: write an '@' in the user \
                 name or password as %40",
            ));
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

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
