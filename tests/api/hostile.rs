//! Hostile input on every endpoint: broken and oversized bodies, wrong types, extreme
//! numbers, unicode, NUL and SQL in strings, header, path and query abuse, forged and
//! replayed JWTs. Every request gets the contract's answer — a JSON `{"detail": …}`
//! error, or the endpoint's ordinary answer where the input is merely odd — and nothing
//! in the database changes: not one commit (SQLite's `data_version`, checked after every
//! request) and the same content hash at the end.
//!
//! The table is [`endpoints`]; the test checks that it holds every operation of the
//! OpenAPI document. To cover a new endpoint, add an entry: the generic cases (path,
//! method, headers, query, authentication, body syntax, size and content type, every
//! field replaced by every hostile value) are derived from it, and its `oracle` predicts
//! the answer to any well-formed body. An input that would legitimately change something
//! (the oracle says [`Expect::Change`]) is not sent, except as a dry run where the
//! endpoint has one. An endpoint with an object's id in its path gets `ids` ([`Ids`]):
//! its `path` names no object, and every other id is tried there — the live objects only
//! with refused authentications, which must leave them live.
//!
//! `GET /metrics` answers Prometheus text ([`Expect::Prometheus`]): every scrape, and one
//! after the run, must show no label value that a request could have chosen
//! ([`LabelRules`]) — after thousands of odd paths, methods and queries.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, Tokens, session_of};

/// The server's signing secret here, so that tokens valid in every way but one can be made.
const SECRET: &str = "hostile-input-test-secret-0123456789abcdef";

// ---------------------------------------------------------------------------------------
// The table

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// No bearer token needed.
    Public,
    /// Any role.
    User,
    /// Role `owner`.
    Owner,
}

/// What a query string does on this endpoint.
#[derive(Clone, Copy, Debug)]
enum Queries {
    /// Ignored: the answer is the endpoint's ordinary one.
    Ignored,
    /// `dry_run=true|false` and nothing else; anything else is 422 (the writing owner
    /// endpoints). A body that would change something is also sent as a dry run, which
    /// must answer 200 and change nothing.
    DryRun,
    /// Read by this function, which predicts the answer.
    Read(fn(&str) -> Expect),
}

struct Endpoint {
    method: Method,
    path: &'static str,
    auth: Auth,
    /// For an endpoint that takes a body: a well-formed one that changes nothing.
    body: Option<Value>,
    /// Predicts the answer once authentication has passed: to `None` for a bodiless
    /// request, else to a well-formed JSON body.
    oracle: fn(Option<&Value>) -> Expect,
    queries: Queries,
    /// For an endpoint whose last path segment names an object (`path` holds an id that
    /// names none): the other ids to put there.
    ids: Option<Ids>,
}

/// The ids an endpoint's last path segment is tried with.
struct Ids {
    /// The answer to a segment that names no object of the caller's (`path`'s own, or
    /// one of the generic path variants that keeps the route, such as `…%00`).
    missing: fn() -> Expect,
    /// Label, segment as sent (already percent-encoded), and the answer the owner gets.
    /// [`Expect::Change`] marks a live object: it is sent only with every refused
    /// authentication (wrong role, forged token, bad header), and must stay live.
    segments: fn(&Ctx) -> Vec<(String, String, Expect)>,
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            method: Method::POST,
            path: "/auth/login",
            auth: Auth::Public,
            body: Some(json!({"email": "nobody@hostile.test", "password": "not the password"})),
            oracle: |b| {
                shape(b, &[("email", Ty::Str, true), ("password", Ty::Str, true)])
                    .unwrap_or(Expect::Error(401, "invalid_credentials".into()))
            },
            queries: Queries::Ignored,
            ids: None,
        },
        Endpoint {
            method: Method::POST,
            path: "/auth/refresh",
            auth: Auth::Public,
            body: Some(json!({"refresh_token": "no-such-token"})),
            oracle: |b| {
                shape(b, &[("refresh_token", Ty::Str, true)]).unwrap_or(Expect::Body(
                    401,
                    json!({"detail": "invalid_refresh_token", "reason": "unknown_token"}),
                ))
            },
            queries: Queries::Ignored,
            ids: None,
        },
        Endpoint {
            method: Method::POST,
            path: "/auth/logout",
            auth: Auth::Public,
            body: Some(json!({"refresh_token": "no-such-token"})),
            oracle: |b| shape(b, &[("refresh_token", Ty::Str, true)]).unwrap_or(Expect::NoContent),
            queries: Queries::Ignored,
            ids: None,
        },
        Endpoint {
            method: Method::POST,
            path: "/auth/password",
            auth: Auth::User,
            // A new password too short to accept: a well-formed body that changes
            // nothing (a wrong current password would be audited and counted).
            body: Some(json!({
                "current_password": "not the password",
                "new_password": "short",
                "sign_out_other_sessions": false,
            })),
            oracle: |b| {
                if let Some(e) = shape(
                    b,
                    &[
                        ("current_password", Ty::Str, true),
                        ("new_password", Ty::Str, true),
                        ("sign_out_other_sessions", Ty::Bool, false),
                    ],
                ) {
                    return e;
                }
                // The new password's length first, then the current password (never
                // the right one here). A wrong one is a failed login (contract §6): it
                // writes its audit row and counts toward the throttle, so it is a change,
                // not sent here (tests/api/password.rs covers it).
                let new = b.and_then(|b| b["new_password"].as_str()).unwrap_or_default();
                if !(8..=1024).contains(&new.chars().count()) {
                    return Expect::Error(
                        422,
                        "password must be between 8 and 1024 characters".into(),
                    );
                }
                Expect::Change
            },
            queries: Queries::Ignored,
            ids: None,
        },
        Endpoint {
            method: Method::GET,
            path: "/openapi.json",
            auth: Auth::Public,
            body: None,
            oracle: |_| Expect::Json(200),
            queries: Queries::Ignored,
            ids: None,
        },
        Endpoint {
            method: Method::GET,
            path: "/auth/me",
            auth: Auth::User,
            body: None,
            oracle: |_| Expect::Json(200),
            queries: Queries::Ignored,
            ids: None,
        },
        Endpoint {
            method: Method::GET,
            path: "/accounts/me/security",
            auth: Auth::Owner,
            body: None,
            oracle: |_| Expect::Json(200),
            queries: Queries::Ignored,
            ids: None,
        },
        Endpoint {
            method: Method::PATCH,
            path: "/accounts/me/security",
            auth: Auth::Owner,
            body: Some(json!({"idle_minutes": 1, "absolute_minutes": 1})),
            oracle: patch_policy_oracle,
            queries: Queries::DryRun,
            ids: None,
        },
        Endpoint {
            method: Method::POST,
            path: "/accounts/me/security/revoke-sessions",
            auth: Auth::Owner,
            body: Some(json!({"scope": "none of them"})),
            oracle: |b| {
                if let Some(e) = shape(b, &[("scope", Ty::Str, false)]) {
                    return e;
                }
                match b.and_then(|b| b.get("scope")) {
                    None => Expect::Change,
                    Some(s) if s == "all" || s == "others" => Expect::Change,
                    Some(_) => Expect::Sentence(422),
                }
            },
            queries: Queries::DryRun,
            ids: None,
        },
        Endpoint {
            method: Method::GET,
            path: "/accounts/me/audit-events",
            auth: Auth::Owner,
            body: None,
            oracle: |_| Expect::Json(200),
            queries: Queries::Read(audit_query_oracle),
            ids: None,
        },
        Endpoint {
            method: Method::GET,
            path: "/accounts/me/security/sessions",
            auth: Auth::Owner,
            body: None,
            oracle: |_| Expect::Json(200),
            queries: Queries::Ignored,
            ids: None,
        },
        Endpoint {
            method: Method::DELETE,
            // A random UUID, made once for this file: no session has it.
            path: "/accounts/me/security/sessions/6b0f3c52-9d4e-4a71-b8c6-2f5e1d7a9034",
            auth: Auth::Owner,
            body: None,
            // Only reached with `path`'s id, which names no session.
            oracle: |_| session_not_found(),
            queries: Queries::Ignored,
            ids: Some(Ids { missing: session_not_found, segments: session_ids }),
        },
        Endpoint {
            method: Method::GET,
            path: "/healthz",
            auth: Auth::Public,
            body: None,
            oracle: |_| Expect::Json(200),
            queries: Queries::Ignored,
            ids: None,
        },
        Endpoint {
            method: Method::POST,
            path: "/_test/clock",
            auth: Auth::Public,
            body: Some(json!({"advance_seconds": -1})),
            oracle: |b| {
                if let Some(e) = shape(b, &[("advance_seconds", Ty::Int, true)]) {
                    return e;
                }
                match b.and_then(|b| b["advance_seconds"].as_i64()) {
                    // Reads the clock; moving it would change what later cases mean.
                    Some(0) => Expect::Json(200),
                    Some(1..=10_000_000_000) => Expect::Change,
                    _ => Expect::Error(
                        422,
                        "advance_seconds must be between 0 and 10000000000".into(),
                    ),
                }
            },
            queries: Queries::Ignored,
            ids: None,
        },
        // Last, so that its scrapes have seen every hostile path and method before.
        Endpoint {
            method: Method::GET,
            path: "/metrics",
            auth: Auth::Public,
            body: None,
            oracle: |_| Expect::Prometheus,
            queries: Queries::Ignored,
            ids: None,
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Oracles

/// The answer a request must get.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// This status and exactly `{"detail": <this>}`.
    Error(u16, String),
    /// This status and `{"detail": <a sentence>}` (shape errors, meant for people).
    Sentence(u16),
    /// This status and exactly this JSON body (a refused refresh, with its reason).
    Body(u16, Value),
    /// This status and a JSON object that is not an error.
    Json(u16),
    /// 204 and no body.
    NoContent,
    /// 200 and the Prometheus text exposition (`GET /metrics`), every label value one
    /// the server may show (see [`LabelRules`]).
    Prometheus,
    /// A legitimate change: not sent.
    Change,
}

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Str,
    /// A JSON integer that fits in i64.
    Int,
    /// `null` or an [`Ty::Int`].
    NullableInt,
    Bool,
}

