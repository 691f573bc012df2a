//! `GET /openapi.json`: the OpenAPI 3.1 description of the routes. The router and the
//! document are built together from the handlers' annotations (utoipa-axum's
//! `OpenApiRouter`), so a route cannot exist undocumented. The document is then completed
//! with what every route shares — the error answers, the bearer scheme — and with the
//! configured policy bounds, so it describes this server as configured.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, RefreshRefusal};
use crate::policy::Bounds;

/// The parts of the document no handler owns.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessiond",
        description = "Multi-tenant session-expiration policy: password login, short-lived \
                       access tokens, rotating refresh tokens, owner-controlled idle and \
                       absolute limits, bulk revocation, audit trail."
    ),
    components(schemas(ErrorBody, RefreshRefusal)),
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Login, refresh, logout, the caller"),
        (name = "owner", description = "Owner-only account endpoints"),
        (name = "operations", description = "Health and description"),
        (name = "testing", description = "Only with testing.clock_control = true"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearerAuth", SecurityScheme::Http(scheme));
    }
}

/// The finished document, serialised once.
#[derive(Clone)]
pub struct Document(Arc<str>);

impl Document {
    pub fn new(doc: &utoipa::openapi::OpenApi, bounds: Bounds) -> Self {
        // Plain data into JSON: cannot fail (no maps with non-string keys).
        let mut v = serde_json::to_value(doc).expect("the OpenAPI document serialises");
        v["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
        add_shared_errors(&mut v);
        add_bounds(&mut v, bounds);
        Document(v.to_string().into())
    }
}

/// The OpenAPI 3.1 description of every route of this server.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", body = Object)))]
pub async fn serve(Extension(doc): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0.to_string())
}

/// The answers every operation of a kind can give, added where the handler did not
/// document its own (see docs/API.md, "Order of checks").
fn add_shared_errors(v: &mut Value) {
    let Some(paths) = v.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut().filter_map(Value::as_object_mut) {
            let authenticated = op.contains_key("security");
            let owner_only = op
                .get("tags")
                .and_then(Value::as_array)
                .is_some_and(|t| t.contains(&json!("owner")));
            let has_body = op.contains_key("requestBody");
            // Path parameters are the handler's own business (a bad session id is its 404).
            let has_query = op
                .get("parameters")
                .and_then(Value::as_array)
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let responses = op.entry("responses").or_insert_with(|| json!({}));
            let Some(responses) = responses.as_object_mut() else { continue };
            if has_body {
                add_error(responses, "400", "`malformed_json`: the body is not JSON");
                add_error(responses, "413", "`payload_too_large`: the body is over 64 KiB");
                add_error(responses, "415", "`unsupported_media_type`: not `application/json`");
            }
            if has_body || has_query {
                add_error(responses, "422", "Well-formed input of the wrong shape or out of range");
            }
            if authenticated {
                add_error(responses, "401", "`not_authenticated`: bearer token missing or refused");
                if let Some(r) = responses.get_mut("401") {
                    r["headers"]["www-authenticate"] = json!({"schema": {"type": "string"}});
                }
            }
            if owner_only {
                add_error(responses, "403", "`owner_required`: the caller is not an owner");
            }
            add_error(responses, "500", "`internal_error`: the cause is in the server's log");
        }
    }
}

fn add_error(responses: &mut Map<String, Value>, status: &str, description: &str) {
    responses.entry(status).or_insert_with(|| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    });
}

/// The configured bounds of the policy overrides, as JSON Schema limits.
fn add_bounds(v: &mut Value, b: Bounds) {
    let Some(props) = v
        .pointer_mut("/components/schemas/PolicyPatchBody/properties")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (key, min, max) in [
        ("idle_minutes", b.idle_min, b.idle_max),
        ("absolute_minutes", b.absolute_min, b.absolute_max),
    ] {
        if let Some(p) = props.get_mut(key).and_then(Value::as_object_mut) {
            p.insert("minimum".into(), json!(min));
            p.insert("maximum".into(), json!(max));
        }
    }
}
