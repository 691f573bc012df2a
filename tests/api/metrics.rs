//! GET /metrics: the Prometheus exposition, scraped after known traffic.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, session_of};

/// One scrape, parsed: every sample by name and label set.
struct Scrape {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
            let value: f64 = value.parse().unwrap_or_else(|e| panic!("{e}: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').unwrap()),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            samples.push((name.to_owned(), labels, value));
        }
        Scrape { text, samples }
    }

    /// The value of the series with exactly these labels, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> =
            labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.samples.iter().find(|(n, l, _)| n == name && *l == want).map(|(_, _, v)| *v)
    }

    #[track_caller]
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{}", self.text))
    }
}

async fn scrape(app: &TestApp) -> Scrape {
    let r = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ct = r.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    Scrape::parse(r.text)
}

#[tokio::test]
async fn counts_requests_refresh_outcomes_and_revocations_exactly() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let e1 = app.login(&t.engineer).await;
    let e2 = app.login(&t.engineer).await;
    let admin = app.login(&t.admin).await;
    let leaving = app.login(&t.engineer).await;
    // Two good refreshes, one unknown token.
    let e1b = app.rotate(&e1.refresh).await;
    app.rotate(&e1b.refresh).await;
    app.refresh("not-a-token").await.refused("invalid_refresh_token", "unknown_token");
    // A logout, a single revoke.
    let r = app.post("/auth/logout", None, json!({"refresh_token": leaving.refresh})).await;
    assert_eq!(r.status, 204);
    let path = format!("/accounts/me/security/sessions/{}", session_of(&admin.access));
    assert_eq!(app.request(Method::DELETE, &path, Some(&owner.access), None).await.status, 204);
    // Reuse: the first token again, past the grace window, ends e1's session.
    app.advance(11).await;
    app.refresh(&e1.refresh).await.refused("invalid_refresh_token", "reuse_detected");
    // An idle timeout.
    app.set_policy(&owner.access, json!({"idle_minutes": 15})).await;
    app.advance(16 * 60).await;
    app.refresh(&e2.refresh).await.refused("session_idle_timeout", "idle_timeout");
    // A bulk revoke of the others: one engineer session.
    let owner = app.login(&t.owner).await;
    app.login(&t.engineer).await;
    let r = app
        .post(
            "/accounts/me/security/revoke-sessions",
            Some(&owner.access),
            json!({"scope": "others"}),
        )
        .await;
    assert_eq!(r.body, json!({"revoked_count": 1}), "{}", r.text);
    app.request(Method::GET, "/no/such/route", None, None).await.assert(404, "not_found");
    let odd = Method::from_bytes(b"BREW").unwrap();
    app.request(odd, "/healthz", None, None).await.assert(405, "method_not_allowed");

    let m = scrape(&app).await;
    let refresh = |result| m.value("sessiond_refresh_total", &[("result", result)]);
    assert_eq!(refresh("ok"), 2.0);
    assert_eq!(refresh("invalid_refresh_token"), 2.0);
    assert_eq!(refresh("session_idle_timeout"), 1.0);
    assert_eq!(refresh("session_absolute_timeout"), 0.0, "shown before it first moves");
    assert_eq!(refresh("internal_error"), 0.0);

    let revoked = |cause| m.value("sessiond_tokens_revoked_total", &[("cause", cause)]);
    assert_eq!(revoked("rotated"), 2.0);
    assert_eq!(revoked("logged_out"), 1.0);
    assert_eq!(revoked("revoked_single"), 1.0);
    assert_eq!(revoked("reuse_detected"), 1.0, "e1's live successor");
    assert_eq!(revoked("idle_timeout"), 1.0);
    assert_eq!(revoked("revoked_others"), 1.0);
    for cause in ["revoked_all", "user_disabled", "absolute_timeout", "password_changed"] {
        assert_eq!(revoked(cause), 0.0, "{cause}");
    }

    let requests = |method, route, status| {
        m.get(
            "sessiond_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("POST", "/auth/login", "200"), Some(7.0));
    assert_eq!(requests("POST", "/auth/refresh", "200"), Some(2.0));
    assert_eq!(requests("POST", "/auth/refresh", "401"), Some(3.0));
    assert_eq!(requests("POST", "/auth/logout", "204"), Some(1.0));
    assert_eq!(
        requests("DELETE", "/accounts/me/security/sessions/{session_id}", "204"),
        Some(1.0),
        "the route template, never the id"
    );
    assert_eq!(requests("PATCH", "/accounts/me/security", "200"), Some(1.0));
    assert_eq!(requests("GET", "unmatched", "404"), Some(1.0), "never the raw path");
    assert_eq!(requests("other", "/healthz", "405"), Some(1.0), "nor any method name");
    assert_eq!(requests("GET", "/metrics", "200"), None, "this scrape is counted after it");

    let refresh_latency = [("method", "POST"), ("route", "/auth/refresh")];
    assert_eq!(m.value("sessiond_http_request_duration_seconds_count", &refresh_latency), 5.0);
    let mut all = refresh_latency.to_vec();
    all.push(("le", "+Inf"));
    assert_eq!(m.value("sessiond_http_request_duration_seconds_bucket", &all), 5.0);
    let mut tiny = refresh_latency.to_vec();
    tiny.push(("le", "0.0001"));
    assert!(m.value("sessiond_http_request_duration_seconds_bucket", &tiny) <= 5.0);
    assert!(m.value("sessiond_http_request_duration_seconds_sum", &refresh_latency) > 0.0);

    // Every database call waited for its connection, if only for an instant.
    assert!(m.value("sessiond_db_pool_wait_seconds_count", &[]) >= 20.0, "{}", m.text);
    assert!(m.value("sessiond_db_pool_connections", &[]) >= 1.0);
    // Every write queued for its turn: at least the 7 logins, 5 refreshes, 1 logout, 1
    // delete, 1 patch and 1 bulk revoke.
    let writes = m.value("sessiond_db_writer_wait_seconds_count", &[]);
    assert!(writes >= 16.0, "{writes}");
    assert!(m.text.contains("# TYPE sessiond_http_request_duration_seconds histogram"));
    assert!(m.text.contains("# HELP sessiond_tokens_revoked_total"));

    // The scrape itself is counted by the next one.
    let again = scrape(&app).await;
    let scrapes = [("method", "GET"), ("route", "/metrics"), ("status", "200")];
    assert_eq!(again.value("sessiond_http_requests_total", &scrapes), 1.0);
}

#[tokio::test]
async fn the_scrape_needs_no_token_and_holds_nothing_per_user() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let eng = app.rotate(&app.login(&t.engineer).await.refresh).await;
    let m = scrape(&app).await;
    for secret in [
        t.owner.email.as_str(),
        &t.owner.id.to_string(),
        &t.account.to_string(),
        &owner.access,
        &owner.refresh,
        &eng.refresh,
        &session_of(&eng.access),
        crate::helpers::PASSWORD,
    ] {
        assert!(!m.text.contains(secret), "{secret} in the scrape");
    }
}

