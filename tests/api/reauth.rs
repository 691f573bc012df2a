//! Contract §6: a signed-in user's writing request is authorised again inside the
//! transaction that writes, after its body has arrived, at that transaction's instant.
//!
//! Each test sends a request's headers with `Expect: 100-continue` on a raw socket and
//! waits for the server's `100 Continue`: the extractors have accepted the token and the
//! handler is reading the body. Only then does something end the caller's right to
//! write — a bulk revoke from another session, `user disable`, or the access token's
//! expiry on the test clock — and only then is the body sent.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sessiond::auth::Role;
use sessiond::service::{self, Caller};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::helpers::{PASSWORD, Tenant, TestApp, TestUser, session_of};

/// A request whose headers have been read by the server and whose body is held back.
struct Held {
    stream: TcpStream,
    body: Vec<u8>,
}

/// The answer to a held request.
#[derive(Debug)]
struct RawResp {
    status: u16,
    head: String,
    body: Value,
}

impl RawResp {
    #[track_caller]
    fn assert_not_authenticated(&self) {
        assert_eq!(self.status, 401, "{self:?}");
        assert_eq!(self.body, json!({ "detail": "not_authenticated" }), "{self:?}");
        let www = self.head.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("www-authenticate") && v.trim() == "Bearer"
            })
        });
        assert!(www, "WWW-Authenticate: Bearer: {self:?}");
    }
}

/// Sends the headers of `method path` with a JSON `body` announced, and waits until the
/// server asks for the body (`100 Continue`).
async fn hold(app: &TestApp, method: &str, path: &str, token: &str, body: &Value) -> Held {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.to_string().into_bytes();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(
            n,
            1,
            "connection closed before 100 Continue: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    let interim = String::from_utf8_lossy(&seen);
    assert!(interim.starts_with("HTTP/1.1 100"), "expected 100 Continue, got {interim:?}");
    Held { stream, body }
}

impl Held {
    /// Sends the body and reads the whole answer.
    async fn release(mut self) -> RawResp {
        self.stream.write_all(&self.body).await.unwrap();
        let mut raw = Vec::new();
        self.stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        RawResp {
            status,
            head: head.to_owned(),
            body: serde_json::from_str(body).unwrap_or(Value::Null),
        }
    }
}

/// What ends the caller's right to write while the body is held back.
#[derive(Debug, Clone, Copy)]
enum Interruption {
    /// The owner's other session revokes every session of the account.
    BulkRevoke,
    /// `user disable` of the caller.
    Disable,
    /// The clock moves past the access token's `exp`.
    Expiry,
}

const INTERRUPTIONS: [Interruption; 3] =
    [Interruption::BulkRevoke, Interruption::Disable, Interruption::Expiry];

/// A writing request, and what it would change.
#[derive(Debug, Clone, Copy)]
enum Write {
    Policy,
    PolicyPreview,
    RevokeAll,
    RevokePreview,
    Password,
}

const WRITES: [Write; 5] =
    [Write::Policy, Write::PolicyPreview, Write::RevokeAll, Write::RevokePreview, Write::Password];

impl Write {
    fn request(self) -> (&'static str, &'static str, Value) {
        match self {
            Write::Policy => ("PATCH", "/accounts/me/security", json!({ "idle_minutes": 30 })),
            Write::PolicyPreview => {
                ("PATCH", "/accounts/me/security?dry_run=true", json!({ "idle_minutes": 30 }))
            }
            Write::RevokeAll => {
                ("POST", "/accounts/me/security/revoke-sessions", json!({ "scope": "others" }))
            }
            Write::RevokePreview => (
                "POST",
                "/accounts/me/security/revoke-sessions?dry_run=true",
                json!({ "scope": "all" }),
            ),
            Write::Password => (
                "POST",
                "/auth/password",
                json!({ "current_password": PASSWORD, "new_password": "a brand new password" }),
            ),
        }
    }
}

/// The state a refused write must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    overrides: (Option<i64>, Option<i64>),
    /// Audit actions of the account, oldest first.
    actions: Vec<String>,
    password_hash: String,
    /// Refresh tokens of the account not yet revoked.
    live_tokens: usize,
}

