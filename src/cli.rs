//! The command line: `serve` (the default), `migrate`, `account create`, `user create`,
//! `user disable`, `user unlock`, `backup`, `prune`. Exit status 2 for usage and configuration errors, 1 for any other
//! failure, each with one line on stderr.

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::json;
use uuid::Uuid;

use crate::app::{App, ShutdownSignals, open_db};
use crate::auth::Role;
use crate::auth::password::{Hasher, check_new_password};
use crate::clock::Clock;
use crate::config::{Config, ConfigError, DatabaseTarget, FlagOverrides, Source};
use crate::db::backup::BackupError;
use crate::policy::Bounds;
use crate::service::{self, accounts, maintenance, users};

#[derive(Debug, Parser)]
#[command(
    name = "sessiond",
    version,
    about = "Session-expiration server on embedded SQLite or PostgreSQL"
)]
pub struct Cli {
    /// Configuration file (default: ./config.toml if present, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database file or :memory: (overrides database.path), or a postgres:// URL
    /// (overrides database.url).
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub database: Option<String>,
    /// Address to serve on, e.g. 127.0.0.1:0 for any free port (overrides server.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve HTTP until SIGINT/SIGTERM.
    Serve {
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Write a consistent copy of the database to a new file, also while a server runs;
    /// prints {"backup": PATH, "bytes": n, "pages": n}.
    Backup {
        /// The copy to create; an existing file is never overwritten.
        #[arg(long, value_name = "PATH")]
        to: PathBuf,
    },
    /// Delete refresh tokens revoked or expired more than session.retention_days ago;
    /// prints {"deleted": n}.
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints {"account_id": …}.
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints {"user_id": …} (and "password" when one was generated).
    Create {
        #[arg(long, value_name = "ID")]
        account: Uuid,
        #[arg(long)]
        email: String,
        /// owner, admin or engineer.
        #[arg(long, value_parser = clap::value_parser!(Role))]
        role: Role,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Mark a user inactive and revoke all of their refresh tokens.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Lift a login lockout: forget the email's failed logins from every address, also
    /// for a running server; prints {"user_id": …, "cleared": n}.
    Unlock {
        #[arg(long)]
        email: String,
    },
}

/// How a command failed, and so which exit status it gets.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Exit 2.
    #[error("{0}")]
    Usage(String),
    /// Exit 1.
    #[error("{0}")]
    Failure(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failure(_) => 1,
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Usage(e.0)
    }
}

impl From<service::Error> for CliError {
    fn from(e: service::Error) -> Self {
        match e {
            service::Error::Invalid(msg) => CliError::Usage(msg),
            service::Error::Internal(e) => CliError::Failure(format!("{e:#}")),
            other => CliError::Failure(other.to_string()),
        }
    }
}

fn failure(e: anyhow::Error) -> CliError {
    CliError::Failure(format!("{e:#}"))
}

impl Cli {
    /// The configuration this invocation runs with (flag > environment > file > default),
    /// plus warnings about ignored environment variables.
    pub fn load_config(&self) -> Result<(Config, Vec<String>), CliError> {
        let source = self.config.clone().map_or(Source::Default, Source::Explicit);
        let listen = match &self.command {
            Some(Command::Serve { listen }) => listen.clone().or_else(|| self.listen.clone()),
            _ => self.listen.clone(),
        };
        let flags = FlagOverrides { database: self.database.clone(), listen };
        Ok(Config::load(&source, crate::config::env_vars()?, &flags)?)
    }

    /// The default log level: a server reports its requests, a CLI command stays quiet.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            None | Some(Command::Serve { .. }) => "info",
            _ => "warn",
        }
    }
}

