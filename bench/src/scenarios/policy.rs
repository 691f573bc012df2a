//! Scenario 4: `GET` and `PATCH /accounts/me/security` at 16 clients, as one owner.

use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;

use super::{Bench, MainData, refresh_once};
use crate::client::Call;
use crate::load::{self, Client, Summary};
use crate::server::Server;

pub const CLIENTS: usize = 16;

struct Reader {
    access: String,
}

impl Client for Reader {
    fn next_call(&mut self) -> Call {
        Call::get("/accounts/me/security", Some(&self.access))
    }

    fn check(&mut self, status: StatusCode, _body: &Bytes) -> bool {
        status == StatusCode::OK
    }
}

/// Sets the idle override to a new value each time (15 to 1 454 minutes, all within the
/// default bounds and below the default absolute limit): every PATCH is a real change.
struct Writer {
    access: String,
    n: u64,
}

impl Client for Writer {
    fn next_call(&mut self) -> Call {
        self.n += 1;
        let body = serde_json::json!({ "idle_minutes": 15 + self.n % 1440 });
        Call::patch("/accounts/me/security", &self.access, body.to_string().into_bytes())
    }

    fn check(&mut self, status: StatusCode, _body: &Bytes) -> bool {
        status == StatusCode::OK
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyFigures {
    pub clients: usize,
    pub get: Summary,
    pub patch: Summary,
}

pub async fn run(bench: &Bench, server: &Server, data: &MainData) -> anyhow::Result<PolicyFigures> {
    let access = refresh_once(server, &data.policy_owner).await?.access_token;
    let readers = (0..CLIENTS).map(|_| Reader { access: access.clone() }).collect();
    let (get, _) = load::drive(server.addr, readers, bench.sizes.policy).await?;
    let writers =
        (0..CLIENTS).map(|i| Writer { access: access.clone(), n: i as u64 * 97 }).collect();
    let (patch, _) = load::drive(server.addr, writers, bench.sizes.policy).await?;
    Ok(PolicyFigures { clients: CLIENTS, get: get.summary(), patch: patch.summary() })
}