async fn snapshot(app: &TestApp, t: &Tenant) -> Snapshot {
    let (account, email) = (t.account, t.owner.email.clone());
    app.state
        .db
        .read(move |tx| -> Result<Snapshot, sessiond::db::DbError> {
            let overrides = sessiond::db::accounts::overrides(tx, account)?;
            let mut events = sessiond::db::audit_events::page(tx, account, None, 200)?;
            events.reverse();
            let creds = sessiond::db::users::credentials_by_email(tx, &email)?.unwrap();
            Ok(Snapshot {
                overrides: (overrides.idle_minutes, overrides.absolute_minutes),
                actions: events.into_iter().map(|e| e.action).collect(),
                password_hash: creds.password_hash,
                live_tokens: sessiond::db::refresh_tokens::count_account(tx, account, None)?,
            })
        })
        .await
        .unwrap()
}

/// The account's audit rows with `action`: (created_at, details), oldest first.
async fn audit_rows(
    app: &TestApp,
    account: Uuid,
    action: &'static str,
) -> Vec<(DateTime<Utc>, Value)> {
    let mut rows = app
        .state
        .db
        .read(move |tx| sessiond::db::audit_events::page(tx, account, None, 200))
        .await
        .unwrap();
    rows.retain(|e| e.action == action);
    rows.reverse();
    rows.into_iter().map(|e| (e.created_at, e.details)).collect()
}

