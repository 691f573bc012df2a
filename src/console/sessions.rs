//! The sessions page: every active session of the account, and ending one, everyone
//! else's, or all — each confirmed first with how many sessions end. The list, the counts
//! and the revokes are `service::account_sessions` and `service::accounts`, as the JSON
//! API's `/accounts/me/security/sessions` and `revoke-sessions` call them.

use axum::Extension;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::session::Caller;
use super::view::{self, Tab};
use super::{Page, agent};
use crate::http::Now;
use crate::service::account_sessions::{self, ActiveSession};
use crate::service::accounts::{self, RevokeScope};
use crate::service::{self};
use crate::state::AppState;

/// `GET /console/`: the sessions page is the console's front page.
pub async fn home() -> Redirect {
    Redirect::to("/console/sessions")
}

#[derive(Deserialize, Default)]
pub struct Notice {
    notice: Option<String>,
    n: Option<usize>,
}

fn notice_text(q: &Notice) -> Option<String> {
    let n = q.n.unwrap_or(0);
    match q.notice.as_deref()? {
        "ended_one" => Some("The session was ended.".into()),
        "ended_others" => Some(format!("Ended {}: everyone else is signed out.", sessions(n))),
        _ => None,
    }
}

fn sessions(n: usize) -> String {
    if n == 1 { "1 session".into() } else { format!("{n} sessions") }
}

