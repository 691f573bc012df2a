//! Building and running the server: database (with migrations), keys, state, router,
//! listener. Production and the tests go through the same [`App::build`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::jwt::{Keys, generate_secret, resolve_secret, secret_file_warning};
use crate::auth::password::Hasher;
use crate::auth::throttle::LoginThrottle;
use crate::clock::Clock;
use crate::config::{Config, DatabaseTarget};
use crate::db::{Backend, Db, server_secrets};
use crate::metrics::Metrics;
use crate::policy::Bounds;
use crate::service::maintenance;
use crate::state::AppState;

pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    /// Logged when serving starts, not while building: a start that fails prints one line.
    warnings: Vec<String>,
}

impl App {
    /// Opens and migrates the database, loads or creates the signing secret, and binds
    /// the listener. Nothing is served until [`App::run`].
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let clock =
            if config.testing.clock_control { Clock::controllable() } else { Clock::system() };
        let metrics = Metrics::prometheus().context("building the metrics registry")?;
        let db = open_db(&config).await?.with_metrics(metrics.clone());
        let (secret, warning) = {
            let (configured, path) =
                (config.auth.jwt_secret.expose().to_owned(), config.database.path.clone());
            if configured.is_empty() && db.backend() == Backend::Postgres {
                // Every process of the deployment signs with the same secret: the one kept
                // in the database, created by the first to start.
                let candidate = generate_secret();
                let secret = db
                    .write(move |tx| server_secrets::get_or_insert(tx, "jwt", &candidate))
                    .await
                    .context("loading the JWT secret from the database")?;
                (secret.into_bytes(), None)
            } else {
                tokio::task::spawn_blocking(move || {
                    resolve_secret(&configured, &path)
                        .map(|secret| (secret, secret_file_warning(&configured, &path)))
                })
                .await
                .context("loading the JWT secret")??
            }
        };
        let keys = Keys::new(&secret, config.auth.access_token_minutes);
        let listen = config.server.listen.clone();
        let listener = TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // One core fewer than the machine has (at least one): a login storm then leaves a
        // core to everything else, so refreshes keep their latency (docs/PERFORMANCE.md).
        let hashers = std::thread::available_parallelism().map_or(1, |n| n.get() - 1).max(1);
        let login_throttle = Arc::new(LoginThrottle::new(
            db.clone(),
            config.auth.max_failed_logins,
            config.auth.failed_login_window_minutes,
        ));
        let state = AppState {
            db,
            bounds: Bounds::from(&config.session),
            config: Arc::new(config),
            keys: Arc::new(keys),
            clock,
            hasher: Hasher::new(hashers),
            background: TaskTracker::new(),
            metrics,
            login_throttle,
        };
        Ok(App { listener, addr, state, warnings: warning.into_iter().collect() })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight
    /// requests finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
        let background = self.state.background.clone();
        // Housekeeping runs beside the server and stops with it.
        let stop = CancellationToken::new();
        let prune = maintenance::prune_periodically(
            self.state.clone(),
            PRUNE_FIRST,
            PRUNE_EVERY,
            stop.clone(),
        );
        background.spawn(prune);
        background.spawn(maintenance::metrics_upkeep(self.state.metrics.clone(), stop.clone()));
        let grace = self.state.config.server.shutdown_grace();
        let served = crate::http::serve(self.listener, self.state, shutdown).await;
        stop.cancel();
        background.close();
        // Work that outlived its request (a failed login's audit row) gets the same grace
        // as requests: with the database gone it could otherwise hold the exit for minutes.
        if tokio::time::timeout(grace, background.wait()).await.is_err() {
            tracing::warn!("background work still running after the shutdown grace; exiting");
        }
        served
    }
}

/// Opens (and migrates) the configured database off the async threads.
pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    let d = &config.database;
    // `Db::open_with` tells the backends apart by the URL's scheme; the configuration
    // keeps a URL only in `database.url`, whose password never prints.
    let target = match d.target() {
        DatabaseTarget::Sqlite { path } => path,
        DatabaseTarget::Postgres { url } => url.expose().to_owned(),
    };
    let (size, synchronous) = (d.pool_size, d.synchronous);
    let db = tokio::task::spawn_blocking(move || Db::open_with(&target, size, synchronous))
        .await
        .context("opening the database")??;
    Ok(db.with_group_commit(d.group_commit))
}

/// When the server first prunes old refresh tokens (`session.retention_days`), and how
/// often after that.
const PRUNE_FIRST: std::time::Duration = std::time::Duration::from_secs(60);
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long the server keeps serving after a signal before it stops accepting and drains.
const SHUTDOWN_SETTLE: std::time::Duration = std::time::Duration::from_millis(20);

/// SIGINT and SIGTERM handlers. Installed before the `listening on` line is printed, so
/// a harness may signal the moment it reads it and still get a clean exit.
pub struct ShutdownSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the first SIGINT or SIGTERM (also one that arrived before this was
    /// polled).
    pub async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
        tracing::info!("shutting down: draining in-flight requests");
        // A request a client wrote just before the signal may still sit unread in the
        // socket: to the HTTP layer its connection looks idle and would be closed on it.
        // Serving on a moment longer lets such requests be read, and then drained.
        tokio::time::sleep(SHUTDOWN_SETTLE).await;
    }
}
