//! Section 2 of the contract: every error is JSON with the right code, whatever the input.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let app = TestApp::spawn().await;
    for path in
        ["/", "/nope", "/auth", "/accounts/me", "/auth/login/extra", "/accounts/me/security/x"]
    {
        app.raw(Method::GET, path, &[], vec![]).await.assert(404, "not_found");
    }
    for (method, path) in [
        (Method::GET, "/auth/login"),
        (Method::DELETE, "/auth/me"),
        (Method::PUT, "/accounts/me/security"),
        (Method::GET, "/accounts/me/security/revoke-sessions"),
        (Method::POST, "/healthz"),
    ] {
        app.raw(method, path, &[], vec![]).await.assert(405, "method_not_allowed");
    }
}

#[tokio::test]
async fn content_type_is_checked_on_every_body_taking_endpoint() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let auth = format!("Bearer {}", owner.access);
    let endpoints = [
        (Method::POST, "/auth/login"),
        (Method::POST, "/auth/refresh"),
        (Method::POST, "/auth/logout"),
        (Method::PATCH, "/accounts/me/security"),
        (Method::POST, "/accounts/me/security/revoke-sessions"),
        (Method::POST, "/_test/clock"),
    ];
    for (method, path) in endpoints {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/jsonx"),
        ] {
            let mut headers = vec![("authorization", auth.as_str())];
            if let Some(ct) = ct {
                headers.push(("content-type", ct));
            }
            let r = app.raw(method.clone(), path, &headers, b"{}".to_vec()).await;
            r.assert(415, "unsupported_media_type");
        }
    }
}

#[tokio::test]
async fn content_type_parameters_are_allowed() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let body = json!({"email": t.owner.email, "password": PASSWORD}).to_string().into_bytes();
    for ct in
        ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"]
    {
        let r = app.raw(Method::POST, "/auth/login", &[("content-type", ct)], body.clone()).await;
        assert_eq!(r.status, 200, "{ct}: {}", r.text);
    }
}

#[tokio::test]
async fn malformed_json_is_400_and_an_empty_body_is_malformed() {
    let app = TestApp::spawn().await;
    let ct = [("content-type", "application/json")];
    let deep = "[".repeat(10_000);
    let bodies: Vec<&[u8]> = vec![
        b"",
        b" ",
        b"{",
        br#"{"email": "a@b.c", "password": "x""#,
        br#"{"email": 'single'}"#,
        b"{}}",
        br#"{"a":1} trailing"#,
        b"\xff\xfe",
        b"{\"email\": \"\xff\xfe\", \"password\": \"b\"}",
        deep.as_bytes(),
        b"NaN",
    ];
    for body in bodies {
        let r = app.raw(Method::POST, "/auth/login", &ct, body.to_vec()).await;
        r.assert(400, "malformed_json");
    }
}

#[tokio::test]
async fn wrong_shapes_are_422() {
    let app = TestApp::spawn().await;
    let cases = [
        json!({}),
        json!({"email": "a@b.c"}),
        json!({"email": 1, "password": "x"}),
        json!({"email": "a@b.c", "password": null}),
        json!({"email": "a@b.c", "password": "x", "remember_me": true}),
        json!(["a@b.c", "x"]),
        json!("a@b.c"),
    ];
    for body in cases {
        let r = app.post("/auth/login", None, body.clone()).await;
        assert_eq!(r.status, 422, "{body} -> {}", r.text);
        assert!(
            r.body["detail"].is_string() && r.body.as_object().unwrap().len() == 1,
            "{}",
            r.text
        );
    }
    let r = app.post("/auth/refresh", None, json!({"refresh_token": 12345})).await;
    assert_eq!(r.status, 422);
    let ct = [("content-type", "application/json")];
    let duplicate = br#"{"email": "a@b.c", "email": "d@e.f", "password": "x"}"#.to_vec();
    let r = app.raw(Method::POST, "/auth/login", &ct, duplicate).await;
    assert_eq!(r.status, 422, "duplicate keys are ambiguous: {}", r.text);
    assert!(r.detail().contains("duplicate field"), "{}", r.text);
    // A syntax error after a type error is still malformed JSON.
    let r = app
        .raw(Method::POST, "/auth/login", &ct, br#"{"email": 5, "password": "x""#.to_vec())
        .await;
    r.assert(400, "malformed_json");
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let app = TestApp::spawn().await;
    let ct = [("content-type", "application/json")];
    let big = format!(r#"{{"refresh_token": "{}"}}"#, "a".repeat(64 * 1024));
    app.raw(Method::POST, "/auth/refresh", &ct, big.into_bytes())
        .await
        .assert(413, "payload_too_large");
    let ten_mb = vec![b' '; 10 * 1024 * 1024];
    app.raw(Method::POST, "/auth/login", &ct, ten_mb).await.assert(413, "payload_too_large");
    // Just under the limit is read (and here refused for its content, not its size).
    let fits = format!(r#"{{"refresh_token": "{}"}}"#, "a".repeat(60 * 1024));
    app.raw(Method::POST, "/auth/refresh", &ct, fits.into_bytes())
        .await
        .refused("invalid_refresh_token", "unknown_token");
}

#[tokio::test]
async fn healthz_answers_once_the_database_does() {
    let app = TestApp::spawn().await;
    let r = app.raw(Method::GET, "/healthz", &[], vec![]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"status": "ok"}));
}

#[tokio::test]
async fn a_database_failure_is_a_bare_internal_error_and_rolls_back() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    // Break the audit table behind the server's back: the policy change must roll back.
    app.try_sql("ALTER TABLE audit_events RENAME TO audit_events_gone", &[]).unwrap();
    let r = app.patch("/accounts/me/security", &owner.access, json!({"idle_minutes": 30})).await;
    r.assert(500, "internal_error");
    let target = crate::helpers::db_target(&app.state.config);
    for leak in ["audit_events", "sqlite", "postgres", "SQL", "/tmp", &target] {
        assert!(!r.text.contains(leak), "500 leaks {leak:?}: {}", r.text);
    }
    app.try_sql("ALTER TABLE audit_events_gone RENAME TO audit_events", &[]).unwrap();
    let policy = app.get("/accounts/me/security", &owner.access).await;
    assert_eq!(
        policy.body["idle_minutes"],
        serde_json::Value::Null,
        "the change was rolled back with its audit row"
    );
}

#[tokio::test]
async fn test_clock_moves_forward_only() {
    let app = TestApp::spawn().await;
    let r = app.post("/_test/clock", None, json!({"advance_seconds": 0})).await;
    assert_eq!(r.status, 200);
    let t0 = chrono::DateTime::parse_from_rfc3339(r.body["now"].as_str().unwrap()).unwrap();
    let r = app.post("/_test/clock", None, json!({"advance_seconds": 86400})).await;
    let t1 = chrono::DateTime::parse_from_rfc3339(r.body["now"].as_str().unwrap()).unwrap();
    assert!(t1 - t0 >= chrono::TimeDelta::seconds(86400));
    for bad in [
        json!({"advance_seconds": -1}),
        json!({"advance_seconds": 1.5}),
        json!({}),
        json!({"advance_seconds": "5"}),
    ] {
        assert_eq!(app.post("/_test/clock", None, bad).await.status, 422);
    }
}

#[tokio::test]
async fn test_clock_route_does_not_exist_when_clock_control_is_off() {
    let app = TestApp::spawn_with(|c| c.testing.clock_control = false).await;
    app.post("/_test/clock", None, json!({"advance_seconds": 60})).await.assert(404, "not_found");
}
