//! Scenario 1 (refresh throughput and latency) and 6 (the server's memory meanwhile):
//! pre-created sessions rotating their tokens at 1, 16 and 64 concurrent clients.

use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;

use super::{Bench, MainData, Sync, TokenPair};
use crate::client::Call;
use crate::load::{self, Client, Phases, Recorded, Summary};
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
    /// KiB the server handed to `write` per request (mostly log frames and checkpoint
    /// copies; see `Server::written`), over the run (warm-up included).
    pub server_written_kib: f64,
}

/// One measured window of a level: what was recorded, and the CPU time both sides spent.
struct Window {
    recorded: Recorded,
    server_cpu: Duration,
    client_cpu: Duration,
    server_written: u64,
}

impl Window {
    /// Adds a later slice of the same level.
    fn merge(&mut self, other: Window) -> anyhow::Result<()> {
        self.recorded.merge(other.recorded)?;
        self.server_cpu += other.server_cpu;
        self.client_cpu += other.client_cpu;
        self.server_written += other.server_written;
        Ok(())
    }
}

/// Drives `clients` clients against `server` for `phases`, rotating `tokens`.
async fn window(
    server: &Server,
    tokens: &mut Vec<String>,
    clients: usize,
    phases: Phases,
) -> anyhow::Result<Window> {
    anyhow::ensure!(tokens.len() >= clients, "fewer sessions than clients");
    let refreshers = deal(std::mem::take(tokens), clients);
    let (server_cpu, client_cpu) = (server.cpu()?, cpu_of("/proc/self/stat")?);
    let written = server.written()?;
    let (recorded, back) = load::drive(server.addr, refreshers, phases).await?;
    *tokens = gather(back);
    Ok(Window {
        recorded,
        server_cpu: server.cpu()?.saturating_sub(server_cpu),
        client_cpu: cpu_of("/proc/self/stat")?.saturating_sub(client_cpu),
        server_written: server.written()?.saturating_sub(written),
    })
}

/// One level's figures.
fn level(w: Window, (sync, grouped): (Sync, bool), clients: usize) -> Level {
    let sent = w.recorded.sent.max(1) as f64;
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / sent;
    Level {
        synchronous: sync,
        grouped,
        clients,
        figures: w.recorded.summary(),
        server_cpu_us: per_request(w.server_cpu),
        client_cpu_us: per_request(w.client_cpu),
        server_written_kib: w.server_written as f64 / 1024.0 / sent,
    }
}

/// Slices of each level's measured window when a control runs beside it.
const SLICES: u32 = 6;

/// A second server under the same load, level by level, beside the one measured: the
/// control of issue 11 (`database.group_commit = false`).
pub struct Control {
    pub server: Server,
    pub data: MainData,
    pub sync: Sync,
    pub grouped: bool,
    /// Its levels, filled by [`run`].
    pub levels: Vec<Level>,
}

impl Control {
    /// A fresh server with the main data set, of its own.
    pub async fn start(bench: &Bench, sync: Sync, grouped: bool) -> anyhow::Result<Control> {
        let (server, data) = start(bench, sync, grouped).await?;
        Ok(Control { server, data, sync, grouped, levels: Vec::new() })
    }
}

/// A fresh database with the main data set, and a server on it.
async fn start(bench: &Bench, sync: Sync, grouped: bool) -> anyhow::Result<(Server, MainData)> {
    let name = format!("refresh-{}{}", sync.name(), if grouped { "" } else { "-ungrouped" });
    let (dir, db) = bench.fresh_db(&name).await?;
    let data = bench.seed_main(&db)?;
    let server = bench.serve_grouped(&dir, &db, sync, grouped).await?;
    super::healthy(&server).await?;
    Ok((server, data))
}

/// Scenario 1 on a fresh server with the main data set, and the server's memory
/// meanwhile (scenario 6). With a `control`, each level runs on both servers back to
/// back, so that both see the same moment of a shared machine and disk. Answers the
/// server and tokens for the scenarios that follow on the same data.
pub async fn run(
    bench: &Bench,
    sync: Sync,
    grouped: bool,
    mut control: Option<&mut Control>,
) -> anyhow::Result<(Vec<Level>, MemoryFigures, Server, MainData)> {
    let (server, mut data) = start(bench, sync, grouped).await?;
    let idle = server.memory()?;
    // Without the reset (e.g. /proc not writable here) the peak also covers the start,
    // which stays below the load's.
    if let Err(e) = server.reset_peak() {
        eprintln!("sessiond-bench: peak RSS not reset ({e:#}); it includes the start");
    }
    let mut levels = Vec::new();
    let settings = (sync, grouped);
    let phases = bench.sizes.refresh;
    for (i, &clients) in bench.sizes.refresh_clients.iter().enumerate() {
        let Some(c) = control.as_deref_mut() else {
            let w = window(&server, &mut data.sessions, clients, phases).await?;
            levels.push(level(w, settings, clients));
            continue;
        };
        // With a control, the two servers take turns: the measured window is cut into
        // slices, each server runs one slice after the other's, and which goes first
        // alternates. Both then sample the same minutes of a shared disk, whose fsync
        // tail drifts from one minute to the next: with one window each, that drift
        // decided the p99 at 1 client, where both run the same code.
        let slice = Phases { warmup: Duration::ZERO, measure: phases.measure / SLICES };
        let first = Phases { warmup: phases.warmup, measure: slice.measure };
        let (mut mine, mut theirs) = (None::<Window>, None::<Window>);
        for k in 0..SLICES {
            let control_first = (k as usize + i) % 2 == 1;
            let p = if k == 0 { first } else { slice };
            for measured in [!control_first, control_first] {
                let (w, into) = if measured {
                    (window(&server, &mut data.sessions, clients, p).await?, &mut mine)
                } else {
                    (window(&c.server, &mut c.data.sessions, clients, p).await?, &mut theirs)
                };
                match into {
                    Some(sum) => sum.merge(w)?,
                    None => *into = Some(w),
                }
            }
        }
        let (Some(mine), Some(theirs)) = (mine, theirs) else {
            anyhow::bail!("no slice measured at {clients} clients");
        };
        levels.push(level(mine, settings, clients));
        c.levels.push(level(theirs, (c.sync, c.grouped), clients));
    }
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
