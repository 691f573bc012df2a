//! POST /accounts/me/security/revoke-sessions — the six behaviours of the original
//! suite, and the rest of the contract's rows.

use reqwest::Method;
use serde_json::json;

use sessiond::auth::Role;

use crate::helpers::TestApp;

const PATH: &str = "/accounts/me/security/revoke-sessions";

#[tokio::test]
async fn scope_all_ends_the_callers_own_session_too() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let eng = app.login(&t.engineer).await;
    let r = app.post(PATH, Some(&owner.access), json!({"scope": "all"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"revoked_count": 2}));
    app.refresh(&owner.refresh).await.refused("invalid_refresh_token", "revoked_all");
    app.refresh(&eng.refresh).await.refused("invalid_refresh_token", "revoked_all");
    assert!(
        !app.access_ok(&owner.access).await,
        "the caller's access token is refused on the next request"
    );
    assert!(!app.access_ok(&eng.access).await);
}

#[tokio::test]
async fn scope_others_keeps_the_callers_sessions() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let owner_elsewhere = app.login(&t.owner).await;
    let eng = app.login(&t.engineer).await;
    let admin = app.login(&t.admin).await;
    let r = app.post(PATH, Some(&owner.access), json!({"scope": "others"})).await;
    assert_eq!(r.body, json!({"revoked_count": 2}), "{}", r.text);
    app.refresh(&eng.refresh).await.refused("invalid_refresh_token", "revoked_others");
    app.refresh(&admin.refresh).await.refused("invalid_refresh_token", "revoked_others");
    assert!(!app.access_ok(&eng.access).await);
    assert!(app.access_ok(&owner.access).await);
    // Every token of the calling user is kept, not only the calling session's.
    assert_eq!(app.refresh(&owner.refresh).await.status, 200);
    assert_eq!(app.refresh(&owner_elsewhere.refresh).await.status, 200);
}

#[tokio::test]
async fn the_count_is_scoped_to_the_callers_account() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let owner = app.login(&acme.owner).await;
    app.login(&acme.engineer).await;
    let g_owner = app.login(&globex.owner).await;
    let g_eng = app.login(&globex.engineer).await;
    app.login(&globex.admin).await;

    let r = app.post(PATH, Some(&owner.access), json!({"scope": "all"})).await;
    assert_eq!(r.body, json!({"revoked_count": 2}), "only Acme's two tokens: {}", r.text);
    assert_eq!(app.refresh(&g_owner.refresh).await.status, 200, "Globex's owner is untouched");
    assert_eq!(app.refresh(&g_eng.refresh).await.status, 200);
    assert!(app.access_ok(&g_owner.access).await);
}

#[tokio::test]
async fn non_owners_get_403_and_nothing_is_revoked() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let victim = app.login(&t.owner).await;
    for user in [&t.engineer, &t.admin] {
        let tok = app.login(user).await;
        app.post(PATH, Some(&tok.access), json!({"scope": "all"}))
            .await
            .assert(403, "owner_required");
        app.post(PATH, Some(&tok.access), json!({})).await.assert(403, "owner_required");
    }
    assert_eq!(app.refresh(&victim.refresh).await.status, 200);
    app.request(Method::POST, PATH, None, Some(json!({}))).await.assert(401, "not_authenticated");
}

#[tokio::test]
async fn exactly_one_audit_row_with_scope_and_count() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.login(&t.engineer).await;
    app.login(&t.engineer).await;
    let r = app.post(PATH, Some(&owner.access), json!({"scope": "others"})).await;
    assert_eq!(r.body["revoked_count"], 2);
    let events = app.audit(&owner.access, "account.sessions_revoked_bulk").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["details"], json!({"scope": "others", "revoked_count": 2}));
    assert_eq!(events[0]["user_id"], t.owner.id.to_string());
    assert_eq!(events[0]["resource_id"], t.account.to_string());
}

