//! The page frame and the small pieces every page shares: times, durations, notices.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, html};

use super::assets;

/// Which page is showing, to mark it in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Sessions,
    Policy,
    Audit,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · sessiond console" }
            link rel="stylesheet" href=(assets::css_url());
            script src=(assets::js_url()) defer {}
        }
    }
}

/// A page for someone not signed in (sign-in, errors).
pub fn bare_page(status: StatusCode, title: &str, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { span.brand { "sessiond" } }
                main #main { (body) }
            }
        }
    };
    (status, Html(page.into_string())).into_response()
}

/// A signed-in page: navigation, who is signed in, sign out. `now` is the server's
/// clock, which the script's relative times count from.
pub fn page(tab: Tab, email: &str, now: DateTime<Utc>, title: &str, body: Markup) -> Response {
    let link = |t: Tab, href: &str, text: &str| {
        html! {
            @if t == tab { a href=(href) aria-current="page" { (text) } }
            @else { a href=(href) { (text) } }
        }
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-now=(now.to_rfc3339_opts(SecondsFormat::Secs, true)) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "sessiond" }
                    nav aria-label="Console" {
                        (link(Tab::Sessions, "/console/sessions", "Sessions"))
                        (link(Tab::Policy, "/console/policy", "Policy"))
                        (link(Tab::Audit, "/console/audit", "Audit trail"))
                    }
                    form.signout method="post" action="/console/sign-out" {
                        span.muted.who { (email) }
                        button type="submit" { "Sign out" }
                    }
                }
                main #main { (body) }
            }
        }
    };
    Html(page.into_string()).into_response()
}

pub fn error_page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = html! {
        section.card.narrow {
            h1 { (title) }
            p #error-text { (text) }
            p { a href="/console/" { "Back to the console" } }
        }
    };
    bare_page(status, title, body)
}

/// `30 minutes`, `1 day`, `7 days (10080 minutes)`: whole units read better, the minutes
/// are what the fields take.
pub fn minutes(m: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let whole = if m >= 1440 && m % 1440 == 0 {
        Some(plural(m / 1440, "day"))
    } else if m >= 60 && m % 60 == 0 {
        Some(plural(m / 60, "hour"))
    } else {
        None
    };
    match whole {
        Some(w) => format!("{w} ({})", plural(m, "minute")),
        None => plural(m, "minute"),
    }
}

/// A moment: the absolute time (UTC) always visible, the relative one beside it.
pub fn time(t: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339_opts(SecondsFormat::Secs, true)) {
            (t.format("%Y-%m-%d %H:%M UTC"))
        }
        " "
        span.rel { "(" (relative(t, now)) ")" }
    }
}

/// `5 min ago`, `in 3 h`, `just now`. The script keeps these current.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let abs = secs.unsigned_abs();
    let amount = match abs {
        0..60 => return "just now".into(),
        60..3600 => format!("{} min", abs / 60),
        3600..86_400 => format!("{} h", abs / 3600),
        _ => format!("{} d", abs / 86_400),
    };
    if secs < 0 { format!("{amount} ago") } else { format!("in {amount}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_whole_units() {
        assert_eq!(minutes(1), "1 minute");
        assert_eq!(minutes(15), "15 minutes");
        assert_eq!(minutes(120), "2 hours (120 minutes)");
        assert_eq!(minutes(1440), "1 day (1440 minutes)");
        assert_eq!(minutes(90), "90 minutes");
    }

    #[test]
    fn relative_times_say_which_way() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap_or_default();
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - chrono::TimeDelta::minutes(5), now), "5 min ago");
        assert_eq!(relative(now + chrono::TimeDelta::hours(3), now), "in 3 h");
        assert_eq!(relative(now - chrono::TimeDelta::days(2), now), "2 d ago");
    }

    #[test]
    fn spliced_text_is_escaped() {
        let hostile = "<img src=x onerror=alert(1)>";
        let out = html! { p { (hostile) } }.into_string();
        assert_eq!(out, "<p>&lt;img src=x onerror=alert(1)&gt;</p>");
    }
}
