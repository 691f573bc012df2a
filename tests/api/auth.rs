//! POST /auth/login, /auth/logout, GET /auth/me, and the bearer-token rules.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::json;
use sessiond::auth::jwt::Keys;

use crate::helpers::{PASSWORD, TestApp, tokens};

#[tokio::test]
async fn login_returns_a_token_pair_that_is_not_cached() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let r = app.try_login(&t.owner.email, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.body["token_type"], "bearer");
    assert_eq!(r.body["expires_in"], 300);
    assert!(r.body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert_eq!(r.body["refresh_token"].as_str().unwrap().len(), 51);
    assert_eq!(r.body.as_object().unwrap().len(), 4);
}

#[tokio::test]
async fn email_is_matched_case_insensitively() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let r = app.try_login(&t.owner.email.to_uppercase(), PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn wrong_password_unknown_email_and_inactive_user_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let r = app.try_login(&t.owner.email, "wrong password").await;
    r.assert(401, "invalid_credentials");
    assert_eq!(r.headers["cache-control"], "no-store");
    app.try_login("nobody@nowhere.test", PASSWORD).await.assert(401, "invalid_credentials");
    sessiond::service::users::disable(&app.state.db, &t.engineer.email, app.state.clock.now())
        .await
        .unwrap();
    app.try_login(&t.engineer.email, PASSWORD).await.assert(401, "invalid_credentials");
}

#[tokio::test]
async fn login_and_failed_login_are_audited() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    app.try_login(&t.engineer.email, "wrong password").await.assert(401, "invalid_credentials");
    app.try_login("stranger@acme.test", "whatever").await.assert(401, "invalid_credentials");
    let owner = app.login(&t.owner).await;
    let failed = app.audit(&owner.access, "auth.login_failed").await;
    assert_eq!(failed.len(), 1, "only the known email is audited: {failed:?}");
    assert_eq!(failed[0]["resource_id"], t.engineer.id.to_string());
    assert_eq!(failed[0]["details"]["reason"], "invalid_password");
    let logins = app.audit(&owner.access, "auth.login").await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["user_id"], t.owner.id.to_string());
}

#[tokio::test]
async fn me_describes_the_caller() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.engineer).await;
    let r = app.get("/auth/me", &tok.access).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"id": t.engineer.id, "email": t.engineer.email, "role": "engineer", "account_id": t.account})
    );
}

#[tokio::test]
async fn missing_malformed_and_forged_tokens_are_not_authenticated() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.owner).await;

    let r = app.request(Method::GET, "/auth/me", None, None).await;
    r.assert(401, "not_authenticated");
    assert_eq!(r.headers["www-authenticate"], "Bearer");

    for header in ["Bearer", "Bearer ", "Basic abc", "bearer", &tok.access, "Bearer not.a.jwt"] {
        let r = app.raw(Method::GET, "/auth/me", &[("authorization", header)], vec![]).await;
        r.assert(401, "not_authenticated");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }

    // Tampered payload: the signature no longer matches.
    let parts: Vec<&str> = tok.access.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    let forged_payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(!app.access_ok(&tampered).await);

    // alg: none, with and without a signature.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    assert!(!app.access_ok(&format!("{none_header}.{}.", parts[1])).await);
    assert!(!app.access_ok(&format!("{none_header}.{}.{}", parts[1], parts[2])).await);

    // Signed by another server's secret.
    let other = Keys::new(b"another-server-secret-0123456789abcdef", 5);
    let foreign = other.issue(t.owner.id, uuid::Uuid::new_v4(), app.state.clock.now()).unwrap();
    assert!(!app.access_ok(&foreign).await);

    // The genuine token still works: the refusals above were about the tokens.
    assert!(app.access_ok(&tok.access).await);
}

#[tokio::test]
async fn access_token_expires_exactly_at_its_lifetime() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.owner).await;
    app.advance(298).await;
    assert!(app.access_ok(&tok.access).await, "alive before exp");
    app.advance(2).await;
    assert!(!app.access_ok(&tok.access).await, "refused from exp on, no leeway");
}

#[tokio::test]
async fn disabling_a_user_refuses_their_access_token_at_once() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.engineer).await;
    assert!(app.access_ok(&tok.access).await);
    let (_, revoked) =
        sessiond::service::users::disable(&app.state.db, &t.engineer.email, app.state.clock.now())
            .await
            .unwrap();
    assert_eq!(revoked, 1);
    assert!(!app.access_ok(&tok.access).await);
    app.refresh(&tok.refresh).await.refused("invalid_refresh_token", "user_disabled");
}