async fn list(
    state: &AppState,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<Vec<ActiveSession>, service::Error> {
    let c = &caller.0;
    account_sessions::list(&state.db, state.bounds, c.user.account_id, c.session_id, now).await
}

/// How many sessions a bulk end would end: the service's own dry run.
async fn would_end(
    state: &AppState,
    caller: &Caller,
    scope: RevokeScope,
) -> Result<usize, service::Error> {
    accounts::revoke_sessions(state, caller.0.caller(), scope, true).await
}

pub async fn page(
    State(state): State<AppState>,
    Now(now): Now,
    Extension(caller): Extension<Caller>,
    query: Result<Query<Notice>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Page> {
    let items = list(&state, &caller, now).await?;
    let others = would_end(&state, &caller, RevokeScope::Others).await?;
    let all = would_end(&state, &caller, RevokeScope::All).await?;
    let notice = query.ok().and_then(|Query(q)| notice_text(&q));
    let body = html! {
        h1 { "Sessions" }
        p.muted { "Everyone signed in to this account right now, most recently active first." }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        div.actions {
            (bulk_button(RevokeScope::Others, others))
            (bulk_button(RevokeScope::All, all))
        }
        (bulk_dialog(RevokeScope::Others, others))
        (bulk_dialog(RevokeScope::All, all))
        @if items.is_empty() {
            p { "No active sessions." }
        } @else {
            table.sessions {
                caption.visually-hidden { "Active sessions" }
                thead { tr {
                    th scope="col" { "Person" }
                    th scope="col" { "Device" }
                    th scope="col" { "IP address" }
                    th scope="col" { "Started" }
                    th scope="col" { "Last active" }
                    th scope="col" { "Ends" }
                    th scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody {
                    @for s in &items { (row(s, now)) }
                }
            }
            @for s in &items { (one_dialog(s)) }
        }
    };
    Ok(view::page(Tab::Sessions, &caller.0.user.email, now, "Sessions", body))
}

fn row(s: &ActiveSession, now: DateTime<Utc>) -> Markup {
    let device = agent::describe(s.user_agent.as_deref());
    html! {
        tr data-session=(s.session_id) {
            td data-label="Person" {
                span.person { (s.email) }
                " " span.badge.role { (s.role) }
                @if s.current { " " span.badge.current { "this session" } }
            }
            td data-label="Device" {
                span.device { (device) }
                @if let Some(ua) = &s.user_agent { br; small.ua.muted { (ua) } }
            }
            td data-label="IP address" { (s.ip.as_deref().unwrap_or("unknown")) }
            td data-label="Started" { (view::time(s.started_at, now)) }
            td data-label="Last active" { (view::time(s.last_active_at, now)) }
            td data-label="Ends" { (ends(s, now)) }
            td data-label="" {
                a.button.danger href=(format!("/console/sessions/{}/end", s.session_id))
                    data-dialog=(format!("end-{}", s.session_id)) {
                    "End session" span.visually-hidden { " of " (s.email) " on " (agent::describe(s.user_agent.as_deref())) }
                }
            }
        }
    }
}

/// The earlier of the two deadlines, and which limit it is.
fn ends(s: &ActiveSession, now: DateTime<Utc>) -> Markup {
    let (at, which) = match (s.idle_expires_at, s.absolute_expires_at) {
        (Some(i), Some(a)) if a <= i => (Some(a), "session limit"),
        (Some(i), _) => (Some(i), "if idle"),
        (None, Some(a)) => (Some(a), "session limit"),
        (None, None) => (None, ""),
    };
    html! {
        @if let Some(at) = at { (view::time(at, now)) br; small.muted { (which) } }
        @else { "never" }
    }
}

fn scope_name(scope: RevokeScope) -> &'static str {
    match scope {
        RevokeScope::All => "all",
        RevokeScope::Others => "others",
    }
}

fn bulk_button(scope: RevokeScope, count: usize) -> Markup {
    let name = scope_name(scope);
    let text = match scope {
        RevokeScope::Others => "End everyone else's sessions",
        RevokeScope::All => "End all sessions, yours too",
    };
    html! {
        a.button.danger id=(format!("end-{name}")) href=(format!("/console/sessions/end?scope={name}"))
            data-dialog=(format!("dialog-{name}")) { (text) " (" (count) ")" }
    }
}

fn bulk_question(scope: RevokeScope, count: usize) -> (String, String) {
    match scope {
        RevokeScope::Others => (
            "End everyone else's sessions?".into(),
            format!(
                "{} will end: every session in this account except your own. Those people \
                 will have to sign in again.",
                sessions(count)
            ),
        ),
        RevokeScope::All => (
            "End all sessions?".into(),
            format!(
                "{} will end: every session in this account, yours included. You will be \
                 signed out too.",
                sessions(count)
            ),
        ),
    }
}

/// The confirmation as a `<dialog>` the script opens (Cancel focused).
fn bulk_dialog(scope: RevokeScope, count: usize) -> Markup {
    let name = scope_name(scope);
    let (title, text) = bulk_question(scope, count);
    let confirm = match scope {
        RevokeScope::Others => format!("End {}", sessions(count)),
        RevokeScope::All => format!("End all {}", sessions(count)),
    };
    dialog(
        &format!("dialog-{name}"),
        &title,
        &text,
        "/console/sessions/end",
        Some(("scope", name)),
        &confirm,
    )
}

fn one_question(s: &ActiveSession) -> String {
    let who =
        if s.current { "your own session".to_owned() } else { format!("{}'s session", s.email) };
    let you = if s.current { " You will be signed out." } else { "" };
    format!(
        "1 session will end: {who} on {} from {}.{you}",
        agent::describe(s.user_agent.as_deref()),
        s.ip.as_deref().unwrap_or("an unknown address")
    )
}

fn one_dialog(s: &ActiveSession) -> Markup {
    dialog(
        &format!("end-{}", s.session_id),
        "End this session?",
        &one_question(s),
        &format!("/console/sessions/{}/end", s.session_id),
        None,
        "End session",
    )
}

fn dialog(
    id: &str,
    title: &str,
    text: &str,
    action: &str,
    field: Option<(&str, &str)>,
    confirm: &str,
) -> Markup {
    let title_id = format!("{id}-title");
    html! {
        dialog.confirm id=(id) aria-labelledby=(title_id) {
            h2 id=(title_id) { (title) }
            p { (text) }
            form method="post" action=(action) {
                @if let Some((k, v)) = field { input type="hidden" name=(k) value=(v); }
                div.buttons {
                    button.cancel type="button" data-cancel autofocus { "Cancel" }
                    button.danger type="submit" { (confirm) }
                }
            }
        }
    }
}

/// The confirmation as a page of its own (what a browser without script gets).
fn confirm_page(
    caller: &Caller,
    now: DateTime<Utc>,
    title: &str,
    text: &str,
    action: &str,
    field: Option<(&str, &str)>,
    confirm: &str,
) -> Response {
    let body = html! {
        section.card.narrow {
            h1 { (title) }
            p { (text) }
            form method="post" action=(action) {
                @if let Some((k, v)) = field { input type="hidden" name=(k) value=(v); }
                div.buttons {
                    a.button.cancel href="/console/sessions" autofocus { "Cancel" }
                    button.danger type="submit" { (confirm) }
                }
            }
        }
    };
    view::page(Tab::Sessions, &caller.0.user.email, now, title, body)
}

fn gone() -> Page {
    Page(view::error_page(
        StatusCode::NOT_FOUND,
        "Session not found",
        "That session has already ended, or is not one of this account's.",
    ))
}

/// `GET /console/sessions/{id}/end`.
pub async fn confirm_one(
    State(state): State<AppState>,
    Now(now): Now,
    Extension(caller): Extension<Caller>,
    Path(session_id): Path<String>,
) -> Result<Response, Page> {
    let items = list(&state, &caller, now).await?;
    let s = items.iter().find(|s| s.session_id.to_string() == session_id).ok_or_else(gone)?;
    let action = format!("/console/sessions/{}/end", s.session_id);
    Ok(confirm_page(
        &caller,
        now,
        "End this session?",
        &one_question(s),
        &action,
        None,
        "End session",
    ))
}

/// `POST /console/sessions/{id}/end`: `service::account_sessions::revoke`.
pub async fn end_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(session_id): Path<String>,
) -> Result<Response, Page> {
    match account_sessions::revoke(&state, caller.0.caller(), &session_id).await {
        Ok(()) => Ok(Redirect::to("/console/sessions?notice=ended_one").into_response()),
        Err(service::Error::NotFound(_)) => Err(gone()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ScopeField {
    scope: RevokeScope,
}

/// `GET /console/sessions/end?scope=others|all`.
pub async fn confirm_bulk(
    State(state): State<AppState>,
    Now(now): Now,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ScopeField>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Page> {
    let Ok(Query(ScopeField { scope })) = query else {
        return Err(Page(view::error_page(
            StatusCode::BAD_REQUEST,
            "Not possible",
            "Choose whose sessions to end.",
        )));
    };
    let count = would_end(&state, &caller, scope).await?;
    let (title, text) = bulk_question(scope, count);
    let confirm = format!("End {}", sessions(count));
    Ok(confirm_page(
        &caller,
        now,
        &title,
        &text,
        "/console/sessions/end",
        Some(("scope", scope_name(scope))),
        &confirm,
    ))
}

/// `POST /console/sessions/end`: `service::accounts::revoke_sessions`. After `all`, the
/// caller's own session is over too, so the next page is the sign-in page saying so.
pub async fn end_bulk(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    form: Result<Form<ScopeField>, FormRejection>,
) -> Result<Response, Page> {
    let Ok(Form(ScopeField { scope })) = form else {
        return Err(Page(view::error_page(
            StatusCode::BAD_REQUEST,
            "Not possible",
            "Choose whose sessions to end.",
        )));
    };
    let n = accounts::revoke_sessions(&state, caller.0.caller(), scope, false).await?;
    Ok(Redirect::to(&format!("/console/sessions?notice=ended_others&n={n}")).into_response())
}
