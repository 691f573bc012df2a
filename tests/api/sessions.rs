//! GET /accounts/me/security/sessions and DELETE /accounts/me/security/sessions/{id}.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, Tokens, session_of, tokens};

const LIST: &str = "/accounts/me/security/sessions";

fn at(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .to_utc()
}

async fn list(app: &TestApp, access: &str) -> Vec<Value> {
    let r = app.get(LIST, access).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body.as_object().unwrap().len(), 1, "only items: {}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|s| s["session_id"].as_str().unwrap().to_owned()).collect()
}

async fn delete(app: &TestApp, access: &str, session: &str) -> crate::helpers::Resp {
    app.request(Method::DELETE, &format!("{LIST}/{session}"), Some(access), None).await
}

/// A login that sends a `User-Agent`.
async fn login_with_agent(app: &TestApp, email: &str, agent: &str) -> Tokens {
    let body = json!({"email": email, "password": PASSWORD}).to_string().into_bytes();
    let r = app
        .raw(
            Method::POST,
            "/auth/login",
            &[("content-type", "application/json"), ("user-agent", agent)],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    tokens(&r)
}

#[tokio::test]
async fn lists_every_active_session_with_its_fields_most_recent_first() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = login_with_agent(&app, &t.owner.email, "Firefox/140").await;
    app.advance(60).await;
    let eng = app.login(&t.engineer).await;
    app.advance(60).await;
    let admin = app.login(&t.admin).await;
    app.advance(60).await;
    // The engineer's refresh makes theirs the most recently active session.
    let eng = app.rotate(&eng.refresh).await;

    let items = list(&app, &owner.access).await;
    assert_eq!(
        ids(&items),
        [session_of(&eng.access), session_of(&admin.access), session_of(&owner.access)]
    );
    let mut keys: Vec<&str> = items[0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "absolute_expires_at",
            "current",
            "email",
            "idle_expires_at",
            "ip",
            "last_active_at",
            "role",
            "session_id",
            "started_at",
            "user_agent",
            "user_id"
        ]
    );

    let (e, o) = (&items[0], &items[2]);
    assert_eq!(e["user_id"], t.engineer.id.to_string());
    assert_eq!(e["email"], t.engineer.email);
    assert_eq!(e["role"], "engineer");
    assert_eq!(items[1]["role"], "admin");
    assert_eq!(o["role"], "owner");
    // Started at login, active at the refresh two minutes later; the default policy.
    let (started, last) = (at(&e["started_at"]), at(&e["last_active_at"]));
    assert!(last - started >= TimeDelta::seconds(120), "{e}");
    assert_eq!(at(&e["idle_expires_at"]), last + TimeDelta::minutes(1440));
    assert_eq!(at(&e["absolute_expires_at"]), started + TimeDelta::minutes(10080));
    assert_eq!(o["started_at"], o["last_active_at"], "never refreshed");
    assert!(e["started_at"].as_str().unwrap().ends_with('Z'));
    // What the client said at login.
    assert_eq!(o["user_agent"], "Firefox/140");
    assert_eq!(o["ip"], "127.0.0.1");
    assert_eq!(e["user_agent"], Value::Null, "this client sent none");
    assert_eq!(e["ip"], "127.0.0.1", "kept across the refresh");
    // Only the caller's own session is current.
    let current: Vec<bool> = items.iter().map(|s| s["current"].as_bool().unwrap()).collect();
    assert_eq!(current, [false, false, true]);
}

#[tokio::test]
async fn current_marks_the_calling_session_only() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let first = app.login(&t.owner).await;
    app.advance(1).await;
    let second = app.login(&t.owner).await;
    for (caller, other) in [(&first, &second), (&second, &first)] {
        let items = list(&app, &caller.access).await;
        assert_eq!(items.len(), 2);
        for s in &items {
            let mine = s["session_id"] == session_of(&caller.access);
            assert_eq!(s["current"], mine, "{s}");
            assert!(mine || s["session_id"] == session_of(&other.access));
        }
    }
}

#[tokio::test]
async fn ended_sessions_are_not_listed() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let logged_out = app.login(&t.engineer).await;
    app.post("/auth/logout", None, json!({"refresh_token": logged_out.refresh})).await;
    let rotated = app.login(&t.admin).await;
    let successor = app.rotate(&rotated.refresh).await;
    let disabled = app.login(&t.engineer).await;
    sessiond::service::users::disable(&app.state.db, &t.engineer.email, app.state.clock.now())
        .await
        .unwrap();

    let items = list(&app, &owner.access).await;
    assert_eq!(ids(&items), [session_of(&successor.access), session_of(&owner.access)]);
    assert!(!ids(&items).contains(&session_of(&logged_out.access)));
    assert!(!ids(&items).contains(&session_of(&disabled.access)));
    assert_eq!(
        session_of(&rotated.access),
        session_of(&successor.access),
        "one session, listed once"
    );
}