fn fits(ty: Ty, v: &Value) -> bool {
    match ty {
        Ty::Str => v.is_string(),
        Ty::Int => v.is_i64(),
        Ty::NullableInt => v.is_null() || v.is_i64(),
        Ty::Bool => v.is_boolean(),
    }
}

/// The 422 of a body of the wrong shape, if it is one: not an object, an unknown or
/// missing field, a field of the wrong type.
fn shape(body: Option<&Value>, fields: &[(&str, Ty, bool)]) -> Option<Expect> {
    let Some(obj) = body.and_then(Value::as_object) else {
        return Some(Expect::Sentence(422));
    };
    let known = |k: &String| fields.iter().any(|(name, _, _)| name == k);
    let wrong_type =
        fields.iter().any(|(name, ty, _)| obj.get(*name).is_some_and(|v| !fits(*ty, v)));
    let missing = fields.iter().any(|(name, _, required)| *required && !obj.contains_key(*name));
    (obj.keys().any(|k| !known(k)) || wrong_type || missing).then_some(Expect::Sentence(422))
}

/// PATCH /accounts/me/security, from an account without overrides (as here throughout:
/// no PATCH ever succeeds): shape, then the contract's three checks in order.
fn patch_policy_oracle(body: Option<&Value>) -> Expect {
    if let Some(e) = shape(
        body,
        &[("idle_minutes", Ty::NullableInt, false), ("absolute_minutes", Ty::NullableInt, false)],
    ) {
        return e;
    }
    let obj = body.and_then(Value::as_object).cloned().unwrap_or_default();
    let idle = obj.get("idle_minutes").and_then(Value::as_i64);
    let abs = obj.get("absolute_minutes").and_then(Value::as_i64);
    if idle.is_some_and(|v| !(15..=43200).contains(&v)) {
        return Expect::Error(422, "idle_minutes must be between 15 and 43200".into());
    }
    if abs.is_some_and(|v| !(60..=129_600).contains(&v)) {
        return Expect::Error(422, "absolute_minutes must be between 60 and 129600".into());
    }
    let (e_idle, e_abs) = (idle.unwrap_or(1440), abs.unwrap_or(10080));
    if e_idle > e_abs {
        return Expect::Error(
            422,
            format!("Effective idle ({e_idle}min) cannot exceed effective absolute ({e_abs}min)"),
        );
    }
    Expect::Change
}

/// GET /accounts/me/audit-events: `limit` 1..=200, `before` a UUID; others ignored.
fn audit_query_oracle(query: &str) -> Expect {
    let pairs: Vec<(String, String)> = url_pairs(query);
    let mut seen = BTreeMap::new();
    for (k, v) in &pairs {
        if (k == "limit" || k == "before") && seen.insert(k.clone(), v.clone()).is_some() {
            return Expect::Sentence(422); // duplicate field
        }
    }
    if let Some(limit) = seen.get("limit") {
        match limit.parse::<u32>() {
            Ok(1..=200) => {}
            Ok(_) => return Expect::Error(422, "limit must be between 1 and 200".into()),
            Err(_) => return Expect::Sentence(422),
        }
    }
    if let Some(before) = seen.get("before")
        && uuid::Uuid::parse_str(before).is_err()
    {
        return Expect::Sentence(422);
    }
    Expect::Json(200)
}

fn session_not_found() -> Expect {
    Expect::Error(404, "session_not_found".into())
}

/// DELETE /accounts/me/security/sessions/{session_id}: whatever names no active session
/// of the caller's account is the same 404 — another account's session in any spelling
/// included — and the account's live sessions are revoked by no refused request.
fn session_ids(ctx: &Ctx) -> Vec<(String, String, Expect)> {
    let live = session_of(&ctx.engineer.access);
    let sql_or = "%27%20OR%20%271%27%3D%271"; // ' OR '1'='1
    let mut ids: Vec<(String, String)> = vec![
        ("not a UUID".into(), "not-a-uuid".into()),
        ("the nil UUID".into(), uuid::Uuid::nil().to_string()),
        ("the max UUID".into(), "ffffffff-ffff-ffff-ffff-ffffffffffff".into()),
        ("a live id one digit short".into(), live[..35].to_owned()),
        ("a live id one digit long".into(), format!("{live}0")),
        ("a live id with a non-hex digit".into(), format!("{}g", &live[..35])),
        ("SQL".into(), sql_or.into()),
        ("a live id, then SQL".into(), format!("{live}{sql_or}")),
        (
            "a live id, then DROP TABLE".into(),
            format!("{live}%27%3B%20DROP%20TABLE%20refresh_tokens%3B--"),
        ),
        ("a LIKE wildcard".into(), "%25".into()),
        ("LIKE wildcards shaped as a UUID".into(), "________-____-____-____-____________".into()),
        ("invalid UTF-8".into(), "%ff%fe%fd".into()),
        ("overlong UTF-8".into(), "%C0%80".into()),
        ("a bad percent escape".into(), "%zz".into()),
        ("a lone percent sign".into(), "%".into()),
        ("a live id, then an encoded slash".into(), format!("{live}%2Fx")),
        ("an encoded dot-dot".into(), "%2e%2e".into()),
        ("NUL".into(), "%00".into()),
        ("a live id, then NUL".into(), format!("{live}%00")),
        ("NUL, then a live id".into(), format!("%00{live}")),
        ("a live id in spaces".into(), format!("%20{live}%20")),
        ("a live id after an RTL override".into(), format!("%E2%80%AE{live}")),
        ("a live id in full-width digits".into(), full_width_digits(&live)),
        ("30000 characters".into(), "a".repeat(30_000)),
        ("a live id, then 30000 hex digits".into(), format!("{live}{}", "f".repeat(30_000))),
        ("a logged-out session".into(), session_of(&ctx.logged_out.access)),
    ];
    // Ids of sessions the caller may not end, in every spelling a UUID parser takes.
    for (whose, id) in [
        ("another account's live session", &ctx.foreign_session),
        ("an expired session", &ctx.expired_session),
    ] {
        ids.push((whose.into(), id.clone()));
        ids.push((format!("{whose}, upper case"), id.to_uppercase()));
        ids.push((format!("{whose}, without hyphens"), id.replace('-', "")));
        ids.push((format!("{whose}, braced"), format!("%7B{id}%7D")));
        ids.push((format!("{whose}, as a URN"), format!("urn:uuid:{id}")));
    }
    let mut out: Vec<(String, String, Expect)> =
        ids.into_iter().map(|(label, id)| (label, id, session_not_found())).collect();
    out.push(("an empty id".into(), String::new(), Expect::Error(404, "not_found".into())));
    // The account's live sessions: the owner would revoke them.
    for (whose, tokens) in [
        ("the engineer's live session", &ctx.engineer),
        ("the admin's live session", &ctx.admin),
        ("the caller's own session", &ctx.owner),
    ] {
        out.push((whose.into(), session_of(&tokens.access), Expect::Change));
    }
    out
}

