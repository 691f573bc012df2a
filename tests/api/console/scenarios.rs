//! The console in a real headless Chromium (see `browser`): each test its own server, its
//! own chromedriver and browser. Screenshots of every page, light and dark, land in
//! `target/console-screenshots/`.

use reqwest::Method;
use serde_json::json;
use sessiond::auth::Role;

use super::browser::Driver;
use crate::helpers::{PASSWORD, TestApp, session_of, tokens};

/// A server, and a chromedriver (or `None`: no browser here, the test is skipped).
async fn start(name: &str) -> Option<(TestApp, crate::helpers::Tenant, Driver)> {
    let driver = Driver::start().await?;
    let app = TestApp::spawn().await;
    let tenant = app.tenant(name).await;
    Some((app, tenant, driver))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_wrong_password_and_throttling_messages() {
    let Some((app, t, driver)) = start("Signin").await else { return };
    let b = driver.browser().await;
    b.goto(&format!("{}/console/sign-in", app.base)).await;
    b.screenshots("sign-in").await;

    b.sign_in(&app.base, &t.owner.email, "not the password").await;
    assert_eq!(b.text("#sign-in-error").await, "Wrong email or password.");

    // Five failures for one email from one address; the sixth try is refused before its
    // password is checked (the login throttle of /auth/login).
    for _ in 0..4 {
        b.sign_in(&app.base, &t.admin.email, "nope").await;
        assert_eq!(b.text("#sign-in-error").await, "Wrong email or password.");
    }
    b.sign_in(&app.base, &t.admin.email, "nope").await;
    b.sign_in(&app.base, &t.admin.email, PASSWORD).await;
    let throttled = b.text("#sign-in-error").await;
    assert!(throttled.starts_with("Too many failed sign-ins for this email"), "{throttled}");
    b.screenshots("sign-in-throttled").await;

    b.sign_in(&app.base, &t.owner.email, PASSWORD).await;
    b.wait_path("/console/sessions").await;
    let row = b.text("tr:has(.badge.current)").await;
    assert!(row.contains(&t.owner.email) && row.contains("this session"), "{row}");
    // Headless Chromium announces itself as such; no version is shown.
    assert!(row.contains("Headless Chrome on Linux"), "{row}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_owner_is_turned_away() {
    let Some((app, t, driver)) = start("Roles").await else { return };
    let b = driver.browser().await;
    b.sign_in(&app.base, &t.admin.email, PASSWORD).await;
    let said = b.text("#sign-in-error").await;
    assert!(said.starts_with("The console is for account owners."), "{said}");
    // No cookie was kept: the console stays closed.
    b.goto(&format!("{}/console/sessions", app.base)).await;
    b.wait_path("/console/sign-in").await;
    // And the admin's session was ended (through the service's logout).
    let owner = app.login(&t.owner).await;
    let list = app.get("/accounts/me/security/sessions", &owner.access).await;
    assert!(!list.text.contains(&t.admin.email), "{}", list.text);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_changes_through_the_preview_and_shows_in_the_audit_trail() {
    let Some((app, t, driver)) = start("Policy").await else { return };
    let b = driver.browser().await;
    // Someone whose session the change will end: idle for 20 minutes.
    let admin = app.login(&t.admin).await;
    b.sign_in(&app.base, &t.owner.email, PASSWORD).await;
    b.wait_path("/console/sessions").await;
    app.advance(20 * 60).await;

    b.goto(&format!("{}/console/policy", app.base)).await;
    assert!(b.text("#current-idle").await.contains("system default"));
    b.screenshots("policy").await;

    // Out of bounds: the contract's message beside the field, nothing changed.
    b.click("#idle-custom").await;
    b.fill("#idle-minutes", "5").await;
    b.click_to_load("#preview").await;
    assert_eq!(b.text("#idle-error").await, "idle_minutes must be between 15 and 43200");
    b.screenshots("policy-invalid").await;
    b.click("#idle-custom").await;
    b.fill("#idle-minutes", "43200").await;
    b.click_to_load("#preview").await;
    assert_eq!(
        b.text("#idle-error").await,
        "Effective idle (43200min) cannot exceed effective absolute (10080min)"
    );
    let owner = app.login(&t.owner).await;
    let policy = app.get("/accounts/me/security", &owner.access).await;
    assert_eq!(policy.body["idle_minutes"], serde_json::Value::Null, "unchanged");
    assert!(app.audit(&owner.access, "account.session_policy_update").await.is_empty());

    // A valid change: the preview counts the idle admin, then it is applied.
    b.click("#idle-custom").await;
    b.fill("#idle-minutes", "15").await;
    b.click_to_load("#preview").await;
    assert_eq!(b.text("#sessions-ending").await, "1 active session would end at its next refresh.");
    assert!(b.text("#new-idle").await.starts_with("15 minutes"));
    b.screenshots("policy-preview").await;
    assert!(
        app.audit(&owner.access, "account.session_policy_update").await.is_empty(),
        "a preview writes nothing"
    );
    b.click_to_load("#apply").await;
    b.wait_path("/console/policy").await;
    let now = b.text("#current-idle").await;
    assert!(now.contains("15 minutes") && now.contains("account setting"), "{now}");
    let policy = app.get("/accounts/me/security", &owner.access).await;
    assert_eq!(policy.body["idle_minutes"], 15);
    app.refresh(&admin.refresh).await.refused("session_idle_timeout", "idle_timeout");

    // Reset to the defaults, through its own preview.
    b.click("#reset").await;
    assert!(b.text("#new-idle").await.ends_with("(system default)"));
    b.click_to_load("#apply").await;
    b.wait_path("/console/policy").await;
    assert!(b.text("#current-idle").await.contains("system default"));
    let policy = app.get("/accounts/me/security", &owner.access).await;
    assert_eq!(policy.body["idle_minutes"], serde_json::Value::Null);

    b.click_to_load("nav a[href='/console/audit']").await;
    b.wait_path("/console/audit").await;
    let reset = b.text("ol.audit li:nth-child(1)").await;
    assert!(
        reset.contains("changed the session policy: idle limit 15 minutes (account setting) → 1 day (1440 minutes) (system default)."),
        "{reset}"
    );
    let first = b.text("ol.audit li:nth-child(2)").await;
    assert!(
        first.contains(&format!(
            "{} changed the session policy: idle limit 1 day (1440 minutes) (system default) → 15 minutes (account setting).",
            t.owner.email
        )),
        "{first}"
    );
    assert!(b.exists("ol.audit li:first-child time[datetime]").await);
    b.screenshots("audit").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_user_agent_is_shown_as_text_and_ending_its_session_refuses_its_token() {
    let Some((app, t, driver)) = start("Hostile").await else { return };
    let hostile =
        r#"<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>"#;
    let body = json!({ "email": t.admin.email, "password": PASSWORD }).to_string();
    let r = app
        .raw(
            Method::POST,
            "/auth/login",
            &[("content-type", "application/json"), ("user-agent", hostile)],
            body.into_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let admin = tokens(&r);
    let sid = session_of(&admin.access);

    let b = driver.browser().await;
    b.sign_in(&app.base, &t.owner.email, PASSWORD).await;
    b.wait_path("/console/sessions").await;
    let row = b.text(&format!("tr[data-session='{sid}']")).await;
    assert!(row.contains(hostile), "the user agent is shown as it is, as text: {row}");
    assert!(row.contains("Unknown browser"), "{row}");
    assert!(!b.exists("img").await, "no element was made from it");
    assert!(!b.exists("main script").await);
    let title = b.client.title().await.unwrap();
    assert_eq!(title, "Sessions · sessiond console", "nothing ran");
    b.screenshots("sessions").await;

    // End that one session: the dialog, then its refresh token is refused.
    b.click(&format!("tr[data-session='{sid}'] a.button.danger")).await;
    let dialog = format!("#end-{sid}");
    let question = b.text(&format!("{dialog} p")).await;
    assert!(
        question.starts_with(&format!("1 session will end: {}'s session", t.admin.email)),
        "{question}"
    );
    b.screenshots("confirm-end-one").await;
    b.click_to_load(&format!("{dialog} button[type=submit]")).await;
    assert_eq!(b.text("main .notice").await, "The session was ended.");
    assert!(!b.exists(&format!("tr[data-session='{sid}']")).await);
    app.refresh(&admin.refresh).await.refused("invalid_refresh_token", "revoked_single");

    // On a phone-sized screen too.
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{}/console/sessions", app.base)).await;
    b.screenshots("sessions-phone").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_everyone_elses_then_all_lands_on_the_sign_in_page_with_the_reason() {
    let Some((app, t, driver)) = start("Bulk").await else { return };
    let admin = app.login(&t.admin).await;
    let engineer = app.login(&t.engineer).await;
    let b = driver.browser().await;
    b.sign_in(&app.base, &t.owner.email, PASSWORD).await;
    b.wait_path("/console/sessions").await;

    b.click("#end-others").await;
    let question = b.text("#dialog-others p").await;
    assert!(question.starts_with("2 sessions will end"), "{question}");
    assert_eq!(b.focused_text().await, "Cancel", "destructive: focus starts on Cancel");
    b.screenshots("confirm-end-others").await;
    b.click_to_load("#dialog-others button[type=submit]").await;
    assert_eq!(b.text("main .notice").await, "Ended 2 sessions: everyone else is signed out.");
    app.refresh(&admin.refresh).await.refused("invalid_refresh_token", "revoked_others");
    app.refresh(&engineer.refresh).await.refused("invalid_refresh_token", "revoked_others");
    assert!(b.exists("tr .badge.current").await, "still signed in");

    b.click("#end-all").await;
    assert!(b.text("#dialog-all p").await.starts_with("1 session will end"));
    b.click_to_load("#dialog-all button[type=submit]").await;
    b.wait_path("/console/sign-in").await;
    assert_eq!(
        b.text("#signed-out-reason").await,
        "Your session was ended by an owner, who signed out everyone in the account."
    );
    b.screenshots("signed-out").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_browser_signed_out_by_the_first_sees_why_on_its_next_click() {
    let Some((app, t, driver)) = start("Two").await else { return };
    let second = app.user(t.account, "second-owner@two.test", Role::Owner).await;
    let first_browser = driver.browser().await;
    let second_browser = driver.browser().await;
    second_browser.sign_in(&app.base, &second.email, PASSWORD).await;
    second_browser.wait_path("/console/sessions").await;
    first_browser.sign_in(&app.base, &t.owner.email, PASSWORD).await;
    first_browser.wait_path("/console/sessions").await;

    // The first ends the second's session, here through the page a browser without
    // script gets.
    let rows =
        first_browser.client.find_all(fantoccini::Locator::Css("tr[data-session]")).await.unwrap();
    let mut target = None;
    for row in rows {
        if row.text().await.unwrap().contains(&second.email) {
            target = row.attr("data-session").await.unwrap();
        }
    }
    let sid = target.expect("the second owner's session is listed");
    first_browser.goto(&format!("{}/console/sessions/{sid}/end", app.base)).await;
    assert_eq!(first_browser.focused_text().await, "Cancel");
    first_browser.screenshots("confirm-page").await;
    first_browser.click_to_load("main form button[type=submit]").await;
    first_browser.wait_path("/console/sessions").await;

    second_browser.click_to_load("nav a[href='/console/policy']").await;
    second_browser.wait_path("/console/sign-in").await;
    assert_eq!(
        second_browser.text("#signed-out-reason").await,
        "Your session was ended by an owner."
    );
    first_browser.close().await;
    second_browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refreshes_its_tokens_and_signs_out_when_idle() {
    let Some((app, t, driver)) = start("Clock").await else { return };
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({ "idle_minutes": 15 })).await;
    let b = driver.browser().await;
    b.sign_in(&app.base, &t.owner.email, PASSWORD).await;
    b.wait_path("/console/sessions").await;

    // Past the access token's 5 minutes, twice: each click refreshes, the console works.
    for page in ["policy", "audit"] {
        app.advance(6 * 60).await;
        b.click_to_load(&format!("nav a[href='/console/{page}']")).await;
        b.wait_path(&format!("/console/{page}")).await;
    }
    // Past the idle limit: signed out, told why.
    app.advance(16 * 60).await;
    b.click_to_load("nav a[href='/console/sessions']").await;
    b.wait_path("/console/sign-in").await;
    assert_eq!(
        b.text("#signed-out-reason").await,
        "You were signed out after 15 minutes of inactivity."
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_origin_form_post_from_another_port_is_refused_and_changes_nothing() {
    let Some((app, t, driver)) = start("Csrf").await else { return };
    let admin = app.login(&t.admin).await;
    // Another origin on the same host: the same *site*, so SameSite cookies alone would
    // not stop it.
    let evil = format!(
        r#"<!doctype html><title>evil</title>
        <form method="post" action="{}/console/sessions/end">
          <input type="hidden" name="scope" value="all"><button id="go">Win a prize</button>
        </form>"#,
        app.base
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/", axum::routing::get(move || async move { axum::response::Html(evil) }));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let b = driver.browser().await;
    b.sign_in(&app.base, &t.owner.email, PASSWORD).await;
    b.wait_path("/console/sessions").await;
    b.goto(&evil_base).await;
    b.click_to_load("#go").await;
    let page = b.text("#error-text").await;
    assert!(page.starts_with("This request did not come from the console's own pages"), "{page}");

    // Nothing was revoked: the admin refreshes, the owner's console still works.
    app.rotate(&admin.refresh).await;
    b.goto(&format!("{}/console/sessions", app.base)).await;
    b.wait_path("/console/sessions").await;
    assert!(b.exists("tr .badge.current").await);
    server.abort();
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_can_be_ended_with_the_keyboard_alone() {
    use fantoccini::key::Key;
    let Some((app, t, driver)) = start("Keys").await else { return };
    let admin = app.login(&t.admin).await;
    let sid = session_of(&admin.access);
    let b = driver.browser().await;
    b.sign_in(&app.base, &t.owner.email, PASSWORD).await;
    b.wait_path("/console/sessions").await;

    let target = format!("/console/sessions/{sid}/end");
    let mut reached = false;
    for _ in 0..40 {
        b.press(&[Key::Tab]).await;
        let focused = b.client.active_element().await.unwrap();
        if focused.attr("href").await.unwrap().as_deref() == Some(target.as_str()) {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached the admin's End session link");
    b.press(&[Key::Enter]).await;
    assert_eq!(b.focused_text().await, "Cancel", "the dialog opens with focus on Cancel");
    b.press(&[Key::Tab]).await;
    assert_eq!(b.focused_text().await, "End session");
    b.press(&[Key::Enter]).await;
    assert_eq!(b.text("main .notice").await, "The session was ended.");
    app.refresh(&admin.refresh).await.refused("invalid_refresh_token", "revoked_single");
    b.close().await;
}
