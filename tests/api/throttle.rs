//! Login throttling (contract section 3): 429 `too_many_attempts` with `Retry-After` once
//! `auth.max_failed_logins` logins for one email from one address failed within
//! `auth.failed_login_window_minutes`; it lifts when the window has passed (test clock).
//! The counts are kept in the database: shared by the servers on one database, kept
//! across a restart, and cleared by `sessiond user unlock`.

use std::net::{IpAddr, Ipv4Addr};

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, Resp, TestApp};
use crate::process::{Server, run, seed_owner};

/// A 429 in the contract's shape; returns its `Retry-After` in seconds.
#[track_caller]
fn assert_throttled(r: &Resp) -> u64 {
    r.assert(429, "too_many_attempts");
    assert_eq!(r.headers["cache-control"], "no-store");
    r.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

/// A client whose connections come from `ip` (any 127.x.y.z reaches a loopback server).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(Ipv4Addr::from(ip))).build().unwrap()
}

async fn login_via(app: &TestApp, client: &reqwest::Client, email: &str, password: &str) -> u16 {
    let r = client
        .post(format!("{}/auth/login", app.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn engages_at_exactly_the_threshold_refuses_a_correct_password_and_lifts_after_the_window() {
    let app = TestApp::spawn_with(|c| {
        c.auth.max_failed_logins = 3;
        c.auth.failed_login_window_minutes = 10;
    })
    .await;
    let t = app.tenant("Acme").await;
    for _ in 0..3 {
        app.try_login(&t.engineer.email, "wrong password").await.assert(401, "invalid_credentials");
    }
    let w1 = assert_throttled(&app.try_login(&t.engineer.email, "wrong password").await);
    assert!((595..=600).contains(&w1), "Retry-After {w1}");
    let w2 = assert_throttled(&app.try_login(&t.engineer.email, PASSWORD).await);
    assert!((595..=600).contains(&w2), "a correct password too; Retry-After {w2}");

    app.advance(300).await;
    let w3 = assert_throttled(&app.try_login(&t.engineer.email, PASSWORD).await);
    assert!((295..=300).contains(&w3), "Retry-After counts down: {w3}");
    app.advance(299).await;
    let w4 = assert_throttled(&app.try_login(&t.engineer.email, PASSWORD).await);
    assert_eq!(w4, 1, "one second before the window ends");
    app.advance(1).await;
    assert_eq!(app.try_login(&t.engineer.email, PASSWORD).await.status, 200, "lifted");
    eprintln!(
        "figures: throttle: max 3 in 10 min: failures 1-3 answered 401; attempt 4 429 (Retry-After \
         {w1}), a correct password 429 ({w2}); at +300 s 429 ({w3}); at +599 s 429 ({w4}); at +600 s 200"
    );

    // Refused attempts wrote nothing: three failures, one success.
    let owner = app.login(&t.owner).await;
    assert_eq!(app.audit(&owner.access, "auth.login_failed").await.len(), 3);
    assert_eq!(
        app.audit(&owner.access, "auth.login").await.len(),
        2,
        "the engineer's login and the owner's"
    );
}

#[tokio::test]
async fn the_default_threshold_is_five_failures_in_fifteen_minutes() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    for _ in 0..5 {
        app.try_login(&t.owner.email, "nope nope").await.assert(401, "invalid_credentials");
    }
    let wait = assert_throttled(&app.try_login(&t.owner.email, PASSWORD).await);
    assert!((895..=900).contains(&wait), "Retry-After {wait}");
    app.advance(15 * 60).await;
    assert_eq!(app.try_login(&t.owner.email, PASSWORD).await.status, 200);
}

#[tokio::test]
async fn after_the_window_a_new_one_opens_with_a_full_allowance() {
    let app = TestApp::spawn_with(|c| c.auth.max_failed_logins = 2).await;
    let t = app.tenant("Acme").await;
    for _ in 0..2 {
        app.try_login(&t.admin.email, "wrong password").await.assert(401, "invalid_credentials");
    }
    assert_throttled(&app.try_login(&t.admin.email, "wrong password").await);
    app.advance(15 * 60).await;
    for _ in 0..2 {
        app.try_login(&t.admin.email, "wrong password").await.assert(401, "invalid_credentials");
    }
    assert_throttled(&app.try_login(&t.admin.email, PASSWORD).await);
}

#[tokio::test]
async fn failures_older_than_the_window_do_not_count() {
    let app = TestApp::spawn_with(|c| c.auth.max_failed_logins = 2).await;
    let t = app.tenant("Acme").await;
    app.try_login(&t.admin.email, "wrong password").await.assert(401, "invalid_credentials");
    app.advance(15 * 60).await;
    app.try_login(&t.admin.email, "wrong password").await.assert(401, "invalid_credentials");
    assert_eq!(app.try_login(&t.admin.email, PASSWORD).await.status, 200, "one failure per window");
}

#[tokio::test]
async fn the_count_is_per_email_and_client_address() {
    let app = TestApp::spawn_with(|c| c.auth.max_failed_logins = 2).await;
    let t = app.tenant("Acme").await;
    let here = client_from([127, 0, 0, 1]);
    let elsewhere = client_from([127, 0, 0, 2]);
    for _ in 0..2 {
        assert_eq!(login_via(&app, &here, &t.owner.email, "wrong password").await, 401);
    }
    assert_eq!(login_via(&app, &here, &t.owner.email, PASSWORD).await, 429);
    assert_eq!(
        login_via(&app, &here, &t.owner.email.to_uppercase(), PASSWORD).await,
        429,
        "emails are matched case-insensitively here too"
    );
    assert_eq!(
        login_via(&app, &elsewhere, &t.owner.email, PASSWORD).await,
        200,
        "the same email from another address"
    );
    assert_eq!(
        login_via(&app, &here, &t.admin.email, "wrong password").await,
        401,
        "another email from the same address"
    );
    assert_eq!(login_via(&app, &here, &t.admin.email, PASSWORD).await, 200);

    // The address is the TCP peer: forwarding headers do not move a client elsewhere.
    for header in ["x-forwarded-for", "x-real-ip", "forwarded"] {
        let value = if header == "forwarded" { "for=10.9.8.7" } else { "10.9.8.7" };
        let r = here
            .post(format!("{}/auth/login", app.base))
            .header(header, value)
            .json(&json!({"email": t.owner.email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "{header}");
    }
}

/// Unknown emails count like known ones, so the throttle does not tell which exist.
#[tokio::test]
async fn unknown_emails_and_inactive_users_are_throttled_alike() {
    let app = TestApp::spawn_with(|c| c.auth.max_failed_logins = 3).await;
    let t = app.tenant("Acme").await;
    sessiond::service::users::disable(&app.state.db, &t.admin.email, app.state.clock.now())
        .await
        .unwrap();
    for email in ["nobody@acme.test", t.engineer.email.as_str(), t.admin.email.as_str()] {
        let password = if email == t.admin.email { PASSWORD } else { "wrong password" };
        for _ in 0..3 {
            app.try_login(email, password).await.assert(401, "invalid_credentials");
        }
        let wait = assert_throttled(&app.try_login(email, password).await);
        assert!((895..=900).contains(&wait), "{email}: Retry-After {wait}");
    }
}

#[tokio::test]
async fn a_successful_login_clears_the_failures() {
    let app = TestApp::spawn_with(|c| c.auth.max_failed_logins = 3).await;
    let t = app.tenant("Acme").await;
    for _ in 0..2 {
        app.try_login(&t.owner.email, "wrong password").await.assert(401, "invalid_credentials");
    }
    app.login(&t.owner).await;
    for _ in 0..2 {
        app.try_login(&t.owner.email, "wrong password").await.assert(401, "invalid_credentials");
    }
    app.login(&t.owner).await;
}

/// Attempts of one pair are decided one at a time: a burst of concurrent guesses gets
/// exactly `max` password checks, while concurrent correct logins all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_get_no_more_than_the_limit() {
    let app = TestApp::spawn_with(|c| c.auth.max_failed_logins = 4).await;
    let t = app.tenant("Acme").await;
    let answers = join_all((0..24).map(|_| app.try_login(&t.engineer.email, "wrong guess"))).await;
    let refused = answers.iter().filter(|r| r.status == 401).count();
    assert_eq!(refused, 4, "{answers:?}");
    for r in answers.iter().filter(|r| r.status != 401) {
        assert_throttled(r);
    }
    let answers = join_all((0..12).map(|_| app.try_login(&t.owner.email, PASSWORD))).await;
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    eprintln!(
        "figures: throttle: 24 concurrent wrong guesses with max 4: {refused} password checks, \
         {} answered 429; 12 concurrent correct logins: 12 × 200",
        24 - refused
    );
}

#[tokio::test]
async fn body_errors_are_not_attempts() {
    let app = TestApp::spawn_with(|c| c.auth.max_failed_logins = 1).await;
    let t = app.tenant("Acme").await;
    let ct = [("content-type", "application/json")];
    for _ in 0..3 {
        app.raw(Method::POST, "/auth/login", &ct, b"{".to_vec())
            .await
            .assert(400, "malformed_json");
        let r = app.post("/auth/login", None, json!({"email": t.owner.email})).await;
        assert_eq!(r.status, 422);
    }
    app.login(&t.owner).await;
}

/// `users::unlock` (what `sessiond user unlock` runs) lifts a lockout at once, from every
/// address, writes `user.unlocked`, and leaves other emails' lockouts alone.
#[tokio::test]
async fn unlock_lifts_a_lockout_at_once_and_is_audited() {
    let app = TestApp::spawn_with(|c| c.auth.max_failed_logins = 2).await;
    let t = app.tenant("Acme").await;
    let here = client_from([127, 0, 0, 1]);
    let elsewhere = client_from([127, 0, 0, 3]);
    for client in [&here, &elsewhere] {
        for _ in 0..2 {
            assert_eq!(login_via(&app, client, &t.engineer.email, "wrong password").await, 401);
        }
        assert_eq!(login_via(&app, client, &t.engineer.email, PASSWORD).await, 429);
    }
    for _ in 0..2 {
        assert_eq!(login_via(&app, &here, &t.admin.email, "wrong password").await, 401);
    }
    let now = app.state.clock.now();
    let email = t.engineer.email.to_uppercase();
    let (user, cleared) =
        sessiond::service::users::unlock(&app.state.db, &email, now).await.unwrap();
    assert_eq!((user, cleared), (t.engineer.id, 2), "both addresses");
    assert_eq!(login_via(&app, &here, &t.engineer.email, PASSWORD).await, 200);
    assert_eq!(login_via(&app, &elsewhere, &t.engineer.email, PASSWORD).await, 200);
    assert_eq!(login_via(&app, &here, &t.admin.email, PASSWORD).await, 429, "not unlocked");

    let owner = app.login(&t.owner).await;
    let events = app.audit(&owner.access, "user.unlocked").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["resource_id"], t.engineer.id.to_string());
    assert_eq!(events[0]["details"], json!({"email": t.engineer.email, "cleared": 2}));

    let unknown = sessiond::service::users::unlock(&app.state.db, "nobody@acme.test", now).await;
    assert!(
        matches!(unknown, Err(sessiond::service::Error::NotFound(_))),
        "an unknown email: {unknown:?}"
    );
}

/// The counts are in the database: with two apps on one database (two server processes,
/// in effect), failures counted by one lock the pair out at the other. The second app is
/// built from the first one's configuration, so it opens the same database whichever
/// backend the harness gives the first.
#[tokio::test]
async fn two_servers_on_one_database_share_the_counts() {
    let a = TestApp::spawn_inspectable_with(|c| c.auth.max_failed_logins = 3).await;
    let b = TestApp::spawn_config((*a.state.config).clone(), tempfile::tempdir().unwrap()).await;
    let t = a.tenant("Acme").await;
    a.try_login(&t.owner.email, "wrong password").await.assert(401, "invalid_credentials");
    b.try_login(&t.owner.email, "wrong password").await.assert(401, "invalid_credentials");
    a.try_login(&t.owner.email, "wrong password").await.assert(401, "invalid_credentials");
    assert_throttled(&b.try_login(&t.owner.email, PASSWORD).await);
    assert_throttled(&a.try_login(&t.owner.email, PASSWORD).await);
}

/// The real binary: a login for `email` to a served process; returns the status.
fn blocking_login(base: &str, email: &str, password: &str) -> u16 {
    blocking_login_body(base, email, password).0
}

fn blocking_login_body(base: &str, email: &str, password: &str) -> (u16, serde_json::Value) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

/// `sessiond user unlock --email EMAIL`, run beside a serving process on the same
/// database file, lets the locked-out user in at once; the lockout had survived a restart
/// of the server, since the counts are in the database. An unknown email: exit 1.
#[test]
fn user_unlock_lifts_a_lockout_for_a_running_server_and_counts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let email = "owner@acme.test";
    let password = "a-long-password";
    seed_owner(dir.path(), db, email, password);
    let args = ["serve", "--database", db, "--listen", "127.0.0.1:0"];
    let env = [("SESSIOND_AUTH_MAX_FAILED_LOGINS", "2")];

    let first = Server::start(dir.path(), &args, &env);
    for _ in 0..2 {
        assert_eq!(blocking_login(&first.base, email, "wrong password"), 401);
    }
    assert_eq!(blocking_login(&first.base, email, password), 429);
    assert_eq!(first.stop_with("TERM").code(), Some(0));

    let second = Server::start(dir.path(), &args, &env);
    assert_eq!(blocking_login(&second.base, email, password), 429, "still locked after a restart");

    let unlocked = run(
        dir.path(),
        &["user", "unlock", "--email", "Owner@Acme.test", "--database", db],
        &[],
        None,
    );
    unlocked.assert_ok();
    assert_eq!(unlocked.json()["cleared"], 1, "{unlocked:?}");
    let (status, tokens) = blocking_login_body(&second.base, email, password);
    assert_eq!(status, 200, "lifted at once: {tokens}");

    let events: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/accounts/me/audit-events?limit=200", second.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let unlocks: Vec<&serde_json::Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "user.unlocked")
        .collect();
    assert_eq!(unlocks.len(), 1, "{events}");
    assert_eq!(unlocks[0]["details"], json!({"email": email, "cleared": 1}));
    assert_eq!(unlocks[0]["user_id"], serde_json::Value::Null, "done by the operator");

    run(
        dir.path(),
        &["user", "unlock", "--email", "nobody@acme.test", "--database", db],
        &[],
        None,
    )
    .assert_fails(1, "nobody@acme.test");
}

/// The server's hourly prune also deletes the throttle's rows whose window has closed,
/// and only those.
#[tokio::test]
async fn the_hourly_prune_deletes_closed_windows() {
    use sessiond::db::login_failures;
    use sessiond::service::maintenance;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    let app = TestApp::spawn_with(|c| c.auth.failed_login_window_minutes = 10).await;
    let rows = || async { app.state.db.read(login_failures::count).await.unwrap() };
    app.try_login("old@acme.test", "wrong password").await.assert(401, "invalid_credentials");
    app.advance(5 * 60).await;
    app.try_login("new@acme.test", "wrong password").await.assert(401, "invalid_credentials");
    app.advance(5 * 60).await;
    assert_eq!(rows().await, 2);

    let stop = CancellationToken::new();
    let tick = Duration::from_millis(20);
    let task =
        tokio::spawn(maintenance::prune_periodically(app.state.clone(), tick, tick, stop.clone()));
    let mut waited = 0;
    while rows().await != 1 {
        assert!(waited < 500, "the prune never deleted the closed window");
        tokio::time::sleep(tick).await;
        waited += 1;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    app.try_login("new@acme.test", "wrong password").await.assert(401, "invalid_credentials");
    assert_eq!(rows().await, 1, "the open window was kept and counted on");
}

/// Two real server processes on one database (PostgreSQL when the suite runs on it, else
/// a SQLite file): failures counted by either lock the pair out at both, and one `sessiond
/// user unlock` lets it in at both.
#[test]
fn throttling_is_shared_by_server_processes_and_one_unlock_reaches_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let target = match crate::helpers::pg_url() {
        Some(url) => crate::helpers::fresh_pg_schema(&url),
        None => dir.path().join("s.db").to_str().unwrap().to_owned(),
    };
    let (email, password) = ("owner@acme.test", "a-long-password");
    seed_owner(dir.path(), &target, email, password);
    let args = ["serve", "--database", &target, "--listen", "127.0.0.1:0"];
    let env = [("SESSIOND_AUTH_MAX_FAILED_LOGINS", "3")];
    let a = Server::start(dir.path(), &args, &env);
    let b = Server::start(dir.path(), &args, &env);
    for base in [&a.base, &b.base, &a.base] {
        assert_eq!(blocking_login(base, email, "wrong password"), 401);
    }
    assert_eq!(blocking_login(&b.base, email, password), 429, "counted across processes");
    assert_eq!(blocking_login(&a.base, email, password), 429);

    let unlocked =
        run(dir.path(), &["user", "unlock", "--email", email, "--database", &target], &[], None);
    unlocked.assert_ok();
    assert_eq!(unlocked.json()["cleared"], 1, "{unlocked:?}");
    assert_eq!(blocking_login(&b.base, email, password), 200, "lifted at b");
    assert_eq!(blocking_login(&a.base, email, password), 200, "lifted at a");
}
