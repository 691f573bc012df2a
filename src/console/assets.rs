//! The console's stylesheet and script, compiled into the binary. Their URLs carry a
//! hash of their content, so they are cached for a year and a new build is fetched anew;
//! the same hash is their `ETag`.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

/// FNV-1a, at compile time: a content fingerprint, not a security measure.
const fn fingerprint(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

const CSS_VERSION: u64 = fingerprint(CSS.as_bytes());
const JS_VERSION: u64 = fingerprint(JS.as_bytes());

pub fn css_url() -> String {
    format!("/console/assets/console.css?v={CSS_VERSION:016x}")
}

pub fn js_url() -> String {
    format!("/console/assets/console.js?v={JS_VERSION:016x}")
}

/// `GET /console/assets/{name}`.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let (body, content_type, version) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8", CSS_VERSION),
        "console.js" => (JS, "text/javascript; charset=utf-8", JS_VERSION),
        _ => return super::view::error_page(StatusCode::NOT_FOUND, "Not found", "No such file."),
    };
    let etag = format!("\"{version:016x}\"");
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response =
        if cached { StatusCode::NOT_MODIFIED.into_response() } else { body.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}
