//! The policy page: the effective limits, where each comes from, the bounds; a change (or
//! a reset to the defaults) previewed with the number of sessions it would end, then
//! applied. Reading, previewing and changing are `service::accounts::{policy,
//! preview_policy, change_policy}`, as `/accounts/me/security` calls them; their 422
//! messages are shown beside the field they are about.

use axum::Extension;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::Page;
use super::session::Caller;
use super::view::{self, Tab};
use crate::http::Now;
use crate::policy::{Bounds, Patch, PolicyChange, PolicyError, SessionPolicy};
use crate::service::{self, accounts};
use crate::state::AppState;

/// The form as posted: for each limit, `default` or `custom` and the minutes.
#[derive(Deserialize, Debug, Clone, Default)]
pub struct PolicyForm {
    #[serde(default)]
    idle_mode: String,
    #[serde(default)]
    idle_minutes: String,
    #[serde(default)]
    absolute_mode: String,
    #[serde(default)]
    absolute_minutes: String,
}

impl PolicyForm {
    fn from_policy(p: &SessionPolicy) -> Self {
        let mode = |o: Option<i64>| if o.is_some() { "custom" } else { "default" }.to_owned();
        PolicyForm {
            idle_mode: mode(p.idle_minutes),
            idle_minutes: p.effective_idle_minutes.to_string(),
            absolute_mode: mode(p.absolute_minutes),
            absolute_minutes: p.effective_absolute_minutes.to_string(),
        }
    }

    /// The merge-patch the form means: `default` clears the override, `custom` sets it.
    fn change(&self) -> Result<PolicyChange, Errors> {
        let field = |mode: &str, minutes: &str, what: &str| match mode {
            "default" => Ok(Patch::Clear),
            _ => minutes
                .trim()
                .parse::<i64>()
                .map(Patch::Set)
                .map_err(|_| format!("Enter the {what} limit in whole minutes.")),
        };
        let idle = field(&self.idle_mode, &self.idle_minutes, "idle");
        let absolute = field(&self.absolute_mode, &self.absolute_minutes, "session");
        match (idle, absolute) {
            (Ok(idle_minutes), Ok(absolute_minutes)) => {
                Ok(PolicyChange { idle_minutes, absolute_minutes })
            }
            (idle, absolute) => Err(Errors { idle: idle.err(), absolute: absolute.err() }),
        }
    }
}

/// Messages shown beside the fields.
#[derive(Debug, Default)]
struct Errors {
    idle: Option<String>,
    absolute: Option<String>,
}

