//! The audit trail page: `service::accounts::audit_page` (as
//! `/accounts/me/audit-events` calls it), each event told as a sentence with its actor
//! and time, newest first, paged with `before`.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;

use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::Page;
use super::session::Caller;
use super::view::{self, Tab};
use crate::db::audit_events::Event;
use crate::http::Now;
use crate::service::accounts;
use crate::state::AppState;

/// Events per page.
const PAGE_SIZE: u32 = 25;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    before: Option<Uuid>,
}

pub async fn page(
    State(state): State<AppState>,
    Now(now): Now,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Page> {
    let before = query.ok().and_then(|Query(q)| q.before);
    let account = caller.0.user.account_id;
    let page = accounts::audit_page(&state.db, account, before, PAGE_SIZE).await?;
    let names = accounts::directory(&state.db, account).await?;
    let body = html! {
        h1 { "Audit trail" }
        p.muted { "Everything that happened in this account, newest first." }
        @if page.items.is_empty() {
            p { "No events." }
        } @else {
            ol.audit {
                @for e in &page.items {
                    li data-action=(e.action) {
                        p.sentence { (sentence(e, &names)) }
                        p.when.muted { (view::time(e.created_at, now)) }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if before.is_some() { a href="/console/audit" { "Newest" } }
            @if let Some(next) = page.next_before {
                a #older href=(format!("/console/audit?before={next}")) { "Older events" }
            }
        }
    };
    Ok(view::page(Tab::Audit, &caller.0.user.email, now, "Audit trail", body))
}

fn name(id: Option<Uuid>, names: &HashMap<Uuid, String>) -> String {
    match id {
        None => "The operator (command line)".into(),
        Some(id) => names.get(&id).cloned().unwrap_or_else(|| "A former user".into()),
    }
}

fn text<'a>(details: &'a Value, key: &str) -> Option<&'a str> {
    details.get(key).and_then(Value::as_str)
}

fn count(details: &Value, key: &str) -> i64 {
    details.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn sessions(n: i64) -> String {
    if n == 1 { "1 session".into() } else { format!("{n} sessions") }
}

/// `1 day (system default)`, from an `effective_*` and an override object.
fn limit(details: &Value, side: &str, key: &str) -> String {
    let effective =
        details.get(format!("effective_{side}")).and_then(|e| e.get(key)).and_then(Value::as_i64);
    let overridden = details.get(side).and_then(|o| o.get(key)).is_some_and(|v| !v.is_null());
    let source = if overridden { "account setting" } else { "system default" };
    effective.map_or_else(|| "unknown".into(), |m| format!("{} ({source})", view::minutes(m)))
}

/// The event as a sentence. Every value that came from a user (emails, user agents,
/// names) is spliced as text, escaped by the template.
fn sentence(e: &Event, names: &HashMap<Uuid, String>) -> Markup {
    let actor = name(e.user_id, names);
    let d = &e.details;
    html! {
        @match e.action.as_str() {
            "auth.login" => {
                strong { (actor) } " signed in"
                @if let Some(ip) = text(d, "ip") { " from " (ip) }
                @if let Some(ua) = text(d, "user_agent") { " (" (super::agent::describe(Some(ua))) ")" }
                "."
            }
            "auth.login_failed" => {
                "A sign-in as " strong { (actor) } " failed"
                @match text(d, "reason") {
                    Some("invalid_password") => ": wrong password",
                    Some("user_inactive") => ": the user is disabled",
                    _ => "",
                }
                @if let Some(ip) = text(d, "ip") { " (from " (ip) ")" }
                "."
            }
            "auth.logout" => { strong { (actor) } " signed out." }
            "auth.password_changed" => {
                strong { (actor) } " changed their password"
                @if count(d, "revoked_count") > 0 { ", ending " (sessions(count(d, "revoked_count"))) " of theirs" }
                "."
            }
            "auth.password_change_failed" => { strong { (actor) } " entered a wrong current password while changing it." }
            "account.session_policy_update" => {
                @let idle = (limit(d, "old", "idle_minutes"), limit(d, "new", "idle_minutes"));
                @let absolute = (limit(d, "old", "absolute_minutes"), limit(d, "new", "absolute_minutes"));
                // Only what changed; both when nothing did (a change to the same values).
                @let both = idle.0 == idle.1 && absolute.0 == absolute.1;
                strong { (actor) } " changed the session policy: "
                @if both || idle.0 != idle.1 { "idle limit " (idle.0) " → " (idle.1) }
                @if both || (idle.0 != idle.1 && absolute.0 != absolute.1) { "; " }
                @if both || absolute.0 != absolute.1 { "session limit " (absolute.0) " → " (absolute.1) }
                "."
            }
            "account.sessions_revoked_bulk" => {
                strong { (actor) }
                @if text(d, "scope") == Some("others") { " ended everyone else's sessions" }
                @else { " ended all sessions of the account" }
                " (" (sessions(count(d, "revoked_count"))) ")."
            }
            "account.session_revoked" => {
                @let target = text(d, "target_user_id").and_then(|t| t.parse().ok());
                strong { (actor) } " ended a session of " strong { (name(target, names)) } "."
            }
            "session.refresh_token_reused" => {
                "A refresh token of " strong { (actor) } " was used twice, so that session was ended (a copy may exist elsewhere)."
            }
            "account.created" => {
                "The account was created"
                @if let Some(n) = text(d, "name") { " as “" (n) "”" }
                " (by " (actor) ")."
            }
            "user.created" => {
                (actor) " added " strong { (text(d, "email").unwrap_or("a user")) }
                @if let Some(role) = text(d, "role") { " as " (role) }
                "."
            }
            "user.disabled" => {
                (actor) " disabled a user"
                @if let Some(id) = e.resource_id.as_deref().and_then(|r| r.parse().ok()) { ": " strong { (name(Some(id), names)) } }
                ", ending " (sessions(count(d, "revoked_count"))) "."
            }
            "user.unlocked" => { (actor) " lifted a sign-in lockout." }
            other => { strong { (actor) } ": " code { (other) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn event(action: &str, user: Option<Uuid>, details: Value) -> Event {
        Event {
            id: Uuid::nil(),
            action: action.into(),
            user_id: user,
            resource_type: "x".into(),
            resource_id: None,
            details,
            created_at: DateTime::<Utc>::default(),
        }
    }

    #[test]
    fn events_read_as_sentences_with_their_actor_escaped() {
        let id = Uuid::new_v4();
        let names = HashMap::from([(id, "<b>owner</b>@a.test".to_owned())]);
        let s = sentence(
            &event(
                "account.sessions_revoked_bulk",
                Some(id),
                json!({"scope": "others", "revoked_count": 3}),
            ),
            &names,
        )
        .into_string();
        assert_eq!(
            s,
            "<strong>&lt;b&gt;owner&lt;/b&gt;@a.test</strong> ended everyone else's sessions (3 sessions)."
        );
        let s = sentence(
            &event(
                "account.session_policy_update",
                Some(id),
                json!({"old": {"idle_minutes": null, "absolute_minutes": null},
                       "new": {"idle_minutes": 30, "absolute_minutes": null},
                       "effective_old": {"idle_minutes": 1440, "absolute_minutes": 10080},
                       "effective_new": {"idle_minutes": 30, "absolute_minutes": 10080}}),
            ),
            &names,
        )
        .into_string();
        assert!(
            s.contains(
                "idle limit 1 day (1440 minutes) (system default) → 30 minutes (account setting)"
            ),
            "{s}"
        );
        let s = sentence(&event("auth.logout", None, json!({})), &names).into_string();
        assert!(s.contains("The operator (command line)"), "{s}");
    }
}
