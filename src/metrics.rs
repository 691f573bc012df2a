//! Prometheus metrics, one registry per [`crate::App`]: no global recorder, so apps built
//! side by side (the tests start many in one process) never see each other's counts.
//!
//! Every series has bounded labels: route templates (never raw paths), methods, status
//! codes, refresh results and revocation causes. Nothing per user, account or session.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::revocation::Reason;

/// Requests by method, route and status.
pub const HTTP_REQUESTS: &str = "sessiond_http_requests_total";
/// Request latency by method and route.
pub const HTTP_DURATION: &str = "sessiond_http_request_duration_seconds";
/// `/auth/refresh` outcomes by result: `ok` or the 401 `detail`.
pub const REFRESH_OUTCOMES: &str = "sessiond_refresh_total";
/// Refresh tokens revoked, by cause.
pub const TOKENS_REVOKED: &str = "sessiond_tokens_revoked_total";
/// How long a database call waited for a pooled connection.
pub const POOL_WAIT: &str = "sessiond_db_pool_wait_seconds";
/// How long a write waited for its turn: this process's writers queue for SQLite's one
/// writer.
pub const WRITER_WAIT: &str = "sessiond_db_writer_wait_seconds";
/// How many writes each write transaction held (group commit: writes queued while a
/// transaction was in flight share the next one).
pub const WRITE_GROUP: &str = "sessiond_db_write_group_size";
/// Pool size and idle connections, read at each scrape.
pub const POOL_CONNECTIONS: &str = "sessiond_db_pool_connections";
pub const POOL_IDLE: &str = "sessiond_db_pool_idle_connections";
/// Refresh tokens deleted by pruning (the server's own, and any run through its database
/// handle).
pub const TOKENS_PRUNED: &str = "sessiond_tokens_pruned_total";
/// Rounds of the server's background prune, by outcome: `ran`, or `skipped` because
/// another process held the prune's lease (PostgreSQL: one process prunes at a time).
pub const PRUNE_ROUNDS: &str = "sessiond_prune_rounds_total";

/// Upper bounds of the latency buckets, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Upper bounds of the write-group buckets: 1 (alone) to the largest group.
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The results `sessiond_refresh_total` is labelled with, each shown from the start (at 0).
pub const REFRESH_RESULTS: [&str; 5] = [
    "ok",
    "invalid_refresh_token",
    "session_idle_timeout",
    "session_absolute_timeout",
    "internal_error",
];

/// One app's registry. Cheap to clone; a disabled one (the CLI's) records nothing.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Registry>>);

struct Registry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("enabled", &self.0.is_some()).finish()
    }
}

impl Metrics {
    /// A registry with every series described, and the counters with known labels
    /// registered at 0, so a scrape shows them before they first move.
    pub fn prometheus() -> anyhow::Result<Metrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS)?
            .set_buckets_for_metric(Matcher::Full(POOL_WAIT.into()), LATENCY_BUCKETS)?
            .set_buckets_for_metric(Matcher::Full(WRITER_WAIT.into()), LATENCY_BUCKETS)?
            .set_buckets_for_metric(Matcher::Full(WRITE_GROUP.into()), GROUP_BUCKETS)?
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics(Some(Arc::new(Registry { recorder, handle })));
        metrics.with(|| {
            describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by method, route and status");
            describe_histogram!(
                HTTP_DURATION,
                Unit::Seconds,
                "HTTP request latency, by method and route"
            );
            describe_counter!(REFRESH_OUTCOMES, "POST /auth/refresh outcomes, by result");
            describe_counter!(TOKENS_REVOKED, "refresh tokens revoked, by cause");
            describe_histogram!(POOL_WAIT, Unit::Seconds, "wait for a pooled database connection");
            describe_histogram!(WRITER_WAIT, Unit::Seconds, "wait for the turn to write");
            describe_histogram!(WRITE_GROUP, Unit::Count, "writes per write transaction");
            describe_gauge!(POOL_CONNECTIONS, "open pooled database connections");
            describe_gauge!(POOL_IDLE, "idle pooled database connections");
            describe_counter!(TOKENS_PRUNED, "refresh tokens deleted by pruning");
            describe_counter!(PRUNE_ROUNDS, "background prune rounds, by outcome");
            for result in REFRESH_RESULTS {
                counter!(REFRESH_OUTCOMES, "result" => result).absolute(0);
            }
            // The causes are the refusal reasons a revoked token reports (contract §4c).
            for cause in Reason::ALL.into_iter().filter(|r| *r != Reason::UnknownToken) {
                counter!(TOKENS_REVOKED, "cause" => cause.as_str()).absolute(0);
            }
            counter!(TOKENS_PRUNED).absolute(0);
            for outcome in ["ran", "skipped"] {
                counter!(PRUNE_ROUNDS, "outcome" => outcome).absolute(0);
            }
        });
        Ok(metrics)
    }

    /// Records nothing.
    pub fn disabled() -> Metrics {
        Metrics(None)
    }

    /// Runs `f` with this registry as the recorder of the `metrics` macros.
    fn with(&self, f: impl FnOnce()) {
        if let Some(r) = &self.0 {
            metrics::with_local_recorder(&r.recorder, f);
        }
    }

    /// The text exposition. Histogram samples are folded into their buckets first, so a
    /// scrape sees every request answered before it.
    pub fn render(&self, pool: PoolState) -> String {
        let Some(r) = &self.0 else { return String::new() };
        self.with(|| {
            metrics::gauge!(POOL_CONNECTIONS).set(f64::from(pool.connections));
            metrics::gauge!(POOL_IDLE).set(f64::from(pool.idle));
        });
        r.handle.run_upkeep();
        r.handle.render()
    }

    /// Folds buffered histogram samples into their buckets, bounding memory between
    /// scrapes. Run every few seconds by the server.
    pub fn upkeep(&self) {
        if let Some(r) = &self.0 {
            r.handle.run_upkeep();
        }
    }

    pub fn request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        self.with(|| {
            let (method, route) = (method.to_owned(), route.to_owned());
            counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
                .increment(1);
            histogram!(HTTP_DURATION, "method" => method, "route" => route)
                .record(latency.as_secs_f64());
        });
    }

    pub fn refresh(&self, result: &'static str) {
        self.with(|| counter!(REFRESH_OUTCOMES, "result" => result).increment(1));
    }

    pub fn revoked(&self, cause: Reason, count: usize) {
        if count > 0 {
            self.with(|| {
                counter!(TOKENS_REVOKED, "cause" => cause.as_str()).increment(count as u64);
            });
        }
    }

    pub fn pool_wait(&self, waited: Duration) {
        self.with(|| histogram!(POOL_WAIT).record(waited.as_secs_f64()));
    }

    pub fn writer_wait(&self, waited: Duration) {
        self.with(|| histogram!(WRITER_WAIT).record(waited.as_secs_f64()));
    }

    pub fn write_group(&self, writes: usize) {
        self.with(|| histogram!(WRITE_GROUP).record(writes as f64));
    }

    pub fn pruned(&self, count: u64) {
        self.with(|| counter!(TOKENS_PRUNED).increment(count));
    }

    /// A background prune round that ran, or was skipped because another process held
    /// the lease.
    pub fn prune_round(&self, ran: bool) {
        let outcome = if ran { "ran" } else { "skipped" };
        self.with(|| counter!(PRUNE_ROUNDS, "outcome" => outcome).increment(1));
    }
}

/// The connection pool as a scrape reports it.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub connections: u32,
    pub idle: u32,
}