#[tokio::test]
async fn each_app_counts_only_its_own_traffic() {
    let busy = TestApp::spawn().await;
    let quiet = TestApp::spawn().await;
    let t = busy.tenant("Acme").await;
    let tok = busy.login(&t.owner).await;
    busy.rotate(&tok.refresh).await;

    let q = scrape(&quiet).await;
    assert_eq!(q.value("sessiond_refresh_total", &[("result", "ok")]), 0.0);
    assert_eq!(q.value("sessiond_tokens_revoked_total", &[("cause", "rotated")]), 0.0);
    let login = [("method", "POST"), ("route", "/auth/login"), ("status", "200")];
    assert_eq!(q.get("sessiond_http_requests_total", &login), None);
    let b = scrape(&busy).await;
    assert_eq!(b.value("sessiond_refresh_total", &[("result", "ok")]), 1.0);
    assert_eq!(b.value("sessiond_http_requests_total", &login), 1.0);
}

#[tokio::test]
async fn a_password_change_counts_the_sessions_it_ends() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let here = app.login(&t.engineer).await;
    app.login(&t.engineer).await;
    app.login(&t.engineer).await;
    let body =
        json!({"current_password": crate::helpers::PASSWORD, "new_password": "brand new one"});
    assert_eq!(app.post("/auth/password", Some(&here.access), body).await.status, 204);
    let m = scrape(&app).await;
    assert_eq!(m.value("sessiond_tokens_revoked_total", &[("cause", "password_changed")]), 2.0);
    // A refused change revokes nothing more.
    let body = json!({"current_password": "not the password", "new_password": "another one"});
    assert_eq!(app.post("/auth/password", Some(&here.access), body).await.status, 403);
    let m = scrape(&app).await;
    assert_eq!(m.value("sessiond_tokens_revoked_total", &[("cause", "password_changed")]), 2.0);
}
