//! POST /auth/refresh: rotation, races, timeouts under the policy as it stands now,
//! reuse detection.

use std::collections::HashSet;

use futures::future::join_all;
use serde_json::json;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::helpers::{TestApp, tokens};

const MINUTE: i64 = 60;

#[tokio::test]
async fn refresh_rotates_the_token() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let first = app.login(&t.owner).await;
    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.body["token_type"], "bearer");
    assert_eq!(r.body["expires_in"], 300);
    let second = tokens(&r);
    assert_ne!(second.refresh, first.refresh);
    assert!(app.access_ok(&second.access).await);
    app.refresh(&first.refresh).await.refused("invalid_refresh_token", "rotated");
    assert_eq!(app.refresh(&second.refresh).await.status, 200);
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_invalid() {
    let app = TestApp::spawn().await;
    // 51 dashes are not canonical base64url (the last character's spare bits are set).
    let shaped = ["A".repeat(43), "A".repeat(51), "-".repeat(51), "A".repeat(52)];
    let odd = ["", "x", "not-a-token-at-all", "😀\u{0}'; DROP TABLE users;--"];
    for token in shaped.iter().map(String::as_str).chain(odd) {
        app.refresh(token).await.refused("invalid_refresh_token", "unknown_token");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token's prefix only orders the stored keys: a token that keeps a live token's prefix
/// (its first 8 characters, the 6 bytes of its instant) but not the rest is unknown, and
/// the live token still works.
#[tokio::test]
async fn a_token_with_a_live_tokens_prefix_and_another_secret_is_unknown() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let live = app.login(&t.engineer).await.refresh;
    assert_eq!(live.len(), 51);
    let secret: [u8; 32] = rand::random();
    let forged = format!("{}{}", &live[..8], URL_SAFE_NO_PAD.encode(secret));
    assert_eq!(forged.len(), 51);
    assert_ne!(forged, live);
    app.refresh(&forged).await.refused("invalid_refresh_token", "unknown_token");
    app.rotate(&live).await;
}

/// Each token's stored key starts with the instant it was issued, by the server's clock:
/// milliseconds since the epoch, six bytes big-endian. The SHA-256 of the token follows.
/// So keys sort by issue time and a new one lands at the end of their unique index.
#[tokio::test]
async fn stored_keys_start_with_the_instant_of_issue() {
    use sha2::Digest;
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let mut issued = vec![app.login(&t.engineer).await.refresh];
    for _ in 0..3 {
        app.advance(60).await;
        issued.push(app.rotate(issued.last().unwrap()).await.refresh);
    }
    let sql = format!(
        "SELECT {}, issued_at FROM refresh_tokens ORDER BY token_hash",
        app.hex_of("token_hash")
    );
    let rows = app.sql(&sql, &[]);
    let keys: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r[0].clone().unwrap(), r[1].as_deref().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(keys.len(), issued.len());
    let by_key: Vec<i64> = keys.iter().map(|k| k.1).collect();
    let mut by_time = by_key.clone();
    by_time.sort_unstable();
    assert_eq!(by_key, by_time, "keys in the order of issue");
    assert_eq!(by_time.windows(2).filter(|w| w[1] - w[0] >= 60_000).count(), 3);
    for ((key, issued_at), token) in keys.iter().zip(&issued) {
        assert_eq!(&key[..12], format!("{issued_at:012x}"), "the prefix is the issue instant");
        assert_eq!(key[12..], hex(&sha2::Sha256::digest(token.as_bytes())));
    }
}

/// A token handed out before the time prefix (43 characters, stored under its bare
/// SHA-256) still rotates, ends its session at logout, and is refused once exchanged.
#[tokio::test]
async fn a_token_from_before_the_time_prefix_still_works() {
    use sha2::Digest;
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let encode = |seed: u8| URL_SAFE_NO_PAD.encode([seed; 32]);
    let set = format!(
        "UPDATE refresh_tokens SET token_hash = {} WHERE token_hash = {}",
        app.bytes_param(1),
        app.bytes_param(2)
    );
    let mut old_style = Vec::new();
    for seed in [1, 2] {
        let issued = app.login(&t.engineer).await.refresh;
        let legacy = encode(seed);
        assert_eq!(legacy.len(), 43);
        let bare = hex(&sha2::Sha256::digest(legacy.as_bytes()));
        app.sql(&set, &[&bare, &hex(&sessiond::auth::refresh::lookup_key(&issued))]);
        app.refresh(&issued).await.refused("invalid_refresh_token", "unknown_token");
        old_style.push(legacy);
    }

    let successor = app.rotate(&old_style[0]).await.refresh;
    assert_eq!(successor.len(), 51, "the successor has the new shape");
    app.refresh(&old_style[0]).await.refused("invalid_refresh_token", "rotated");
    app.rotate(&successor).await;

    let r = app.post("/auth/logout", None, json!({ "refresh_token": old_style[1] })).await;
    assert_eq!(r.status, 204, "{}", r.text);
    app.refresh(&old_style[1]).await.refused("invalid_refresh_token", "logged_out");
}

/// 16 refreshes of one token at once, five times over: exactly one winner each time.
async fn one_winner_per_race(app: &TestApp) {
    let t = app.tenant("Acme").await;
    for round in 0..5 {
        let tok = app.login(&t.engineer).await;
        let answers = join_all((0..16).map(|_| app.refresh(&tok.refresh))).await;
        let winners: Vec<_> = answers.iter().filter(|r| r.status == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        for r in answers.iter().filter(|r| r.status != 200) {
            r.refused("invalid_refresh_token", "rotated");
        }
        // The winner's token is the one live token of the session.
        app.rotate(&tokens(winners[0]).refresh).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_have_exactly_one_winner_on_a_file() {
    if crate::helpers::sqlite_only("a SQLite database file") {
        return;
    }
    one_winner_per_race(&TestApp::spawn_on_file().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_have_exactly_one_winner_in_memory() {
    one_winner_per_race(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn idle_timeout_ends_a_session_and_the_token_stays_dead() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.owner).await;
    app.advance(1440 * MINUTE + 1).await;
    app.refresh(&tok.refresh).await.refused("session_idle_timeout", "idle_timeout");
    app.refresh(&tok.refresh).await.refused("invalid_refresh_token", "idle_timeout");
}

#[tokio::test]
async fn a_session_is_alive_at_exactly_its_idle_limit() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.owner).await;
    // The test clock moves in whole seconds from the login instant; 1 s short of the limit
    // plus request latency stays within it.
    app.advance(1440 * MINUTE - 1).await;
    assert_eq!(app.refresh(&tok.refresh).await.status, 200);
}

#[tokio::test]
async fn refreshing_slides_the_idle_window() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 15, "absolute_minutes": 600})).await;
    let mut tok = app.login(&t.engineer).await;
    // 10 refreshes 14 minutes apart: 140 minutes, far past one idle window.
    for _ in 0..10 {
        app.advance(14 * MINUTE).await;
        tok = app.rotate(&tok.refresh).await;
    }
    app.advance(15 * MINUTE + 1).await;
    app.refresh(&tok.refresh).await.refused("session_idle_timeout", "idle_timeout");
}

