//! Scenario 8: memory through a login storm (issue 13). A fresh server, a fixed number
//! of logins from 16 clients at once, and the server's resident set: at rest before,
//! its peak through the storm, and one second after the last answer. Each argon2 hash
//! works in 19 MiB; what matters is whether the server keeps that memory per hash, per
//! thread, or only per hashing slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::StatusCode;
use serde::Serialize;

use super::{Bench, Sync};
use crate::client::{Call, Conn};
use crate::load::{Recorded, Summary};
use crate::seed::PASSWORD;

#[derive(Debug, Clone, Serialize)]
pub struct LoginMemory {
    pub clients: usize,
    pub logins: usize,
    /// At rest after start and one `GET /healthz`.
    pub idle_mb: f64,
    /// The highest resident set through the storm (VmHWM, reset before it).
    pub peak_mb: f64,
    /// One second after the last login answered.
    pub after_1s_mb: f64,
    /// The storm's wall time and logins per second over it.
    pub seconds: f64,
    pub figures: Summary,
}

pub async fn run(bench: &Bench) -> anyhow::Result<LoginMemory> {
    let sizes = &bench.sizes;
    let (dir, db) = bench.fresh_db("login-memory").await?;
    let data = bench.seed_main(&db)?;
    let server = bench.serve(&dir, &db, Sync::Full).await?;
    super::healthy(&server).await?;
    let idle = server.memory()?;
    if let Err(e) = server.reset_peak() {
        eprintln!("sessiond-bench: peak RSS not reset ({e:#}); it includes the start");
    }

    let left = Arc::new(AtomicUsize::new(sizes.memory_logins));
    let began = Instant::now();
    let tasks: Vec<_> = data
        .login_emails
        .iter()
        .take(sizes.memory_login_clients)
        .map(|email| {
            let body = serde_json::json!({ "email": email, "password": PASSWORD }).to_string();
            tokio::spawn(log_in_until_done(server.addr, body.into_bytes(), left.clone()))
        })
        .collect();
    let mut recorded = Recorded::new(Duration::ZERO)?;
    for task in tasks {
        let one = task.await.context("login client task")??;
        recorded.hist.add(&one.hist).context("merging histograms")?;
        recorded.errors += one.errors;
        recorded.sent += one.sent;
        for e in one.error_samples {
            if recorded.error_samples.len() < 3 {
                recorded.error_samples.push(e);
            }
        }
    }
    recorded.window = began.elapsed();
    let peak = server.memory()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.memory()?;
    server.stop().await?;

    let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
    Ok(LoginMemory {
        clients: sizes.memory_login_clients.min(data.login_emails.len()),
        logins: sizes.memory_logins,
        idle_mb: mb(idle.rss_kb),
        peak_mb: mb(peak.peak_kb),
        after_1s_mb: mb(after.rss_kb),
        seconds: recorded.window.as_secs_f64(),
        figures: recorded.summary(),
    })
}

/// One client: logs in, again and again, until the shared count of logins is used up.
async fn log_in_until_done(
    addr: std::net::SocketAddr,
    body: Vec<u8>,
    left: Arc<AtomicUsize>,
) -> anyhow::Result<Recorded> {
    let mut conn = Conn::open(addr).await?;
    let mut out = Recorded::new(Duration::ZERO)?;
    let call = Call::post("/auth/login", None, body);
    while left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
        let sent = Instant::now();
        out.sent += 1;
        match conn.send(&call).await {
            Ok((StatusCode::OK, _)) => {
                let us = sent.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
                out.hist.saturating_record(us);
            }
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
                out.note(format!("POST /auth/login: {status} {text}"));
            }
            Err(e) => {
                out.note(format!("POST /auth/login: {e:#}"));
                conn = Conn::open(addr).await?;
            }
        }
    }
    Ok(out)
}