#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_request() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.owner).await;
    assert_eq!(app.get("/accounts/me/security", &tok.access).await.status, 200);
    app.sql("UPDATE users SET role = 'engineer' WHERE id = ?1", &[&t.owner.id.to_string()]);
    app.get("/accounts/me/security", &tok.access).await.assert(403, "owner_required");
}

#[tokio::test]
async fn logout_ends_the_session_and_accepts_any_well_formed_body() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.owner).await;
    let other = app.login(&t.owner).await;

    let r = app.post("/auth/logout", None, json!({"refresh_token": tok.refresh})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    app.refresh(&tok.refresh).await.refused("invalid_refresh_token", "logged_out");
    assert!(!app.access_ok(&tok.access).await, "the session's access token dies with it");
    assert!(app.access_ok(&other.access).await, "another session of the same user lives on");

    for body in [json!({"refresh_token": tok.refresh}), json!({"refresh_token": "no-such-token"})] {
        assert_eq!(app.post("/auth/logout", None, body).await.status, 204);
    }
    let r = app.post("/auth/logout", None, json!({})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.detail().contains("refresh_token"), "{}", r.text);
    let r = app.raw(Method::POST, "/auth/logout", &[], br#"{"refresh_token":"x"}"#.to_vec()).await;
    r.assert(415, "unsupported_media_type");

    let owner = app.login(&t.owner).await;
    let logouts = app.audit(&owner.access, "auth.logout").await;
    assert_eq!(logouts.len(), 1, "only the logout that revoked something is audited");
}

#[tokio::test]
async fn logging_in_twice_gives_two_independent_sessions() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let a = tokens(&app.try_login(&t.admin.email, PASSWORD).await);
    let b = tokens(&app.try_login(&t.admin.email, PASSWORD).await);
    assert_ne!(a.refresh, b.refresh);
    assert_eq!(app.refresh(&a.refresh).await.status, 200);
    assert_eq!(app.refresh(&b.refresh).await.status, 200);
}

#[tokio::test]
async fn access_token_lifetime_comes_from_the_configuration() {
    let app = TestApp::spawn_with(|c| c.auth.access_token_minutes = 10).await;
    let t = app.tenant("Acme").await;
    let r = app.try_login(&t.owner.email, PASSWORD).await;
    assert_eq!(r.body["expires_in"], 600);
    let tok = tokens(&r);
    // `iat` is whole seconds, so a token lives 599 to 600 s: stay 2 s clear of the edge.
    app.advance(598).await;
    assert!(app.access_ok(&tok.access).await);
    app.advance(2).await;
    assert!(!app.access_ok(&tok.access).await);
}

#[tokio::test]
async fn a_configured_secret_signs_the_tokens_and_no_secret_file_is_written() {
    if crate::helpers::sqlite_only("the secret file beside a SQLite database") {
        return;
    }
    let secret = "a-configured-secret-of-at-least-32-bytes";
    let app = TestApp::spawn_on_file_with(|c| c.auth.jwt_secret = secret.to_owned().into()).await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.owner).await;
    let now = app.state.clock.now();
    assert!(Keys::new(secret.as_bytes(), 5).verify(&tok.access, now).is_ok());
    assert!(Keys::new(b"some-other-secret-of-32-bytes-xx", 5).verify(&tok.access, now).is_err());
    let files: Vec<String> = std::fs::read_dir(app.db_path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().any(|f| f == "sessiond.db"), "the database is here: {files:?}");
    assert!(files.iter().all(|f| !f.ends_with(".jwt-secret")), "{files:?}");
}

#[tokio::test]
async fn a_token_whose_user_no_longer_exists_is_not_authenticated() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let tok = app.login(&t.engineer).await;
    let id = t.engineer.id.to_string();
    app.sql("DELETE FROM refresh_tokens WHERE user_id = ?1", &[&id]);
    app.sql("DELETE FROM audit_events WHERE user_id = ?1", &[&id]);
    app.sql("DELETE FROM users WHERE id = ?1", &[&id]);
    assert!(!app.access_ok(&tok.access).await);
}
