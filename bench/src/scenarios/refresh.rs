//! Scenario 1 (refresh throughput and latency) and 6 (the server's memory meanwhile):
//! pre-created sessions rotating their tokens at 1, 16 and 64 concurrent clients.

use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;

use super::{Bench, MainData, Sync, TokenPair};
use crate::client::Call;
use crate::load::{self, Client, Summary};
use crate::server::{Server, cpu_of};

/// A client that rotates its own share of the sessions, one after the other: every
/// request carries a token that has never been presented before.
pub struct Refresher {
    tokens: Vec<String>,
    at: usize,
}

impl Client for Refresher {
    fn next_call(&mut self) -> Call {
        let body = serde_json::json!({ "refresh_token": self.tokens[self.at] });
        Call::post("/auth/refresh", None, body.to_string().into_bytes())
    }

    fn check(&mut self, status: StatusCode, body: &Bytes) -> bool {
        let ok = status == StatusCode::OK;
        if ok && let Ok(pair) = serde_json::from_slice::<TokenPair>(body) {
            self.tokens[self.at] = pair.refresh_token;
        }
        self.at = (self.at + 1) % self.tokens.len();
        ok
    }
}

/// Deals `tokens` out to `clients` refreshers (each needs at least one).
pub fn deal(tokens: Vec<String>, clients: usize) -> Vec<Refresher> {
    let mut hands: Vec<Vec<String>> = vec![Vec::new(); clients];
    for (i, t) in tokens.into_iter().enumerate() {
        hands[i % clients].push(t);
    }
    hands.into_iter().map(|tokens| Refresher { tokens, at: 0 }).collect()
}

/// The tokens back from the refreshers, current after their rotations.
pub fn gather(refreshers: Vec<Refresher>) -> Vec<String> {
    refreshers.into_iter().flat_map(|r| r.tokens).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub synchronous: Sync,
    /// `database.group_commit`: queued refreshes share a commit.
    pub grouped: bool,
    pub clients: usize,
    #[serde(flatten)]
    pub figures: Summary,
    /// CPU time per request of the server and of this load generator, over the run
    /// (warm-up included), in microseconds: what two shared cores can afford.
    pub server_cpu_us: f64,
    pub client_cpu_us: f64,
}

/// Runs every concurrency level of `sizes.refresh_clients` in turn on `server`.
pub async fn levels(
    bench: &Bench,
    server: &Server,
    tokens: &mut Vec<String>,
    sync: Sync,
    grouped: bool,
) -> anyhow::Result<Vec<Level>> {
    let mut out = Vec::new();
    for &clients in &bench.sizes.refresh_clients {
        anyhow::ensure!(tokens.len() >= clients, "fewer sessions than clients");
        let refreshers = deal(std::mem::take(tokens), clients);
        let (server_cpu, client_cpu) = (server.cpu()?, cpu_of("/proc/self/stat")?);
        let (recorded, back) = load::drive(server.addr, refreshers, bench.sizes.refresh).await?;
        let sent = recorded.sent.max(1) as f64;
        let per_request = |d: Duration| d.as_secs_f64() * 1e6 / sent;
        *tokens = gather(back);
        out.push(Level {
            synchronous: sync,
            grouped,
            clients,
            figures: recorded.summary(),
            server_cpu_us: per_request(server.cpu()?.saturating_sub(server_cpu)),
            client_cpu_us: per_request(cpu_of("/proc/self/stat")?.saturating_sub(client_cpu)),
        });
    }
    Ok(out)
}

/// Scenario 6's figures, in MB (10^6 bytes, the unit of the target).
#[derive(Debug, Clone, Serialize)]
pub struct MemoryFigures {
    pub synchronous: Sync,
    /// Resident set after start and one request, before any load.
    pub idle_mb: f64,
    /// The peak (VmHWM) while scenario 1 ran.
    pub peak_mb: f64,
    /// Resident set once scenario 1 is over.
    pub after_mb: f64,
}

/// Scenario 1 on a fresh server with the main data set, and the server's memory
/// meanwhile (scenario 6). Answers the server and tokens for the scenarios that follow
/// on the same data.
pub async fn run(
    bench: &Bench,
    sync: Sync,
    grouped: bool,
) -> anyhow::Result<(Vec<Level>, MemoryFigures, Server, MainData)> {
    let (dir, db) = bench.fresh_db(&format!("refresh-{}", sync.name())).await?;
    let mut data = bench.seed_main(&db)?;
    let server = bench.serve_grouped(&dir, &db, sync, grouped).await?;
    super::healthy(&server).await?;
    let idle = server.memory()?;
    // Without the reset (e.g. /proc not writable here) the peak also covers the start,
    // which stays below the load's.
    if let Err(e) = server.reset_peak() {
        eprintln!("sessiond-bench: peak RSS not reset ({e:#}); it includes the start");
    }
    let levels = levels(bench, &server, &mut data.sessions, sync, grouped).await?;
    let peak = server.memory()?;
    // Let the blocking pool's threads go idle before reading the resident set again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = server.memory()?;
    let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
    let memory = MemoryFigures {
        synchronous: sync,
        idle_mb: mb(idle.rss_kb),
        peak_mb: mb(peak.peak_kb),
        after_mb: mb(after.rss_kb),
    };
    Ok((levels, memory, server, data))
}
