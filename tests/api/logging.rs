//! Request ids on every response, and the request log line: JSON from the real binary.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::process::{Server, seed_owner};

fn is_uuid(v: &str) -> bool {
    uuid::Uuid::parse_str(v).is_ok()
}

#[tokio::test]
async fn every_response_carries_a_request_id_kept_from_the_request_when_sound() {
    let app = TestApp::spawn().await;
    let id = |r: &crate::helpers::Resp| r.headers["x-request-id"].to_str().unwrap().to_owned();
    // Generated when absent, one per request, on answers of every kind.
    let health = app.request(Method::GET, "/healthz", None, None).await;
    let missing = app.request(Method::GET, "/nope", None, None).await;
    let refused = app.request(Method::GET, "/auth/me", None, None).await;
    for r in [&health, &missing, &refused] {
        assert!(is_uuid(&id(r)), "{:?}", r.headers);
        assert_eq!(r.headers.get_all("x-request-id").iter().count(), 1);
    }
    assert_ne!(id(&health), id(&missing));

    // Kept when given: 1 to 128 visible ASCII characters.
    let longest = "a".repeat(128);
    for given in ["abc-123", "req_01J5/x:y=z", longest.as_str()] {
        let r = app.raw(Method::GET, "/healthz", &[("x-request-id", given)], vec![]).await;
        assert_eq!(id(&r), given);
    }
    // Replaced otherwise: too long, spaces, non-ASCII, empty.
    let too_long = "a".repeat(129);
    for given in [too_long.as_str(), "has space", "caf\u{e9}", ""] {
        let mut req = app.client.get(format!("{}/healthz", app.base));
        req = req.header(
            "x-request-id",
            reqwest::header::HeaderValue::from_bytes(given.as_bytes()).unwrap(),
        );
        let r = req.send().await.unwrap();
        let got = r.headers()["x-request-id"].to_str().unwrap();
        assert!(is_uuid(got), "{given:?} -> {got}");
    }
    // On a body error too.
    let r =
        app.raw(Method::POST, "/auth/login", &[("x-request-id", "bad-body")], b"{".to_vec()).await;
    assert_eq!(r.status, 415);
    assert_eq!(id(&r), "bad-body");
}

/// `server.log_format = "json"`: every stderr line is one JSON object, and a request's
/// line carries its id, route, status and latency.
#[test]
fn json_logs_carry_request_id_route_status_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    seed_owner(dir.path(), db, "owner@acme.test", "a-long-password");
    let server = Server::start(
        dir.path(),
        &["serve", "--database", db, "--listen", "127.0.0.1:0"],
        &[("SESSIOND_SERVER_LOG_FORMAT", "json")],
    );
    let client =
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let login = client
        .post(format!("{}/auth/login", server.base))
        .header("x-request-id", "login-7f3a")
        .json(&json!({"email": "owner@acme.test", "password": "wrong-password"}))
        .send()
        .unwrap();
    assert_eq!(login.status(), 401);
    let generated = client.get(format!("{}/no/such/route", server.base)).send().unwrap();
    let generated_id = generated.headers()["x-request-id"].to_str().unwrap().to_owned();
    // A request's line is written before its answer is sent; the shutdown lines too
    // must be JSON.
    let stderr = server.stderr_path().to_owned();
    assert_eq!(server.stop_with("TERM").code(), Some(0));
    let logs = std::fs::read_to_string(stderr).unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["level"].is_string() && l["target"].is_string()), "{logs}");
    assert!(lines.iter().all(|l| l["message"].is_string()), "{logs}");

    let line_of = |id: &str| {
        let found: Vec<&Value> = lines
            .iter()
            .filter(|l| l["request_id"] == id && l["message"] == "request completed")
            .collect();
        assert_eq!(found.len(), 1, "one line for {id}: {logs}");
        found[0].clone()
    };
    let l = line_of("login-7f3a");
    assert_eq!(l["level"], "INFO");
    assert_eq!(l["route"], "/auth/login");
    assert_eq!(l["method"], "POST");
    assert_eq!(l["status"], 401);
    let latency = l["latency_ms"].as_f64().unwrap();
    assert!(latency > 0.0 && latency < 30_000.0, "{l}");
    assert_eq!(l["span"]["request_id"], "login-7f3a", "the span carries it too");
    let g = line_of(&generated_id);
    assert_eq!((g["route"].as_str(), g["status"].as_u64()), (Some("unmatched"), Some(404)));
    // Other lines inside the request carry the id through their span.
    assert!(!logs.contains("wrong-password"), "the password never reaches the log");
}

/// Text logs show the id too, in the request's span.
#[test]
fn text_logs_show_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["serve", "--database", ":memory:", "--listen", "127.0.0.1:0"],
        &[],
    );
    let client = reqwest::blocking::Client::new();
    let r = client.get(format!("{}/healthz", server.base)).header("x-request-id", "txt-42").send();
    assert_eq!(r.unwrap().status(), 200);
    let logs = server.stderr();
    let line =
        logs.lines().find(|l| l.contains("request completed")).unwrap_or_else(|| panic!("{logs}"));
    assert!(line.contains(r#"request_id="txt-42""#), "{line}");
    assert!(line.contains(r#"route="/healthz""#) && line.contains("status=200"), "{line}");
    assert!(line.contains("latency_ms="), "{line}");
}