/// `id` with every ASCII digit (a v4 UUID has at least its version's `4`) replaced by its
/// full-width form, percent-encoded.
fn full_width_digits(id: &str) -> String {
    id.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => format!("%EF%BC%{:02X}", 0x90 + d),
            None => c.to_string(),
        })
        .collect()
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded (lossily, as the server's
/// parser does).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match std::str::from_utf8(&bytes[i + 1..i + 3])
                        .map(|h| u8::from_str_radix(h, 16))
                    {
                        Ok(Ok(b)) => {
                            out.push(b);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Hostile values

fn hostile_values() -> Vec<(String, Value)> {
    let mut nested = json!(1);
    for _ in 0..100 {
        nested = json!([nested]);
    }
    let strings = [
        "",
        " ",
        "\u{0}",
        "a\u{0}b",
        "owner@hostile.test\u{0}",
        " owner@hostile.test",
        "owner@hostile.test' --",
        "' OR '1'='1' --",
        "'; DROP TABLE users; --",
        "\") OR 1=1 --",
        "1; DELETE FROM refresh_tokens",
        "Robert'); DROP TABLE refresh_tokens;--",
        "%00",
        "../../../../etc/passwd",
        "<script>alert(1)</script>",
        "${jndi:ldap://hostile.test/a}",
        "{{7*7}}",
        "\r\nSet-Cookie: x=y",
        "\\",
        "\"",
        "\u{202E}gnp.exe",
        "\u{FEFF}",
        "\u{10FFFF}",
        "ÄÖÜ@例え.テスト",
        "null",
        "NaN",
        "-1",
        "9223372036854775808",
    ];
    let mut values: Vec<(String, Value)> =
        strings.iter().map(|s| (format!("string {s:?}"), json!(s))).collect();
    values.push(("4000 emoji".into(), json!("😀".repeat(4000))));
    values.push(("a 60000-byte string".into(), json!("A".repeat(60_000))));
    for n in [0_i64, -1, 1, 14, 15, 59, 60, 43200, 43201, 129_601, i64::MIN, i64::MAX] {
        values.push((format!("integer {n}"), json!(n)));
    }
    values.push(("integer u64::MAX".into(), json!(u64::MAX)));
    for f in [0.0_f64, 1.5, 60.0, -0.5, 1e300] {
        values.push((format!("float {f}"), json!(f)));
    }
    values.extend([
        ("true".into(), json!(true)),
        ("false".into(), json!(false)),
        ("null".into(), Value::Null),
        ("[]".into(), json!([])),
        ("{}".into(), json!({})),
        ("[1, 2]".into(), json!([1, 2])),
        ("{\"$gt\": \"\"}".into(), json!({"$gt": ""})),
        ("100-deep array".into(), nested),
    ]);
    values
}

/// Numbers as raw JSON text (beyond what `serde_json::Value` holds) and non-JSON numbers.
const RAW_NUMBERS: &[(&str, bool)] = &[
    // (text, is it well-formed JSON?)
    ("1e400", true),
    ("-1e400", true),
    ("99999999999999999999999999999", true),
    ("1E2", true),
    ("6e1", true),
    ("-0", true),
    ("0x10", false),
    ("01", false),
    ("+1", false),
    (".5", false),
    ("1.", false),
    ("Infinity", false),
    ("NaN", false),
];

// ---------------------------------------------------------------------------------------
// Requests

#[derive(Clone)]
struct Case {
    label: String,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Body,
    expect: Expect,
}

#[derive(Clone)]
enum Body {
    None,
    Bytes(Vec<u8>),
    /// Sent chunked, without a Content-Length, over a raw socket.
    Streamed(Vec<u8>),
    /// Sent with a Content-Length over a raw socket, reading the answer while writing:
    /// the server answers 413 at once and closes, which the client library reports as a
    /// broken pipe instead of the answer.
    Large(Vec<u8>),
}

fn h(name: &'static str, value: &str) -> (HeaderName, HeaderValue) {
    (HeaderName::from_static(name), HeaderValue::from_str(value).unwrap())
}

fn json_ct() -> (HeaderName, HeaderValue) {
    h("content-type", "application/json")
}

/// What the test holds: tokens of the tenant's users, made before the baseline.
struct Ctx {
    owner: Tokens,
    engineer: Tokens,
    admin: Tokens,
    /// Of a session logged out before the baseline.
    logged_out: Tokens,
    /// The owner's token's claims, to forge variations of.
    claims: Value,
    engineer_id: String,
    /// A live session of another account.
    foreign_session: String,
    /// A session of the tenant that the default absolute timeout has ended.
    expired_session: String,
}

impl Ctx {
    fn auth_for(&self, auth: Auth) -> Vec<(HeaderName, HeaderValue)> {
        match auth {
            Auth::Public => vec![],
            Auth::User => vec![h("authorization", &format!("Bearer {}", self.engineer.access))],
            Auth::Owner => vec![h("authorization", &format!("Bearer {}", self.owner.access))],
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT put together by hand: any header, any claims, any signature.
fn raw_jwt(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn signed(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC by hand (RFC 2104), so the test needs no extra crate.
    let mut k = if key.len() > 64 { Sha256::digest(key).to_vec() } else { key.to_vec() };
    k.resize(64, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(msg).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().to_vec()
}

/// Every bearer token that must be refused, with its name.
fn forged_tokens(ctx: &Ctx, now: i64) -> Vec<(String, String)> {
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    let c = &ctx.claims;
    let with = |changes: Value| {
        let mut claims = c.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let parts: Vec<&str> = ctx.owner.access.split('.').collect();
    let (head, payload, sig) = (parts[0], parts[1], parts[2]);
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let mut t: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, token: String| t.push((name.to_owned(), token));

    // alg: none, in its spellings, with and without a signature.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        add(&format!("alg {alg}, no signature"), raw_jwt(&header, c, ""));
        add(&format!("alg {alg}, original signature"), raw_jwt(&header, c, sig));
    }
    // Tampering with a genuine token.
    add("payload tampered (exp + 1 h)", raw_jwt(&hs256, &with(json!({"exp": now + 3600})), sig));
    add(
        "payload tampered (another user)",
        raw_jwt(&hs256, &with(json!({"sub": ctx.engineer_id})), sig),
    );
    add("signature stripped", format!("{head}.{payload}."));
    add("signature of another token", {
        let other: Vec<&str> = ctx.engineer.access.split('.').collect();
        format!("{head}.{payload}.{}", other[2])
    });
    add("signature flipped", {
        let mut s = URL_SAFE_NO_PAD.decode(sig).unwrap();
        s[0] ^= 1;
        format!("{head}.{payload}.{}", b64(&s))
    });
    // Algorithms other than the pinned HS256, with the server's own secret.
    add("HS384 with the server's secret", signed(Algorithm::HS384, &secret, c));
    add("HS512 with the server's secret", signed(Algorithm::HS512, &secret, c));
    // Asymmetric algorithms, genuinely signed: no key here verifies them.
    add("RS256 signed by an RSA key", {
        let der = STANDARD.decode(TEST_RSA_PKCS1_DER).unwrap();
        signed(Algorithm::RS256, &EncodingKey::from_rsa_der(&der), c)
    });
    add("EdDSA signed by an Ed25519 key", {
        let der = STANDARD.decode(TEST_ED25519_PKCS8_DER).unwrap();
        signed(Algorithm::EdDSA, &EncodingKey::from_ed_der(&der), c)
    });
    // HS/RS confusion: an RS256 header over an HMAC made with the server's secret.
    for alg in ["RS256", "ES256", "PS256"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        let unsigned =
            format!("{}.{}", b64(header.to_string().as_bytes()), b64(c.to_string().as_bytes()));
        let mac = hmac_sha256(SECRET.as_bytes(), unsigned.as_bytes());
        add(
            &format!("{alg} header over an HMAC with the secret"),
            format!("{unsigned}.{}", b64(&mac)),
        );
    }
    // Header tricks: a key of the token's own choosing.
    add("jwk header with its own key", {
        let header =
            json!({"alg": "HS256", "typ": "JWT", "jwk": {"kty": "oct", "k": b64(b"attacker")}});
        let unsigned =
            format!("{}.{}", b64(header.to_string().as_bytes()), b64(c.to_string().as_bytes()));
        format!("{unsigned}.{}", b64(&hmac_sha256(b"attacker", unsigned.as_bytes())))
    });
    add("kid pointing at /dev/null, empty key", {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": "../../../../dev/null"});
        let unsigned =
            format!("{}.{}", b64(header.to_string().as_bytes()), b64(c.to_string().as_bytes()));
        format!("{unsigned}.{}", b64(&hmac_sha256(b"", unsigned.as_bytes())))
    });
    // Another server's secret.
    add(
        "another server's secret",
        signed(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"another-server-secret-0123456789abcdef"),
            c,
        ),
    );
    add("an empty secret", signed(Algorithm::HS256, &EncodingKey::from_secret(b""), c));
    // Correctly signed, wrong in time.
    add("expired a second ago", signed(Algorithm::HS256, &secret, &with(json!({"exp": now - 1}))));
    add("expiring this second", signed(Algorithm::HS256, &secret, &with(json!({"exp": now}))));
    add(
        "expired long ago",
        signed(Algorithm::HS256, &secret, &with(json!({"exp": 1, "iat": 0, "nbf": 0}))),
    );
    add(
        "not valid for a minute",
        signed(Algorithm::HS256, &secret, &with(json!({"nbf": now + 60}))),
    );
    add(
        "issued in the future",
        signed(
            Algorithm::HS256,
            &secret,
            &with(json!({"iat": now + 3600, "nbf": now + 3600, "exp": now + 7200})),
        ),
    );
    // Correctly signed, wrong in content.
    for missing in ["exp", "nbf", "sub", "sid"] {
        add(
            &format!("no {missing}"),
            signed(Algorithm::HS256, &secret, &with(json!({missing: null}))),
        );
    }
    for (name, changes) in [
        ("sub not a UUID", json!({"sub": "owner"})),
        ("sid not a UUID", json!({"sid": "' OR 1=1 --"})),
        ("sub of nobody", json!({"sub": uuid::Uuid::new_v4()})),
        ("sid of no session", json!({"sid": uuid::Uuid::new_v4()})),
        ("sub of another user, own sid", json!({"sub": ctx.engineer_id})),
        ("exp a string", json!({"exp": "9999999999"})),
        ("exp a float", json!({"exp": 9_999_999_999.5})),
        ("exp beyond i64", json!({"exp": 1e30})),
        ("exp negative", json!({"exp": -1})),
        ("claims an array", json!({"sub": [1]})),
    ] {
        add(name, signed(Algorithm::HS256, &secret, &with(changes)));
    }
    add("claims not an object", raw_jwt(&hs256, &json!([1, 2, 3]), sig));
    // Replayed: genuine tokens of a session that is over.
    add("replayed after logout", ctx.logged_out.access.clone());
    add("a refresh token as bearer", ctx.owner.refresh.clone());
    // Not JWTs at all.
    for (name, token) in [
        ("two parts", format!("{head}.{payload}")),
        ("four parts", format!("{}.{sig}", ctx.owner.access)),
        ("empty parts", "..".to_owned()),
        ("not base64", "!!!.@@@.###".to_owned()),
        ("padded base64", format!("{head}==.{payload}.{sig}")),
        ("garbage", "not-a-jwt".to_owned()),
        ("60 KB", "a".repeat(60_000)),
    ] {
        add(name, token);
    }
    t
}

/// Every `Authorization` header that must be refused (besides the forged tokens).
fn bad_authorization(ctx: &Ctx) -> Vec<(String, Vec<HeaderValue>)> {
    let valid = format!("Bearer {}", ctx.owner.access);
    let v = |s: &str| HeaderValue::from_str(s).unwrap();
    vec![
        ("no Authorization".into(), vec![]),
        ("empty".into(), vec![v("")]),
        ("scheme only".into(), vec![v("Bearer")]),
        ("scheme and space".into(), vec![v("Bearer ")]),
        ("Basic".into(), vec![v("Basic b3duZXI6cGFzc3dvcmQ=")]),
        ("Token scheme".into(), vec![v(&format!("Token {}", ctx.owner.access))]),
        ("no scheme".into(), vec![v(&ctx.owner.access)]),
        ("tab separated".into(), vec![v(&format!("Bearer\t{}", ctx.owner.access))]),
        ("token with suffix".into(), vec![v(&format!("{valid}x"))]),
        ("token and junk".into(), vec![v(&format!("{valid} junk"))]),
        ("obs-text bytes".into(), vec![HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap()]),
        ("two headers, bad first".into(), vec![v("Bearer junk"), v(&valid)]),
        ("two headers, good first".into(), vec![v(&valid), v("Bearer junk")]),
        ("the same token twice".into(), vec![v(&valid), v(&valid)]),
    ]
}

// ---------------------------------------------------------------------------------------
// Case generation

fn cases(ep: &Endpoint, ctx: &Ctx, now: i64) -> Vec<Case> {
    let mut out = Vec::new();
    let neutral = ep.body.clone();
    let ordinary = (ep.oracle)(neutral.as_ref());
    assert_ne!(
        ordinary,
        Expect::Change,
        "{} {}: the neutral body must change nothing",
        ep.method,
        ep.path
    );
    let auth = ctx.auth_for(ep.auth);
    let neutral_bytes = neutral.as_ref().map(|b| b.to_string().into_bytes());
    let base = |label: String, expect: Expect| Case {
        label,
        method: ep.method.clone(),
        path: ep.path.to_owned(),
        headers: auth.iter().cloned().chain(neutral_bytes.as_ref().map(|_| json_ct())).collect(),
        body: neutral_bytes.clone().map_or(Body::None, Body::Bytes),
        expect,
    };

    // The baseline itself.
    out.push(base("ordinary request".into(), ordinary.clone()));

    // Headers that must make no difference.
    let big = "x".repeat(60_000);
    let abuse: Vec<(&str, Vec<(HeaderName, HeaderValue)>)> = vec![
        ("Accept: text/html", vec![h("accept", "text/html")]),
        ("Accept: nothing JSON", vec![h("accept", "image/png")]),
        ("60 KB User-Agent", vec![h("user-agent", &big)]),
        (
            "obs-text User-Agent",
            vec![(
                HeaderName::from_static("user-agent"),
                HeaderValue::from_bytes(b"\xff\xfe agent").unwrap(),
            )],
        ),
        (
            "X-Forwarded-For etc.",
            vec![
                h("x-forwarded-for", "10.0.0.1, 10.0.0.2"),
                h("x-real-ip", "10.0.0.3"),
                h("forwarded", "for=10.0.0.4"),
            ],
        ),
        ("a foreign Host", vec![h("host", "evil.example")]),
        (
            "Origin and Referer",
            vec![h("origin", "https://evil.example"), h("referer", "https://evil.example/x")],
        ),
        ("Cookie", vec![h("cookie", "session=abc; admin=true")]),
        (
            "80 extra headers",
            (0..80)
                .map(|i| {
                    (
                        HeaderName::from_bytes(format!("x-junk-{i}").as_bytes()).unwrap(),
                        HeaderValue::from_str(&"j".repeat(500)).unwrap(),
                    )
                })
                .collect(),
        ),
        ("X-HTTP-Method-Override", vec![h("x-http-method-override", "DELETE")]),
        ("Expect: 100-continue", vec![h("expect", "100-continue")]),
    ];
    for (label, extra) in abuse {
        let mut c = base(format!("header: {label}"), ordinary.clone());
        c.headers.extend(extra);
        out.push(c);
    }

    // Paths and methods.
    for path in [
        format!("{}/", ep.path),
        format!("{}%00", ep.path),
        ep.path.to_uppercase(),
        ep.path.replacen('/', "//", 1),
        format!("{}/%2e%2e{}", ep.path, ep.path),
        format!("{}/{}", ep.path, "x".repeat(5000)),
        format!("{};jsessionid=1", ep.path),
    ] {
        if path == ep.path {
            continue;
        }
        let mut c = base(format!("path {path:.60}"), path_variant(&ep.method, &path));
        c.path = path;
        out.push(c);
    }
    for method in ["PUT", "DELETE", "TRACE", "FOO"] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        if method == ep.method {
            continue;
        }
        let mut c =
            base(format!("method {method}"), Expect::Error(405, "method_not_allowed".into()));
        c.method = method;
        out.push(c);
    }

    // Query strings.
    let queries = [
        "limit=0",
        "limit=-1",
        "limit=201",
        "limit=200",
        "limit=1",
        "limit=1e3",
        "limit=99999999999999999999999",
        "limit=abc",
        "limit=",
        "limit=1.5",
        "limit=%00",
        "limit=1&limit=2",
        "before=not-a-uuid",
        "before=%27%20OR%201%3D1%20--",
        "before=00000000-0000-0000-0000-000000000000",
        "before=00000000-0000-0000-0000-000000000000%00",
        "x=1",
        "dry_run=yes&scope=all",
        "dry_run=true",
        "dry_run=false",
        "dry_run=TRUE",
        "dry_run=1",
        "dry_run=",
        "dryrun=true",
        "dry_run=true&dry_run=true",
        "dry_run=true&x=1",
        "%ff%fe=%ff",
        "a=1&a=2&a=3",
    ];
    let long_query = format!("x={}", "q".repeat(8000));
    for q in queries.iter().copied().chain([long_query.as_str()]) {
        let expect = match ep.queries {
            Queries::Ignored => ordinary.clone(),
            Queries::DryRun => {
                let pairs = url_pairs(q);
                match pairs.as_slice() {
                    [(k, v)] if k == "dry_run" && (v == "true" || v == "false") => ordinary.clone(),
                    _ => Expect::Sentence(422),
                }
            }
            Queries::Read(oracle) => oracle(q),
        };
        let mut c = base(format!("query ?{q:.60}"), expect);
        c.path = format!("{}?{q}", ep.path);
        out.push(c);
    }

    // Authentication.
    let auth_cases = out.len();
    if ep.auth != Auth::Public {
        let refused = || Expect::Error(401, "not_authenticated".into());
        let without_auth = |c: &mut Case| c.headers.retain(|(n, _)| n != "authorization");
        for (label, values) in bad_authorization(ctx) {
            let mut c = base(format!("authorization: {label}"), refused());
            without_auth(&mut c);
            c.headers
                .extend(values.into_iter().map(|v| (HeaderName::from_static("authorization"), v)));
            out.push(c);
        }
        for (label, token) in forged_tokens(ctx, now) {
            let mut c = base(format!("token: {label}"), refused());
            without_auth(&mut c);
            c.headers.push(h("authorization", &format!("Bearer {token}")));
            out.push(c);
        }
        if ep.auth == Auth::Owner {
            for (role, tok) in [("admin", &ctx.admin), ("engineer", &ctx.engineer)] {
                let mut c =
                    base(format!("an {role}'s token"), Expect::Error(403, "owner_required".into()));
                without_auth(&mut c);
                c.headers.push(h("authorization", &format!("Bearer {}", tok.access)));
                out.push(c);
            }
        }
    }
    let refused_auth: Vec<Case> = out[auth_cases..].to_vec();

    // Ids in the path: each gets the owner's answer; the live objects only the refused
    // authentications, every one of them.
    if let Some(ids) = &ep.ids {
        let prefix = &ep.path[..=ep.path.rfind('/').unwrap()];
        for (label, segment, expect) in (ids.segments)(ctx) {
            let path = format!("{prefix}{segment}");
            if expect != Expect::Change {
                let mut c = base(format!("id: {label}"), expect);
                c.path = path;
                out.push(c);
                continue;
            }
            for refused in &refused_auth {
                let mut c = refused.clone();
                c.label = format!("{} on {label}", c.label);
                c.path = path.clone();
                out.push(c);
            }
        }
    }

    let (Some(neutral), Some(nb)) = (neutral, neutral_bytes.clone()) else {
        return out;
    };
    let raw = |label: String, bytes: Vec<u8>, expect: Expect| {
        let mut c = base(label, expect);
        c.body = Body::Bytes(bytes);
        c
    };
    let malformed = || Expect::Error(400, "malformed_json".into());
    let fields: Vec<String> = neutral.as_object().unwrap().keys().cloned().collect();
    let first = &fields[0];

    // Truncated: every strict prefix of the ordinary body.
    for n in 0..nb.len() {
        out.push(raw(format!("truncated to {n} bytes"), nb[..n].to_vec(), malformed()));
    }
    // Other syntax errors.
    let text = String::from_utf8(nb.clone()).unwrap();
    let syntax: Vec<(&str, Vec<u8>)> = vec![
        ("whitespace only", b"  \n\t ".to_vec()),
        ("trailing garbage", format!("{text}x").into_bytes()),
        ("an extra brace", format!("{text}}}").into_bytes()),
        ("two bodies", format!("{text}{text}").into_bytes()),
        ("a byte-order mark", [&b"\xef\xbb\xbf"[..], &nb].concat()),
        ("single quotes", text.replace('"', "'").into_bytes()),
        ("a trailing comma", text.replacen('}', ",}", 1).into_bytes()),
        ("a comment", format!("/* hi */{text}").into_bytes()),
        ("unquoted keys", format!("{{{first}: 1}}").into_bytes()),
        ("a raw NUL in a string", format!("{{\"{first}\": \"a\0b\"}}").into_bytes()),
        ("a raw newline in a string", format!("{{\"{first}\": \"a\nb\"}}").into_bytes()),
        (
            "invalid UTF-8 in a string",
            [format!("{{\"{first}\": \"").as_bytes(), b"\xff\xfe", b"\"}"].concat(),
        ),
        (
            "overlong UTF-8 (C0 80)",
            [format!("{{\"{first}\": \"").as_bytes(), b"\xc0\x80", b"\"}"].concat(),
        ),
        ("a bad escape", format!("{{\"{first}\": \"\\x41\"}}").into_bytes()),
        ("unbalanced nesting", "[".repeat(20_000).into_bytes()),
    ];
    for (label, bytes) in syntax {
        out.push(raw(format!("syntax: {label}"), bytes, malformed()));
    }
    // Well-formed, however odd: 422. Deep nesting is not recursed into (no stack to
    // exhaust), and a lone surrogate escape is valid JSON syntax but no valid text.
    let odd: Vec<(&str, Vec<u8>)> = vec![
        ("a lone surrogate escape", format!("{{\"{first}\": \"\\ud800\"}}").into_bytes()),
        ("a reversed surrogate pair", format!("{{\"{first}\": \"\\udc00\\ud800\"}}").into_bytes()),
        ("20000-deep arrays", format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes()),
        (
            "6000-deep objects",
            format!("{}1{}", "{\"a\":".repeat(6000), "}".repeat(6000)).into_bytes(),
        ),
        (
            "200-deep field value",
            format!("{{\"{first}\": {}1{}}}", "[".repeat(200), "]".repeat(200)).into_bytes(),
        ),
        (
            "20000-deep field value",
            format!("{{\"{first}\": {}1{}}}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes(),
        ),
    ];
    for (label, bytes) in odd {
        out.push(raw(format!("odd: {label}"), bytes, Expect::Sentence(422)));
    }
    for (number, well_formed) in RAW_NUMBERS {
        let bytes = format!("{{\"{first}\": {number}}}").into_bytes();
        let expect = if *well_formed { Expect::Sentence(422) } else { malformed() };
        out.push(raw(format!("number {number} in {first}"), bytes, expect));
    }
    // Shapes serde sees but a JSON value cannot hold.
    let dup = format!("{{\"{first}\": {0}, \"{first}\": {0}}}", neutral[first]);
    out.push(raw("a key given twice".into(), dup.into_bytes(), Expect::Sentence(422)));
    let many: Vec<String> = (0..3000).map(|i| format!("\"k{i}\": {i}")).collect();
    out.push(raw(
        "3000 unknown keys".into(),
        format!("{{{}}}", many.join(",")).into_bytes(),
        Expect::Sentence(422),
    ));

    // Size: the limit is 64 KiB (65,536 bytes) of body.
    let padded = |len: usize| {
        let mut b = nb.clone();
        b.resize(len, b' ');
        b
    };
    out.push(raw("exactly 64 KiB".into(), padded(65_536), ordinary.clone()));
    out.push(raw(
        "64 KiB + 1".into(),
        padded(65_537),
        Expect::Error(413, "payload_too_large".into()),
    ));
    let ten_mb = format!("{{\"{first}\": \"{}\"}}", "A".repeat(10 * 1024 * 1024)).into_bytes();
    let mut large = base("10 MB".into(), Expect::Error(413, "payload_too_large".into()));
    large.body = Body::Large(ten_mb.clone());
    out.push(large);
    let mut streamed =
        base("10 MB chunked, no length".into(), Expect::Error(413, "payload_too_large".into()));
    streamed.body = Body::Streamed(ten_mb);
    out.push(streamed);

    // Content types.
    for ct in [
        None,
        Some(""),
        Some("text/plain"),
        Some("text/json"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        Some("application/"),
        Some("json"),
        Some("*/*"),
        Some("application/xml"),
    ] {
        let mut c = base(
            format!("content-type {ct:?}"),
            Expect::Error(415, "unsupported_media_type".into()),
        );
        c.headers.retain(|(n, _)| n != "content-type");
        if let Some(ct) = ct {
            c.headers.push(h("content-type", ct));
        }
        out.push(c);
    }
    for ct in [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/merge-patch+json",
        "application/vnd.api+json",
    ] {
        let mut c = base(format!("content-type {ct}"), ordinary.clone());
        c.headers.retain(|(n, _)| n != "content-type");
        c.headers.push(h("content-type", ct));
        out.push(c);
    }

    // Well-formed bodies: whole-body values, then every field replaced, removed, or joined
    // by an unknown one. The oracle says what each must get.
    let values = hostile_values();
    let mut bodies: Vec<(String, Value)> =
        values.iter().map(|(l, v)| (format!("body {l}"), v.clone())).collect();
    bodies.push(("body {}".into(), json!({})));
    bodies.push(("body [ordinary]".into(), json!([neutral])));
    for f in &fields {
        for (label, v) in &values {
            let mut b = neutral.clone();
            b[f] = v.clone();
            bodies.push((format!("{f} = {label}"), b));
        }
        let mut b = neutral.clone();
        b.as_object_mut().unwrap().remove(f);
        bodies.push((format!("{f} left out"), b));
    }
    for extra in ["extra", "__proto__", "constructor", "is_admin", "role"] {
        let mut b = neutral.clone();
        b[extra] = json!({"admin": true});
        bodies.push((format!("unknown field {extra}"), b));
    }
    for (label, body) in bodies {
        let expect = (ep.oracle)(Some(&body));
        if expect != Expect::Change {
            out.push(raw(label, body.to_string().into_bytes(), expect));
        } else if matches!(ep.queries, Queries::DryRun) {
            // The real call would change something; its preview must not.
            let mut c = raw(
                format!("{label}, as a dry run"),
                body.to_string().into_bytes(),
                Expect::Json(200),
            );
            c.path = format!("{}?dry_run=true", ep.path);
            out.push(c);
        }
    }
    out
}

/// A path with its last segment shown as `{}` when it is a parameter (`{session_id}`)
/// or a UUID.
fn route_shape(path: &str) -> String {
    let (prefix, last) = path.rsplit_once('/').unwrap();
    if last.starts_with('{') || uuid::Uuid::parse_str(last).is_ok() {
        format!("{prefix}/{{}}")
    } else {
        path.to_owned()
    }
}

/// The answer to `method` on a path that is not the endpoint's own: 404 `not_found`,
/// unless the path fills the parameter of a route with an id (`…/sessions/xxx`, or the
/// id with `%00` or `;jsessionid=1` after it): then that route's answer to an id that
/// names nothing, or 405 for another method.
fn path_variant(method: &Method, path: &str) -> Expect {
    for other in endpoints() {
        if let Some(ids) = &other.ids
            && keeps_route(other.path, path)
        {
            return if other.method == *method {
                (ids.missing)()
            } else {
                Expect::Error(405, "method_not_allowed".into())
            };
        }
    }
    Expect::Error(404, "not_found".into())
}

/// Whether `variant` differs from `path` in the last segment only, so that a route with
/// a parameter there still matches it.
fn keeps_route(path: &str, variant: &str) -> bool {
    let prefix = &path[..=path.rfind('/').unwrap()];
    variant.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

// ---------------------------------------------------------------------------------------
// Checking

/// Watches the database file from outside the server.
struct Probe {
    conn: rusqlite::Connection,
}

impl Probe {
    /// Bumped by every commit another connection makes, whatever it changed.
    fn data_version(&self) -> i64 {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).unwrap()
    }

    /// Row counts and a hash of every row of every table but `login_failures`: the login
    /// throttle's counts, which every login answered 401 writes (throttle.rs tests them).
    fn snapshot(&self) -> (BTreeMap<String, i64>, String) {
        let tables: Vec<String> = self
            .conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'login_failures'
                 ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut counts = BTreeMap::new();
        let mut hash = Sha256::new();
        for t in tables {
            // The first two columns order every table (the token table has no rowid).
            let mut stmt =
                self.conn.prepare(&format!("SELECT * FROM \"{t}\" ORDER BY 1, 2")).unwrap();
            let n = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            let mut count = 0;
            while let Some(row) = rows.next().unwrap() {
                count += 1;
                for i in 0..n {
                    let v: rusqlite::types::Value = row.get(i).unwrap();
                    hash.update(format!("{t}|{i}|{v:?}\n").as_bytes());
                }
            }
            counts.insert(t, count);
        }
        (counts, format!("{:x}", hash.finalize()))
    }
}

async fn send(
    app: &TestApp,
    c: &Case,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), String> {
    let mut req = app.client.request(c.method.clone(), format!("{}{}", app.base, c.path));
    for (k, v) in &c.headers {
        req = req.header(k.clone(), v.clone());
    }
    req = match &c.body {
        Body::None => req,
        Body::Bytes(b) => req.body(b.clone()),
        Body::Streamed(_) | Body::Large(_) => req,
    };
    match &c.body {
        Body::Streamed(b) => return send_raw(app, c, b, true).await,
        Body::Large(b) => return send_raw(app, c, b, false).await,
        Body::None | Body::Bytes(_) if c.path.contains("%2e") => {
            // The client library resolves dot segments; the server must see them as sent.
            let b = if let Body::Bytes(b) = &c.body { b.clone() } else { vec![] };
            return send_raw(app, c, &b, false).await;
        }
        _ => {}
    }
    let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| format!("{e:?}"))?.to_vec();
    Ok((status, headers, body))
}

/// A request over a raw socket, exactly as given: the path unresolved, the body chunked
/// (no Content-Length) or not. The server may answer and close before the body is
/// through; the writer's errors are expected then.
async fn send_raw(
    app: &TestApp,
    c: &Case,
    body: &[u8],
    chunked: bool,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), String> {
    use std::io::{Read, Write};
    let addr = app.base.strip_prefix("http://").unwrap().to_owned();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {}", body.len())
    };
    let mut head = format!("{} {} HTTP/1.1\r\nHost: x\r\n{framing}\r\n", c.method, c.path);
    for (k, v) in &c.headers {
        head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let body = body.to_vec();
    let raw = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let stream = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        let mut wr = stream.try_clone().unwrap();
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            wr.write_all(head.as_bytes())?;
            if !chunked {
                return wr.write_all(&body);
            }
            for chunk in body.chunks(64 * 1024) {
                wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                wr.write_all(chunk)?;
                wr.write_all(b"\r\n")?;
            }
            wr.write_all(b"0\r\n\r\n")
        });
        let mut raw = Vec::new();
        let read = (&stream).read_to_end(&mut raw);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = writer.join();
        if raw.is_empty() {
            return Err(format!("no answer: {read:?}"));
        }
        Ok(raw)
    })
    .await
    .unwrap()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.append(
                HeaderName::from_bytes(k.trim().as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_str(v.trim()).map_err(|e| e.to_string())?,
            );
        }
    }
    Ok((status, headers, raw[split + 4..].to_vec()))
}

/// What the label values of a scrape may be. A value taken from a request — a raw path,
/// a method token, a query — would make a new series per probe, so: routes are the
/// document's path templates or `unmatched`; methods the standard names or `other`;
/// statuses three digits; `le` a bucket bound; any other label (refresh results,
/// revocation causes, all shown from the start) only a value the first scrape had.
struct LabelRules {
    routes: BTreeSet<String>,
    first: BTreeMap<String, BTreeSet<String>>,
}

const METHOD_LABELS: &[&str] =
    &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "other"];

/// A sample of a scrape: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// The samples of a Prometheus text exposition (format 0.0.4), or what is wrong with it.
fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let bad = || format!("not an exposition line: {line:.200}");
        let is_name = |s: &str| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        let name_end = line.find(['{', ' ']).ok_or_else(bad)?;
        let name = &line[..name_end];
        if !is_name(name) {
            return Err(bad());
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = inner.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (key, after) = inner.split_once("=\"").ok_or_else(bad)?;
                if !is_name(key) {
                    return Err(bad());
                }
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().ok_or_else(bad)? {
                        (i, '"') => break i + 1,
                        (_, '\\') => match chars.next().ok_or_else(bad)?.1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            _ => return Err(bad()),
                        },
                        (_, c) => value.push(c),
                    }
                };
                labels.push((key.to_owned(), value));
                inner = &after[end..];
                inner = inner.strip_prefix(',').unwrap_or(inner);
            }
        }
        let value = rest.strip_prefix(' ').ok_or_else(bad)?;
        let value: f64 = value.parse().map_err(|_| bad())?;
        samples.push((name.to_owned(), labels, value));
    }
    Ok(samples)
}

