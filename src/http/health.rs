//! `GET /healthz`: 200 once the database answers.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.db.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}
