//! Pruning refresh tokens revoked or expired more than `session.retention_days` ago: the
//! rule (with the test clock), batches, the background loop, and `sessiond prune`.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use sessiond::service::maintenance::{self, PRUNE_BATCH};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{TestApp, session_of};
use crate::process::{Server, run, seed_owner};

const DAY: i64 = 24 * 3600;

fn count(c: &TestApp, sql: &str, session: Option<&str>) -> i64 {
    let rows = c.sql(sql, session.as_slice());
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

fn tokens_of(c: &TestApp, session: &str) -> i64 {
    let sql =
        format!("SELECT count(*) FROM refresh_tokens WHERE session_id = {}", c.token_id_param(1));
    count(c, &sql, Some(session))
}

async fn prune(app: &TestApp) -> u64 {
    let s = &app.state;
    maintenance::prune(&s.db, s.bounds, s.config.session.retention_days, s.clock.now())
        .await
        .unwrap()
}

/// 61 days of history under a 30-day idle / 90-day absolute policy, pruned with the
/// default retention of 30 days (cutoff: day 31).
#[tokio::test]
async fn old_ended_sessions_go_and_live_ones_stay_whole() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 43200, "absolute_minutes": 129600})).await;
    // Day 0: a session that rotates twice and logs out; one that is never used again.
    let left = app.rotate(&app.rotate(&app.login(&t.engineer).await.refresh).await.refresh).await;
    app.post("/auth/logout", None, json!({"refresh_token": left.refresh})).await;
    let abandoned = app.login(&t.admin).await;
    // The owner's session lives on, refreshed every 20 days.
    app.advance(20 * DAY).await;
    let first_rotated = owner.refresh.clone();
    let owner = app.rotate(&owner.refresh).await;
    app.advance(20 * DAY).await;
    let owner = app.rotate(&owner.refresh).await;
    // Day 40: a logout too recent to prune.
    let recent = app.login(&t.engineer).await;
    app.post("/auth/logout", None, json!({"refresh_token": recent.refresh})).await;
    app.advance(20 * DAY).await;
    let owner = app.rotate(&owner.refresh).await;
    app.advance(DAY).await;

    let c = &app; // its database, read behind its back (either backend)
    let before = count(c, "SELECT count(*) FROM refresh_tokens", None);
    assert_eq!(tokens_of(c, &session_of(&left.access)), 3);
    assert_eq!(prune(&app).await, 4, "the logged-out chain (3) and the abandoned token (1)");
    assert_eq!(count(c, "SELECT count(*) FROM refresh_tokens", None), before - 4);
    assert_eq!(tokens_of(c, &session_of(&left.access)), 0);
    assert_eq!(tokens_of(c, &session_of(&abandoned.access)), 0, "expired at day 30, past day 31");
    assert_eq!(tokens_of(c, &session_of(&recent.access)), 1, "revoked at day 40: kept");
    assert_eq!(tokens_of(c, &session_of(&owner.access)), 4, "a live session keeps its history");
    assert_eq!(prune(&app).await, 0, "nothing more to do");

    // The live session still refreshes...
    let owner = app.rotate(&owner.refresh).await;
    // ...and its 41-day-old rotated token still trips reuse detection.
    app.refresh(&first_rotated).await.refused("invalid_refresh_token", "reuse_detected");
    app.refresh(&owner.refresh).await.refused("invalid_refresh_token", "reuse_detected");
    let audit_owner = app.login(&t.owner).await;
    assert_eq!(app.audit(&audit_owner.access, "session.refresh_token_reused").await.len(), 1);
    // The abandoned session is simply unknown now.
    app.refresh(&abandoned.refresh).await.refused("invalid_refresh_token", "unknown_token");
}

#[tokio::test]
async fn a_policy_that_still_allows_a_session_keeps_it_however_old_its_last_refresh() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 43200, "absolute_minutes": 129600})).await;
    let quiet = app.login(&t.engineer).await;
    // Day 29 + 59 = 88: idle since day 29, so over since day 59: not 30 days yet.
    app.advance(29 * DAY).await;
    let quiet = app.rotate(&quiet.refresh).await;
    app.advance(59 * DAY).await;
    assert_eq!(prune(&app).await, 1, "only the owner's first session, idle since day 0");
    assert_eq!(tokens_of(&app, &session_of(&quiet.access)), 2);
    app.refresh(&quiet.refresh).await.refused("session_idle_timeout", "idle_timeout");
}

