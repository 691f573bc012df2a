//! Contract §4c, "Why a refresh failed": every refusal carries a `reason`, produced here
//! by the real action and read back through `/auth/refresh`; where an audited action
//! revoked the token, the refusal names that audit event.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, Tokens, session_of};

const MINUTE: i64 = 60;

/// The id of the newest audit event `action` of the owner's account.
async fn event_id(app: &TestApp, owner: &Tokens, action: &str) -> String {
    let events = app.audit(&owner.access, action).await;
    assert!(!events.is_empty(), "no {action} event");
    events[0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn unknown_token() {
    let app = TestApp::spawn().await;
    let r = app.refresh("no-such-token").await;
    assert_eq!(r.refused("invalid_refresh_token", "unknown_token").audit_event_id(), None);
}

#[tokio::test]
async fn logged_out_names_the_logout() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.engineer).await;
    assert_eq!(
        app.post("/auth/logout", None, json!({"refresh_token": tok.refresh})).await.status,
        204
    );
    let r = app.refresh(&tok.refresh).await;
    r.refused("invalid_refresh_token", "logged_out");
    let owner = app.login(&t.owner).await;
    assert_eq!(r.audit_event_id(), Some(event_id(&app, &owner, "auth.logout").await.as_str()));
}

#[tokio::test]
async fn rotated_within_the_grace_window() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let first = app.login(&t.engineer).await;
    app.rotate(&first.refresh).await;
    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.refused("invalid_refresh_token", "rotated").audit_event_id(), None);
}

#[tokio::test]
async fn reuse_detected_names_the_detection_for_thief_and_victim() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let first = app.login(&t.engineer).await;
    let second = app.rotate(&first.refresh).await;
    app.advance(11).await;
    let thief = app.refresh(&first.refresh).await;
    thief.refused("invalid_refresh_token", "reuse_detected");
    let victim = app.refresh(&second.refresh).await;
    victim.refused("invalid_refresh_token", "reuse_detected");
    let owner = app.login(&t.owner).await;
    let event = event_id(&app, &owner, "session.refresh_token_reused").await;
    assert_eq!(thief.audit_event_id(), Some(event.as_str()));
    assert_eq!(victim.audit_event_id(), Some(event.as_str()));
    // A later replay ends nothing and writes nothing; it is told how the session ended.
    let replay = app.refresh(&first.refresh).await;
    replay.refused("invalid_refresh_token", "reuse_detected");
    assert_eq!(replay.audit_event_id(), Some(event.as_str()));
    assert_eq!(app.audit(&owner.access, "session.refresh_token_reused").await.len(), 1);
}

#[tokio::test]
async fn a_stale_tabs_old_token_after_the_session_ended_is_told_why_not_alarmed() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    // Tab A refreshes; tab B still holds the old token. Then the session ends: by logout,
    // by an owner's revoke, by a timeout. Tab B comes back after the grace window.
    let ends: [(&str, &str); 3] =
        [("logout", "logged_out"), ("revoke", "revoked_others"), ("timeout", "idle_timeout")];
    for (how, reason) in ends {
        let tab_b = app.login(&t.engineer).await;
        let tab_a = app.rotate(&tab_b.refresh).await;
        match how {
            "logout" => {
                let body = json!({"refresh_token": tab_a.refresh});
                assert_eq!(app.post("/auth/logout", None, body).await.status, 204);
            }
            "revoke" => {
                let owner = app.login(&t.owner).await;
                let path = "/accounts/me/security/revoke-sessions";
                let r = app.post(path, Some(&owner.access), json!({"scope": "others"})).await;
                assert_eq!(r.status, 200);
            }
            _ => {
                app.advance(1441 * MINUTE).await;
                app.refresh(&tab_a.refresh).await.refused("session_idle_timeout", "idle_timeout");
            }
        }
        app.advance(11).await;
        let r = app.refresh(&tab_b.refresh).await;
        r.refused("invalid_refresh_token", reason);
        let owner = app.login(&t.owner).await;
        assert!(app.audit(&owner.access, "session.refresh_token_reused").await.is_empty(), "{how}");
    }
}

#[tokio::test]
async fn revoked_all_and_revoked_others_name_the_bulk_revoke() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let eng = app.login(&t.engineer).await;
    let path = "/accounts/me/security/revoke-sessions";
    assert_eq!(app.post(path, Some(&owner.access), json!({"scope": "others"})).await.status, 200);
    let r = app.refresh(&eng.refresh).await;
    r.refused("invalid_refresh_token", "revoked_others");
    let others = event_id(&app, &owner, "account.sessions_revoked_bulk").await;
    assert_eq!(r.audit_event_id(), Some(others.as_str()));

    let admin = app.login(&t.admin).await;
    assert_eq!(app.post(path, Some(&owner.access), json!({})).await.status, 200);
    let r = app.refresh(&admin.refresh).await;
    r.refused("invalid_refresh_token", "revoked_all");
    let r_owner = app.refresh(&owner.refresh).await;
    r_owner.refused("invalid_refresh_token", "revoked_all");
    let owner2 = app.login(&t.owner).await;
    let all = event_id(&app, &owner2, "account.sessions_revoked_bulk").await;
    assert_ne!(all, others);
    assert_eq!(r.audit_event_id(), Some(all.as_str()));
    assert_eq!(r_owner.audit_event_id(), Some(all.as_str()));
    // The engineer's token keeps the cause that ended it first.
    assert_eq!(app.refresh(&eng.refresh).await.audit_event_id(), Some(others.as_str()));
}

