//! Contract §4c, `POST /auth/password`: a signed-in user changes their own password.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

const PATH: &str = "/auth/password";
const NEW: &str = "a brand new passphrase";

#[tokio::test]
async fn changing_the_password_signs_out_the_users_other_sessions_by_default() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let here = app.login(&t.engineer).await;
    let phone = app.login(&t.engineer).await;
    let laptop = app.login(&t.engineer).await;
    let colleague = app.login(&t.admin).await;

    let r = app
        .post(PATH, Some(&here.access), json!({"current_password": PASSWORD, "new_password": NEW}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());

    for other in [&phone, &laptop] {
        assert!(!app.access_ok(&other.access).await, "refused at once");
        app.refresh(&other.refresh).await.refused("invalid_refresh_token", "password_changed");
    }
    assert!(app.access_ok(&here.access).await, "the caller's own session stays");
    app.rotate(&here.refresh).await;
    assert!(app.access_ok(&colleague.access).await, "other users are untouched");

    app.try_login(&t.engineer.email, PASSWORD).await.assert(401, "invalid_credentials");
    assert_eq!(app.try_login(&t.engineer.email, NEW).await.status, 200);

    let owner = app.login(&t.owner).await;
    let events = app.audit(&owner.access, "auth.password_changed").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["user_id"], t.engineer.id.to_string());
    assert_eq!(events[0]["details"], json!({"revoked_count": 2}));
}

#[tokio::test]
async fn other_sessions_can_be_kept() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let here = app.login(&t.owner).await;
    let other = app.login(&t.owner).await;
    let body = json!({"current_password": PASSWORD, "new_password": NEW, "sign_out_other_sessions": false});
    assert_eq!(app.post(PATH, Some(&here.access), body).await.status, 204);
    assert!(app.access_ok(&other.access).await);
    app.rotate(&other.refresh).await;
    let events = app.audit(&here.access, "auth.password_changed").await;
    assert_eq!(events[0]["details"], json!({"revoked_count": 0}));
    assert_eq!(app.try_login(&t.owner.email, NEW).await.status, 200);
}

#[tokio::test]
async fn a_wrong_current_password_is_403_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let here = app.login(&t.owner).await;
    let other = app.login(&t.owner).await;
    let r = app
        .post(
            PATH,
            Some(&here.access),
            json!({"current_password": "not it at all", "new_password": NEW}),
        )
        .await;
    r.assert(403, "invalid_credentials");
    assert!(app.access_ok(&other.access).await);
    assert_eq!(app.try_login(&t.owner.email, PASSWORD).await.status, 200);
    app.try_login(&t.owner.email, NEW).await.assert(401, "invalid_credentials");
    assert!(app.audit(&here.access, "auth.password_changed").await.is_empty());
}

#[tokio::test]
async fn the_new_password_must_be_8_to_1024_characters() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let here = app.login(&t.engineer).await;
    for bad in ["", "seven77", &"x".repeat(1025)] {
        let r = app
            .post(
                PATH,
                Some(&here.access),
                json!({"current_password": PASSWORD, "new_password": bad}),
            )
            .await;
        assert_eq!(r.status, 422, "{} chars: {}", bad.chars().count(), r.text);
        assert!(r.detail().contains("password"), "{}", r.text);
    }
    assert_eq!(app.try_login(&t.engineer.email, PASSWORD).await.status, 200, "unchanged");
    // Characters, not bytes: eight non-ASCII characters are enough.
    let eight = "ééééééé€";
    let r = app
        .post(
            PATH,
            Some(&here.access),
            json!({"current_password": PASSWORD, "new_password": eight}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(app.try_login(&t.engineer.email, eight).await.status, 200);
}

#[tokio::test]
async fn the_length_is_checked_before_the_current_password() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let here = app.login(&t.engineer).await;
    let body = json!({"current_password": "wrong wrong", "new_password": "short"});
    let r = app.post(PATH, Some(&here.access), body).await;
    assert_eq!(r.status, 422, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_changes_from_the_same_password_exactly_one_wins() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    for round in 0..3 {
        let (current, next) = if round % 2 == 0 { (PASSWORD, NEW) } else { (NEW, PASSWORD) };
        let a = app.login_with(&t.engineer, current).await;
        let b = app.login_with(&t.engineer, current).await;
        let change = |tok: String, new: &'static str| {
            let app = &app;
            async move {
                let body = json!({"current_password": current, "new_password": new,
                                  "sign_out_other_sessions": false});
                app.post(PATH, Some(&tok), body).await
            }
        };
        let (ra, rb) = tokio::join!(change(a.access, next), change(b.access, next));
        let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [204, 403], "round {round}: {} / {}", ra.text, rb.text);
        assert_eq!(app.try_login(&t.engineer.email, next).await.status, 200);
    }
}

