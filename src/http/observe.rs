//! What every request leaves behind: an `x-request-id`, one log line, and its metrics;
//! and `GET /metrics`, where the metrics are read.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::LogFormat;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// The route label of a request that matched no route: never the raw path, which would
/// make a series per probe.
pub const UNMATCHED: &str = "unmatched";

/// Outermost layer: the request keeps the client's `x-request-id` when it is 1 to 128
/// visible ASCII characters, else gets a fresh UUID; the response carries the same id.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| acceptable(v.as_bytes()))
        .cloned()
        .unwrap_or_else(generate);
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(req).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_BYTES).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

fn generate() -> HeaderValue {
    let mut buf = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid-uuid"))
}

/// The request's id, as [`request_id`] settled it.
pub fn id_of(req: &Request) -> &str {
    req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// Inside the request's span: counts the request and logs one line with its id, route,
/// status and latency.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let request_id = id_of(&req).to_owned();
    let response = next.run(req).await;
    let latency = started.elapsed();
    let route = route.as_deref().unwrap_or(UNMATCHED);
    let status = response.status().as_u16();
    state.metrics.request(method, route, status, latency);
    let latency_ms = latency_ms(latency);
    // Text lines show id, method and route in the span prefix already; a JSON line gets
    // them as top-level fields too, where log tools look first.
    match state.config.server.log_format {
        LogFormat::Json => {
            tracing::info!(request_id, method, route, status, latency_ms, "request completed")
        }
        LogFormat::Text => tracing::info!(status, latency_ms, "request completed"),
    }
    response
}

/// Milliseconds to the microsecond (`104.394`, not `104.39409500000001`): whole
/// microseconds divided by a thousand print as the shortest decimal that reads back.
fn latency_ms(latency: std::time::Duration) -> f64 {
    let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
    f64::from(micros) / 1000.0
}

/// The method as a label: the standard ones by name, anything else (any token is a valid
/// method, and each would make a series) as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// `GET /metrics`: the Prometheus text exposition. Unauthenticated, like any scrape
/// target; it holds only aggregate counts with bounded labels.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
        content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(state.db.pool_state());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn latency_prints_to_the_microsecond() {
        let shown = super::latency_ms(Duration::from_nanos(104_394_095)).to_string();
        assert_eq!(shown, "104.394");
        assert_eq!(super::latency_ms(Duration::from_nanos(999)).to_string(), "0");
        assert_eq!(super::latency_ms(Duration::from_micros(2_500_001)).to_string(), "2500.001");
    }
}
