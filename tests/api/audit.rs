//! GET /accounts/me/audit-events: order, paging, limits.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn events_come_newest_first_with_their_fields() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 30})).await;
    app.advance(5).await;
    let owner = app.login(&t.owner).await;
    let r = app.get("/accounts/me/audit-events", &owner.access).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "auth.login",
            "account.session_policy_update",
            "auth.login",
            "user.created",
            "user.created",
            "user.created",
            "account.created"
        ]
    );
    let e = &items[0];
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["action", "created_at", "details", "id", "resource_id", "resource_type", "user_id"]
    );
    uuid::Uuid::parse_str(e["id"].as_str().unwrap()).unwrap();
    let newest = chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str().unwrap()).unwrap();
    let older =
        chrono::DateTime::parse_from_rfc3339(items[1]["created_at"].as_str().unwrap()).unwrap();
    assert!(newest - older >= chrono::TimeDelta::seconds(5), "timestamps follow the server clock");
    assert!(e["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.body["next_before"], serde_json::Value::Null, "one page holds everything");
}

#[tokio::test]
async fn paging_with_limit_and_before_visits_every_event_once() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    for i in 0..7 {
        app.set_policy(&owner.access, json!({"idle_minutes": 20 + i})).await;
    }
    let all = app.get("/accounts/me/audit-events?limit=200", &owner.access).await;
    let all_ids: Vec<String> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all_ids.len(), 12);

    let mut seen = Vec::new();
    let mut path = "/accounts/me/audit-events?limit=5".to_owned();
    loop {
        let r = app.get(&path, &owner.access).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match r.body["next_before"].as_str() {
            Some(cursor) => {
                assert_eq!(cursor, items.last().unwrap()["id"]);
                path = format!("/accounts/me/audit-events?limit=5&before={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(seen, all_ids);
}

#[tokio::test]
async fn default_limit_is_50_and_bad_limits_are_422() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    for i in 0..60 {
        app.set_policy(&owner.access, json!({"idle_minutes": 20 + i})).await;
    }
    let r = app.get("/accounts/me/audit-events", &owner.access).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 50);
    assert!(r.body["next_before"].is_string());
    assert_eq!(
        app.get("/accounts/me/audit-events?limit=200", &owner.access).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        65
    );
    assert_eq!(
        app.get("/accounts/me/audit-events?limit=1", &owner.access).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for q in ["limit=0", "limit=201", "limit=-1", "limit=abc", "limit=1.5", "before=not-a-uuid"] {
        let r = app.get(&format!("/accounts/me/audit-events?{q}"), &owner.access).await;
        assert_eq!(r.status, 422, "{q} -> {}", r.text);
        assert!(r.body["detail"].is_string());
    }
}

#[tokio::test]
async fn an_unknown_cursor_gives_an_empty_page() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let r = app
        .get(&format!("/accounts/me/audit-events?before={}", uuid::Uuid::new_v4()), &owner.access)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"items": [], "next_before": null}));
}

#[tokio::test]
async fn only_owners_read_the_audit_trail() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let eng = app.login(&t.engineer).await;
    app.get("/accounts/me/audit-events", &eng.access).await.assert(403, "owner_required");
}