/// Runs the command. `warnings` (about the configuration) are logged by `serve` once it
/// is listening: a command that fails must print exactly one line on stderr, and the
/// one-shot commands stay silent.
pub async fn run(cli: Cli, config: Config, warnings: Vec<String>) -> Result<(), CliError> {
    match cli.command {
        None | Some(Command::Serve { .. }) => serve(config, warnings).await,
        Some(Command::Migrate) => {
            open_db(&config).await.map_err(failure)?;
            let database = config.database.target().to_string();
            print_json(&json!({ "migrated": true, "database": database }))
        }
        Some(Command::Account(AccountCommand::Create { name })) => {
            let db = open_db(&config).await.map_err(failure)?;
            let id =
                accounts::create(&db, name, Clock::system().now()).await.map_err(|e| match e {
                    service::Error::Invalid(msg) => CliError::Usage(format!("--name: {msg}")),
                    other => other.into(),
                })?;
            print_json(&json!({ "account_id": id }))
        }
        Some(Command::User(UserCommand::Create { account, email, role, password_stdin })) => {
            users::check_email(&email).map_err(|e| CliError::Usage(format!("--email: {e}")))?;
            let (password, generated) = if password_stdin {
                let password = read_password_stdin()?;
                check_new_password(&password)
                    .map_err(|e| CliError::Usage(format!("--password-stdin: {e}")))?;
                (password, false)
            } else {
                (generate_password(), true)
            };
            let db = open_db(&config).await.map_err(failure)?;
            let hash = Hasher::new(1).hash(password.clone()).await.map_err(failure)?;
            let id = users::create(&db, account, &email, role, hash, Clock::system().now()).await?;
            if generated {
                print_json(&json!({ "user_id": id, "password": password }))
            } else {
                print_json(&json!({ "user_id": id }))
            }
        }
        Some(Command::User(UserCommand::Disable { email })) => {
            let db = open_db(&config).await.map_err(failure)?;
            let (id, revoked) = users::disable(&db, &email, Clock::system().now()).await?;
            print_json(&json!({ "user_id": id, "revoked_count": revoked }))
        }
        Some(Command::User(UserCommand::Unlock { email })) => {
            let db = open_db(&config).await.map_err(failure)?;
            let (id, cleared) = users::unlock(&db, &email, Clock::system().now()).await?;
            print_json(&json!({ "user_id": id, "cleared": cleared }))
        }
        Some(Command::Backup { to }) => backup(&config, &to).await,
        Some(Command::Prune) => {
            let db = open_db(&config).await.map_err(failure)?;
            let (bounds, retention) =
                (Bounds::from(&config.session), config.session.retention_days);
            let now = Clock::system().now();
            let pace = maintenance::Pace::Gentle;
            let deleted = maintenance::prune_paced(&db, bounds, retention, now, pace).await?;
            print_json(&json!({ "deleted": deleted }))
        }
    }
}

/// `backup --to PATH`: the copy is taken from the database file as it is, without
/// migrating it, and never replaces an existing file.
async fn backup(config: &Config, to: &std::path::Path) -> Result<(), CliError> {
    if let DatabaseTarget::Postgres { url } = config.database.target() {
        return Err(CliError::Usage(format!(
            "backup copies a SQLite database file; database.url names PostgreSQL ({}): back it up with pg_dump",
            url.host()
        )));
    }
    if config.database.path == ":memory:" {
        return Err(CliError::Usage(
            "database.path is :memory:, which no other process can read; name the database file with --database".into(),
        ));
    }
    let source = std::path::PathBuf::from(&config.database.path);
    let backed = maintenance::backup(&source, to).await.map_err(|e| match e {
        BackupError::Other(e) => failure(e),
        other => CliError::Failure(other.to_string()),
    })?;
    print_json(&json!({ "backup": to, "bytes": backed.bytes, "pages": backed.pages }))
}

async fn serve(config: Config, warnings: Vec<String>) -> Result<(), CliError> {
    let signals = ShutdownSignals::install()
        .map_err(|e| CliError::Failure(format!("cannot install signal handlers: {e}")))?;
    let clock_control = config.testing.clock_control;
    let app = App::build(config).await.map_err(failure)?;
    let addr = app.local_addr();
    // The one line a harness waits for; written and flushed before anything is served.
    print_line(&format!("listening on http://{addr}"))?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    if clock_control {
        tracing::warn!(
            "testing.clock_control is on: POST /_test/clock can move this server's clock"
        );
    }
    tracing::info!(%addr, "serving");
    app.run(signals.recv()).await.map_err(failure)?;
    tracing::info!("stopped");
    Ok(())
}

fn read_password_stdin() -> Result<String, CliError> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| {
        CliError::Usage(format!("--password-stdin: cannot read standard input: {e}"))
    })?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(password.to_owned())
}

/// 24 alphanumeric characters: about 142 bits.
fn generate_password() -> String {
    rand::rng().sample_iter(Alphanumeric).take(24).map(char::from).collect()
}

fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    print_line(&value.to_string())
}

fn print_line(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Failure(format!("cannot write to stdout: {e}")))
}

/// clap's errors span several lines; the contract wants one that names the flag.
pub fn one_line_usage_error(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
