//! `--vs CMD` (issue 11, part 3): the same scenarios against sessiond and against another
//! implementation of the same HTTP API, in one run, side by side, with the ratios.
//!
//! Another implementation does not share sessiond's schema, so nothing here seeds a
//! database file: both servers are prepared alike through the contract's public surface
//! only — `CMD --database FILE serve --listen 127.0.0.1:0` and its `listening on` line,
//! `account create --name`, `user create … --password-stdin`, then logins over HTTP —
//! and sessiond is started exactly as the other is (a [`Program`], no shell between).
//! Every login costs an argon2 hash, so the sizes are modest, and the scenarios that need
//! a seeded million rows, the in-process ceiling (sessiond's own storage functions) and
//! the memory scenarios (one process's resident set says little of a server that may
//! fork workers) are not in this mode.
//!
//! Each scenario runs on one server and then on the other, the order alternating from
//! one scenario (or cold start) to the next, so that a drift of the shared machine over
//! the run does not favour one side. An answer other than the contract's counts as an
//! error of that server; a scenario that cannot go on (its server gone, a setup step
//! refused) is reported as failed for that server, and the run goes on.

pub mod report;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{Call, Conn};
use crate::load::{self, Client, Phases, Summary};
use crate::machine::Machine;
use crate::scenarios::cold_start::{first_ok, median_ms, ms};
use crate::scenarios::{TokenPair, healthy};
use crate::server::{Program, Server, cli_program};

/// The password of every user made here (passed on `--password-stdin`).
const PASSWORD: &str = "bench-password-not-secret";

/// The two servers, in this order everywhere: index 0 is sessiond, 1 the other.
pub const SIDES: [&str; 2] = ["sessiond", "other"];

/// How big each scenario of the mode is.
#[derive(Debug, Clone)]
pub struct VsSizes {
    /// Starts per database kind (a fresh file, `:memory:`) and per server.
    pub cold_starts: usize,
    /// Engineers of the main account: the sessions and the login load are theirs.
    pub engineers: usize,
    /// Sessions made by logins, rotated by the refresh scenario.
    pub sessions: usize,
    pub refresh_clients: Vec<usize>,
    pub refresh: Phases,
    pub policy_clients: usize,
    pub policy: Phases,
    pub login_clients: usize,
    pub login: Phases,
    /// Engineers of the revoke account, whose sessions each revoke ends.
    pub revoke_users: usize,
    /// Sessions made by logins before each revoke, and revoked by it.
    pub revoke_sessions: usize,
    pub revoke_reps: usize,
    /// Logins in flight at once while preparing (argon2 takes a core each).
    pub setup_concurrency: usize,
}

impl VsSizes {
    pub fn full() -> VsSizes {
        VsSizes {
            cold_starts: 10,
            engineers: 8,
            sessions: 128,
            refresh_clients: vec![1, 16],
            refresh: phases(1.0, 5.0),
            policy_clients: 16,
            policy: phases(0.5, 4.0),
            login_clients: 16,
            login: phases(1.0, 5.0),
            revoke_users: 4,
            revoke_sessions: 250,
            revoke_reps: 3,
            setup_concurrency: 2,
        }
    }

    pub fn quick() -> VsSizes {
        VsSizes {
            cold_starts: 2,
            engineers: 2,
            sessions: 32,
            refresh_clients: vec![1, 16],
            refresh: phases(0.1, 0.3),
            policy_clients: 16,
            policy: phases(0.1, 0.3),
            login_clients: 4,
            login: phases(0.2, 0.5),
            revoke_users: 2,
            revoke_sessions: 8,
            revoke_reps: 2,
            setup_concurrency: 2,
        }
    }
}

fn phases(warmup_s: f64, measure_s: f64) -> Phases {
    Phases {
        warmup: Duration::from_secs_f64(warmup_s),
        measure: Duration::from_secs_f64(measure_s),
    }
}

/// What one server did in one scenario.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome<T> {
    Figures(T),
    /// The scenario could not go on on this server (what went wrong): one error.
    Failed(String),
    /// Not run: the server could not be prepared (see `setup`). No error of its own.
    Skipped,
}