/// A token row to insert directly: thousands of them, without thousands of requests.
fn token_row(
    pg: bool,
    session: Uuid,
    user: Uuid,
    started: DateTime<Utc>,
    issued: DateTime<Utc>,
    revoked: Option<DateTime<Utc>>,
) -> String {
    let hash = Uuid::new_v4().simple().to_string();
    // A byte string literal in each dialect.
    let hash = if pg { format!("decode('{hash}', 'hex')") } else { format!("x'{hash}'") };
    // The token's and session's ids: text on PostgreSQL, 16 bytes on SQLite.
    let id = |id: Uuid| if pg { format!("'{id}'") } else { format!("x'{}'", id.simple()) };
    format!(
        "({}, {}, '{user}', {hash}, {}, {}, {})",
        id(Uuid::new_v4()),
        id(session),
        started.timestamp_millis(),
        issued.timestamp_millis(),
        revoked.map_or("NULL".to_owned(), |r| r.timestamp_millis().to_string()),
    )
}

/// Inserts the rows, 500 to a statement.
fn insert_tokens(app: &TestApp, rows: &[String]) {
    for chunk in rows.chunks(500) {
        app.try_sql(
            &format!(
                "INSERT INTO refresh_tokens
                   (id, session_id, user_id, token_hash, session_started_at, issued_at, revoked_at)
                 VALUES {}",
                chunk.join(", ")
            ),
            &[],
        )
        .unwrap();
    }
}

/// More rows than one batch of each kind, with a long live session's history (kept) mixed
/// in: every batch moves on past what it keeps, and everything due goes.
#[tokio::test]
async fn large_prunes_run_in_batches_and_skip_what_they_keep() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 43200, "absolute_minutes": 129600})).await;
    let now = app.state.clock.now();
    let old = now - TimeDelta::days(61);
    let pg = crate::helpers::pg_url().is_some();
    let mut rows = Vec::new();
    // 2,500 sessions logged out 61 days ago, 1 token each.
    for _ in 0..2500 {
        rows.push(token_row(pg, Uuid::new_v4(), t.engineer.id, old, old, Some(old)));
    }
    // 1,500 abandoned live tokens from 61 days ago.
    for _ in 0..1500 {
        rows.push(token_row(pg, Uuid::new_v4(), t.admin.id, old, old, None));
    }
    // One session alive for 61 days with 1,200 rotations, refreshed 10 minutes ago.
    let alive = Uuid::new_v4();
    for i in 0..1200 {
        let at = old + TimeDelta::minutes(i * 60);
        rows.push(token_row(pg, alive, t.engineer.id, old, at, Some(at + TimeDelta::minutes(60))));
    }
    rows.push(token_row(pg, alive, t.engineer.id, old, now - TimeDelta::minutes(10), None));
    insert_tokens(&app, &rows);
    let c = &app; // its database, read behind its back (either backend)
    const { assert!(2500 > 2 * PRUNE_BATCH && 1500 > PRUNE_BATCH && 1200 > PRUNE_BATCH) };

    let started = std::time::Instant::now();
    assert_eq!(prune(&app).await, 4000);
    eprintln!("pruned 4,000 of 5,202 tokens in {:?}", started.elapsed());
    assert_eq!(tokens_of(c, &alive.to_string()), 1201);
    assert_eq!(count(c, "SELECT count(*) FROM refresh_tokens", None), 1202, "+ the owner's");
    assert_eq!(prune(&app).await, 0);
}

#[tokio::test]
async fn the_server_prunes_in_the_background_and_stops_when_told() {
    let app = TestApp::spawn_inspectable_with(|c| c.session.retention_days = 1).await;
    let t = app.tenant("Acme").await;
    let gone = app.login(&t.engineer).await;
    app.post("/auth/logout", None, json!({"refresh_token": gone.refresh})).await;
    // Refreshed within the default idle day: alive, with history revoked since the
    // cutoff and before it.
    let kept = app.login(&t.admin).await;
    app.advance(20 * 3600).await;
    let kept = app.rotate(&kept.refresh).await;
    app.advance(20 * 3600).await;
    let kept = app.rotate(&kept.refresh).await;

    let stop = CancellationToken::new();
    let tick = Duration::from_millis(20);
    let task =
        tokio::spawn(maintenance::prune_periodically(app.state.clone(), tick, tick, stop.clone()));
    // A finished run is counted in the metrics.
    let mut waited = 0;
    loop {
        let scrape = app.request(reqwest::Method::GET, "/metrics", None, None).await.text;
        if scrape.contains("sessiond_tokens_pruned_total 1\n") {
            break;
        }
        assert!(waited < 500, "the background prune never ran: {scrape}");
        tokio::time::sleep(tick).await;
        waited += 1;
    }
    let c = &app; // its database, read behind its back (either backend)
    assert_eq!(tokens_of(c, &session_of(&gone.access)), 0);
    assert_eq!(tokens_of(c, &session_of(&kept.access)), 3);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    app.rotate(&kept.refresh).await;
}