impl From<PolicyError> for Errors {
    fn from(e: PolicyError) -> Self {
        let text = Some(e.to_string());
        match e {
            PolicyError::AbsoluteOutOfBounds { .. } => Errors { idle: None, absolute: text },
            PolicyError::IdleOutOfBounds { .. } | PolicyError::IdleAboveAbsolute { .. } => {
                Errors { idle: text, absolute: None }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Notice {
    notice: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Now(now): Now,
    Extension(caller): Extension<Caller>,
    query: Result<Query<Notice>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Page> {
    let policy = accounts::policy(&state.db, state.bounds, caller.0.user.account_id).await?;
    let changed = query.is_ok_and(|Query(q)| q.notice.as_deref() == Some("changed"));
    let form = PolicyForm::from_policy(&policy);
    Ok(render(
        &caller,
        now,
        state.bounds,
        &policy,
        &form,
        &Errors::default(),
        changed,
        StatusCode::OK,
    ))
}

fn source(o: Option<i64>) -> &'static str {
    if o.is_some() { "account setting" } else { "system default" }
}

#[allow(clippy::too_many_arguments)]
fn render(
    caller: &Caller,
    now: DateTime<Utc>,
    bounds: Bounds,
    p: &SessionPolicy,
    form: &PolicyForm,
    errors: &Errors,
    changed: bool,
    status: StatusCode,
) -> Response {
    let b = bounds_text(bounds);
    let body = html! {
        h1 { "Session policy" }
        p.muted { "How long this account's sessions may last. A change applies to every session from its next refresh." }
        @if changed { p.notice role="status" { "The policy was changed." } }
        @if errors.idle.is_some() || errors.absolute.is_some() {
            p.error role="alert" { "Nothing was changed: see the message below." }
        }
        table.policy {
            caption.visually-hidden { "Current policy" }
            thead { tr { th scope="col" { "Limit" } th scope="col" { "In effect" } th scope="col" { "Source" } th scope="col" { "Allowed" } } }
            tbody {
                tr #current-idle {
                    th scope="row" { "Idle: signed out after no activity for" }
                    td data-label="In effect" { (view::minutes(p.effective_idle_minutes)) }
                    td data-label="Source" { (source(p.idle_minutes)) }
                    td data-label="Allowed" { (b.idle) }
                }
                tr #current-absolute {
                    th scope="row" { "Session: signed out at the latest after" }
                    td data-label="In effect" { (view::minutes(p.effective_absolute_minutes)) }
                    td data-label="Source" { (source(p.absolute_minutes)) }
                    td data-label="Allowed" { (b.absolute) }
                }
            }
        }
        section.card {
            h2 { "Change" }
            form method="post" action="/console/policy/preview" {
                (limit_fields("idle", "Idle limit", &form.idle_mode, &form.idle_minutes, p.effective_idle_minutes, &b.idle, errors.idle.as_deref(), &b.idle_default))
                (limit_fields("absolute", "Session limit", &form.absolute_mode, &form.absolute_minutes, p.effective_absolute_minutes, &b.absolute, errors.absolute.as_deref(), &b.absolute_default))
                div.buttons { button.primary type="submit" #preview { "Preview the change" } }
            }
        }
        @if p.idle_minutes.is_some() || p.absolute_minutes.is_some() {
            section.card {
                h2 { "Reset" }
                form method="post" action="/console/policy/preview" {
                    input type="hidden" name="idle_mode" value="default";
                    input type="hidden" name="absolute_mode" value="default";
                    p { "Use the system defaults for both limits (" (b.idle_default) " idle, " (b.absolute_default) " per session)." }
                    button type="submit" #reset { "Preview the reset" }
                }
            }
        }
    };
    let mut r = view::page(Tab::Policy, &caller.0.user.email, now, "Policy", body);
    *r.status_mut() = status;
    r
}

struct BoundsText {
    idle: String,
    absolute: String,
    idle_default: String,
    absolute_default: String,
}

/// The system's bounds and defaults, as shown.
fn bounds_text(b: Bounds) -> BoundsText {
    BoundsText {
        idle: format!("{} to {} minutes", b.idle_min, b.idle_max),
        absolute: format!("{} to {} minutes", b.absolute_min, b.absolute_max),
        idle_default: view::minutes(b.idle_default),
        absolute_default: view::minutes(b.absolute_default),
    }
}

#[allow(clippy::too_many_arguments)]
fn limit_fields(
    name: &str,
    legend: &str,
    mode: &str,
    minutes: &str,
    effective: i64,
    bounds: &str,
    error: Option<&str>,
    default_text: &str,
) -> Markup {
    let custom = mode != "default";
    let (mode_name, minutes_name) = (format!("{name}_mode"), format!("{name}_minutes"));
    let (default_id, custom_id, field_id, error_id, hint_id) = (
        format!("{name}-default"),
        format!("{name}-custom"),
        format!("{name}-minutes"),
        format!("{name}-error"),
        format!("{name}-hint"),
    );
    let minutes = if minutes.is_empty() { effective.to_string() } else { minutes.to_owned() };
    let described = if error.is_some() { format!("{hint_id} {error_id}") } else { hint_id.clone() };
    html! {
        fieldset {
            legend { (legend) }
            div.choice {
                input type="radio" name=(mode_name) value="default" id=(default_id) checked[!custom];
                label for=(default_id) { "System default (" (default_text) ")" }
            }
            div.choice {
                input type="radio" name=(mode_name) value="custom" id=(custom_id) checked[custom];
                label for=(custom_id) { "This account:" }
            }
            label for=(field_id) { (legend) " in minutes" }
            input type="number" step="1" inputmode="numeric" name=(minutes_name) id=(field_id) value=(minutes)
                aria-describedby=(described) aria-invalid=[error.map(|_| "true")];
            small.muted id=(hint_id) { "Allowed: " (bounds) "." }
            @if let Some(e) = error { p.field-error id=(error_id) { (e) } }
        }
    }
}

fn unreadable() -> Page {
    Page(view::error_page(
        StatusCode::BAD_REQUEST,
        "Not possible",
        "The form could not be read. Go back and try again.",
    ))
}

/// `POST /console/policy/preview`: the dry run, then a page to apply it.
pub async fn preview(
    State(state): State<AppState>,
    Now(now): Now,
    Extension(caller): Extension<Caller>,
    form: Result<Form<PolicyForm>, FormRejection>,
) -> Result<Response, Page> {
    let Ok(Form(form)) = form else { return Err(unreadable()) };
    let account = caller.0.user.account_id;
    let current = accounts::policy(&state.db, state.bounds, account).await?;
    let change = match form.change() {
        Ok(c) => c,
        Err(errors) => return Ok(invalid(&state, &caller, now, &current, &form, errors)),
    };
    let preview = match accounts::preview_policy(&state, caller.0.caller(), change).await {
        Ok(p) => p,
        Err(service::Error::Policy(e)) => {
            return Ok(invalid(&state, &caller, now, &current, &form, e.into()));
        }
        Err(e) => return Err(e.into()),
    };
    let (old, new) = (&current, &preview.policy);
    let ending = preview.sessions_ending;
    let body = html! {
        h1 { "Preview" }
        p { "Nothing has changed yet." }
        table.policy {
            caption.visually-hidden { "The policy now and after the change" }
            thead { tr { th scope="col" { "Limit" } th scope="col" { "Now" } th scope="col" { "After the change" } } }
            tbody {
                tr {
                    th scope="row" { "Idle limit" }
                    td data-label="Now" { (view::minutes(old.effective_idle_minutes)) " (" (source(old.idle_minutes)) ")" }
                    td data-label="After" #new-idle { (view::minutes(new.effective_idle_minutes)) " (" (source(new.idle_minutes)) ")" }
                }
                tr {
                    th scope="row" { "Session limit" }
                    td data-label="Now" { (view::minutes(old.effective_absolute_minutes)) " (" (source(old.absolute_minutes)) ")" }
                    td data-label="After" #new-absolute { (view::minutes(new.effective_absolute_minutes)) " (" (source(new.absolute_minutes)) ")" }
                }
            }
        }
        p.impact #sessions-ending {
            @if ending == 0 { "No active session would end." }
            @else if ending == 1 { "1 active session would end at its next refresh." }
            @else { (ending) " active sessions would end at their next refresh." }
        }
        form method="post" action="/console/policy" {
            input type="hidden" name="idle_mode" value=(form.idle_mode);
            input type="hidden" name="idle_minutes" value=(form.idle_minutes);
            input type="hidden" name="absolute_mode" value=(form.absolute_mode);
            input type="hidden" name="absolute_minutes" value=(form.absolute_minutes);
            div.buttons {
                a.button.cancel href="/console/policy" autofocus[ending > 0] { "Back" }
                button.primary type="submit" #apply { "Apply the change" }
            }
        }
    };
    Ok(view::page(Tab::Policy, &caller.0.user.email, now, "Preview", body))
}

fn invalid(
    state: &AppState,
    caller: &Caller,
    now: DateTime<Utc>,
    current: &SessionPolicy,
    form: &PolicyForm,
    errors: Errors,
) -> Response {
    render(
        caller,
        now,
        state.bounds,
        current,
        form,
        &errors,
        false,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// `POST /console/policy`: `service::accounts::change_policy`, with its audit row.
pub async fn apply(
    State(state): State<AppState>,
    Now(now): Now,
    Extension(caller): Extension<Caller>,
    form: Result<Form<PolicyForm>, FormRejection>,
) -> Result<Response, Page> {
    let Ok(Form(form)) = form else { return Err(unreadable()) };
    // The form's own errors or the service's 422s: the page again, with the policy as it
    // stands and each message beside its field.
    let errors = match form.change() {
        Err(errors) => errors,
        Ok(change) => match accounts::change_policy(&state, caller.0.caller(), change).await {
            Ok(_) => return Ok(Redirect::to("/console/policy?notice=changed").into_response()),
            Err(service::Error::Policy(e)) => e.into(),
            Err(e) => return Err(e.into()),
        },
    };
    let current = accounts::policy(&state.db, state.bounds, caller.0.user.account_id).await?;
    Ok(invalid(&state, &caller, now, &current, &form, errors))
}