#[tokio::test]
async fn revoked_single_names_the_single_revoke() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let eng = app.login(&t.engineer).await;
    let path = format!("/accounts/me/security/sessions/{}", session_of(&eng.access));
    let r = app.request(Method::DELETE, &path, Some(&owner.access), None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app.refresh(&eng.refresh).await;
    r.refused("invalid_refresh_token", "revoked_single");
    let event = event_id(&app, &owner, "account.session_revoked").await;
    assert_eq!(r.audit_event_id(), Some(event.as_str()));
}

#[tokio::test]
async fn user_disabled_names_the_disable() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.engineer).await;
    sessiond::service::users::disable(&app.state.db, &t.engineer.email, app.state.clock.now())
        .await
        .unwrap();
    let r = app.refresh(&tok.refresh).await;
    r.refused("invalid_refresh_token", "user_disabled");
    let owner = app.login(&t.owner).await;
    assert_eq!(r.audit_event_id(), Some(event_id(&app, &owner, "user.disabled").await.as_str()));
}

#[tokio::test]
async fn an_inactive_owner_with_a_live_token_is_user_disabled_without_an_event() {
    // Deactivated behind the server's back (not through `user disable`): the refresh
    // itself finds the user inactive and revokes the token.
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.engineer).await;
    app.sql("UPDATE users SET is_active = 0 WHERE id = ?1", &[&t.engineer.id.to_string()]);
    let r = app.refresh(&tok.refresh).await;
    assert_eq!(r.refused("invalid_refresh_token", "user_disabled").audit_event_id(), None);
    let r = app.refresh(&tok.refresh).await;
    assert_eq!(r.refused("invalid_refresh_token", "user_disabled").audit_event_id(), None);
}

#[tokio::test]
async fn password_changed_names_the_change() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let here = app.login(&t.engineer).await;
    let elsewhere = app.login(&t.engineer).await;
    let body =
        json!({"current_password": crate::helpers::PASSWORD, "new_password": "a new passphrase"});
    assert_eq!(app.post("/auth/password", Some(&here.access), body).await.status, 204);
    let r = app.refresh(&elsewhere.refresh).await;
    r.refused("invalid_refresh_token", "password_changed");
    let owner = app.login(&t.owner).await;
    let event = event_id(&app, &owner, "auth.password_changed").await;
    assert_eq!(r.audit_event_id(), Some(event.as_str()));
}

#[tokio::test]
async fn timeouts_carry_the_limit_applied_and_stay_explained() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 20, "absolute_minutes": 90})).await;

    let idle = app.login(&t.engineer).await;
    app.advance(21 * MINUTE).await;
    let r = app.refresh(&idle.refresh).await;
    r.refused("session_idle_timeout", "idle_timeout");
    assert_eq!((r.body["limit_minutes"].clone(), r.audit_event_id()), (json!(20), None));
    // Presented again, the token is simply invalid, and still says why it ended.
    let r = app.refresh(&idle.refresh).await;
    assert_eq!(r.refused("invalid_refresh_token", "idle_timeout").body["limit_minutes"], 20);

    let mut old = app.login(&t.admin).await;
    for _ in 0..8 {
        app.advance(10 * MINUTE).await;
        old = app.rotate(&old.refresh).await;
    }
    app.advance(11 * MINUTE).await; // 91 minutes old, 11 idle
    let r = app.refresh(&old.refresh).await;
    r.refused("session_absolute_timeout", "absolute_timeout");
    assert_eq!(r.body["limit_minutes"], 90);
    let r = app.refresh(&old.refresh).await;
    assert_eq!(r.refused("invalid_refresh_token", "absolute_timeout").body["limit_minutes"], 90);
}

#[tokio::test]
async fn the_cause_is_stored_on_the_revoked_rows() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let first = app.login(&t.engineer).await;
    app.rotate(&first.refresh).await;
    app.login(&t.admin).await;
    let r = app
        .post(
            "/accounts/me/security/revoke-sessions",
            Some(&owner.access),
            json!({"scope": "others"}),
        )
        .await;
    assert_eq!(r.body["revoked_count"], 2);
    let event = event_id(&app, &owner, "account.sessions_revoked_bulk").await;

    let rows: Vec<(String, Option<String>, i64)> = app
        .sql(
            "SELECT revoke_reason, revoked_by_event, count(*) FROM refresh_tokens
             WHERE revoked_at IS NOT NULL GROUP BY 1, 2 ORDER BY 1",
            &[],
        )
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone(), r[2].as_deref().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(
        rows,
        vec![("revoked_others".into(), Some(event), 2), ("rotated".into(), None, 1)],
        "the owner's live token stays unrevoked"
    );
}

#[tokio::test]
async fn tokens_revoked_before_causes_were_recorded_are_unknown() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.engineer).await;
    assert_eq!(
        app.post("/auth/logout", None, json!({"refresh_token": tok.refresh})).await.status,
        204
    );
    // What a schema-1 row looks like after the upgrade.
    app.sql("UPDATE refresh_tokens SET revoke_reason = NULL, revoked_by_event = NULL", &[]);
    let r = app.refresh(&tok.refresh).await;
    assert_eq!(r.refused("invalid_refresh_token", "unknown_token").audit_event_id(), None);
}

#[tokio::test]
async fn a_stale_token_whose_session_history_was_pruned_is_unknown() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let first = app.login(&t.engineer).await;
    let second = app.rotate(&first.refresh).await;
    assert_eq!(
        app.post("/auth/logout", None, json!({"refresh_token": second.refresh})).await.status,
        204
    );
    // What a prune that has removed the session's last token leaves behind.
    app.sql("DELETE FROM refresh_tokens WHERE replaced_by IS NULL", &[]);
    app.advance(11).await;
    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.refused("invalid_refresh_token", "unknown_token").audit_event_id(), None);
    let owner = app.login(&t.owner).await;
    assert!(app.audit(&owner.access, "session.refresh_token_reused").await.is_empty());
}