impl<T> Outcome<T> {
    fn of(result: anyhow::Result<T>) -> Outcome<T> {
        match result {
            Ok(figures) => Outcome::Figures(figures),
            Err(e) => Outcome::Failed(format!("{e:#}")),
        }
    }

    pub fn figures(&self) -> Option<&T> {
        match self {
            Outcome::Figures(f) => Some(f),
            _ => None,
        }
    }
}

/// Figures that can be compared: their errors and the values whose ratio is reported.
pub trait Measured {
    fn errors(&self) -> u64;
    /// (name, value) pairs; the ratio of each is sessiond's value over the other's.
    fn metrics(&self) -> Vec<(&'static str, f64)>;
    /// The first few error descriptions, to say what went wrong.
    fn error_samples(&self) -> &[String];
}

impl Measured for Summary {
    fn errors(&self) -> u64 {
        self.errors
    }

    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![("per_second", self.per_second), ("p50_ms", self.p50_ms), ("p99_ms", self.p99_ms)]
    }

    fn error_samples(&self) -> &[String] {
        &self.error_samples
    }
}

/// One scenario on both servers, and the ratios sessiond / other of its figures.
#[derive(Debug, Clone, Serialize)]
pub struct Pair<T> {
    pub load: String,
    pub sessiond: Outcome<T>,
    pub other: Outcome<T>,
    /// Only where both have figures and the other's value is not zero.
    pub ratios: BTreeMap<&'static str, f64>,
}

impl<T: Measured> Pair<T> {
    fn new(load: String, [sessiond, other]: [Outcome<T>; 2]) -> Pair<T> {
        let mut ratios = BTreeMap::new();
        if let (Some(a), Some(b)) = (sessiond.figures(), other.figures()) {
            for ((name, x), (_, y)) in a.metrics().into_iter().zip(b.metrics()) {
                if y > 0.0 && x.is_finite() && y.is_finite() {
                    ratios.insert(name, x / y);
                }
            }
        }
        Pair { load, sessiond, other, ratios }
    }

    pub fn sides(&self) -> [&Outcome<T>; 2] {
        [&self.sessiond, &self.other]
    }

    /// Errors of side `i`: those counted in its figures, or one for a failed scenario.
    pub fn errors(&self, i: usize) -> u64 {
        match self.sides()[i] {
            Outcome::Figures(f) => f.errors(),
            Outcome::Failed(_) => 1,
            Outcome::Skipped => 0,
        }
    }
}

/// Preparing one server through the CLI and the API.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// From exec to the last session made.
    pub seconds: f64,
    /// Users made with `user create` (each an argon2 hash in the CLI).
    pub users: usize,
    /// Sessions made by logins for the refresh scenario.
    pub sessions: usize,
}

impl Measured for Setup {
    fn errors(&self) -> u64 {
        0
    }

    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![("seconds", self.seconds)]
    }

    fn error_samples(&self) -> &[String] {
        &[]
    }
}

/// Starts of one server, from exec.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    pub starts: usize,
    pub listening_median_ms: f64,
    pub first_200_median_ms: f64,
    pub first_200_min_ms: f64,
    pub first_200_max_ms: f64,
    /// Starts without a `listening on` line or without a 200 from `/healthz`.
    pub errors: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
}

impl Measured for ColdStart {
    fn errors(&self) -> u64 {
        self.errors
    }

    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("listening_median_ms", self.listening_median_ms),
            ("first_200_median_ms", self.first_200_median_ms),
        ]
    }

    fn error_samples(&self) -> &[String] {
        &self.error_samples
    }
}

/// Bulk revokes of one server, as the client sees them.
#[derive(Debug, Clone, Serialize)]
pub struct Revokes {
    pub sessions: usize,
    /// Revokes answered as the contract says (200 with the right `revoked_count`).
    pub revokes: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
}

impl Measured for Revokes {
    fn errors(&self) -> u64 {
        self.errors
    }

    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![("median_ms", self.median_ms)]
    }

    fn error_samples(&self) -> &[String] {
        &self.error_samples
    }
}

