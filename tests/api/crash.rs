//! Crash safety: mixed load (logins, refreshes, policy changes, bulk revokes) against the
//! real binary, `kill -9` at a random moment, restart on the same file — over and over.
//! After every crash, with the restarted server up:
//!
//! - `PRAGMA integrity_check` is ok;
//! - every refresh token handed out (a 200 reached the client) is stored, and every
//!   acknowledged rotation is recorded as one;
//! - every revoke that got a 200 is still in effect: each token the client held when it
//!   sent the revoke is revoked;
//! - each bulk revoke and its audit row are both present or both absent: the tokens a
//!   revoke stamped match, per account and instant, the `revoked_count` of its audit row;
//! - the audit trail of each account is exactly its acknowledged policy changes and
//!   revokes in order, plus possibly the one in flight at the kill; the account's policy
//!   is the last one recorded;
//! - no session has two live tokens, no rotation lost its successor.
//!
//! 24 crashes by default (a few seconds); `SESSIOND_LONG_TESTS=1` makes it 200.
//! `SESSIOND_CRASH_SEED=n` repeats a run's random choices (not its thread timing).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::concurrency::long_tests;
use crate::helpers::{Store, assert_tokens_and_rotations_kept, stored_token};
use crate::process::{Server, seed_owner, user_create};

const PASSWORD: &str = "a-long-password";
const ACCOUNTS: usize = 2;
const ENGINEERS: usize = 3;
const CHAINS_PER_ACCOUNT: usize = 8;
const WORKERS: usize = 6;

/// Everything the client knows for certain: what was acknowledged to it.
#[derive(Default)]
struct Model {
    accounts: Vec<AccountModel>,
    /// Live chains: account, current refresh token, checked out by a worker.
    chains: Vec<Chain>,
    /// Every refresh token a 200 handed out.
    issued: Vec<String>,
    /// (presented, received) of every acknowledged refresh.
    rotations: Vec<(String, String)>,
    /// Tokens held when an acknowledged revoke was sent: each must be revoked.
    must_be_revoked: Vec<String>,
    requests: usize,
    acknowledged: usize,
    unknown: usize,
    unexpected: Vec<String>,
}

struct Chain {
    account: usize,
    token: String,
    busy: bool,
}