impl LabelRules {
    /// Every label value of `text` that the rules do not allow.
    fn problems(&self, text: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for (name, labels, _) in parse_exposition(text)? {
            for (k, v) in labels {
                let ok = match k.as_str() {
                    "route" => self.routes.contains(&v) || v == "unmatched",
                    "method" => METHOD_LABELS.contains(&v.as_str()),
                    "status" => {
                        v.len() == 3 && v.parse::<u16>().is_ok_and(|s| (100..600).contains(&s))
                    }
                    "le" => v == "+Inf" || v.parse::<f64>().is_ok(),
                    _ => self.first.get(&k).is_some_and(|vs| vs.contains(&v)),
                };
                if !ok {
                    out.push(format!("{name}{{{k}={v:?}}}"));
                }
            }
        }
        Ok(out)
    }

    /// The distinct values of each label in `text`.
    fn values(text: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (_, labels, _) in parse_exposition(text).unwrap() {
            for (k, v) in labels {
                values.entry(k).or_default().insert(v);
            }
        }
        values
    }
}

/// The problem with an answer, if any.
fn check(
    c: &Case,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    labels: &LabelRules,
) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let is_json_ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let detail = json.as_ref().and_then(|j| j.get("detail")).and_then(Value::as_str);
    let only_detail = json.as_ref().and_then(Value::as_object).is_some_and(|o| o.len() == 1);
    let fail = |why: &str| Some(format!("{why}: got {status} {text:.300}"));
    match &c.expect {
        Expect::Error(s, d) => {
            if status != *s || detail != Some(d.as_str()) || !only_detail || !is_json_ct {
                return fail(&format!("expected {s} {{\"detail\": {d:?}}}"));
            }
        }
        Expect::Sentence(s) => {
            if status != *s || detail.is_none_or(str::is_empty) || !only_detail || !is_json_ct {
                return fail(&format!("expected {s} with a detail sentence"));
            }
        }
        Expect::Body(s, expected) => {
            if status != *s || json.as_ref() != Some(expected) || !is_json_ct {
                return fail(&format!("expected {s} {expected}"));
            }
        }
        Expect::Json(s) => {
            if status != *s
                || !json.as_ref().is_some_and(Value::is_object)
                || detail.is_some()
                || !is_json_ct
            {
                return fail(&format!("expected {s} with a JSON object"));
            }
        }
        Expect::NoContent => {
            if status != 204 || !body.is_empty() {
                return fail("expected 204 and no body");
            }
        }
        Expect::Prometheus => {
            let ct = headers.get("content-type").and_then(|v| v.to_str().ok());
            if status != 200 || ct != Some("text/plain; version=0.0.4; charset=utf-8") {
                return fail("expected 200 text/plain; version=0.0.4");
            }
            if !text.contains("\nsessiond_http_requests_total{") {
                return fail("expected the request counts");
            }
            match labels.problems(&text) {
                Err(e) => return fail(&e),
                Ok(p) if !p.is_empty() => {
                    return fail(&format!("label values from requests: {}", p.join(", ")));
                }
                Ok(_) => {}
            }
        }
        Expect::Change => unreachable!("changes are not sent"),
    }
    if status == 401
        && detail == Some("not_authenticated")
        && headers.get("www-authenticate").and_then(|v| v.to_str().ok()) != Some("Bearer")
    {
        return fail("a 401 not_authenticated without WWW-Authenticate: Bearer");
    }
    if (c.path.starts_with("/auth/login") || c.path.starts_with("/auth/refresh"))
        && status != 404
        && status != 405
        && headers.get("cache-control").and_then(|v| v.to_str().ok()) != Some("no-store")
    {
        return fail("a token endpoint's answer without Cache-Control: no-store");
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_hostile_input_in_the_contracts_terms_and_changes_nothing() {
    let app = TestApp::spawn_on_file_with(|c| {
        c.auth.jwt_secret = SECRET.to_owned().into();
        // Input handling is under test here, not the throttle (see throttle.rs): the
        // login table sends far more than five unknown-email attempts from one address.
        c.auth.max_failed_logins = 1_000_000;
    })
    .await;
    let t = app.tenant("Hostile").await;
    // A session that the default absolute timeout (7 days) then ends: over, not revoked.
    let expired = app.login(&t.engineer).await;
    app.advance((10_080 + 1) * 60).await;
    let logged_out = app.login(&t.admin).await;
    let r = app.post("/auth/logout", None, json!({"refresh_token": logged_out.refresh})).await;
    assert_eq!(r.status, 204);
    let elsewhere = app.tenant("Elsewhere").await;
    let foreign = app.login(&elsewhere.owner).await;
    let owner = app.login(&t.owner).await;
    // The owner's token's claims: a live session, for forgeries wrong in one way only.
    let claims = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(owner.access.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    let ctx = Ctx {
        owner,
        engineer: app.login(&t.engineer).await,
        admin: app.login(&t.admin).await,
        logged_out,
        claims,
        engineer_id: t.engineer.id.to_string(),
        foreign_session: session_of(&foreign.access),
        expired_session: session_of(&expired.access),
    };
    let live_sessions = app.get("/accounts/me/security/sessions", &ctx.owner.access).await;
    assert_eq!(live_sessions.body["items"].as_array().unwrap().len(), 3, "owner, engineer, admin");

    // The table covers every operation of the document.
    let doc = app.request(Method::GET, "/openapi.json", None, None).await.body;
    let routes: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(|m| (m.to_uppercase(), route_shape(path)))
        })
        .collect();
    let table: BTreeSet<(String, String)> =
        endpoints().iter().map(|ep| (ep.method.to_string(), route_shape(ep.path))).collect();
    assert_eq!(table, documented, "endpoints() and the OpenAPI document");
    // Label values as the server shows them before any hostile request.
    let first = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let labels = LabelRules { routes, first: LabelRules::values(&first.text) };

    let probe = Probe { conn: rusqlite::Connection::open(app.db_path()).unwrap() };
    let before = probe.snapshot();
    let now = app.state.clock.now().timestamp();
    let mut failures = Vec::new();
    let mut sent = 0;
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    let mut by_endpoint: Vec<(String, usize)> = Vec::new();
    let mut throttle_commits = 0;
    for ep in endpoints() {
        let cases = cases(&ep, &ctx, now);
        by_endpoint.push((format!("{} {}", ep.method, route_shape(ep.path)), cases.len()));
        for case in cases {
            let version = probe.data_version();
            let label = format!("{} {} — {}", ep.method, ep.path, case.label);
            let mut answered = None;
            match send(&app, &case).await {
                Ok((status, headers, body)) => {
                    answered = Some(status);
                    *by_status.entry(status).or_default() += 1;
                    if let Some(problem) = check(&case, status, &headers, &body, &labels) {
                        failures.push(format!("{label}: {problem}"));
                    }
                }
                Err(e) => failures.push(format!("{label}: no answer: {e:.200}")),
            }
            sent += 1;
            // A login answered 401 counts a failure for the throttle (a row of
            // login_failures, which the snapshot leaves out); nothing else may change.
            let counted = ep.path == "/auth/login" && answered == Some(401);
            if probe.data_version() != version {
                if counted && probe.snapshot() == before {
                    throttle_commits += 1;
                } else {
                    failures.push(format!("{label}: the database changed"));
                }
            }
        }
    }
    let after = probe.snapshot();
    assert!(
        failures.is_empty(),
        "{} of {sent} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(before, after, "row counts and content hash");
    // The tenant's sessions are untouched, another account's too, and the server is well.
    assert!(app.access_ok(&ctx.owner.access).await);
    assert!(app.access_ok(&ctx.admin.access).await);
    assert!(app.access_ok(&foreign.access).await);
    assert_eq!(app.refresh(&ctx.engineer.refresh).await.status, 200);
    // No request of the run minted a label value.
    let last = app.request(Method::GET, "/metrics", None, None).await;
    let minted = labels.problems(&last.text).unwrap();
    assert!(minted.is_empty(), "label values from requests: {minted:?}");
    let last_values = LabelRules::values(&last.text);
    let series = parse_exposition(&last.text).unwrap().len();
    // The probe would have seen a change: a real one shows in both measures.
    let version = probe.data_version();
    app.set_policy(&ctx.owner.access, json!({"idle_minutes": 30})).await;
    assert_ne!(probe.data_version(), version, "the probe sees commits");
    assert_ne!(probe.snapshot(), after, "the probe sees content");
    eprintln!(
        "figures: hostile input: {sent} requests on {} endpoints, answers by status {by_status:?}, \
         database commits during the run {throttle_commits}, each a 401 login counted by the \
         throttle (login_failures), rows changed elsewhere 0 ({} rows hashed)",
        endpoints().len(),
        before.0.values().sum::<i64>()
    );
    eprintln!(
        "figures: hostile input by endpoint: {}",
        by_endpoint.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join(", ")
    );
    eprintln!(
        "figures: hostile input, metrics after the run: {series} samples; route labels {:?}; \
         method labels {:?}; status labels {:?}; label values not allowed 0",
        last_values["route"], last_values["method"], last_values["status"]
    );
}

/// Abuse of HTTP itself — broken request lines, oversized or conflicting framing headers
/// — is refused by the HTTP layer before any handler runs: a 4xx without a body, or the
/// connection closed. A body whose chunked framing breaks while it is read reaches the
/// app, which answers its JSON 400 `malformed_json`. Never a 5xx, never text or HTML,
/// nothing written, and the server keeps serving.
#[tokio::test]
async fn protocol_abuse_is_refused_below_the_app_and_changes_nothing() {
    let app = TestApp::spawn_on_file().await;
    let t = app.tenant("Hostile").await;
    let owner = app.login(&t.owner).await;
    let probe = Probe { conn: rusqlite::Connection::open(app.db_path()).unwrap() };
    let before = probe.snapshot();
    let addr = app.base.strip_prefix("http://").unwrap().to_owned();
    let login = |extra: &str, body: &str| {
        format!(
            "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}\r\n{body}"
        )
    };
    let body = r#"{"email":"nobody@hostile.test","password":"x"}"#;
    let requests: Vec<(&str, String)> = vec![
        ("garbage request line", "HELLO\r\n\r\n".into()),
        ("bad method token", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n".into()),
        ("HTTP/0.9", "GET /healthz\r\n\r\n".into()),
        ("HTTP/3.0", "GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n".into()),
        ("space in header name", "GET /healthz HTTP/1.1\r\nHo st: x\r\n\r\n".into()),
        ("NUL in a header", "GET /healthz HTTP/1.1\r\nHost: x\u{0}y\r\n\r\n".into()),
        // Heads over the server's limit (128 KiB): always 431 with `Connection: close`,
        // however the head arrives. Before the limit was explicit, 500 KB got through as a
        // 200 when a loaded server read it in a few large reads, and 140 KB always did.
        (
            "140 KB header",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(140_000)),
        ),
        (
            "500 KB header",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(500_000)),
        ),
        (
            "150 headers",
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..150).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
            ),
        ),
        ("Content-Length not a number", login("Content-Length: abc\r\n", body)),
        ("Content-Length beyond u64", login("Content-Length: 99999999999999999999999\r\n", body)),
        (
            "two different Content-Lengths",
            login(&format!("Content-Length: {}\r\nContent-Length: 3\r\n", body.len()), body),
        ),
        (
            "Content-Length and chunked",
            login(
                &format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", body.len()),
                body,
            ),
        ),
        ("bad chunk size", login("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n")),
    ];
    let mut refused = 0;
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for (label, request) in &requests {
        let (addr, request) = (addr.clone(), request.clone());
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
            let _ = s.write_all(request.as_bytes());
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            answer
        })
        .await
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        let status: Option<u16> =
            answer.strip_prefix("HTTP/1.1 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok());
        if label.ends_with("KB header") {
            assert_eq!(status, Some(431), "{label}: {answer:.300}");
            let head = answer.to_ascii_lowercase();
            assert!(head.contains("\r\nconnection: close\r\n"), "{label}: {answer:.300}");
        }
        match status {
            // Closed without an answer, or refused with a 4xx.
            None => assert!(answer.is_empty(), "{label}: {answer:.200}"),
            Some(s) => assert!((400..500).contains(&s), "{label}: {answer:.300}"),
        }
        // The HTTP layer's own refusals have no body; those that reach the app (a body
        // whose framing breaks while it is read) are its JSON errors. Never text or HTML.
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let json_error = serde_json::from_str::<Value>(body)
            .is_ok_and(|v| v["detail"].is_string() && v.as_object().is_some_and(|o| o.len() == 1));
        assert!(body.is_empty() || json_error, "{label}: {answer:.300}");
        let key = match (status, body.is_empty()) {
            (None, _) => "closed".to_owned(),
            (Some(s), true) => format!("{s} without a body"),
            (Some(s), false) => format!("{s} JSON"),
        };
        *answers.entry(key).or_default() += 1;
        refused += 1;
    }
    assert_eq!(probe.snapshot(), before, "nothing written");
    assert!(app.access_ok(&owner.access).await, "still serving");
    eprintln!(
        "figures: protocol abuse: {refused} raw requests, answers {answers:?}, no 5xx, rows changed 0"
    );
}

