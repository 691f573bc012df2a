//! Scenario 5: cold start, as a test harness sees it — from `exec` to the `listening on`
//! line, and to the first 200 from `/healthz` — on a fresh file (migrations and the
//! JWT secret file included) and on `:memory:`. Median of N starts.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Bench;
use crate::client::{Call, Conn};
use crate::server::Server;

#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    /// "fresh file" or ":memory:".
    pub database: &'static str,
    pub starts: usize,
    pub listening_median_ms: f64,
    pub first_200_median_ms: f64,
    pub first_200_min_ms: f64,
    pub first_200_max_ms: f64,
    /// Starts whose first 200 never came.
    pub errors: u64,
}

pub async fn run(bench: &Bench) -> anyhow::Result<Vec<ColdStart>> {
    let mut out = Vec::new();
    for database in ["fresh file", ":memory:"] {
        let mut listening = Vec::new();
        let mut first_200 = Vec::new();
        let mut errors = 0;
        for _ in 0..bench.sizes.cold_starts {
            let dir = bench.dir("cold")?;
            let db = match database {
                ":memory:" => ":memory:".to_owned(),
                _ => dir.join("sessiond.db").to_string_lossy().into_owned(),
            };
            let (server, started) = Server::start(&bench.bin, &dir, &db, &[]).await?;
            match first_ok(&server, Duration::from_secs(5)).await {
                Some(()) => {
                    first_200.push(started.spawned_at.elapsed());
                    listening.push(started.to_listening);
                }
                None => errors += 1,
            }
            server.stop().await?;
        }
        first_200.sort();
        out.push(ColdStart {
            database,
            starts: bench.sizes.cold_starts,
            listening_median_ms: median_ms(&mut listening),
            first_200_median_ms: median_ms(&mut first_200),
            first_200_min_ms: first_200.first().map_or(0.0, ms),
            first_200_max_ms: first_200.last().map_or(0.0, ms),
            errors,
        });
    }
    Ok(out)
}

/// Asks `/healthz` on a new connection until it answers 200 (a harness would do the
/// same); `None` if it has not by `patience`.
pub async fn first_ok(server: &Server, patience: Duration) -> Option<()> {
    let give_up = Instant::now() + patience;
    while Instant::now() < give_up {
        if let Ok(mut conn) = Conn::open(server.addr).await
            && let Ok((status, _)) = conn.send(&Call::get("/healthz", None)).await
            && status.is_success()
        {
            return Some(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

pub fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median in milliseconds (the mean of the two middle values for an even count);
/// zero for none.
pub fn median_ms(values: &mut [Duration]) -> f64 {
    values.sort();
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => ms(&values[n / 2]),
        n => (ms(&values[n / 2 - 1]) + ms(&values[n / 2])) / 2.0,
    }
}
