//! The HTTP surface: the router, the middleware every request passes, and the
//! extractors that turn requests into typed input (or into `ApiError`s, never into
//! axum's plain-text rejections).

mod account_security;
mod audit;
mod auth;
mod body_guard;
mod extract;
mod health;
mod observe;
pub mod openapi;
mod server;
mod sessions;
mod test_clock;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next, map_response};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

pub use crate::clock::Now;
pub use extract::{ApiJson, ApiQuery};
pub use server::serve;

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let (api, doc) = documented_routes(&state).split_for_parts();
    api.layer(Extension(openapi::Document::new(&doc, state.bounds)))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), stamp_request_time))
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("handler panicked");
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        // Every answer, refusals included, passes here: the rest of a small body is read
        // so the connection stays usable; a body late past the timeout becomes a 408.
        .layer(middleware::from_fn_with_state(state.clone(), body_guard::guard))
        // Outside the panic guard, so a panic is logged and counted as the 500 it becomes;
        // the request's one log line is `observe::track`'s.
        .layer(middleware::from_fn_with_state(state.clone(), observe::track))
        .layer(TraceLayer::new_for_http().make_span_with(request_span).on_response(()))
        .layer(middleware::from_fn(observe::request_id))
        .with_state(state)
}

/// Every route, each with its OpenAPI description.
pub fn documented_routes(state: &AppState) -> OpenApiRouter<AppState> {
    let mut api = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(no_store(routes!(auth::login)))
        .routes(no_store(routes!(auth::refresh)))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(account_security::get_policy, account_security::patch_policy))
        .routes(routes!(account_security::revoke_sessions))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::revoke))
        .routes(routes!(audit::list))
        .routes(routes!(observe::metrics))
        .routes(routes!(health::healthz))
        .routes(routes!(openapi::serve));
    if state.clock.is_controllable() {
        api = api.routes(routes!(test_clock::advance));
    }
    api
}

/// Layered on the token endpoints: their answers must never be cached.
fn no_store((schemas, paths, route): UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    (schemas, paths, route.layer(map_response(auth::no_store)))
}

/// The span every request's logs carry: request id, method and matched route (never the
/// raw URI or other headers, which can hold tokens); user and account are filled in once
/// authenticated.
fn request_span(req: &Request) -> tracing::Span {
    let route =
        req.extensions().get::<MatchedPath>().map_or(observe::UNMATCHED, MatchedPath::as_str);
    tracing::info_span!(
        "request",
        request_id = observe::id_of(req),
        method = %req.method(),
        route,
        user_id = tracing::field::Empty,
        account_id = tracing::field::Empty
    )
}

/// Reads the server clock once per request, so the token check and the handler agree on
/// what "now" is.
async fn stamp_request_time(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    req.extensions_mut().insert(Now(state.clock.now()));
    next.run(req).await
}