#[tokio::test]
async fn absolute_timeout_ends_even_an_active_session() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 30, "absolute_minutes": 60})).await;
    let mut tok = app.login(&t.engineer).await;
    for _ in 0..2 {
        app.advance(25 * MINUTE).await;
        tok = app.rotate(&tok.refresh).await;
    }
    app.advance(10 * MINUTE + 1).await; // 60 min + 1 s after login, 10 min after the last refresh
    app.refresh(&tok.refresh).await.refused("session_absolute_timeout", "absolute_timeout");
    app.refresh(&tok.refresh).await.refused("invalid_refresh_token", "absolute_timeout");
}

#[tokio::test]
async fn absolute_is_checked_before_idle() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.owner).await;
    app.advance(10080 * MINUTE + 1).await; // past both defaults
    app.refresh(&tok.refresh).await.refused("session_absolute_timeout", "absolute_timeout");
}

#[tokio::test]
async fn a_tightened_policy_governs_live_sessions_at_their_next_refresh() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let live = app.login(&t.engineer).await;
    app.advance(20 * MINUTE).await;
    // Under the default idle limit (1440 min) the session is fine; tighten it to 15.
    let owner = app.login(&t.owner).await;
    let r = app.set_policy(&owner.access, json!({"idle_minutes": 15})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.refresh(&live.refresh).await.refused("session_idle_timeout", "idle_timeout");

    // The absolute limit likewise: a 70-minute-old, recently refreshed session ends when
    // the absolute limit drops to 60 minutes.
    let mut old = app.login(&t.admin).await;
    for _ in 0..7 {
        app.advance(10 * MINUTE).await;
        old = app.rotate(&old.refresh).await;
    }
    let owner = app.login(&t.owner).await;
    let r = app.set_policy(&owner.access, json!({"absolute_minutes": 60})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.refresh(&old.refresh).await.refused("session_absolute_timeout", "absolute_timeout");
}

#[tokio::test]
async fn loosening_the_policy_revives_nothing_already_revoked_but_helps_live_sessions() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 15})).await;
    let tok = app.login(&t.engineer).await;
    app.advance(20 * MINUTE).await;
    // Loosen before the session's next refresh: the policy as it stands now decides.
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 60})).await;
    assert_eq!(app.refresh(&tok.refresh).await.status, 200);
}

