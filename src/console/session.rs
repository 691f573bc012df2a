//! Signing in and out of the console, and the cookies that carry its tokens.
//!
//! The access and refresh tokens of a console session are the JSON API's own, issued by
//! `service::sessions::login` and rotated by `service::sessions::refresh`; they travel in
//! `HttpOnly; SameSite=Strict; Path=/console` cookies that no script can read. Every
//! signed-in page passes [`require_owner`]: a live access token, or else one transparent
//! refresh (both cookies rotated on that response), or else the sign-in page saying why
//! the session ended (contract §4c).

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::html;
use serde::Deserialize;

use super::view;
use crate::auth::extract::authenticate;
use crate::auth::{AuthUser, Role};
use crate::error::ApiError;
use crate::http::Now;
use crate::revocation::Reason;
use crate::service::sessions::{self, ClientInfo, TokenPair};
use crate::service::{self, RefreshDenied};
use crate::state::AppState;

const ACCESS_COOKIE: &str = "sessiond_access";
const REFRESH_COOKIE: &str = "sessiond_refresh";

/// The signed-in owner of a console request, put in the request's extensions by
/// [`require_owner`].
#[derive(Clone, Debug)]
pub struct Caller(pub Arc<AuthUser>);

/// A cookie of this request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn set_cookie(response: &mut Response, name: &str, value: Option<&str>, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let text = match value {
        Some(v) => format!("{name}={v}; Path=/console; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
    };
    // Tokens are base64url and JWTs: always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Both cookies set to a new pair (`Some`) or cleared (`None`).
fn set_tokens(response: &mut Response, pair: Option<&TokenPair>, secure: bool) {
    set_cookie(response, ACCESS_COOKIE, pair.map(|p| p.access_token.as_str()), secure);
    set_cookie(response, REFRESH_COOKIE, pair.map(|p| p.refresh_token.as_str()), secure);
}

/// Why the sign-in page is shown: a §4c reason, or one of the console's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedOut {
    Refused(Reason),
    NotOwner,
}

impl SignedOut {
    fn code(self) -> &'static str {
        match self {
            SignedOut::Refused(r) => r.as_str(),
            SignedOut::NotOwner => "not_owner",
        }
    }

    fn parse(code: &str) -> Option<Self> {
        if code == "not_owner" {
            return Some(SignedOut::NotOwner);
        }
        Reason::parse(code).map(SignedOut::Refused)
    }

    /// The sentence the sign-in page shows.
    fn explain(self, minutes: Option<i64>) -> Option<String> {
        let limit = minutes.map_or_else(|| "a set time".to_owned(), view::minutes);
        Some(match self {
            SignedOut::NotOwner => {
                "The console is for account owners. You were signed in as someone who is not \
                 an owner, so that session was ended right away."
                    .into()
            }
            SignedOut::Refused(r) => match r {
                // Nothing the person needs to know (or a token we never issued).
                Reason::UnknownToken | Reason::Rotated => return None,
                Reason::LoggedOut => "You signed out.".into(),
                Reason::RevokedSingle => "Your session was ended by an owner.".into(),
                Reason::RevokedOthers => {
                    "Your session was ended by an owner, who signed out everyone else.".into()
                }
                Reason::RevokedAll => {
                    "Your session was ended by an owner, who signed out everyone in the account."
                        .into()
                }
                Reason::UserDisabled => "Your user has been disabled.".into(),
                Reason::PasswordChanged => {
                    "Your password was changed, which signed out your other sessions.".into()
                }
                Reason::ReuseDetected => "Your session was ended because its refresh token was \
                     used twice (a copy may exist elsewhere). Sign in again."
                    .into(),
                Reason::IdleTimeout => format!("You were signed out after {limit} of inactivity."),
                Reason::AbsoluteTimeout => {
                    format!("You were signed out: sessions in this account last at most {limit}.")
                }
            },
        })
    }
}

