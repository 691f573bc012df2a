//! The owner console (contract §8): server-rendered HTML pages under `/console/`, a second
//! face over the same service functions as the JSON API — the same throttling, audit
//! rows, reasons and transactions; no rule is written twice.
//!
//! - Pages are `maud` templates (checked at compile time, escaping every spliced value).
//! - Plain HTML forms work without JavaScript; `assets/console.js` only adds confirmation
//!   dialogs and live relative times. CSS and script are served from the binary.
//! - Tokens live in `HttpOnly; SameSite=Strict; Path=/console` cookies ([`session`]); the
//!   console refreshes them itself.
//! - Every response carries a strict CSP and friends ([`security_headers`]); every unsafe
//!   request must be same-origin ([`same_origin_only`]).
//! - None of this is in `/openapi.json`: the console is not part of the JSON API.

mod agent;
mod assets;
mod audit;
mod policy;
mod session;
mod sessions;
mod view;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next, map_response};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};

use crate::error::ApiError;
use crate::state::AppState;

/// The console's routes, with their security layers. Merged into the main router, outside
/// the OpenAPI document.
pub fn router(state: &AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/console/", get(sessions::home))
        .route("/console/sessions", get(sessions::page))
        .route("/console/sessions/end", get(sessions::confirm_bulk).post(sessions::end_bulk))
        .route(
            "/console/sessions/{session_id}/end",
            get(sessions::confirm_one).post(sessions::end_one),
        )
        .route("/console/policy", get(policy::page).post(policy::apply))
        .route("/console/policy/preview", post(policy::preview))
        .route("/console/audit", get(audit::page))
        .route_layer(middleware::from_fn_with_state(state.clone(), session::require_owner));
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/assets/{name}", get(assets::serve))
        .route("/console/{*rest}", any(not_found))
        .merge(signed_in)
        .layer(middleware::from_fn(same_origin_only))
        .layer(middleware::from_fn_with_state(state.clone(), proto_from_trusted_proxies_only))
        .layer(map_response(security_headers))
}

/// `X-Forwarded-Proto` and `Forwarded` are believed only from a peer listed in
/// `server.trusted_proxies`, as for the client address; from anyone else they are removed
/// before the console reads them ([`over_tls`]).
async fn proto_from_trusted_proxies_only(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let trusted = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|c| state.config.server.trusted_proxies.contains(c.0.ip()));
    if !trusted {
        let headers = req.headers_mut();
        headers.remove("x-forwarded-proto");
        headers.remove(header::FORWARDED);
    }
    next.run(req).await
}

/// An unknown path under `/console/`: an HTML page, with the console's headers.
async fn not_found() -> Response {
    view::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such page in the console.")
}

/// The policy every console response carries: nothing from other hosts, no inline script
/// or style, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// CSP, nosniff, no-referrer, and `no-store` unless the response chose its own caching
/// (the versioned assets).
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Refuses (403) every unsafe request that is not same-origin: `Sec-Fetch-Site` must say
/// `same-origin` where the browser sends it; otherwise `Origin` must equal this request's
/// own origin; with neither header the request is refused. This is the console's CSRF
/// defence, beside the `SameSite=Strict` cookies (which a page on another port of the
/// same host would still get: ports do not make another site).
async fn same_origin_only(req: Request, next: Next) -> Response {
    if req.method().is_safe() || req.method() == Method::OPTIONS || same_origin(req.headers()) {
        return next.run(req).await;
    }
    tracing::info!(method = %req.method(), "console: cross-origin request refused");
    view::error_page(
        StatusCode::FORBIDDEN,
        "Refused",
        "This request did not come from the console's own pages, so nothing was changed. \
         Open the console and try again from there.",
    )
}

fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let scheme = if over_tls(headers) { "https" } else { "http" };
    origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

/// Whether the browser reached us over TLS, as a TLS-terminating proxy tells it
/// (`X-Forwarded-Proto: https`, or `Forwarded: proto=https`); sessiond itself serves
/// plain HTTP. Only a trusted proxy's headers reach here
/// ([`proto_from_trusted_proxies_only`]).
pub(crate) fn over_tls(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| {
            first.split(';').any(|pair| {
                pair.trim().split_once('=').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("proto")
                        && v.trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    forwarded_proto || forwarded
}

/// An error no page handles itself, as an HTML page with the status `error.rs` gives it.
pub(crate) fn error_response(e: ApiError) -> Response {
    if matches!(e, ApiError::NotAuthenticated) {
        // The session ended while the request ran (a service re-checks it inside its
        // write): the gate of the next page finds out why, and the sign-in page says so.
        return Redirect::to("/console/sessions").into_response();
    }
    let status = e.status();
    if status.is_server_error() {
        // Logged with its cause, like the JSON API's errors; the page says nothing more.
        tracing::error!(error = %e, "console request failed");
        return view::error_page(
            status,
            "Something went wrong",
            "The server could not do this. Try again; if it keeps failing, the operator will find the cause in the log.",
        );
    }
    view::error_page(status, "Not possible", &e.to_string())
}

impl From<crate::service::Error> for Page {
    fn from(e: crate::service::Error) -> Self {
        Page(error_response(e.into()))
    }
}

impl From<ApiError> for Page {
    fn from(e: ApiError) -> Self {
        Page(error_response(e))
    }
}

/// The error side of a console handler: already an HTML page.
pub(crate) struct Page(pub Response);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_prefers_sec_fetch_site_then_origin_and_refuses_neither() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "none")])));
        // Sec-Fetch-Site wins over a matching Origin.
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "same-site"),
            ("origin", "http://a.test:1"),
            ("host", "a.test:1")
        ])));
        assert!(same_origin(&headers(&[("origin", "http://a.test:1"), ("host", "a.test:1")])));
        assert!(!same_origin(&headers(&[("origin", "http://a.test:2"), ("host", "a.test:1")])));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "a.test:1")])));
        assert!(!same_origin(&headers(&[("host", "a.test:1")])));
        assert!(same_origin(&headers(&[
            ("origin", "https://a.test"),
            ("host", "a.test"),
            ("x-forwarded-proto", "https")
        ])));
        assert!(!same_origin(&headers(&[("origin", "https://a.test"), ("host", "a.test")])));
    }

    #[test]
    fn tls_is_read_from_either_forwarding_header() {
        assert!(over_tls(&headers(&[("x-forwarded-proto", "https")])));
        assert!(over_tls(&headers(&[("forwarded", "for=1.2.3.4;proto=https")])));
        assert!(!over_tls(&headers(&[("forwarded", "for=1.2.3.4;proto=http")])));
        assert!(!over_tls(&headers(&[])));
    }
}