#[tokio::test]
async fn a_second_call_right_after_revokes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.login(&t.engineer).await;
    app.login(&t.admin).await;
    let first = app.post(PATH, Some(&owner.access), json!({"scope": "others"})).await;
    assert_eq!(first.body, json!({"revoked_count": 2}));
    let second = app.post(PATH, Some(&owner.access), json!({"scope": "others"})).await;
    assert_eq!(second.status, 200, "the caller's access token still works: {}", second.text);
    assert_eq!(
        second.body,
        json!({"revoked_count": 0}),
        "already revoked rows are not stamped again"
    );
    let events = app.audit(&owner.access, "account.sessions_revoked_bulk").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["details"], json!({"scope": "others", "revoked_count": 0}));
}

#[tokio::test]
async fn scope_defaults_to_all_and_other_values_are_422() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    for body in [
        json!({"scope": "everyone"}),
        json!({"scope": "ALL"}),
        json!({"scope": null}),
        json!({"scope": 1}),
        json!({"scope": "all", "extra": true}),
    ] {
        let r = app.post(PATH, Some(&owner.access), body.clone()).await;
        assert_eq!(r.status, 422, "{body} -> {}", r.text);
    }
    assert!(app.access_ok(&owner.access).await, "nothing was revoked by the refused calls");
    app.login(&t.engineer).await;
    let r = app.post(PATH, Some(&owner.access), json!({})).await;
    assert_eq!(r.body, json!({"revoked_count": 2}), "{}", r.text);
    assert!(!app.access_ok(&owner.access).await, "{{}} meant all: the caller is signed out too");
    let owner = app.login(&t.owner).await;
    let events = app.audit(&owner.access, "account.sessions_revoked_bulk").await;
    assert_eq!(events[0]["details"]["scope"], "all");
}

#[tokio::test]
async fn already_rotated_and_timed_out_tokens_are_not_counted() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let eng = app.login(&t.engineer).await;
    // Three rotations leave three revoked tokens and one live one in the chain.
    let mut tok = eng;
    for _ in 0..3 {
        tok = app.rotate(&tok.refresh).await;
    }
    let owner = app.login(&t.owner).await;
    let r = app.post(PATH, Some(&owner.access), json!({"scope": "others"})).await;
    assert_eq!(r.body, json!({"revoked_count": 1}), "{}", r.text);
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_and_revoke_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let eng = app.login(&t.engineer).await;
    for query in ["dryrun=true", "dry_run=yes", "dry_run=1", "dry_run=true&x=1"] {
        let r = app
            .post(&format!("{PATH}?{query}"), Some(&owner.access), json!({"scope": "all"}))
            .await;
        assert_eq!(r.status, 422, "{query}: {}", r.text);
    }
    assert!(app.access_ok(&owner.access).await);
    assert_eq!(app.refresh(&eng.refresh).await.status, 200);
    assert!(app.audit(&owner.access, "account.sessions_revoked_bulk").await.is_empty());
}

/// New users' ids start with their account's: in the database's own order of user ids
/// (the order of the token table's key on SQLite), one account's users sit side by side
/// however their creation interleaved with other accounts', so an account's revoke
/// writes pages of that account and only one shared page at each end of its range.
#[tokio::test]
async fn one_accounts_users_sort_together() {
    let app = TestApp::spawn_inspectable().await;
    let accounts = [app.account("A").await, app.account("B").await, app.account("C").await];
    for i in 0..4 {
        for (n, &account) in accounts.iter().enumerate() {
            let user = app.user(account, &format!("u{i}@{n}.test"), Role::Engineer).await;
            assert_eq!(user.id.to_string()[..13], account.to_string()[..13], "prefix of {account}");
        }
    }
    let sorted = app.sql("SELECT account_id FROM users ORDER BY id", &[]);
    assert_eq!(sorted.len(), 12);
    let runs = 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(runs, accounts.len(), "each account's users in one run: {sorted:?}");
}
