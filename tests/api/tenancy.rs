//! Tenant isolation on every owner endpoint: each acts on the caller's account only.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn policy_changes_stay_in_their_account() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let a = app.login(&acme.owner).await;
    let g = app.login(&globex.owner).await;
    app.set_policy(&a.access, json!({"idle_minutes": 20, "absolute_minutes": 60})).await;
    let theirs = app.get("/accounts/me/security", &g.access).await;
    assert_eq!(theirs.body["idle_minutes"], serde_json::Value::Null);
    assert_eq!(theirs.body["effective_absolute_minutes"], 10080);

    // Acme's tight policy does not end Globex's sessions.
    let g_eng = app.login(&globex.engineer).await;
    let a_eng = app.login(&acme.engineer).await;
    app.advance(21 * 60).await;
    app.refresh(&a_eng.refresh).await.refused("session_idle_timeout", "idle_timeout");
    assert_eq!(app.refresh(&g_eng.refresh).await.status, 200);
}

#[tokio::test]
async fn audit_trails_are_separate() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let a = app.login(&acme.owner).await;
    let g = app.login(&globex.owner).await;
    app.set_policy(&a.access, json!({"idle_minutes": 20})).await;
    app.post("/accounts/me/security/revoke-sessions", Some(&a.access), json!({"scope": "others"}))
        .await;

    let mine = app.get("/accounts/me/audit-events?limit=200", &g.access).await;
    let items = mine.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for e in items {
        assert_ne!(e["action"], "account.session_policy_update", "{e}");
        assert_ne!(e["action"], "account.sessions_revoked_bulk", "{e}");
        assert_ne!(e["user_id"], acme.owner.id.to_string(), "{e}");
    }
    // Another account's event id is no cursor into this account.
    let acme_events = app.get("/accounts/me/audit-events?limit=1", &a.access).await;
    let foreign = acme_events.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = app.get(&format!("/accounts/me/audit-events?before={foreign}"), &g.access).await;
    assert_eq!(r.body, json!({"items": [], "next_before": null}));
}

#[tokio::test]
async fn a_user_sees_only_their_own_identity() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let g = app.login(&globex.engineer).await;
    let me = app.get("/auth/me", &g.access).await;
    assert_eq!(me.body["account_id"], globex.account.to_string());
    assert_ne!(me.body["account_id"], acme.account.to_string());
}