#[tokio::test]
async fn a_rotated_token_within_the_grace_window_is_just_invalid() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let first = app.login(&t.owner).await;
    let second = app.rotate(&first.refresh).await;
    app.advance(9).await; // inside the 10 s grace (real milliseconds pass too)
    app.refresh(&first.refresh).await.refused("invalid_refresh_token", "rotated");
    assert_eq!(app.refresh(&second.refresh).await.status, 200, "the session survives");
    let owner = app.login(&t.owner).await;
    assert!(app.audit(&owner.access, "session.refresh_token_reused").await.is_empty());
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_whole_session() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let first = app.login(&t.engineer).await;
    let second = app.rotate(&first.refresh).await;
    let bystander = app.login(&t.engineer).await;
    app.advance(11).await;
    let r = app.refresh(&first.refresh).await;
    r.refused("invalid_refresh_token", "reuse_detected");
    assert_eq!(r.headers["cache-control"], "no-store");
    app.refresh(&second.refresh).await.refused("invalid_refresh_token", "reuse_detected");
    assert!(!app.access_ok(&second.access).await, "the session's access token is refused at once");
    assert_eq!(app.refresh(&bystander.refresh).await.status, 200, "other sessions are untouched");

    let owner = app.login(&t.owner).await;
    let events = app.audit(&owner.access, "session.refresh_token_reused").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["user_id"], t.engineer.id.to_string());
    assert_eq!(events[0]["resource_type"], "session");
    assert_eq!(events[0]["details"]["revoked_count"], 1);

    // Replaying against the ended session changes nothing and adds no audit row.
    app.advance(60).await;
    app.refresh(&first.refresh).await.refused("invalid_refresh_token", "reuse_detected");
    let owner = app.login(&t.owner).await;
    assert_eq!(app.audit(&owner.access, "session.refresh_token_reused").await.len(), 1);
}

#[tokio::test]
async fn every_refresh_issues_distinct_tokens() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let mut tok = app.login(&t.owner).await;
    let mut seen = HashSet::new();
    for _ in 0..20 {
        assert!(seen.insert(tok.refresh.clone()));
        tok = app.rotate(&tok.refresh).await;
    }
}

#[tokio::test]
async fn the_reuse_grace_comes_from_the_configuration() {
    let app = TestApp::spawn_with(|c| c.session.reuse_grace_seconds = 120).await;
    let t = app.tenant("Acme").await;
    let first = app.login(&t.owner).await;
    let second = app.rotate(&first.refresh).await;
    app.advance(100).await;
    app.refresh(&first.refresh).await.refused("invalid_refresh_token", "rotated");
    let third = app.rotate(&second.refresh).await; // still inside 120 s: the session lives
    app.advance(121).await;
    app.refresh(&second.refresh).await.refused("invalid_refresh_token", "reuse_detected");
    app.refresh(&third.refresh).await.refused("invalid_refresh_token", "reuse_detected"); // reuse ended it
}
