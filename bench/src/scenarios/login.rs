//! Scenario 7: logins at 16 clients (argon2 bound), and refresh latency with and
//! without a storm of 16 concurrent logins alongside.

use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;

use super::refresh::{deal, gather};
use super::{Bench, MainData};
use crate::client::Call;
use crate::load::{self, Client, Summary};
use crate::seed::PASSWORD;
use crate::server::Server;

/// Logs one user in, again and again (each login a new session).
struct LoginClient {
    body: Vec<u8>,
}

impl Client for LoginClient {
    fn next_call(&mut self) -> Call {
        Call::post("/auth/login", None, self.body.clone())
    }

    fn check(&mut self, status: StatusCode, _body: &Bytes) -> bool {
        status == StatusCode::OK
    }
}

fn login_clients(data: &MainData) -> Vec<LoginClient> {
    data.login_emails
        .iter()
        .map(|email| LoginClient {
            body: serde_json::json!({ "email": email, "password": PASSWORD })
                .to_string()
                .into_bytes(),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginFigures {
    pub login_clients: usize,
    /// Logins alone.
    pub logins: Summary,
    pub refresh_clients: usize,
    /// Refreshes alone (the baseline).
    pub refresh_alone: Summary,
    /// Refreshes while every login client logs in at the same time.
    pub refresh_during_storm: Summary,
    /// The logins of that storm.
    pub storm_logins: Summary,
}

pub async fn run(
    bench: &Bench,
    server: &Server,
    data: &mut MainData,
) -> anyhow::Result<LoginFigures> {
    let sizes = &bench.sizes;
    let (logins, _) = load::drive(server.addr, login_clients(data), sizes.login).await?;

    let refreshers = deal(std::mem::take(&mut data.sessions), sizes.storm_refreshers);
    let (alone, refreshers) = load::drive(server.addr, refreshers, sizes.storm).await?;

    let storm = load::drive(server.addr, login_clients(data), sizes.storm);
    let during = load::drive(server.addr, refreshers, sizes.storm);
    let (storm, during) = tokio::join!(storm, during);
    let ((storm, _), (during, refreshers)) = (storm?, during?);
    data.sessions = gather(refreshers);

    Ok(LoginFigures {
        login_clients: data.login_emails.len(),
        logins: logins.summary(),
        refresh_clients: sizes.storm_refreshers,
        refresh_alone: alone.summary(),
        refresh_during_storm: during.summary(),
        storm_logins: storm.summary(),
    })
}
