//! `POST /_test/clock`: moves the server clock forward. Routed only when
//! `testing.clock_control = true`.

use axum::Json;
use axum::extract::State;
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiJson;
use crate::clock::ClockError;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    advance_seconds: i64,
}

pub async fn advance(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Advance>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.advance(body.advance_seconds).map_err(|e| match e {
        ClockError::NotControllable => ApiError::not_found(),
        e @ ClockError::OutOfRange { .. } => ApiError::Unprocessable(e.to_string()),
    })?;
    Ok(Json(json!({ "now": now.to_rfc3339_opts(SecondsFormat::Millis, true) })))
}