fn sign_in_url(why: Option<SignedOut>, minutes: Option<i64>) -> String {
    match (why, minutes) {
        (None, _) => "/console/sign-in".into(),
        (Some(w), None) => format!("/console/sign-in?reason={}", w.code()),
        (Some(w), Some(m)) => format!("/console/sign-in?reason={}&minutes={m}", w.code()),
    }
}

/// To the sign-in page, the cookies cleared.
fn signed_out(why: Option<SignedOut>, minutes: Option<i64>, secure: bool) -> Response {
    let mut response = Redirect::to(&sign_in_url(why, minutes)).into_response();
    set_tokens(&mut response, None, secure);
    response
}

/// The gate of every signed-in page. See the module documentation.
pub async fn require_owner(
    State(state): State<AppState>,
    Now(now): Now,
    mut req: Request,
    next: Next,
) -> Response {
    let secure = super::over_tls(req.headers());
    let access = cookie(req.headers(), ACCESS_COOKIE).map(str::to_owned);
    let refresh = cookie(req.headers(), REFRESH_COOKIE).map(str::to_owned);
    let mut rotated = None;
    let caller = match access {
        Some(token) => match authenticate(&state, &token, now).await {
            Ok(caller) => Some(caller),
            Err(ApiError::NotAuthenticated) => None,
            Err(e) => return super::error_response(e),
        },
        None => None,
    };
    let caller = match (caller, refresh.as_deref()) {
        (Some(caller), _) => caller,
        (None, None) => return signed_out(None, None, secure),
        (None, Some(refresh)) => {
            let result = sessions::refresh(&state, refresh, now).await;
            state.metrics.refresh(match &result {
                Ok(_) => "ok",
                Err(service::Error::RefreshDenied(d)) => d.detail(),
                Err(_) => "internal_error",
            });
            match result {
                Ok(pair) => match authenticate(&state, &pair.access_token, now).await {
                    Ok(caller) => {
                        rotated = Some(pair);
                        caller
                    }
                    Err(e) => return super::error_response(e),
                },
                Err(service::Error::RefreshDenied(denied)) => {
                    return refused(denied, req.uri().path(), secure);
                }
                Err(e) => return super::error_response(e.into()),
            }
        }
    };
    if caller.user.role != Role::Owner {
        // Roles do not change today, but a console session is an owner's or none.
        let token = rotated.as_ref().map(|p| p.refresh_token.clone()).or(refresh);
        if let Some(token) = token
            && let Err(e) = sessions::logout(&state, &token, now).await
        {
            return super::error_response(e.into());
        }
        return signed_out(Some(SignedOut::NotOwner), None, secure);
    }
    req.extensions_mut().insert(Caller(Arc::new(caller)));
    let mut response = next.run(req).await;
    if let Some(pair) = rotated {
        set_tokens(&mut response, Some(&pair), secure);
    }
    response
}

/// A refused refresh. `rotated`: another request of this browser exchanged the same
/// token a moment ago and its answer carries the new cookies, so look again (a GET of
/// the page) rather than sign out; anything else ends at the sign-in page with the reason.
fn refused(denied: RefreshDenied, path: &str, secure: bool) -> Response {
    if denied.reason() == Reason::Rotated {
        let page = if path.starts_with("/console/") { path } else { "/console/" };
        return Redirect::to(page).into_response();
    }
    signed_out(Some(SignedOut::Refused(denied.reason())), denied.limit_minutes(), secure)
}

#[derive(Deserialize)]
pub struct SignInQuery {
    reason: Option<String>,
    minutes: Option<i64>,
}

pub async fn sign_in_page(
    query: Result<Query<SignInQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (why, minutes) = query
        .map(|Query(q)| (q.reason.as_deref().and_then(SignedOut::parse), q.minutes))
        .unwrap_or_default();
    let notice = why.and_then(|w| w.explain(minutes));
    sign_in_form(StatusCode::OK, notice.as_deref(), None, "")
}