#[tokio::test]
async fn it_needs_a_live_session_and_a_well_formed_body() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let body = json!({"current_password": PASSWORD, "new_password": NEW});
    app.post(PATH, None, body.clone()).await.assert(401, "not_authenticated");
    let here = app.login(&t.engineer).await;
    assert_eq!(
        app.post("/auth/logout", None, json!({"refresh_token": here.refresh})).await.status,
        204
    );
    app.post(PATH, Some(&here.access), body).await.assert(401, "not_authenticated");

    let here = app.login(&t.engineer).await;
    for bad in [
        json!({"current_password": PASSWORD}),
        json!({"current_password": PASSWORD, "new_password": NEW, "sign_out_other_sessions": "yes"}),
        json!({"current_password": PASSWORD, "new_password": NEW, "extra": 1}),
        json!({"current_password": 1, "new_password": NEW}),
    ] {
        let r = app.post(PATH, Some(&here.access), bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    assert_eq!(app.try_login(&t.engineer.email, PASSWORD).await.status, 200, "unchanged");
}

/// Contract §6: wrong current passwords count toward the login throttle of the user's
/// email and the client's address, each with an `auth.password_change_failed` row; over
/// the limit even the right password gets 429 with `Retry-After`, until the window ends.
#[tokio::test]
async fn wrong_current_passwords_are_throttled_with_logins_and_audited() {
    let app = TestApp::spawn_with(|c| {
        c.auth.max_failed_logins = 3;
        c.auth.failed_login_window_minutes = 10;
    })
    .await;
    let t = app.tenant("Acme").await;
    let here = app.login(&t.owner).await;
    let wrong = json!({"current_password": "not it at all", "new_password": NEW});
    for _ in 0..3 {
        app.post(PATH, Some(&here.access), wrong.clone()).await.assert(403, "invalid_credentials");
    }
    let failed = app.audit(&here.access, "auth.password_change_failed").await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    for e in &failed {
        assert_eq!(e["user_id"], t.owner.id.to_string());
        assert_eq!(e["resource_type"], "user");
        assert_eq!(e["details"], json!({"reason": "invalid_password", "ip": "127.0.0.1"}));
    }

    // Over the limit: refused before the password is checked, the right one included.
    let right = json!({"current_password": PASSWORD, "new_password": NEW});
    let r = app.post(PATH, Some(&here.access), right.clone()).await;
    r.assert(429, "too_many_attempts");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "Retry-After {retry}");
    // One counter with logins: the same email from the same address cannot log in either.
    app.try_login(&t.owner.email, PASSWORD).await.assert(429, "too_many_attempts");
    assert_eq!(app.audit(&here.access, "auth.password_change_failed").await.len(), 3);
    assert!(app.audit(&here.access, "auth.password_changed").await.is_empty());

    // Once the window has passed (the access token too: a new login), it works again.
    app.advance(retry as i64).await;
    let here = app.login(&t.owner).await;
    let r = app.post(PATH, Some(&here.access), right).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(app.try_login(&t.owner.email, NEW).await.status, 200);
}

/// Failed logins and failed password checks add up in one window.
#[tokio::test]
async fn failed_logins_count_toward_a_password_change() {
    let app = TestApp::spawn_with(|c| c.auth.max_failed_logins = 2).await;
    let t = app.tenant("Acme").await;
    let here = app.login(&t.engineer).await;
    app.try_login(&t.engineer.email, "wrong wrong").await.assert(401, "invalid_credentials");
    let wrong = json!({"current_password": "not it at all", "new_password": NEW});
    app.post(PATH, Some(&here.access), wrong).await.assert(403, "invalid_credentials");
    let right = json!({"current_password": PASSWORD, "new_password": NEW});
    app.post(PATH, Some(&here.access), right).await.assert(429, "too_many_attempts");
    assert_eq!(app.try_login(&t.engineer.email, NEW).await.status, 429);
}
