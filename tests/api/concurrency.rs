//! 64 concurrent writers — refreshes, concurrent refreshes of one token, policy changes,
//! bulk revokes, logins — against one server on a database file, for a bounded time.
//! Then: no 5xx (so no SQLITE_BUSY or pool timeout reached a client), every answer one
//! the contract allows, exactly one winner for each token refreshed concurrently, and in
//! the database: no chain with two live tokens, no fork, every rotation and every revoke
//! accounted for, one audit row per acknowledged change.
//!
//! `SESSIOND_LONG_TESTS=1` runs it for 60 s instead of 3 s.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sessiond::auth::Role;

use crate::helpers::{
    PASSWORD, Store, TestApp, TestUser, assert_tokens_and_rotations_kept, stored_token,
};

const MIXED_TENANTS: usize = 4;
const REFRESHERS_PER_TENANT: usize = 10;
const RACE_GROUPS: usize = 4;
const RACERS_PER_GROUP: usize = 4;
// 4 × 10 refreshers + 4 × 2 owner tasks + 4 × 4 racers = 64 writers.

pub fn long_tests() -> bool {
    std::env::var("SESSIOND_LONG_TESTS").is_ok_and(|v| !v.is_empty() && v != "0")
}

#[derive(Clone)]
struct Http {
    base: String,
    client: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Http {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status();
        let text = resp.text().await.expect("a body");
        Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    async fn login(&self, email: &str) -> Answer {
        let body = json!({"email": email, "password": PASSWORD});
        self.call(reqwest::Method::POST, "/auth/login", None, body).await
    }

    async fn refresh(&self, token: &str) -> Answer {
        let body = json!({"refresh_token": token});
        self.call(reqwest::Method::POST, "/auth/refresh", None, body).await
    }
}

fn field(a: &Answer, name: &str) -> String {
    a.body[name].as_str().unwrap_or_else(|| panic!("no {name}: {}", a.body)).to_owned()
}

#[derive(Default)]
struct Record {
    statuses: BTreeMap<u16, usize>,
    /// Answers the contract does not allow here.
    unexpected: Vec<String>,
    /// (presented, received) for every refresh answered 200.
    rotations: Vec<(String, String)>,
    /// Tokens a chain's only refresher presented and got `invalid_refresh_token` for.
    refused: Vec<String>,
    /// Every refresh token handed out.
    issued: Vec<String>,
    race_rounds: usize,
    /// revoked_count of every revoke answered 200.
    revokes: Vec<u64>,
    /// Per tenant, the policies acknowledged, in order.
    patches: HashMap<usize, Vec<(i64, i64)>>,
}

impl Record {
    fn saw(&mut self, what: &str, a: &Answer, allowed: &[(u16, Option<&str>)]) {
        let code = a.status.as_u16();
        *self.statuses.entry(code).or_default() += 1;
        let detail = a.body["detail"].as_str();
        if !allowed.iter().any(|(s, d)| *s == code && (d.is_none() || *d == detail)) {
            self.unexpected.push(format!("{what}: {code} {}", a.body));
        }
    }
}

type Shared = Arc<Mutex<Record>>;

async fn login_tokens(http: &Http, rec: &Shared, email: &str) -> (String, String) {
    let a = http.login(email).await;
    rec.lock().unwrap().saw("login", &a, &[(200, None)]);
    let (access, refresh) = (field(&a, "access_token"), field(&a, "refresh_token"));
    rec.lock().unwrap().issued.push(refresh.clone());
    (access, refresh)
}

/// Refreshes its own chain until `until`; when the chain is revoked, logs in again.
async fn refresher(http: Http, rec: Shared, email: String, until: Instant) {
    let (_, mut token) = login_tokens(&http, &rec, &email).await;
    // At least once, however busy the machine: every task must have acted.
    loop {
        let a = http.refresh(&token).await;
        rec.lock().unwrap().saw(
            "refresh",
            &a,
            &[(200, None), (401, Some("invalid_refresh_token"))],
        );
        if a.status == 200 {
            let next = field(&a, "refresh_token");
            let mut r = rec.lock().unwrap();
            r.rotations.push((token.clone(), next.clone()));
            r.issued.push(next.clone());
            token = next;
        } else {
            rec.lock().unwrap().refused.push(token.clone());
            token = login_tokens(&http, &rec, &email).await.1;
        }
        if Instant::now() >= until {
            break;
        }
    }
}

/// Refreshes one token from `RACERS_PER_GROUP` requests at once, round after round.
async fn race_group(http: Http, rec: Shared, email: String, until: Instant) {
    let (_, mut token) = login_tokens(&http, &rec, &email).await;
    // At least once, however busy the machine: every task must have acted.
    loop {
        let answers = join_all((0..RACERS_PER_GROUP).map(|_| http.refresh(&token))).await;
        let mut r = rec.lock().unwrap();
        let mut winners = Vec::new();
        for a in &answers {
            r.saw("raced refresh", a, &[(200, None), (401, Some("invalid_refresh_token"))]);
            if a.status == 200 {
                winners.push(field(a, "refresh_token"));
            }
        }
        if winners.len() != 1 {
            r.unexpected.push(format!("a race with {} winners", winners.len()));
            return;
        }
        r.race_rounds += 1;
        r.rotations.push((token.clone(), winners[0].clone()));
        r.issued.push(winners[0].clone());
        token = winners.pop().unwrap_or_default();
        if Instant::now() >= until {
            break;
        }
    }
}

/// An owner changing the policy (`patch`) or revoking sessions, until `until`. A revoke
/// with scope `all` ends the owner's own sessions too: the owner logs in again.
async fn owner(http: Http, rec: Shared, tenant: usize, email: String, patch: bool, until: Instant) {
    let (mut access, _) = login_tokens(&http, &rec, &email).await;
    let mut round = 0_u64;
    // At least once, however busy the machine: every task must have acted.
    loop {
        round += 1;
        let a = if patch {
            let (idle, abs) = {
                let mut rng = rand::rng();
                let idle = rng.random_range(15..=1440);
                (idle, rng.random_range(idle.max(60)..=10_080))
            };
            let body = json!({"idle_minutes": idle, "absolute_minutes": abs});
            let a = http
                .call(reqwest::Method::PATCH, "/accounts/me/security", Some(&access), body)
                .await;
            if a.status == 200 {
                rec.lock().unwrap().patches.entry(tenant).or_default().push((idle, abs));
            }
            a
        } else {
            let scope = if round.is_multiple_of(5) { "all" } else { "others" };
            let path = "/accounts/me/security/revoke-sessions";
            let a = http
                .call(reqwest::Method::POST, path, Some(&access), json!({"scope": scope}))
                .await;
            if a.status == 200 {
                let n = a.body["revoked_count"].as_u64().expect("revoked_count");
                rec.lock().unwrap().revokes.push(n);
            }
            a
        };
        rec.lock().unwrap().saw(
            if patch { "patch" } else { "revoke" },
            &a,
            &[(200, None), (401, Some("not_authenticated"))],
        );
        if a.status == 401 {
            access = login_tokens(&http, &rec, &email).await.0;
        }
        if Instant::now() >= until {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_writers_lose_nothing_and_never_see_a_5xx() {
    let seconds = if long_tests() { 60 } else { 3 };
    let app = TestApp::spawn_inspectable().await;
    let http = Http {
        base: app.base.clone(),
        client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
    };
    let mut owners: Vec<TestUser> = Vec::new();
    let mut engineers: Vec<Vec<TestUser>> = Vec::new();
    for i in 0..MIXED_TENANTS {
        let account = app.account(&format!("Mixed {i}")).await;
        owners.push(app.user(account, &format!("owner@mixed{i}.test"), Role::Owner).await);
        let mut users = Vec::new();
        for j in 0..REFRESHERS_PER_TENANT {
            users.push(app.user(account, &format!("eng{j}@mixed{i}.test"), Role::Engineer).await);
        }
        engineers.push(users);
    }
    let race_account = app.account("Race").await;
    let mut racers = Vec::new();
    for g in 0..RACE_GROUPS {
        racers.push(app.user(race_account, &format!("racer{g}@race.test"), Role::Engineer).await);
    }

    let rec: Shared = Arc::default();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, users) in engineers.iter().enumerate() {
        for u in users {
            tasks.push(tokio::spawn(refresher(http.clone(), rec.clone(), u.email.clone(), until)));
        }
        for patch in [true, false] {
            let o = owner(http.clone(), rec.clone(), i, owners[i].email.clone(), patch, until);
            tasks.push(tokio::spawn(o));
        }
    }
    for r in &racers {
        tasks.push(tokio::spawn(race_group(http.clone(), rec.clone(), r.email.clone(), until)));
    }
    for t in tasks {
        t.await.expect("no task panicked");
    }
    let elapsed = started.elapsed();
    let rec = Arc::try_unwrap(rec).ok().unwrap().into_inner().unwrap();

    assert!(
        rec.unexpected.is_empty(),
        "answers the contract does not allow: {:#?}",
        rec.unexpected
    );
    assert!(rec.statuses.keys().all(|s| *s < 500), "{:?}", rec.statuses);
    assert!(rec.race_rounds >= RACE_GROUPS, "every group raced: {}", rec.race_rounds);
    assert!(!rec.revokes.is_empty() && !rec.patches.is_empty(), "owners acted");

    let one = |sql: &str| -> i64 { app.sql(sql, &[])[0][0].as_deref().unwrap().parse().unwrap() };
    // No lost rotation: no chain with two live tokens, no fork, no dangling successor.
    assert_eq!(
        one("SELECT count(*) FROM (SELECT session_id FROM refresh_tokens WHERE revoked_at IS NULL
             GROUP BY session_id HAVING count(*) > 1) AS s"),
        0,
        "a session with more than one live token"
    );
    assert_eq!(
        one("SELECT count(*) FROM (SELECT session_id FROM refresh_tokens GROUP BY session_id
             HAVING count(*) <> 1 + count(replaced_by)) AS s"),
        0,
        "a session whose tokens are not one chain"
    );
    assert_eq!(
        one("SELECT count(*) FROM refresh_tokens t WHERE replaced_by IS NOT NULL AND NOT EXISTS
             (SELECT 1 FROM refresh_tokens s WHERE s.id = t.replaced_by AND s.session_id = t.session_id)"),
        0,
        "a rotation whose successor is missing"
    );
    let store = Store::open(&crate::helpers::db_target(&app.state.config));
    assert_tokens_and_rotations_kept(&store, &rec.issued, &rec.rotations);
    let row = |token: &str| stored_token(&store, token);
    // A chain's own refresher was refused only after a revoke, never by a lost rotation.
    for t in &rec.refused {
        let (_, revoked_at, replaced_by) = row(t).unwrap();
        assert!(revoked_at.is_some() && replaced_by.is_none(), "refused without a revoke");
    }
    // Every acknowledged revoke counted exactly the tokens revoked, with its audit row.
    let revoked_total: u64 = rec.revokes.iter().sum();
    // The audit row's count, read from its JSON details in each dialect.
    let revoked_count = if crate::helpers::pg_url().is_some() {
        "CAST(CAST(details AS json)->>'revoked_count' AS BIGINT)"
    } else {
        "json_extract(details, '$.revoked_count')"
    };
    assert_eq!(
        one(
            "SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NOT NULL AND replaced_by IS NULL"
        ) as u64,
        revoked_total
    );
    assert_eq!(
        one("SELECT count(*) FROM audit_events WHERE action = 'account.sessions_revoked_bulk'")
            as usize,
        rec.revokes.len()
    );
    assert_eq!(
        one(&format!(
            "SELECT coalesce(sum({revoked_count}), 0) FROM audit_events
             WHERE action = 'account.sessions_revoked_bulk'"
        )) as u64,
        revoked_total
    );
    // And by the audit event each revoked token records (schema version 2): every such
    // event exists, and each bulk revoke's row counts exactly the tokens it names.
    assert_eq!(
        one("SELECT count(*) FROM refresh_tokens t WHERE revoked_by_event IS NOT NULL AND NOT EXISTS
             (SELECT 1 FROM audit_events e WHERE e.id = t.revoked_by_event)"),
        0,
        "a token revoked by an audit event that is not there"
    );
    assert_eq!(
        one(&format!(
            "SELECT count(*) FROM audit_events e WHERE action = 'account.sessions_revoked_bulk'
             AND {revoked_count} <>
                 (SELECT count(*) FROM refresh_tokens t WHERE t.revoked_by_event = e.id)"
        )),
        0,
        "a bulk revoke's audit row and the tokens it revoked disagree"
    );
    let patches: usize = rec.patches.values().map(Vec::len).sum();
    assert_eq!(
        one("SELECT count(*) FROM audit_events WHERE action = 'account.session_policy_update'")
            as usize,
        patches
    );
    // Each account holds the last policy acknowledged to its owner.
    for (tenant, acked) in &rec.patches {
        let (idle, abs) = acked.last().copied().unwrap();
        let row = app.sql(
            "SELECT idle_minutes, absolute_minutes FROM accounts WHERE name = ?1",
            &[&format!("Mixed {tenant}")],
        );
        let num = |v: &Option<String>| -> i64 { v.as_deref().unwrap().parse().unwrap() };
        let stored = (num(&row[0][0]), num(&row[0][1]));
        assert_eq!(stored, (idle, abs), "tenant {tenant}");
    }

    let requests: usize = rec.statuses.values().sum();
    eprintln!(
        "figures: concurrency: 64 writers for {:.1} s: {requests} requests ({:.0}/s), by status {:?}; \
         {} rotations, {} race rounds of {RACERS_PER_GROUP} with one winner each, {} revokes \
         ({revoked_total} tokens), {patches} policy changes; 5xx 0, lost rotations 0, \
         sessions with two live tokens 0",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        rec.statuses,
        rec.rotations.len(),
        rec.race_rounds,
        rec.revokes.len(),
    );
}