#[tokio::test]
async fn timeouts_under_the_current_policy_hide_sessions() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 15, "absolute_minutes": 60})).await;
    let idle = app.login(&t.engineer).await;
    let mut busy = app.login(&t.admin).await;
    // 16 minutes on: the engineer (and the owner's first session) have been idle too
    // long; the admin refreshed at 10. (Access tokens live 5 minutes: the owner logs in
    // again to ask.)
    app.advance(10 * 60).await;
    busy = app.rotate(&busy.refresh).await;
    app.advance(6 * 60).await;
    let owner = app.login(&t.owner).await;
    let items = list(&app, &owner.access).await;
    assert_eq!(ids(&items), [session_of(&owner.access), session_of(&busy.access)]);
    let b = &items[1];
    assert_eq!(at(&b["idle_expires_at"]), at(&b["last_active_at"]) + TimeDelta::minutes(15));
    assert_eq!(at(&b["absolute_expires_at"]), at(&b["started_at"]) + TimeDelta::minutes(60));

    // The policy as it stands now: loosening idle brings the engineer's session back.
    app.set_policy(&owner.access, json!({"idle_minutes": 30})).await;
    let items = list(&app, &owner.access).await;
    assert!(ids(&items).contains(&session_of(&idle.access)), "{items:?}");
    let e = items.iter().find(|s| s["session_id"] == session_of(&idle.access)).unwrap();
    assert_eq!(at(&e["idle_expires_at"]), at(&e["last_active_at"]) + TimeDelta::minutes(30));
    app.set_policy(&owner.access, json!({"idle_minutes": 15})).await;

    // Listing does not revoke: the refresh still reports the timeout itself.
    app.refresh(&idle.refresh).await.refused("session_idle_timeout", "idle_timeout");

    // Refreshed every 10 minutes, the admin's session still ends 60 minutes after login.
    busy = app.rotate(&busy.refresh).await;
    for _ in 0..4 {
        app.advance(10 * 60).await;
        busy = app.rotate(&busy.refresh).await;
    }
    let owner = app.login(&t.owner).await;
    app.advance(270).await;
    let items = list(&app, &owner.access).await;
    assert_eq!(ids(&items), [session_of(&owner.access)], "{items:?}");
    app.refresh(&busy.refresh).await.refused("session_absolute_timeout", "absolute_timeout");
}

#[tokio::test]
async fn other_accounts_sessions_are_neither_listed_nor_revocable() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let a = app.login(&acme.owner).await;
    let g = app.login(&globex.owner).await;
    let g_eng = app.login(&globex.engineer).await;
    assert_eq!(ids(&list(&app, &a.access).await), [session_of(&a.access)]);
    assert_eq!(
        ids(&list(&app, &g.access).await),
        [session_of(&g_eng.access), session_of(&g.access)]
    );

    delete(&app, &a.access, &session_of(&g_eng.access)).await.assert(404, "session_not_found");
    assert!(app.access_ok(&g_eng.access).await);
    assert_eq!(app.refresh(&g_eng.refresh).await.status, 200);
    assert!(app.audit(&a.access, "account.session_revoked").await.is_empty());
    assert!(app.audit(&g.access, "account.session_revoked").await.is_empty());
}

#[tokio::test]
async fn non_owners_get_403_and_no_token_401() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    for user in [&t.admin, &t.engineer] {
        let tok = app.login(user).await;
        app.get(LIST, &tok.access).await.assert(403, "owner_required");
        delete(&app, &tok.access, &session_of(&owner.access)).await.assert(403, "owner_required");
        delete(&app, &tok.access, "not-a-uuid").await.assert(403, "owner_required");
    }
    assert!(app.access_ok(&owner.access).await, "nothing was revoked");
    app.request(Method::GET, LIST, None, None).await.assert(401, "not_authenticated");
    let path = format!("{LIST}/{}", session_of(&owner.access));
    app.request(Method::DELETE, &path, None, None).await.assert(401, "not_authenticated");
}

#[tokio::test]
async fn delete_revokes_the_session_at_once_with_its_audit_row() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let eng = app.login(&t.engineer).await;
    let eng_other = app.login(&t.engineer).await;
    let target = session_of(&eng.access);

    let r = delete(&app, &owner.access, &target).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "");
    assert!(!app.access_ok(&eng.access).await, "its access token is refused at once");
    app.refresh(&eng.refresh).await.refused("invalid_refresh_token", "revoked_single");
    assert!(!ids(&list(&app, &owner.access).await).contains(&target));
    // Only that session: the engineer's other one and the owner's are untouched.
    assert!(app.access_ok(&eng_other.access).await);
    assert!(app.access_ok(&owner.access).await);

    let events = app.audit(&owner.access, "account.session_revoked").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["details"],
        json!({"session_id": target, "target_user_id": t.engineer.id})
    );
    assert_eq!(events[0]["user_id"], t.owner.id.to_string());
    assert_eq!(events[0]["resource_type"], "session");
    assert_eq!(events[0]["resource_id"], target);

    // Gone now: a second delete is a 404 and writes nothing.
    delete(&app, &owner.access, &target).await.assert(404, "session_not_found");
    assert_eq!(app.audit(&owner.access, "account.session_revoked").await.len(), 1);
}

#[tokio::test]
async fn unknown_malformed_and_expired_ids_are_404() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 15})).await;
    let idle = app.login(&t.engineer).await;
    app.advance(16 * 60).await;
    let owner = app.login(&t.owner).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let upper = session_of(&owner.access).to_uppercase();
    for id in [unknown.as_str(), "not-a-uuid", "%FF", "12345", &session_of(&idle.access)] {
        delete(&app, &owner.access, id).await.assert(404, "session_not_found");
    }
    assert!(app.audit(&owner.access, "account.session_revoked").await.is_empty());
    // The expired session was left as it was: its refresh reports the timeout.
    app.refresh(&idle.refresh).await.refused("session_idle_timeout", "idle_timeout");
    // A UUID in upper case names the same session.
    assert_eq!(delete(&app, &owner.access, &upper).await.status, 204);
    assert!(!app.access_ok(&owner.access).await);
}

#[tokio::test]
async fn an_owner_can_end_their_own_current_session() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let other = app.login(&t.owner).await;
    assert_eq!(delete(&app, &owner.access, &session_of(&owner.access)).await.status, 204);
    assert!(!app.access_ok(&owner.access).await);
    app.refresh(&owner.refresh).await.refused("invalid_refresh_token", "revoked_single");
    assert_eq!(ids(&list(&app, &other.access).await), [session_of(&other.access)]);
}