/// Everything one `--vs` run measured.
#[derive(Debug, Serialize)]
pub struct VsResults {
    pub started_at: String,
    pub quick: bool,
    pub machine: Machine,
    /// The two command lines, as run (sessiond's is the binary's path).
    pub sessiond: String,
    pub other: String,
    pub setup: Pair<Setup>,
    pub cold_start: Vec<Pair<ColdStart>>,
    pub refresh: Vec<Pair<Summary>>,
    pub policy: Vec<Pair<Summary>>,
    pub login: Vec<Pair<Summary>>,
    pub revoke: Vec<Pair<Revokes>>,
    /// Every error of every scenario, per server: both must be 0.
    pub errors: BTreeMap<&'static str, u64>,
}

impl VsResults {
    /// Errors of side `i` over every scenario (a failed setup counts one).
    fn errors_of(&self, i: usize) -> u64 {
        fn sum<T: Measured>(pairs: &[Pair<T>], i: usize) -> u64 {
            pairs.iter().map(|p| p.errors(i)).sum()
        }
        self.setup.errors(i)
            + sum(&self.cold_start, i)
            + sum(&self.refresh, i)
            + sum(&self.policy, i)
            + sum(&self.login, i)
            + sum(&self.revoke, i)
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One side's running server and the data made on it.
struct Prepared {
    server: Server,
    main_owner: String,
    engineers: Vec<String>,
    /// Current refresh tokens of the sessions the refresh scenario rotates.
    sessions: Vec<String>,
    revoke_owner: String,
    revoke_users: Vec<String>,
}

/// The run: the two programs, where their files go, the sizes.
pub struct Vs {
    programs: [Program; 2],
    scratch: PathBuf,
    sizes: VsSizes,
}

/// The order of the two sides at step `k`: sessiond first on even steps, the other on
/// odd ones.
fn order(k: usize) -> [usize; 2] {
    if k.is_multiple_of(2) { [0, 1] } else { [1, 0] }
}

/// Runs every scenario of the mode on both servers; `machine` is probed by the caller.
pub async fn run(
    programs: [Program; 2],
    scratch: &Path,
    quick: bool,
    started_at: String,
    machine: Machine,
) -> anyhow::Result<VsResults> {
    let sizes = if quick { VsSizes::quick() } else { VsSizes::full() };
    let vs = Vs { programs, scratch: scratch.to_owned(), sizes };

    progress("cold start");
    let cold_start = vs.cold_start().await?;

    progress("preparing both servers through the CLI and logins");
    let mut prepared: [Option<Prepared>; 2] = [None, None];
    let mut setup = both_skipped();
    for side in order(0) {
        let started = Instant::now();
        setup[side] = match within(SLOW_STEP, vs.prepare(side)).await {
            Ok(p) => {
                let figures = Setup {
                    seconds: started.elapsed().as_secs_f64(),
                    users: 2 + vs.sizes.engineers + vs.sizes.revoke_users,
                    sessions: p.sessions.len(),
                };
                prepared[side] = Some(p);
                Outcome::Figures(figures)
            }
            Err(e) => Outcome::Failed(format!("{e:#}")),
        };
    }
    let setup = Pair::new("setup".into(), setup);

    let mut step = 0;
    let mut refresh = Vec::new();
    for &clients in &vs.sizes.refresh_clients {
        progress(&format!("refresh at {clients} clients"));
        let mut out = both_skipped();
        for side in order(step) {
            if let Some(p) = &mut prepared[side] {
                let limit = vs.load_limit(vs.sizes.refresh);
                out[side] = Outcome::of(within(limit, vs.refresh(p, clients)).await);
            }
        }
        refresh.push(Pair::new(clients.to_string(), out));
        step += 1;
    }

    progress("policy");
    let (mut get, mut patch) = (both_skipped(), both_skipped());
    for side in order(step) {
        if let Some(p) = &prepared[side] {
            match within(vs.load_limit(vs.sizes.policy) * 2, vs.policy(p)).await {
                Ok((g, w)) => (get[side], patch[side]) = (Outcome::Figures(g), Outcome::Figures(w)),
                Err(e) => {
                    get[side] = Outcome::Failed(format!("{e:#}"));
                    patch[side] = Outcome::Skipped;
                }
            }
        }
    }
    let clients = vs.sizes.policy_clients;
    let policy = vec![
        Pair::new(format!("GET, {clients} clients"), get),
        Pair::new(format!("PATCH, {clients} clients"), patch),
    ];
    step += 1;

    progress("login");
    let mut login = both_skipped();
    for side in order(step) {
        if let Some(p) = &prepared[side] {
            login[side] = Outcome::of(within(vs.load_limit(vs.sizes.login), vs.login(p)).await);
        }
    }
    let login = vec![Pair::new(vs.sizes.login_clients.to_string(), login)];
    step += 1;

    progress("bulk revoke");
    let mut revoke = both_skipped();
    for side in order(step) {
        if let Some(p) = &prepared[side] {
            revoke[side] = Outcome::of(within(SLOW_STEP, vs.revoke(p)).await);
        }
    }
    let revoke = vec![Pair::new(vs.sizes.revoke_sessions.to_string(), revoke)];

    for (side, p) in prepared.into_iter().enumerate() {
        if let Some(p) = p
            && let Err(e) = p.server.stop().await
        {
            eprintln!("sessiond-bench --vs: stopping {}: {e:#}", SIDES[side]);
        }
    }
    let mut results = VsResults {
        started_at,
        quick,
        machine,
        sessiond: vs.programs[0].display(),
        other: vs.programs[1].display(),
        setup,
        cold_start,
        refresh,
        policy,
        login,
        revoke,
        errors: BTreeMap::new(),
    };
    for (i, side) in SIDES.iter().enumerate() {
        let errors = results.errors_of(i);
        results.errors.insert(side, errors);
    }
    Ok(results)
}

/// The longest a setup or the revokes may take on one server (each is hundreds of
/// logins, which a slow implementation may take minutes over).
const SLOW_STEP: Duration = Duration::from_secs(600);

/// `step`, or an error if it has not ended within `limit`: a server that stops answering
/// fails its scenario instead of holding the run.
async fn within<T>(
    limit: Duration,
    step: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(limit, step)
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no end within {} s", limit.as_secs())))
}

fn both_skipped<T>() -> [Outcome<T>; 2] {
    [Outcome::Skipped, Outcome::Skipped]
}

fn progress(what: &str) {
    eprintln!("sessiond-bench --vs: {what}");
}

/// Errors counted while a scenario goes on: how many, and the first few descriptions.
#[derive(Default)]
struct Errors {
    count: u64,
    samples: Vec<String>,
}

impl Errors {
    fn note(&mut self, what: String) {
        self.count += 1;
        if self.samples.len() < 3 && !self.samples.contains(&what) {
            self.samples.push(what);
        }
    }
}

impl Vs {
    /// How long a load of `phases` may take on one server, answers included: a minute
    /// more than its phases (a login of its own first, for the policy loads).
    fn load_limit(&self, phases: Phases) -> Duration {
        phases.warmup + phases.measure + Duration::from_secs(60)
    }

    /// A new, empty directory for side `side`.
    fn dir(&self, side: usize, what: &str) -> anyhow::Result<PathBuf> {
        let dir = self.scratch.join(format!("vs-{}-{what}-{}", SIDES[side], uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// Cold starts on a fresh file and on `:memory:`, one start of each side in turn.
    async fn cold_start(&self) -> anyhow::Result<Vec<Pair<ColdStart>>> {
        let mut out = Vec::new();
        for database in ["fresh file", ":memory:"] {
            let mut listening: [Vec<Duration>; 2] = [vec![], vec![]];
            let mut first_200: [Vec<Duration>; 2] = [vec![], vec![]];
            let mut errors: [Errors; 2] = Default::default();
            for start in 0..self.sizes.cold_starts {
                for side in order(start) {
                    let dir = self.dir(side, "cold")?;
                    let db = match database {
                        ":memory:" => ":memory:".to_owned(),
                        _ => dir.join("sessiond.db").to_string_lossy().into_owned(),
                    };
                    match Server::start_program(&self.programs[side], &dir, &db, &[]).await {
                        Ok((server, started)) => {
                            match first_ok(&server, Duration::from_secs(5)).await {
                                Some(()) => {
                                    first_200[side].push(started.spawned_at.elapsed());
                                    listening[side].push(started.to_listening);
                                }
                                None => errors[side].note("no 200 from /healthz in 5 s".into()),
                            }
                            if let Err(e) = server.stop().await {
                                errors[side].note(format!("stopping the server: {e:#}"));
                            }
                        }
                        Err(e) => errors[side].note(format!("{e:#}")),
                    }
                }
            }
            let sides: [Outcome<ColdStart>; 2] = std::array::from_fn(|side| {
                let first = &mut first_200[side];
                first.sort();
                Outcome::Figures(ColdStart {
                    starts: self.sizes.cold_starts,
                    listening_median_ms: median_ms(&mut listening[side]),
                    first_200_median_ms: median_ms(first),
                    first_200_min_ms: first.first().map_or(0.0, ms),
                    first_200_max_ms: first.last().map_or(0.0, ms),
                    errors: errors[side].count,
                    error_samples: std::mem::take(&mut errors[side].samples),
                })
            });
            out.push(Pair::new(database.to_owned(), sides));
        }
        Ok(out)
    }

    /// Starts side `side` on a fresh file and makes its data through the CLI (while it
    /// serves, as the contract allows) and logins.
    async fn prepare(&self, side: usize) -> anyhow::Result<Prepared> {
        let dir = self.dir(side, "serve")?;
        let db = dir.join("sessiond.db").to_string_lossy().into_owned();
        let (server, _) = Server::start_program(&self.programs[side], &dir, &db, &[]).await?;
        healthy(&server).await?;
        let program = &self.programs[side];
        let (main_owner, engineers) =
            tenant(program, &dir, &db, "vs-main", self.sizes.engineers).await?;
        let (revoke_owner, revoke_users) =
            tenant(program, &dir, &db, "vs-revoke", self.sizes.revoke_users).await?;
        let sessions =
            login_many(server.addr, &engineers, self.sizes.sessions, self.sizes.setup_concurrency)
                .await
                .context("making the sessions by logins")?;
        Ok(Prepared { server, main_owner, engineers, sessions, revoke_owner, revoke_users })
    }

    /// Rotates every session's token at `clients` concurrent clients.
    async fn refresh(&self, p: &mut Prepared, clients: usize) -> anyhow::Result<Summary> {
        anyhow::ensure!(p.sessions.len() >= clients, "fewer sessions than clients");
        let mut hands: Vec<Vec<String>> = vec![Vec::new(); clients];
        for (i, t) in std::mem::take(&mut p.sessions).into_iter().enumerate() {
            hands[i % clients].push(t);
        }
        let refreshers = hands.into_iter().map(|tokens| Refresher { tokens, at: 0 }).collect();
        let (recorded, back) = load::drive(p.server.addr, refreshers, self.sizes.refresh).await?;
        p.sessions = back.into_iter().flat_map(|r| r.tokens).collect();
        Ok(recorded.summary())
    }

    /// `GET` and then `PATCH /accounts/me/security` as the main account's owner.
    async fn policy(&self, p: &Prepared) -> anyhow::Result<(Summary, Summary)> {
        let access = login(p.server.addr, &p.main_owner).await?.access_token;
        let n = self.sizes.policy_clients;
        let readers = (0..n).map(|_| PolicyReader { access: access.clone() }).collect();
        let (get, _) = load::drive(p.server.addr, readers, self.sizes.policy).await?;
        let writers = (0..n)
            .map(|i| PolicyWriter { access: access.clone(), n: i as u64 * 97, sent: 0 })
            .collect();
        let (patch, _) = load::drive(p.server.addr, writers, self.sizes.policy).await?;
        Ok((get.summary(), patch.summary()))
    }

    /// Logins at `login_clients`, over the main account's engineers.
    async fn login(&self, p: &Prepared) -> anyhow::Result<Summary> {
        anyhow::ensure!(!p.engineers.is_empty(), "nobody to log in");
        let clients = (0..self.sizes.login_clients)
            .map(|i| LoginClient { body: login_body(&p.engineers[i % p.engineers.len()]) })
            .collect();
        let (recorded, _) = load::drive(p.server.addr, clients, self.sizes.login).await?;
        Ok(recorded.summary())
    }

    /// Each time: `revoke_sessions` sessions made by logins of the revoke account's
    /// engineers, then one `revoke-sessions` with scope `others` by its owner, timed from
    /// the request sent to the answer read. The answer must be 200 with
    /// `revoked_count` = the sessions made (the owner's own session is spared).
    async fn revoke(&self, p: &Prepared) -> anyhow::Result<Revokes> {
        let addr = p.server.addr;
        let sizes = &self.sizes;
        let mut took = Vec::new();
        let mut errors = Errors::default();
        for _ in 0..sizes.revoke_reps {
            let made =
                login_many(addr, &p.revoke_users, sizes.revoke_sessions, sizes.setup_concurrency)
                    .await?;
            let access = login(addr, &p.revoke_owner).await?.access_token;
            let mut conn = Conn::open(addr).await?;
            let body = json!({ "scope": "others" }).to_string().into_bytes();
            let call = Call::post("/accounts/me/security/revoke-sessions", Some(&access), body);
            let sent = Instant::now();
            let (status, body) = conn.send(&call).await?;
            let elapsed = sent.elapsed();
            let count = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["revoked_count"].as_u64());
            if status == StatusCode::OK && count == Some(made.len() as u64) {
                took.push(elapsed);
            } else {
                errors.note(format!(
                    "POST {}: {status} {} (expected revoked_count {})",
                    call.path,
                    excerpt(&body),
                    made.len()
                ));
            }
        }
        took.sort();
        Ok(Revokes {
            sessions: sizes.revoke_sessions,
            revokes: took.len(),
            median_ms: median_ms(&mut took),
            min_ms: took.first().map_or(0.0, ms),
            max_ms: took.last().map_or(0.0, ms),
            errors: errors.count,
            error_samples: errors.samples,
        })
    }
}

/// An account `name` with an owner and `members` engineers, made with the CLI; answers
/// the emails (owner, engineers). Every user's password is [`PASSWORD`].
async fn tenant(
    program: &Program,
    dir: &Path,
    db: &str,
    name: &str,
    members: usize,
) -> anyhow::Result<(String, Vec<String>)> {
    let out =
        cli_program(program, dir, &["--database", db, "account", "create", "--name", name], None)
            .await?;
    let account = id_in(&out, "account_id")?;
    let owner = format!("owner@{name}.test");
    let mut engineers = Vec::new();
    for (email, role) in std::iter::once((owner.clone(), "owner"))
        .chain((0..members).map(|i| (format!("user{i}@{name}.test"), "engineer")))
    {
        let args = [
            "--database",
            db,
            "user",
            "create",
            "--account",
            &account,
            "--email",
            &email,
            "--role",
            role,
            "--password-stdin",
        ];
        let out = cli_program(program, dir, &args, Some(PASSWORD)).await?;
        id_in(&out, "user_id")?;
        if role == "engineer" {
            engineers.push(email);
        }
    }
    Ok((owner, engineers))
}

/// The string field `key` of the JSON object a CLI command printed.
fn id_in(stdout: &str, key: &str) -> anyhow::Result<String> {
    let value: Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("expected a JSON object with {key:?}, got {stdout:?}"))?;
    value[key]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no string {key:?} in {stdout:?}"))
}

fn login_body(email: &str) -> Vec<u8> {
    json!({ "email": email, "password": PASSWORD }).to_string().into_bytes()
}

/// Whether `body` is a token pair as login and refresh answer it.
fn token_pair(body: &Bytes) -> Option<TokenPair> {
    serde_json::from_slice::<TokenPair>(body).ok()
}

/// The start of an answer's body, for an error description.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned()
}

/// One login, which must answer 200 with a token pair.
async fn login(addr: SocketAddr, email: &str) -> anyhow::Result<TokenPair> {
    let mut conn = Conn::open(addr).await?;
    let (status, body) = conn.send(&Call::post("/auth/login", None, login_body(email))).await?;
    anyhow::ensure!(status == StatusCode::OK, "login {email}: {status} {}", excerpt(&body));
    token_pair(&body)
        .with_context(|| format!("login {email}: not a token pair: {}", excerpt(&body)))
}

/// `n` logins spread over `emails` from `concurrency` connections; answers the refresh
/// tokens of the sessions they started.
async fn login_many(
    addr: SocketAddr,
    emails: &[String],
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(!emails.is_empty(), "nobody to log in");
    let concurrency = concurrency.max(1);
    let tasks: Vec<_> = (0..concurrency)
        .map(|c| {
            let bodies: Vec<(String, Vec<u8>)> = (c..n)
                .step_by(concurrency)
                .map(|i| {
                    let email = &emails[i % emails.len()];
                    (email.clone(), login_body(email))
                })
                .collect();
            tokio::spawn(async move {
                let mut conn = Conn::open(addr).await?;
                let mut tokens = Vec::with_capacity(bodies.len());
                for (email, body) in bodies {
                    let (status, answer) =
                        conn.send(&Call::post("/auth/login", None, body)).await?;
                    let pair = token_pair(&answer).filter(|_| status == StatusCode::OK);
                    let pair = pair
                        .with_context(|| format!("login {email}: {status} {}", excerpt(&answer)))?;
                    tokens.push(pair.refresh_token);
                }
                anyhow::Ok(tokens)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.extend(task.await.context("login task")??);
    }
    Ok(out)
}

/// Rotates its own share of the sessions, one after the other; an answer is right when
/// it is 200 with a new token pair.
struct Refresher {
    tokens: Vec<String>,
    at: usize,
}

impl Client for Refresher {
    fn next_call(&mut self) -> Call {
        let body = json!({ "refresh_token": self.tokens[self.at] });
        Call::post("/auth/refresh", None, body.to_string().into_bytes())
    }

    fn check(&mut self, status: StatusCode, body: &Bytes) -> bool {
        let pair = token_pair(body).filter(|_| status == StatusCode::OK);
        let ok = pair.is_some();
        if let Some(pair) = pair {
            self.tokens[self.at] = pair.refresh_token;
        }
        self.at = (self.at + 1) % self.tokens.len();
        ok
    }
}

/// Reads the policy; right when 200 with the effective minutes.
struct PolicyReader {
    access: String,
}

impl Client for PolicyReader {
    fn next_call(&mut self) -> Call {
        Call::get("/accounts/me/security", Some(&self.access))
    }

    fn check(&mut self, status: StatusCode, body: &Bytes) -> bool {
        status == StatusCode::OK
            && serde_json::from_slice::<Value>(body)
                .is_ok_and(|v| v["effective_idle_minutes"].is_u64())
    }
}

/// Sets the idle override to a new value each time (15 to 1 454 minutes, within the
/// default bounds and below the default absolute limit); right when 200 with that value.
struct PolicyWriter {
    access: String,
    n: u64,
    sent: u64,
}

impl Client for PolicyWriter {
    fn next_call(&mut self) -> Call {
        self.n += 1;
        self.sent = 15 + self.n % 1440;
        let body = json!({ "idle_minutes": self.sent });
        Call::patch("/accounts/me/security", &self.access, body.to_string().into_bytes())
    }

    fn check(&mut self, status: StatusCode, body: &Bytes) -> bool {
        status == StatusCode::OK
            && serde_json::from_slice::<Value>(body)
                .is_ok_and(|v| v["idle_minutes"].as_u64() == Some(self.sent))
    }
}

/// Logs one user in, again and again; right when 200 with a token pair.
struct LoginClient {
    body: Vec<u8>,
}

impl Client for LoginClient {
    fn next_call(&mut self) -> Call {
        Call::post("/auth/login", None, self.body.clone())
    }

    fn check(&mut self, status: StatusCode, body: &Bytes) -> bool {
        status == StatusCode::OK && token_pair(body).is_some()
    }
}
