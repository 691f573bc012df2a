//! `GET /openapi.json` (contract §4b): generated from the code, and in step with the
//! router and with the contract's list of endpoints.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

/// Every endpoint the contract names (sections 3, 4, 4b, 4c and 5).
const CONTRACT_ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
    ("GET", "/auth/me"),
    ("POST", "/auth/password"),
    ("GET", "/accounts/me/security"),
    ("PATCH", "/accounts/me/security"),
    ("POST", "/accounts/me/security/revoke-sessions"),
    ("GET", "/accounts/me/audit-events"),
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("POST", "/_test/clock"),
];

async fn document(app: &TestApp) -> Value {
    let r = app.raw(Method::GET, "/openapi.json", &[], vec![]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    r.body
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn the_document_lists_exactly_the_contracts_endpoints() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let want: BTreeSet<_> =
        CONTRACT_ENDPOINTS.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(operations(&doc), want);
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_nothing_else_is() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    for (method, path) in operations(&doc) {
        let path = path.replace("{session_id}", "00000000-0000-4000-8000-000000000000");
        let r = app.raw(Method::from_bytes(method.as_bytes()).unwrap(), &path, &[], vec![]).await;
        let fallback = (r.status == 404 && r.detail() == "not_found") || r.status == 405;
        assert!(!fallback, "{method} {path} is documented but not routed: {} {}", r.status, r.text);
    }
    // The routes the router refuses are not in the document either.
    for (method, path) in
        [("GET", "/auth/login"), ("DELETE", "/accounts/me/security"), ("GET", "/metrics2")]
    {
        let r = app.raw(Method::from_bytes(method.as_bytes()).unwrap(), path, &[], vec![]).await;
        assert!([404, 405].contains(&r.status.as_u16()), "{method} {path}: {}", r.status);
        assert!(!operations(&doc).contains(&(method.to_owned(), path.to_owned())));
    }
}

#[tokio::test]
async fn the_test_clock_is_documented_only_when_it_is_routed() {
    let app = TestApp::spawn_with(|c| c.testing.clock_control = false).await;
    let doc = document(&app).await;
    assert!(doc["paths"].get("/_test/clock").is_none());
    assert!(doc["paths"].get("/auth/login").is_some());
}

#[tokio::test]
async fn every_operation_documents_its_errors_with_a_json_schema() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let has = |s: &str| responses.contains_key(s);
            let at = format!("{method} {path}");
            assert!(has("500"), "{at}");
            if op.get("security").is_some() {
                assert!(has("401"), "{at}");
                assert!(op["security"][0].get("bearerAuth").is_some(), "{at}");
            }
            if op["tags"][0] == "owner" {
                assert!(has("403"), "{at}");
            }
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415", "422"] {
                    assert!(has(s), "{at} {s}");
                }
            }
            for (status, r) in responses {
                if status.starts_with('2') {
                    continue;
                }
                let schema = &r["content"]["application/json"]["schema"]["$ref"];
                assert!(
                    schema == "#/components/schemas/ErrorBody"
                        || schema == "#/components/schemas/RefreshRefusal",
                    "{at} {status}: {r}"
                );
            }
        }
    }
    // Which operations need a token is the router's business too: the document says so
    // exactly for those that answer 401 without one.
    for (method, path) in operations(&doc) {
        let secured = doc["paths"][&path][method.to_lowercase()].get("security").is_some();
        let body = if method == "GET" { vec![] } else { b"{}".to_vec() };
        let headers = [("content-type", "application/json")];
        let r =
            app.raw(Method::from_bytes(method.as_bytes()).unwrap(), &path, &headers, body).await;
        let refused = r.status == 401 && r.detail() == "not_authenticated";
        assert_eq!(refused, secured, "{method} {path}: {} {}", r.status, r.text);
    }
}

#[tokio::test]
async fn the_policy_bounds_come_from_the_configuration() {
    let app = TestApp::spawn_with(|c| {
        c.session.idle_minutes_min = 20;
        c.session.absolute_minutes_max = 50_000;
    })
    .await;
    let doc = document(&app).await;
    let props = &doc["components"]["schemas"]["PolicyPatchBody"]["properties"];
    assert_eq!(
        (props["idle_minutes"]["minimum"].as_i64(), props["idle_minutes"]["maximum"].as_i64()),
        (Some(20), Some(43_200))
    );
    assert_eq!(props["absolute_minutes"]["maximum"], 50_000);
}
