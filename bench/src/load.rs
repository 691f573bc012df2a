//! The closed-loop load driver: N simulated clients, each on its own connection, each
//! sending its next request as soon as the previous answer is in, for a warm-up period
//! (not recorded) and then a measured one.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::StatusCode;
use serde::Serialize;

use crate::client::{Call, Conn};

/// What one simulated client sends next and how it judges the answer. Each keeps its
/// own state (e.g. the refresh tokens it rotates).
pub trait Client: Send + 'static {
    fn next_call(&mut self) -> Call;
    /// Whether the answer is the expected one; may update the client's state.
    fn check(&mut self, status: StatusCode, body: &Bytes) -> bool;
}

/// The phases of one run.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub warmup: Duration,
    pub measure: Duration,
}

/// Latencies are recorded in microseconds, up to a minute, with 3 significant digits.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("creating a latency histogram")
}

/// Requests that started in the measured window.
pub struct Recorded {
    pub hist: Histogram<u64>,
    pub errors: u64,
    /// Every request sent, warm-up included.
    pub sent: u64,
    pub window: Duration,
    /// The first few distinct error descriptions, to say what went wrong.
    pub error_samples: Vec<String>,
}

/// Figures of one run, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Every non-expected answer or transport failure, warm-up included.
    pub errors: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
}

impl Recorded {
    pub fn new(window: Duration) -> anyhow::Result<Recorded> {
        Ok(Recorded { hist: histogram()?, errors: 0, sent: 0, window, error_samples: vec![] })
    }

    /// Adds `other`'s requests, errors and window to these: several measured slices of
    /// one level as one.
    pub fn merge(&mut self, other: Recorded) -> anyhow::Result<()> {
        self.hist.add(&other.hist).context("merging histograms")?;
        self.sent += other.sent;
        self.errors += other.errors;
        self.window += other.window;
        for e in other.error_samples {
            if self.error_samples.len() < 5 && !self.error_samples.contains(&e) {
                self.error_samples.push(e);
            }
        }
        Ok(())
    }

    /// Counts an error, keeping the first few descriptions.
    pub fn note(&mut self, error: String) {
        self.errors += 1;
        if self.error_samples.len() < 3 {
            self.error_samples.push(error);
        }
    }

    pub fn summary(&self) -> Summary {
        let ms = |us: u64| us as f64 / 1000.0;
        let requests = self.hist.len();
        Summary {
            requests,
            per_second: requests as f64 / self.window.as_secs_f64(),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            max_ms: ms(self.hist.max()),
            errors: self.errors,
            error_samples: self.error_samples.clone(),
        }
    }
}

/// Runs every client against `addr` for `phases`; answers the merged figures and the
/// clients (with their state, e.g. their latest tokens) for the next run.
pub async fn drive<C: Client>(
    addr: SocketAddr,
    clients: Vec<C>,
    phases: Phases,
) -> anyhow::Result<(Recorded, Vec<C>)> {
    drive_spread(&[addr], clients, phases).await
}

/// [`drive`] against several servers: client `i` talks to `addrs[i % addrs.len()]`, as
/// a balancer spreading connections evenly would have it.
pub async fn drive_spread<C: Client>(
    addrs: &[SocketAddr],
    clients: Vec<C>,
    phases: Phases,
) -> anyhow::Result<(Recorded, Vec<C>)> {
    anyhow::ensure!(!addrs.is_empty(), "no server to drive");
    let start = Instant::now();
    let measure_from = start + phases.warmup;
    let end = measure_from + phases.measure;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            tokio::spawn(run_client(addrs[i % addrs.len()], client, measure_from, end))
        })
        .collect();
    let mut hist = histogram()?;
    let mut errors = 0;
    let mut sent = 0;
    let mut error_samples = Vec::new();
    let mut back = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (client, one) = task.await.context("client task")??;
        hist.add(&one.hist).context("merging histograms")?;
        errors += one.errors;
        sent += one.sent;
        for e in one.error_samples {
            if error_samples.len() < 5 && !error_samples.contains(&e) {
                error_samples.push(e);
            }
        }
        back.push(client);
    }
    Ok((Recorded { hist, errors, sent, window: phases.measure, error_samples }, back))
}

async fn run_client<C: Client>(
    addr: SocketAddr,
    mut client: C,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<(C, Recorded)> {
    let mut conn = Conn::open(addr).await?;
    let mut out = Recorded::new(end - measure_from)?;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let call = client.next_call();
        out.sent += 1;
        match conn.send(&call).await {
            Ok((status, body)) => {
                let took = sent.elapsed();
                if !client.check(status, &body) {
                    let text = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
                    out.note(format!("{} {}: {status} {text}", call.method, call.path));
                } else if sent >= measure_from {
                    // Saturates at the histogram's top (a minute): never an error.
                    out.hist.saturating_record(took.as_micros().try_into().unwrap_or(u64::MAX));
                }
            }
            Err(e) => {
                out.note(format!("{} {}: {e:#}", call.method, call.path));
                conn = Conn::open(addr).await?;
            }
        }
    }
    Ok((client, out))
}
