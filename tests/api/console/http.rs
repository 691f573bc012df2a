//! The console over plain HTTP: headers on every response, the same-origin rule, cookie
//! attributes, assets caching, the gate in front of signed-in pages.

use reqwest::Method;
use reqwest::redirect::Policy;

use crate::helpers::{PASSWORD, TestApp};

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

#[track_caller]
fn assert_console_headers(r: &reqwest::Response, cache: &str) {
    let h = r.headers();
    assert_eq!(h["content-security-policy"], CSP);
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], cache);
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
}

/// Signs in through the console's form; answers the two `Set-Cookie` values.
async fn form_sign_in(app: &TestApp, email: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = no_redirects()
        .post(format!("{}/console/sign-in", app.base))
        .header("sec-fetch-site", "same-origin")
        .form(&[("email", email), ("password", PASSWORD)]);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn every_console_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let c = no_redirects();
    for path in ["/console/sign-in", "/console/sessions", "/console/policy", "/console/audit"] {
        let r = c.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_console_headers(&r, "no-store");
    }
    // A refusal too.
    let r = c.post(format!("{}/console/sign-in", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_console_headers(&r, "no-store");
    let r = c.get(format!("{}/console/sign-in", app.base)).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");
}

#[tokio::test]
async fn signed_in_pages_send_strangers_to_the_sign_in_page() {
    let app = TestApp::spawn().await;
    for path in ["/console/", "/console/sessions", "/console/policy", "/console/audit"] {
        let r = no_redirects().get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/console/sign-in", "{path}");
    }
    let r = no_redirects().get(format!("{}/console", app.base)).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/console/");
}

#[tokio::test]
async fn unsafe_requests_must_be_same_origin() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Origin").await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let own = app.base.clone();
    let refused: &[&[(&str, &str)]] = &[
        &[],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("sec-fetch-site", "none")],
        // Sec-Fetch-Site decides where present, even with a matching Origin.
        &[("sec-fetch-site", "same-site"), ("origin", &own)],
        &[("origin", "http://127.0.0.1:1")],
        &[("origin", "null")],
    ];
    for headers in refused {
        let mut req = no_redirects()
            .post(format!("{}/console/sign-in", app.base))
            .form(&[("email", t.owner.email.as_str()), ("password", PASSWORD)]);
        for (k, v) in *headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{headers:?}");
        assert!(set_cookies(&r).is_empty(), "refused: no session: {headers:?}");
    }
    // Nothing happened: no login was audited.
    let owner = app.login(&t.owner).await;
    assert_eq!(app.audit(&owner.access, "auth.login").await.len(), 1);
    // Accepted: Sec-Fetch-Site same-origin, or (without it) the request's own Origin.
    let r = form_sign_in(&app, &t.owner.email, &[]).await;
    assert_eq!(r.status(), 303);
    let r = no_redirects()
        .post(format!("{}/console/sign-in", app.base))
        .header("origin", format!("http://{host}"))
        .form(&[("email", t.owner.email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn tokens_travel_in_http_only_strict_cookies_scoped_to_the_console() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Cookies").await;
    let r = form_sign_in(&app, &t.owner.email, &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/sessions");
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    for c in &cookies {
        assert!(c.starts_with("sessiond_access=") || c.starts_with("sessiond_refresh="), "{c}");
        for attr in ["; Path=/console", "; HttpOnly", "; SameSite=Strict"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        assert!(!c.contains("Secure"), "plain HTTP: {c}");
    }
    // `X-Forwarded-Proto` from a peer that is no trusted proxy is not believed.
    let r = form_sign_in(&app, &t.owner.email, &[("x-forwarded-proto", "https")]).await;
    for c in set_cookies(&r) {
        assert!(!c.contains("Secure"), "untrusted peer: {c}");
    }
    // Through a trusted TLS-terminating proxy, the cookies are Secure.
    let proxied = TestApp::spawn_with(|c| {
        c.server.trusted_proxies =
            sessiond::client_addr::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let p = proxied.tenant("Proxied").await;
    let r = form_sign_in(&proxied, &p.owner.email, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(r.status(), 303);
    for c in set_cookies(&r) {
        assert!(c.ends_with("; Secure"), "{c}");
    }
    // The cookies are the API's own tokens: the access token works as a bearer token.
    let access = cookies
        .iter()
        .find_map(|c| c.strip_prefix("sessiond_access="))
        .and_then(|c| c.split(';').next())
        .unwrap();
    assert!(app.access_ok(access).await);
}

#[tokio::test]
async fn a_non_owner_is_turned_away_and_their_session_ended() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Roles").await;
    let r = form_sign_in(&app, &t.engineer.email, &[]).await;
    assert_eq!(r.status(), 403);
    assert!(set_cookies(&r).is_empty());
    assert!(r.text().await.unwrap().contains("The console is for account owners"));
    let owner = app.login(&t.owner).await;
    // Login and logout both audited; no live session of the engineer's.
    let logins = app.audit(&owner.access, "auth.login").await;
    let logouts = app.audit(&owner.access, "auth.logout").await;
    assert!(logins.iter().any(|e| e["user_id"] == t.engineer.id.to_string()));
    assert!(logouts.iter().any(|e| e["user_id"] == t.engineer.id.to_string()));
    let sessions = app.get("/accounts/me/security/sessions", &owner.access).await;
    let items = sessions.body["items"].as_array().unwrap();
    assert!(items.iter().all(|s| s["email"] != t.engineer.email.as_str()), "{}", sessions.text);
}

#[tokio::test]
async fn assets_are_served_from_the_binary_with_long_caching() {
    let app = TestApp::spawn().await;
    let page =
        reqwest::get(format!("{}/console/sign-in", app.base)).await.unwrap().text().await.unwrap();
    for (name, kind) in [("console.css", "text/css"), ("console.js", "text/javascript")] {
        let start = page.find(&format!("/console/assets/{name}?v=")).unwrap();
        let url: String = page[start..].chars().take_while(|c| *c != '"').collect();
        let r = app.raw(Method::GET, &url, &[], vec![]).await;
        assert_eq!(r.status, 200, "{url}");
        assert!(r.headers["content-type"].to_str().unwrap().starts_with(kind));
        assert_eq!(r.headers["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        let etag = r.headers["etag"].to_str().unwrap().to_owned();
        assert!(url.ends_with(etag.trim_matches('"')), "the URL carries the version: {url} {etag}");
        let again = app.raw(Method::GET, &url, &[("if-none-match", &etag)], vec![]).await;
        assert_eq!(again.status, 304);
    }
    let r = app.raw(Method::GET, "/console/assets/other.js", &[], vec![]).await;
    assert_eq!(r.status, 404);
}

/// The two cookies of a response, as a `Cookie` header value.
fn cookie_header(r: &reqwest::Response) -> String {
    set_cookies(r)
        .iter()
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

fn cookie_value(header: &str, name: &str) -> String {
    header.split("; ").find_map(|c| c.strip_prefix(&format!("{name}="))).unwrap().to_owned()
}

#[tokio::test]
async fn an_expired_access_cookie_is_refreshed_by_the_server_and_both_cookies_rotate() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Rotate").await;
    let signed_in = form_sign_in(&app, &t.owner.email, &[]).await;
    let cookies = cookie_header(&signed_in);
    let old_refresh = cookie_value(&cookies, "sessiond_refresh");
    let old_access = cookie_value(&cookies, "sessiond_access");

    // Within the access token's life: served, nothing rotated.
    let r = no_redirects()
        .get(format!("{}/console/sessions", app.base))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(set_cookies(&r).is_empty());

    // Past it: served, and both cookies replaced by the rotated pair.
    app.advance(6 * 60).await;
    let r = no_redirects()
        .get(format!("{}/console/policy", app.base))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rotated = cookie_header(&r);
    assert_ne!(cookie_value(&rotated, "sessiond_refresh"), old_refresh);
    assert_ne!(cookie_value(&rotated, "sessiond_access"), old_access);
    assert!(app.access_ok(&cookie_value(&rotated, "sessiond_access")).await);
    // It was the API's own rotation: the old refresh token is spent.
    app.refresh(&old_refresh).await.refused("invalid_refresh_token", "rotated");
}

#[tokio::test]
async fn without_script_the_bulk_end_confirms_on_a_page_with_the_count() {
    let app = TestApp::spawn().await;
    let t = app.tenant("NoScript").await;
    let admin = app.login(&t.admin).await;
    let cookies = cookie_header(&form_sign_in(&app, &t.owner.email, &[]).await);
    let page = no_redirects()
        .get(format!("{}/console/sessions/end?scope=others", app.base))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("1 session will end: every session in this account except your own."),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/console/sessions" autofocus>Cancel</a>"#),
        "focus on Cancel: {html}"
    );
    // Nothing ended by looking.
    app.rotate(&admin.refresh).await;
    let admin = app.login(&t.admin).await;

    let r = no_redirects()
        .post(format!("{}/console/sessions/end", app.base))
        .header("cookie", &cookies)
        .header("sec-fetch-site", "same-origin")
        .form(&[("scope", "others")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The API's bulk revoke ran, with its audit row and reason.
    app.refresh(&admin.refresh).await.refused("invalid_refresh_token", "revoked_others");
    let owner = app.login(&t.owner).await;
    let bulk = app.audit(&owner.access, "account.sessions_revoked_bulk").await;
    assert_eq!(bulk.len(), 1);
    assert_eq!(bulk[0]["details"]["scope"], "others");
}

#[tokio::test]
async fn the_audit_trail_pages_with_before() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Pages").await;
    for _ in 0..30 {
        app.login(&t.admin).await;
    }
    let cookies = cookie_header(&form_sign_in(&app, &t.owner.email, &[]).await);
    let get = |path: String| {
        let cookies = cookies.clone();
        async move {
            let r = no_redirects().get(path).header("cookie", cookies).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let first = get(format!("{}/console/audit", app.base)).await;
    assert_eq!(first.matches("<li data-action=").count(), 25);
    assert!(first.contains("owner@pages.test</strong> signed in from 127.0.0.1"), "newest first");
    let start = first.find("/console/audit?before=").unwrap();
    let next: String = first[start..].chars().take_while(|c| *c != '"').collect();
    let second = get(format!("{}{next}", app.base)).await;
    // 1 account + 3 users + 31 logins = 35 events: 10 on the second page, the oldest last.
    assert_eq!(second.matches("<li data-action=").count(), 10);
    assert!(second.contains("The account was created"), "{second}");
    assert!(!second.contains("Older events"));
}

#[tokio::test]
async fn an_unknown_console_page_is_html_with_the_console_headers() {
    let app = TestApp::spawn().await;
    let r = no_redirects().get(format!("{}/console/nope", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_console_headers(&r, "no-store");
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn the_console_is_not_part_of_the_openapi_document() {
    let app = TestApp::spawn().await;
    let r = app.raw(Method::GET, "/openapi.json", &[], vec![]).await;
    assert_eq!(r.status, 200);
    let paths = r.body["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    assert!(paths.keys().all(|p| !p.starts_with("/console")), "{:?}", paths.keys());
    // While the console is served.
    let page = app.raw(Method::GET, "/console/sign-in", &[], vec![]).await;
    assert_eq!(page.status, 200);
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookies() {
    let app = TestApp::spawn().await;
    let t = app.tenant("SignOut").await;
    let cookies = cookie_header(&form_sign_in(&app, &t.owner.email, &[]).await);
    let refresh = cookie_value(&cookies, "sessiond_refresh");
    let r = no_redirects()
        .post(format!("{}/console/sign-out", app.base))
        .header("cookie", &cookies)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/sign-in?reason=logged_out");
    let cleared = set_cookies(&r);
    assert_eq!(cleared.len(), 2);
    assert!(cleared.iter().all(|c| c.contains("=; Path=/console; Max-Age=0")), "{cleared:?}");
    // The API's logout ran: the token says why, and the page says it too.
    app.refresh(&refresh).await.refused("invalid_refresh_token", "logged_out");
    let page =
        reqwest::get(format!("{}/console/sign-in?reason=logged_out", app.base)).await.unwrap();
    assert!(page.text().await.unwrap().contains("You signed out."));
}