#[derive(Default)]
struct AccountModel {
    owner_email: String,
    /// The owner's access and refresh token, if logged in.
    owner: Option<(String, String)>,
    /// Owner actions of this account, in the order sent (they are sent one at a time).
    sent: Vec<Sent>,
    /// An owner action is in flight (owner actions of an account are serialised).
    acting: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Change {
    Policy { idle: i64, absolute: i64 },
    Revoke { scope: &'static str, count: Option<u64> },
}

#[derive(Clone, Debug)]
struct Sent {
    change: Change,
    acknowledged: bool,
}

type Shared = Arc<Mutex<Model>>;

enum Outcome {
    Answer(u16, Value),
    /// No answer: the server died with the request in flight (or before).
    Unknown,
}

fn call(
    client: &reqwest::blocking::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Outcome {
    let mut req = client.request(method, format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().and_then(|r| {
        let status = r.status().as_u16();
        r.text().map(|t| (status, t))
    }) {
        Ok((status, text)) => {
            Outcome::Answer(status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        Err(_) => Outcome::Unknown,
    }
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// One worker's loop for one round: until the server is gone.
fn worker(base: String, model: Shared, seed: u64, dead: Arc<AtomicBool>) {
    let client =
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let post = reqwest::Method::POST;
    while !dead.load(Ordering::SeqCst) {
        let dice = rng.random_range(0..100);
        let account = rng.random_range(0..ACCOUNTS);
        let outcome_known = if dice < 60 {
            // Refresh a chain nobody else is refreshing.
            let picked = {
                let mut m = model.lock().unwrap();
                let free: Vec<usize> =
                    m.chains.iter().enumerate().filter(|(_, c)| !c.busy).map(|(i, _)| i).collect();
                if free.is_empty() {
                    None
                } else {
                    let i = free[rng.random_range(0..free.len())];
                    m.chains[i].busy = true;
                    Some(m.chains[i].token.clone())
                }
            };
            let Some(token) = picked else { continue };
            let out = call(
                &client,
                &base,
                post.clone(),
                "/auth/refresh",
                None,
                json!({"refresh_token": token}),
            );
            let mut m = model.lock().unwrap();
            m.requests += 1;
            let i = m.chains.iter().position(|c| c.token == token).unwrap();
            match out {
                Outcome::Answer(200, body) => {
                    let next = s(&body, "refresh_token");
                    m.acknowledged += 1;
                    m.issued.push(next.clone());
                    m.rotations.push((token, next.clone()));
                    m.chains[i].token = next;
                    m.chains[i].busy = false;
                    true
                }
                Outcome::Answer(401, body) if body["detail"] == "invalid_refresh_token" => {
                    // Revoked by a bulk revoke: the chain is over.
                    m.acknowledged += 1;
                    m.chains.remove(i);
                    true
                }
                Outcome::Answer(status, body) => {
                    m.unexpected.push(format!("refresh: {status} {body}"));
                    m.chains.remove(i);
                    true
                }
                Outcome::Unknown => {
                    // Its fate is unknown, and presenting it again later could count as
                    // reuse: the chain is abandoned.
                    m.unknown += 1;
                    m.chains.remove(i);
                    false
                }
            }
        } else if dice < 80 {
            // A new session for one of the account's engineers.
            let email = format!("eng{}@acct{account}.test", rng.random_range(0..ENGINEERS));
            {
                let m = model.lock().unwrap();
                if m.chains.iter().filter(|c| c.account == account).count() >= CHAINS_PER_ACCOUNT {
                    continue;
                }
            }
            let out = call(
                &client,
                &base,
                post.clone(),
                "/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            );
            let mut m = model.lock().unwrap();
            m.requests += 1;
            match out {
                Outcome::Answer(200, body) => {
                    let token = s(&body, "refresh_token");
                    m.acknowledged += 1;
                    m.issued.push(token.clone());
                    m.chains.push(Chain { account, token, busy: false });
                    true
                }
                Outcome::Answer(status, body) => {
                    m.unexpected.push(format!("login: {status} {body}"));
                    true
                }
                Outcome::Unknown => {
                    m.unknown += 1;
                    false
                }
            }
        } else {
            owner_action(&client, &base, &model, account, dice < 92, &mut rng)
        };
        if !outcome_known {
            return;
        }
    }
}

/// A policy change (`patch`) or a bulk revoke by the account's owner. Owner actions of
/// one account are sent one at a time, so their order is the order they commit in.
fn owner_action(
    client: &reqwest::blocking::Client,
    base: &str,
    model: &Shared,
    account: usize,
    patch: bool,
    rng: &mut StdRng,
) -> bool {
    let owner = {
        let mut m = model.lock().unwrap();
        if m.accounts[account].acting {
            return true;
        }
        m.accounts[account].acting = true;
        m.accounts[account].owner.clone()
    };
    let release = |m: &mut Model| m.accounts[account].acting = false;
    let email = model.lock().unwrap().accounts[account].owner_email.clone();
    let (access, owner_refresh) = match owner {
        Some(o) => o,
        None => {
            let out = call(
                client,
                base,
                reqwest::Method::POST,
                "/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            );
            let mut m = model.lock().unwrap();
            m.requests += 1;
            release(&mut m);
            return match out {
                Outcome::Answer(200, body) => {
                    m.acknowledged += 1;
                    let pair = (s(&body, "access_token"), s(&body, "refresh_token"));
                    m.issued.push(pair.1.clone());
                    m.accounts[account].owner = Some(pair);
                    true
                }
                Outcome::Answer(status, body) => {
                    m.unexpected.push(format!("owner login: {status} {body}"));
                    true
                }
                Outcome::Unknown => {
                    m.unknown += 1;
                    false
                }
            };
        }
    };
    let (change, held, out) = if patch {
        let idle = rng.random_range(15..=1440);
        let absolute = rng.random_range(idle.max(60)..=10_080);
        let change = Change::Policy { idle, absolute };
        model.lock().unwrap().accounts[account]
            .sent
            .push(Sent { change: change.clone(), acknowledged: false });
        let body = json!({"idle_minutes": idle, "absolute_minutes": absolute});
        (
            change,
            Vec::new(),
            call(
                client,
                base,
                reqwest::Method::PATCH,
                "/accounts/me/security",
                Some(&access),
                body,
            ),
        )
    } else {
        let scope = if rng.random_bool(0.3) { "all" } else { "others" };
        let held: Vec<String> = {
            let mut m = model.lock().unwrap();
            let mut held: Vec<String> =
                m.chains.iter().filter(|c| c.account == account).map(|c| c.token.clone()).collect();
            if scope == "all" {
                held.push(owner_refresh.clone());
            }
            m.accounts[account]
                .sent
                .push(Sent { change: Change::Revoke { scope, count: None }, acknowledged: false });
            held
        };
        let out = call(
            client,
            base,
            reqwest::Method::POST,
            "/accounts/me/security/revoke-sessions",
            Some(&access),
            json!({"scope": scope}),
        );
        (Change::Revoke { scope, count: None }, held, out)
    };
    let mut m = model.lock().unwrap();
    m.requests += 1;
    release(&mut m);
    match out {
        Outcome::Answer(200, body) => {
            m.acknowledged += 1;
            let sent = m.accounts[account].sent.last_mut().unwrap();
            sent.acknowledged = true;
            if let Change::Revoke { scope, .. } = change {
                sent.change = Change::Revoke { scope, count: body["revoked_count"].as_u64() };
                m.must_be_revoked.extend(held);
                if scope == "all" {
                    m.accounts[account].owner = None;
                }
            }
            true
        }
        Outcome::Answer(401, body) if body["detail"] == "not_authenticated" => {
            // The owner's own session was ended by an earlier revoke (scope all).
            m.acknowledged += 1;
            m.accounts[account].sent.pop();
            m.accounts[account].owner = None;
            true
        }
        Outcome::Answer(status, body) => {
            m.unexpected.push(format!("owner action: {status} {body}"));
            m.accounts[account].sent.pop();
            true
        }
        Outcome::Unknown => {
            m.unknown += 1;
            false
        }
    }
}

/// Whether the audit trail `recorded` is `sent` with some unacknowledged entries left out
/// (an unacknowledged change may or may not have committed before the kill).
fn trail_matches(sent: &[Sent], recorded: &[Change]) -> bool {
    // ok[i][j]: sent[i..] can produce recorded[j..].
    let (n, k) = (sent.len(), recorded.len());
    let mut ok = vec![vec![false; k + 1]; n + 1];
    ok[n][k] = true;
    for i in (0..n).rev() {
        for j in (0..=k).rev() {
            let matches = j < k
                && match (&sent[i].change, &recorded[j]) {
                    (
                        Change::Revoke { scope: a, count: ca },
                        Change::Revoke { scope: b, count: cb },
                    ) => a == b && (ca.is_none() || ca == cb),
                    (a, b) => a == b,
                };
            ok[i][j] = (matches && ok[i + 1][j + 1]) || (!sent[i].acknowledged && ok[i + 1][j]);
        }
    }
    ok[0][0]
}

/// Every invariant of the module docs, on the restarted server's database. Answers the
/// number of rows it checked.
fn verify(db: &Path, model: &Model, account_ids: &[String]) -> usize {
    let store = Store::Sqlite(rusqlite::Connection::open(db).unwrap());
    let Store::Sqlite(conn) = &store else { unreachable!() };
    conn.execute_batch("BEGIN").unwrap(); // one snapshot for every check
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_tokens_and_rotations_kept(&store, &model.issued, &model.rotations);
    let token = |t: &str| stored_token(&store, t);
    for t in &model.must_be_revoked {
        let (_, revoked_at, _) = token(t).expect("held token stored");
        assert!(revoked_at.is_some(), "an acknowledged revoke is no longer in effect");
    }
    assert_eq!(
        one("SELECT count(*) FROM (SELECT session_id FROM refresh_tokens WHERE revoked_at IS NULL
             GROUP BY session_id HAVING count(*) > 1)"),
        0,
        "a session with two live tokens"
    );
    assert_eq!(
        one("SELECT count(*) FROM refresh_tokens t WHERE replaced_by IS NOT NULL AND NOT EXISTS
             (SELECT 1 FROM refresh_tokens s WHERE s.id = t.replaced_by AND s.session_id = t.session_id)"),
        0,
        "a rotation without its successor"
    );
    // Bulk revokes and their audit rows: both present or both absent. Nothing else here
    // revokes without rotating (no logout, no timeout, no reuse), so every such token
    // belongs to one audited bulk revoke, at the same instant, in the same account.
    let stamped: BTreeMap<(String, i64), i64> = conn
        .prepare(
            "SELECT u.account_id, t.revoked_at, count(*) FROM refresh_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.revoked_at IS NOT NULL AND t.replaced_by IS NULL GROUP BY 1, 2",
        )
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let audited: BTreeMap<(String, i64), i64> = conn
        .prepare(
            "SELECT account_id, created_at, sum(json_extract(details, '$.revoked_count')) FROM audit_events
             WHERE action = 'account.sessions_revoked_bulk' GROUP BY 1, 2",
        )
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let audited_nonzero: BTreeMap<_, _> =
        audited.iter().filter(|(_, n)| **n > 0).map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(stamped, audited_nonzero, "revoked tokens and bulk-revoke audit rows disagree");
    // And by the audit event each revoked token records (schema version 2): every such
    // event exists, and each bulk revoke's row counts exactly the tokens it names.
    assert_eq!(
        one("SELECT count(*) FROM refresh_tokens t WHERE revoked_by_event IS NOT NULL AND NOT EXISTS
             (SELECT 1 FROM audit_events e WHERE e.id = t.revoked_by_event)"),
        0,
        "a token revoked by an audit event that is not there"
    );
    assert_eq!(
        one("SELECT count(*) FROM audit_events e WHERE action = 'account.sessions_revoked_bulk'
             AND json_extract(details, '$.revoked_count') <>
                 (SELECT count(*) FROM refresh_tokens t WHERE t.revoked_by_event = e.id)"),
        0,
        "a bulk revoke's audit row and the tokens it revoked disagree"
    );
    // Each account's trail: its acknowledged changes in order, and the policy it ends at.
    for (i, id) in account_ids.iter().enumerate() {
        let recorded: Vec<Change> = conn
            .prepare(
                "SELECT action, details FROM audit_events WHERE account_id = ?1
                 AND action IN ('account.session_policy_update', 'account.sessions_revoked_bulk') ORDER BY seq",
            )
            .unwrap()
            .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
            .map(|row| {
                let (action, details) = row.unwrap();
                let d: Value = serde_json::from_str(&details).unwrap();
                if action == "account.session_policy_update" {
                    Change::Policy {
                        idle: d["new"]["idle_minutes"].as_i64().unwrap(),
                        absolute: d["new"]["absolute_minutes"].as_i64().unwrap(),
                    }
                } else {
                    let scope = if d["scope"] == "all" { "all" } else { "others" };
                    Change::Revoke { scope, count: d["revoked_count"].as_u64() }
                }
            })
            .collect();
        assert!(
            trail_matches(&model.accounts[i].sent, &recorded),
            "account {i}: the audit trail is not the acknowledged changes\nsent: {:?}\nrecorded: {recorded:?}",
            model.accounts[i].sent
        );
        let last_policy = recorded.iter().rev().find_map(|c| match c {
            Change::Policy { idle, absolute } => Some((Some(*idle), Some(*absolute))),
            Change::Revoke { .. } => None,
        });
        let stored: (Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT idle_minutes, absolute_minutes FROM accounts WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            stored,
            last_policy.unwrap_or((None, None)),
            "account {i}: policy and its audit trail"
        );
    }
    let rows =
        one("SELECT (SELECT count(*) FROM refresh_tokens) + (SELECT count(*) FROM audit_events)");
    conn.execute_batch("COMMIT").unwrap();
    usize::try_from(rows).unwrap()
}

#[test]
fn kill_9_under_load_loses_nothing_acknowledged() {
    if crate::helpers::sqlite_only("crash recovery of a SQLite database file") {
        return;
    }
    let rounds = if long_tests() { 200 } else { 24 };
    let seed: u64 = std::env::var("SESSIOND_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("crash test: seed {seed} (SESSIOND_CRASH_SEED={seed} repeats its choices)");
    let mut rng = StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let db_s = db.to_str().unwrap().to_owned();
    let model: Shared = Arc::default();
    let mut account_ids = Vec::new();
    for a in 0..ACCOUNTS {
        let owner_email = format!("owner@acct{a}.test");
        let (account, _) = seed_owner(dir.path(), &db_s, &owner_email, PASSWORD);
        for e in 0..ENGINEERS {
            let email = format!("eng{e}@acct{a}.test");
            user_create(dir.path(), &db_s, &account, &email, "engineer", Some(PASSWORD))
                .assert_ok();
        }
        account_ids.push(account);
        model.lock().unwrap().accounts.push(AccountModel { owner_email, ..Default::default() });
    }

    let args = ["serve", "--database", db_s.as_str(), "--listen", "127.0.0.1:0"];
    let started = Instant::now();
    let mut kills = 0;
    let mut rows_checked = 0;
    for round in 0..=rounds {
        let server = Server::start(dir.path(), &args, &[]);
        // The state the last crash left, as the restarted server sees it.
        rows_checked = verify(&db, &model.lock().unwrap(), &account_ids);
        {
            let m = model.lock().unwrap();
            assert!(
                m.unexpected.is_empty(),
                "answers the contract does not allow: {:#?}",
                m.unexpected
            );
        }
        if round == rounds {
            assert_eq!(server.stop_with("TERM").code(), Some(0));
            break;
        }
        // Chains and owner sessions carry over; nothing is in flight between rounds.
        let dead = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (base, model, dead) = (server.base.clone(), model.clone(), dead.clone());
                let seed = seed.wrapping_add((round * WORKERS + w) as u64 + 1);
                std::thread::spawn(move || worker(base, model, seed, dead))
            })
            .collect();
        // The kill lands at a random moment after a random amount of work, measured in
        // acknowledged requests rather than time, so a slow machine still gets load
        // between the kills.
        let target = model.lock().unwrap().acknowledged + rng.random_range(5..30);
        let deadline = Instant::now() + Duration::from_secs(20);
        while model.lock().unwrap().acknowledged < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..30)));
        let status =
            std::process::Command::new("kill").args(["-KILL", &server.pid().to_string()]).status();
        assert!(status.unwrap().success());
        dead.store(true, Ordering::SeqCst);
        let exit = server.wait();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&exit),
            Some(9),
            "killed, not exited"
        );
        kills += 1;
        for w in workers {
            w.join().expect("worker");
        }
    }

    let m = model.lock().unwrap();
    let acked_changes: usize =
        m.accounts.iter().map(|a| a.sent.iter().filter(|s| s.acknowledged).count()).sum();
    let unacked_changes: usize =
        m.accounts.iter().map(|a| a.sent.iter().filter(|s| !s.acknowledged).count()).sum();
    assert!(kills >= 20);
    assert!(m.acknowledged >= kills * 5, "load ran between the kills: {}", m.acknowledged);
    eprintln!(
        "figures: crash: {kills} kill -9 in {:.1} s; {} requests sent, {} acknowledged, {} cut off by \
         the kill; {} tokens issued, {} rotations, {} tokens held at acknowledged revokes, \
         {acked_changes} owner changes acknowledged (+{unacked_changes} in flight at a kill); \
         integrity_check ok {} times, {rows_checked} rows at the end, acknowledged rows lost 0",
        started.elapsed().as_secs_f64(),
        m.requests,
        m.acknowledged,
        m.unknown,
        m.issued.len(),
        m.rotations.len(),
        m.must_be_revoked.len(),
        kills + 1,
    );
}
