//! The client address behind reverse proxies (contract §6, `server.trusted_proxies`):
//! only a trusted peer's `X-Forwarded-For` / `Forwarded` name the client; from anyone
//! else those headers are ignored. Seen where the address is used: the session list,
//! the audit `ip`, and the login throttle's key. IPv4 and IPv6.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{Value, json};
use sessiond::client_addr::TrustedProxies;

use crate::helpers::{PASSWORD, TestApp, TestUser};

/// A client whose connections come from `ip` (any 127.x.y.z reaches a loopback server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<IpAddr>().unwrap()).build().unwrap()
}

fn trusting(list: &[&str]) -> TrustedProxies {
    TrustedProxies::parse(list).unwrap()
}

async fn login_via(
    app: &TestApp,
    client: &reqwest::Client,
    user: &TestUser,
    password: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = client
        .post(format!("{}/auth/login", app.base))
        .json(&json!({"email": user.email, "password": password}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The `ip` of the user's session that `seen` does not hold yet (the one the last login
/// made: there must be exactly one), and of the newest `auth.login` audit row: both must
/// be the client address. Not the session with the latest `started_at`: two logins of a
/// test can start in the same millisecond.
async fn recorded_ips(
    app: &TestApp,
    owner_access: &str,
    user: &TestUser,
    seen: &mut HashSet<String>,
) -> (String, String) {
    let list = app.get("/accounts/me/security/sessions", owner_access).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let new: Vec<&Value> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["email"] == user.email.as_str())
        .filter(|s| !seen.contains(s["session_id"].as_str().unwrap()))
        .collect();
    assert_eq!(new.len(), 1, "one new session: {new:?}");
    let session = new[0];
    seen.insert(session["session_id"].as_str().unwrap().to_owned());
    let audit = app.audit(owner_access, "auth.login").await;
    let row = audit.iter().find(|e| e["user_id"] == user.id.to_string()).unwrap();
    (session["ip"].as_str().unwrap().to_owned(), row["details"]["ip"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn from_an_untrusted_peer_forwarding_headers_are_ignored() {
    // Trusted: another loopback address; the peer here is 127.0.0.3.
    let app = TestApp::spawn_with(|c| c.server.trusted_proxies = trusting(&["127.0.0.2"])).await;
    let t = app.tenant("Spoof").await;
    let owner = app.login(&t.owner).await;
    let mut seen = HashSet::new();
    let untrusted = client_from("127.0.0.3");
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-forwarded-for", "2001:db8::9"),
    ] {
        let (status, body) =
            login_via(&app, &untrusted, &t.engineer, PASSWORD, &[(name, value)]).await;
        assert_eq!(status, 200, "{body}");
        let ips = recorded_ips(&app, &owner.access, &t.engineer, &mut seen).await;
        assert_eq!(ips, ("127.0.0.3".into(), "127.0.0.3".into()), "{name}: {value}");
    }
}

#[tokio::test]
async fn from_a_trusted_proxy_the_forwarded_client_is_recorded() {
    let app = TestApp::spawn_with(|c| {
        c.server.trusted_proxies = trusting(&["127.0.0.2", "10.0.0.0/8"]);
    })
    .await;
    let t = app.tenant("Proxied").await;
    let owner = app.login(&t.owner).await;
    let mut seen = HashSet::new();
    let proxy = client_from("127.0.0.2");
    for (headers, client) in [
        // A client's own (spoofed) entry on the left, then what the proxies appended.
        (vec![("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3")], "203.0.113.9"),
        (vec![("x-forwarded-for", "2001:db8::9")], "2001:db8::9"),
        (vec![("forwarded", "for=\"[2001:db8:cafe::17]:4711\";proto=https")], "2001:db8:cafe::17"),
        (vec![("forwarded", "for=198.51.100.17:80, for=10.0.0.9")], "198.51.100.17"),
        // No header: the proxy itself is the client.
        (vec![], "127.0.0.2"),
    ] {
        let (status, body) = login_via(&app, &proxy, &t.engineer, PASSWORD, &headers).await;
        assert_eq!(status, 200, "{body}");
        let ips = recorded_ips(&app, &owner.access, &t.engineer, &mut seen).await;
        assert_eq!(ips, (client.into(), client.into()), "{headers:?}");
    }
    eprintln!(
        "figures: trusted proxy 127.0.0.2: 5 logins (X-Forwarded-For v4 chain with a spoofed \
         left entry, v6; Forwarded quoted [v6]:port, v4:port; none) → session list and audit \
         ip = the forwarded client each time"
    );
}

/// The throttle counts per (email, client address): behind a trusted proxy, one client's
/// failures lock out that client only; from an untrusted peer a changing header does not
/// buy fresh attempts.
#[tokio::test]
async fn the_login_throttle_is_keyed_on_the_client_address() {
    let app = TestApp::spawn_with(|c| {
        c.server.trusted_proxies = trusting(&["127.0.0.2"]);
        c.auth.max_failed_logins = 2;
    })
    .await;
    let t = app.tenant("Throttle").await;
    let proxy = client_from("127.0.0.2");
    let guesser = [("x-forwarded-for", "203.0.113.9")];
    for _ in 0..2 {
        let (status, _) = login_via(&app, &proxy, &t.owner, "wrong", &guesser).await;
        assert_eq!(status, 401);
    }
    assert_eq!(login_via(&app, &proxy, &t.owner, PASSWORD, &guesser).await.0, 429);
    let other = [("x-forwarded-for", "203.0.113.10")];
    assert_eq!(
        login_via(&app, &proxy, &t.owner, PASSWORD, &other).await.0,
        200,
        "another client behind the same proxy is not locked out"
    );

    let untrusted = client_from("127.0.0.5");
    for i in 0..2 {
        let spoof = format!("198.51.100.{i}");
        let (status, _) =
            login_via(&app, &untrusted, &t.admin, "wrong", &[("x-forwarded-for", &spoof)]).await;
        assert_eq!(status, 401);
    }
    let fresh = [("x-forwarded-for", "198.51.100.77")];
    assert_eq!(
        login_via(&app, &untrusted, &t.admin, PASSWORD, &fresh).await.0,
        429,
        "a spoofed header from an untrusted peer does not reset the count"
    );
    eprintln!(
        "figures: throttle behind a trusted proxy, max 2: client A 401, 401, 429; client B \
         200; untrusted peer with 3 different X-Forwarded-For: 401, 401, 429"
    );
}

/// Over IPv6: the peer `::1` trusted (or not) as a proxy.
#[tokio::test]
async fn over_ipv6_the_same_rules_hold() {
    let app = TestApp::spawn_with(|c| {
        c.server.listen = "[::1]:0".into();
        c.server.trusted_proxies = trusting(&["::1/128"]);
    })
    .await;
    let t = app.tenant("Six").await;
    let owner = app.login(&t.owner).await;
    let mut seen = HashSet::new();
    let client = reqwest::Client::new();
    let (status, _) =
        login_via(&app, &client, &t.engineer, PASSWORD, &[("x-forwarded-for", "2001:db8::42")])
            .await;
    assert_eq!(status, 200);
    let ips = recorded_ips(&app, &owner.access, &t.engineer, &mut seen).await;
    assert_eq!(ips, ("2001:db8::42".into(), "2001:db8::42".into()));

    let app = TestApp::spawn_with(|c| {
        c.server.listen = "[::1]:0".into();
        c.server.trusted_proxies = trusting(&["fd00::/8", "127.0.0.1"]);
    })
    .await;
    let t = app.tenant("Six untrusted").await;
    let owner = app.login(&t.owner).await;
    let mut seen = HashSet::new();
    let (status, _) =
        login_via(&app, &client, &t.engineer, PASSWORD, &[("forwarded", "for=\"[2001:db8::42]\"")])
            .await;
    assert_eq!(status, 200);
    let ips = recorded_ips(&app, &owner.access, &t.engineer, &mut seen).await;
    assert_eq!(ips, ("::1".into(), "::1".into()), "::1 is not trusted here");
}