// ---------------------------------------------------------------------------------------
// Keys that sign the asymmetric forgeries. Generated for this test only; they protect
// nothing: the point is that the server accepts no token signed by anyone but itself.

/// RSA 2048, PKCS#1 DER, base64.
const TEST_RSA_PKCS1_DER: &str = concat!(
    "MIIEpQIBAAKCAQEAqpJRx8vaxGEoklDxNH4ntjG3cvemQLhTc4k9WDJN1vbjxuzS6wnRIkgZr8eeE/1vHinq4H/5",
    "u39znoif53y5NXmIdwDwsywO/sXygV71znIyJXBCV6SLsBeN1eJ96ULTOSrU17XJz2eG8ST90EGyGl9GbFCC95lk",
    "oYMsoAeIorRwlHh7qSTbfM7/+BMMmOroLTQNa2s9As1nyt4z/zjxZc5o5lsTKBs1om98Uu/o1u2y8z9+ycKPuS39",
    "a9KjPiTFcPy4Iv7wJHKbayQqCiqdWuTGAV964i5O1I+lk+eoGPGG0QMWkOnSzEa00Mk6kSFj/EGYaYsWzQcgj9ic",
    "FgpM0QIDAQABAoIBAAvsla3/eMgwuJrd8LbIOPN6L0ZovKUana7egbzYK2vjL5I4/Re0RHv+iVkp/cmM9ocnzAUs",
    "vSMX6lfDWlZe+D2eROV42drUsimqYeUcY9euUQYf/mtNE/zX8LDql/3GD6kX7vAzg6uto5fZC6tS5GYGkhBBYp53",
    "iTrnRifbzvf8wvJLUmwAZ9djnMsTetKYKMJa0OnsljdrQQOQkQSBk5vLyg4nKpx9BYRZ3TSSURf0iSKiY7kGAmqz",
    "RmDOK+tSeTR3WPPj7fglW50go/PA6OIpsCX/0iZKejkoglNY5+6rtHdH40Bun3bL6A8gFvsJgwp8YkrtzwF7yHAx",
    "XIJEK18CgYEA4bgjh7qFgXv3+CpaLEfcNDFCTuTR8IAh2Y7HHXoLRuYL4S/uxO9wJdjHDSMku4sHSsnmdFMJ/abn",
    "zxxpzGQDdOp9henuk7U69jdHB42KS3CX5w8wo+WBCiJNiub4emWGWqu2BopoyeVAYJbmsOFxj+dxmXDtr6HOoJFA",
    "ic1dmZMCgYEAwXQ/AlSNM0rEhmj9IrG5uPTX/3ggbeWEnPfqdzYNKsyuHYy5/NP4epNaLPK/NcZKiIE2fS8S5iBf",
    "UjTkpmEULpVil3yKthzWJ1ARQ26jBbkYv4+ItZ9MqAmxTNVDtGNIk7beVzj+7mSy9//gWkuq6CtOoBpGaATC4ivr",
    "4CCSrosCgYEAzo5YjUuGAtE0QXhYXm9ANs7hFBtXdxN6ZoG++t2FVlMMifz4LmXCpg+zT/VaFvmKKcmLR+X5nZJQ",
    "TXp94tmfRC2VwqcpeSf+lfRN3r6K0LBvgbWn2EQciu6LMVJeDnu7sFu0TlX4wNE20W0mHLWh24N7tGPgTrnuwYdK",
    "nRA+2FsCgYEApDLQ0F+HwcNyb0tpoCsNomlfdJ03mU+4casTvb+JCYzVNIufyXL5csDjR0d6+F+oH5jc8QAloGJV",
    "xebTNE0t3iQ5nK6+5bgwJQoWvQ+JG3ByCxX/SXk+jVo8vSQ+5Ttn/Mi4i3v7FckvBsSOXtXe6FTp1Ya3v85aw7HX",
    "8VJ0beUCgYEAulsbgHofEX8G0dFbzNU2U4kvmTytZFnBGZ289+2jO3C+qvMxEmnXJvQWr+sSuYOlIl2Jn7b5OhFj",
    "023mDx3AXadvuuQv9NIBxJfX0rAwR5EHyuzccPJtUdPchZ9yD3LrJtUNs0iF4zpYS3w21tExOdGtxnBv0ZDb3CW8",
    "UwHQkJY=",
);
/// Ed25519, PKCS#8 DER, base64.
const TEST_ED25519_PKCS8_DER: &str =
    "MC4CAQAwBQYDK2VwBCIEIGHM/ROHx1IfLNq8yww/7XCCODiQWeQ1M0eBsUnDusvK";