/// A counter from one app's own metrics (0 before it first moves).
async fn counter(app: &TestApp, series: &str) -> u64 {
    let scrape = app.request(reqwest::Method::GET, "/metrics", None, None).await.text;
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// The tokens one app's background prune has deleted, and its rounds that ran and that
/// were skipped (another process held the lease).
async fn prune_figures(app: &TestApp) -> (u64, u64, u64) {
    (
        counter(app, "sessiond_tokens_pruned_total").await,
        counter(app, "sessiond_prune_rounds_total{outcome=\"ran\"}").await,
        counter(app, "sessiond_prune_rounds_total{outcome=\"skipped\"}").await,
    )
}

/// PostgreSQL only: two servers (each its own pool and metrics, as two processes are) on
/// one database start their background prune at the same moment. One takes the advisory
/// lock and prunes everything due; the other finds it held and skips its round — the work
/// is not split between them, nor done twice.
#[tokio::test]
async fn on_postgres_one_server_at_a_time_runs_the_background_prune() {
    if crate::helpers::pg_url().is_none() {
        eprintln!("skipped: needs a PostgreSQL server (SESSIOND_TEST_DATABASE_URL)");
        return;
    }
    let a = TestApp::spawn_inspectable().await;
    let shared = a.state.config.database.url.clone();
    let b = TestApp::spawn_with(|c| c.database.url = shared).await;
    let t = a.tenant("Acme").await;
    let old = a.state.clock.now() - TimeDelta::days(61);
    let rows: Vec<String> = (0..2500)
        .map(|_| token_row(true, Uuid::new_v4(), t.engineer.id, old, old, Some(old)))
        .collect();
    insert_tokens(&a, &rows);

    let stop = CancellationToken::new();
    let (first, every) = (Duration::ZERO, Duration::from_secs(3600));
    let tasks = [&a, &b].map(|app| {
        tokio::spawn(maintenance::prune_periodically(app.state.clone(), first, every, stop.clone()))
    });
    // Both rounds have ended when each server has counted one, ran or skipped.
    let mut waited = 0;
    let (fa, fb) = loop {
        let (fa, fb) = (prune_figures(&a).await, prune_figures(&b).await);
        if fa.1 + fa.2 == 1 && fb.1 + fb.2 == 1 && fa.0 + fb.0 >= 2500 {
            break (fa, fb);
        }
        assert!(waited < 600, "the prune rounds never finished: {fa:?} {fb:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    };
    eprintln!("figures: (pruned, ran, skipped) first server {fa:?}, second {fb:?}");
    // One server ran its round and pruned everything; the other skipped its round.
    assert!(fa == (2500, 1, 0) && fb == (0, 0, 1) || fa == (0, 0, 1) && fb == (2500, 1, 0));
    assert_eq!(count(&a, "SELECT count(*) FROM refresh_tokens", None), 0);
    stop.cancel();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    }
}

#[test]
fn prune_command_prints_the_count_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let (_, owner) = seed_owner(dir.path(), db, "owner@acme.test", "a-long-password");
    let owner = Uuid::parse_str(&owner).unwrap();
    let server =
        Server::start(dir.path(), &["serve", "--database", db, "--listen", "127.0.0.1:0"], &[]);
    let client = reqwest::blocking::Client::new();
    let login = client
        .post(format!("{}/auth/login", server.base))
        .json(&json!({"email": "owner@acme.test", "password": "a-long-password"}))
        .send()
        .unwrap();
    let refresh =
        login.json::<serde_json::Value>().unwrap()["refresh_token"].as_str().unwrap().to_owned();
    // History the real clock has left behind: revoked 40 and 10 days ago.
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    let now = Utc::now();
    for days in [40, 40, 10] {
        let at = now - TimeDelta::days(days);
        let row = token_row(false, Uuid::new_v4(), owner, at, at, Some(at));
        c.execute_batch(&format!(
            "INSERT INTO refresh_tokens
               (id, session_id, user_id, token_hash, session_started_at, issued_at, revoked_at)
             VALUES {row}"
        ))
        .unwrap();
    }
    let out = run(dir.path(), &["prune", "--database", db], &[], None);
    out.assert_ok();
    assert_eq!(out.json(), json!({"deleted": 2}));
    assert_eq!(out.stderr, "");
    // With a retention of 5 days the third goes too.
    let out = run(
        dir.path(),
        &["prune", "--database", db],
        &[("SESSIOND_SESSION_RETENTION_DAYS", "5")],
        None,
    );
    assert_eq!(out.json(), json!({"deleted": 1}), "{out:?}");
    // The served session is untouched.
    let r = client
        .post(format!("{}/auth/refresh", server.base))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    run(dir.path(), &["prune", "--database", db, "--bogus"], &[], None).assert_fails(2, "--bogus");
}