/// Does `what` to the caller `owner` (whose held request is in flight), from elsewhere.
async fn interrupt(app: &TestApp, what: Interruption, owner: &TestUser, other_access: &str) {
    match what {
        Interruption::BulkRevoke => {
            let r = app
                .post("/accounts/me/security/revoke-sessions", Some(other_access), json!({}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        Interruption::Disable => {
            service::users::disable(&app.state.db, &owner.email, app.state.clock.now())
                .await
                .unwrap();
        }
        Interruption::Expiry => {
            app.advance(app.state.config.auth.access_token_minutes * 60).await;
        }
    }
}

#[tokio::test]
async fn a_write_whose_caller_was_signed_out_while_its_body_was_held_back_changes_nothing() {
    let mut refused = 0;
    for write in WRITES {
        for what in INTERRUPTIONS {
            let app = TestApp::spawn().await;
            let t = app.tenant("Acme").await;
            let caller = app.login(&t.owner).await;
            let other = app.login(&t.owner).await;
            // Sessions of someone else, which the refused write must leave alone.
            let engineer = app.login(&t.engineer).await;
            app.login(&t.admin).await;

            let (method, path, body) = write.request();
            let held = hold(&app, method, path, &caller.access, &body).await;
            interrupt(&app, what, &t.owner, &other.access).await;
            let before = snapshot(&app, &t).await;
            let answer = held.release().await;
            answer.assert_not_authenticated();
            refused += 1;
            assert_eq!(
                snapshot(&app, &t).await,
                before,
                "{write:?} after {what:?} changed something"
            );

            // The engineer's session survived (a revoke-sessions of "others" or the
            // password change's sign-out would have ended it in the bulk revoke's and
            // the disable's cases too).
            if !matches!(what, Interruption::BulkRevoke) {
                let r = app.refresh(&engineer.refresh).await;
                assert_eq!(r.status, 200, "{write:?} after {what:?}: {}", r.text);
            }
            // The password is the old one: the owner (if still allowed in) logs in with it.
            if !matches!(what, Interruption::Disable) {
                let r = app.try_login(&t.owner.email, PASSWORD).await;
                assert_eq!(r.status, 200, "{write:?} after {what:?}: {}", r.text);
            }
        }
    }
    eprintln!(
        "figures: re-authorisation: {refused} held writes ({} kinds × {} interruptions) \
         answered 401, rows changed 0",
        WRITES.len(),
        INTERRUPTIONS.len()
    );
}

/// The same writes, held back across nothing, go through: the raw client and the 100
/// Continue handshake are not what refuses them.
#[tokio::test]
async fn the_same_held_writes_go_through_when_nothing_happened_meanwhile() {
    for write in WRITES {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let caller = app.login(&t.owner).await;
        let (method, path, body) = write.request();
        let held = hold(&app, method, path, &caller.access, &body).await;
        let answer = held.release().await;
        let expected = if matches!(write, Write::Password) { 204 } else { 200 };
        assert_eq!(answer.status, expected, "{write:?}: {answer:?}");
    }
}

/// The audit row carries the instant of the writing transaction: the clock moved forward
/// while the body was held back, and the row shows the later time.
#[tokio::test]
async fn audit_rows_carry_the_instant_of_the_writing_transaction() {
    let cases = [
        (Write::Policy, "account.session_policy_update"),
        (Write::RevokeAll, "account.sessions_revoked_bulk"),
        (Write::Password, "auth.password_changed"),
    ];
    for (write, action) in cases {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let caller = app.login(&t.owner).await;
        let (method, path, body) = write.request();
        let held = hold(&app, method, path, &caller.access, &body).await;
        let headers_at = app.state.clock.now();
        app.advance(120).await;
        let answer = held.release().await;
        assert!(answer.status == 200 || answer.status == 204, "{write:?}: {answer:?}");
        let rows = audit_rows(&app, t.account, action).await;
        assert_eq!(rows.len(), 1, "{write:?}: {rows:?}");
        let written_at = rows[0].0;
        // Stored to the millisecond.
        let later = (headers_at + TimeDelta::seconds(120)).timestamp_millis();
        assert!(
            written_at.timestamp_millis() >= later,
            "{action} stamped {written_at}, before the body arrived (headers at {headers_at})"
        );
        assert!(written_at <= app.state.clock.now());
    }
}

/// `DELETE /accounts/me/security/sessions/{id}` has no body to hold back, so its
/// re-check is shown at the service boundary the handler calls: a caller whose token was
/// accepted, then whose session ended, revokes nothing.
#[tokio::test]
async fn a_single_session_revoke_rechecks_its_caller_inside_the_transaction() {
    for what in INTERRUPTIONS {
        let app = TestApp::spawn().await;
        let t = app.tenant("Acme").await;
        let caller_tokens = app.login(&t.owner).await;
        let other = app.login(&t.owner).await;
        let engineer = app.login(&t.engineer).await;
        let target = session_of(&engineer.access);
        let claims = app.state.keys.verify(&caller_tokens.access, app.state.clock.now()).unwrap();
        let caller = Caller::new(claims.sub, claims.sid, claims.exp);

        interrupt(&app, what, &t.owner, &other.access).await;
        let before = snapshot(&app, &t).await;
        let r = service::account_sessions::revoke(&app.state, caller, &target).await;
        assert!(matches!(r, Err(service::Error::NotAuthenticated)), "{what:?}: {r:?}");
        assert_eq!(snapshot(&app, &t).await, before, "after {what:?}");
        if !matches!(what, Interruption::BulkRevoke) {
            assert_eq!(app.refresh(&engineer.refresh).await.status, 200, "after {what:?}");
        }
    }
    // And the same call with a caller still signed in does revoke.
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let engineer = app.login(&t.engineer).await;
    let claims = app.state.keys.verify(&owner.access, app.state.clock.now()).unwrap();
    let caller = Caller::new(claims.sub, claims.sid, claims.exp);
    service::account_sessions::revoke(&app.state, caller, &session_of(&engineer.access))
        .await
        .unwrap();
    app.refresh(&engineer.refresh).await.refused("invalid_refresh_token", "revoked_single");
}

/// Only the token's own `exp` counts: a token one second short of it still writes, and
/// the access token of a second owner is unaffected by the first one's disable.
#[tokio::test]
async fn expiry_is_judged_at_the_transaction_instant_to_the_second() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let second_owner = app.user(t.account, "owner2@acme.test", Role::Owner).await;
    let caller = app.login(&t.owner).await;
    let lifetime = app.state.config.auth.access_token_minutes * 60;

    let (method, path, body) = Write::Policy.request();
    let held = hold(&app, method, path, &caller.access, &body).await;
    app.advance(lifetime - 2).await;
    assert_eq!(held.release().await.status, 200);

    let other = app.login(&second_owner).await;
    let held = hold(&app, method, path, &other.access, &json!({ "idle_minutes": 45 })).await;
    service::users::disable(&app.state.db, &t.owner.email, app.state.clock.now()).await.unwrap();
    let answer = held.release().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["idle_minutes"], 45);
}
