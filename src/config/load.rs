//! Building a [`Config`]: built-in defaults, then the file, then `SESSIOND_*` variables,
//! then CLI flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    Config, ConfigError, DatabaseUrl, ENV_PREFIX, FlagOverrides, MIN_JWT_SECRET_BYTES, Source, err,
};

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
}

/// `PATH: line N: <that line>: <what is wrong>`. toml's own rendering quotes the source
/// too, but a line holding the JWT secret or a database URL (with its password) must never
/// be printed: it is named instead.
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
    if line.contains("url") || line.contains("://") {
        return err(format!(
            "{}: line {line_no}: {} (line not shown: it may hold a database password)",
            path.display(),
            one_line(e.message())
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
            // A list (`server.trusted_proxies`): comma-separated, blanks ignored.
            toml::Value::Array(_) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| toml::Value::String(item.to_owned()))
                    .collect(),
            ),
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

/// toml and serde errors span several lines; the contract wants one.
pub(crate) fn one_line(msg: &str) -> String {
    msg.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}