fn sign_in_form(
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    email: &str,
) -> Response {
    let body = html! {
        section.card.narrow {
            h1 { "Sign in" }
            p.muted { "The sessiond console, for account owners." }
            @if let Some(n) = notice {
                p.notice role="status" id="signed-out-reason" { (n) }
            }
            @if let Some(e) = error {
                p.error role="alert" id="sign-in-error" { (e) }
            }
            form method="post" action="/console/sign-in" {
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="username" required value=(email);
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    view::bare_page(status, "Sign in", body)
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
}

/// `POST /console/sign-in`: `service::sessions::login`, exactly as `/auth/login` calls it.
pub async fn sign_in(
    State(state): State<AppState>,
    Now(now): Now,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return sign_in_form(
            StatusCode::BAD_REQUEST,
            None,
            Some("Enter your email and password."),
            "",
        );
    };
    let secure = super::over_tls(&headers);
    let email = form.email.clone();
    match sessions::login(&state, &form.email, form.password, client, now).await {
        Ok(pair) => signed_in(&state, pair, now, secure).await,
        Err(service::Error::InvalidCredentials) => {
            sign_in_form(StatusCode::UNAUTHORIZED, None, Some("Wrong email or password."), &email)
        }
        Err(service::Error::TooManyAttempts { retry_after_seconds }) => {
            let wait =
                view::minutes(retry_after_seconds.div_ceil(60).try_into().unwrap_or(i64::MAX));
            let message = format!(
                "Too many failed sign-ins for this email from your address. Try again in {wait}."
            );
            let mut r = sign_in_form(StatusCode::TOO_MANY_REQUESTS, None, Some(&message), &email);
            r.headers_mut().insert(header::RETRY_AFTER, retry_after_seconds.into());
            r
        }
        Err(e) => super::error_response(e.into()),
    }
}

/// After a successful login: an owner gets the cookies and the console; anyone else is
/// signed out again at once (audited as a logout) and told why.
async fn signed_in(
    state: &AppState,
    pair: TokenPair,
    now: DateTime<Utc>,
    secure: bool,
) -> Response {
    let caller = match authenticate(state, &pair.access_token, now).await {
        Ok(caller) => caller,
        Err(e) => return super::error_response(e),
    };
    if caller.user.role != Role::Owner {
        if let Err(e) = sessions::logout(state, &pair.refresh_token, now).await {
            return super::error_response(e.into());
        }
        let notice = SignedOut::NotOwner.explain(None);
        return sign_in_form(StatusCode::FORBIDDEN, None, notice.as_deref(), "");
    }
    let mut response = Redirect::to("/console/sessions").into_response();
    set_tokens(&mut response, Some(&pair), secure);
    response
}

/// `POST /console/sign-out`: `service::sessions::logout` with the refresh cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    Now(now): Now,
    headers: HeaderMap,
) -> Response {
    let secure = super::over_tls(&headers);
    if let Some(token) = cookie(&headers, REFRESH_COOKIE)
        && let Err(e) = sessions::logout(&state, token, now).await
    {
        return super::error_response(e.into());
    }
    signed_out(Some(SignedOut::Refused(Reason::LoggedOut)), None, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; sessiond_access=xyz"));
        h.append(header::COOKIE, HeaderValue::from_static("sessiond_refresh=r.t-1"));
        assert_eq!(cookie(&h, ACCESS_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, REFRESH_COOKIE), Some("r.t-1"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn every_reason_round_trips_through_the_sign_in_url() {
        for r in Reason::ALL {
            assert_eq!(SignedOut::parse(SignedOut::Refused(r).code()), Some(SignedOut::Refused(r)));
        }
        assert_eq!(SignedOut::parse("not_owner"), Some(SignedOut::NotOwner));
        assert_eq!(SignedOut::parse("<script>"), None);
        let idle = SignedOut::Refused(Reason::IdleTimeout).explain(Some(30));
        assert_eq!(idle.as_deref(), Some("You were signed out after 30 minutes of inactivity."));
    }
}
