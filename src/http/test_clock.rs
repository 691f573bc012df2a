//! `POST /_test/clock`: moves the server clock forward. Routed only when
//! `testing.clock_control = true`.

use axum::Json;
use axum::extract::State;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::clock::ClockError;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    advance_seconds: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ClockNow {
    /// The server's new current time.
    now: String,
}

/// Moves the server clock forward (only with `testing.clock_control = true`).
#[utoipa::path(post, path = "/_test/clock", tag = "testing", request_body = Advance,
    responses((status = 200, description = "The new time", body = ClockNow)))]
pub async fn advance(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Advance>,
) -> Result<Json<ClockNow>, ApiError> {
    let now = state.clock.advance(body.advance_seconds).map_err(|e| match e {
        ClockError::NotControllable => ApiError::not_found(),
        e @ ClockError::OutOfRange { .. } => ApiError::Unprocessable(e.to_string()),
    })?;
    Ok(Json(ClockNow { now: now.to_rfc3339_opts(SecondsFormat::Millis, true) }))
}
