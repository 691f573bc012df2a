//! GET and PATCH /accounts/me/security.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const PATH: &str = "/accounts/me/security";

fn defaults() -> Value {
    json!({"idle_minutes": null, "absolute_minutes": null,
           "effective_idle_minutes": 1440, "effective_absolute_minutes": 10080,
           "idle_minutes_min": 15, "idle_minutes_max": 43200,
           "absolute_minutes_min": 60, "absolute_minutes_max": 129600})
}

#[tokio::test]
async fn get_shows_defaults_and_bounds() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let r = app.get(PATH, &owner.access).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, defaults());
}

#[tokio::test]
async fn bounds_and_defaults_come_from_the_configuration() {
    let app = TestApp::spawn_with(|c| {
        c.session.idle_minutes_min = 5;
        c.session.idle_minutes_default = 30;
        c.session.idle_minutes_max = 90;
        c.session.absolute_minutes_min = 30;
        c.session.absolute_minutes_default = 120;
        c.session.absolute_minutes_max = 240;
    })
    .await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let r = app.get(PATH, &owner.access).await;
    assert_eq!(
        r.body,
        json!({"idle_minutes": null, "absolute_minutes": null,
               "effective_idle_minutes": 30, "effective_absolute_minutes": 120,
               "idle_minutes_min": 5, "idle_minutes_max": 90,
               "absolute_minutes_min": 30, "absolute_minutes_max": 240})
    );
    let r = app.patch(PATH, &owner.access, json!({"idle_minutes": 91})).await;
    r.assert(422, "idle_minutes must be between 5 and 90");
}

#[tokio::test]
async fn patch_has_merge_patch_semantics() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;

    let r =
        app.patch(PATH, &owner.access, json!({"idle_minutes": 30, "absolute_minutes": 600})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["idle_minutes"], 30);
    assert_eq!(r.body["absolute_minutes"], 600);
    assert_eq!(r.body["effective_idle_minutes"], 30);
    assert_eq!(r.body["effective_absolute_minutes"], 600);

    // A key left out is unchanged.
    let r = app.patch(PATH, &owner.access, json!({"absolute_minutes": 700})).await;
    assert_eq!(
        (r.body["idle_minutes"].clone(), r.body["absolute_minutes"].clone()),
        (json!(30), json!(700))
    );

    // null clears; the effective value falls back to the default.
    let r = app.patch(PATH, &owner.access, json!({"absolute_minutes": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["absolute_minutes"], Value::Null);
    assert_eq!(r.body["effective_absolute_minutes"], 10080);

    // An empty patch changes nothing.
    let r = app.patch(PATH, &owner.access, json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["idle_minutes"], 30);

    // GET agrees with the last PATCH.
    let g = app.get(PATH, &owner.access).await;
    assert_eq!(g.body, r.body);

    let r = app
        .patch(PATH, &owner.access, json!({"idle_minutes": null, "absolute_minutes": null}))
        .await;
    assert_eq!(r.body, defaults());
}

#[tokio::test]
async fn the_three_checks_in_order_with_exact_messages() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let idle = "idle_minutes must be between 15 and 43200";
    let absolute = "absolute_minutes must be between 60 and 129600";
    let cases = [
        (json!({"idle_minutes": 14}), idle.to_owned()),
        (json!({"idle_minutes": 43201}), idle.to_owned()),
        (json!({"idle_minutes": 0}), idle.to_owned()),
        (json!({"idle_minutes": -5}), idle.to_owned()),
        (json!({"idle_minutes": 9_007_199_254_740_993_i64}), idle.to_owned()),
        (json!({"absolute_minutes": 59}), absolute.to_owned()),
        (json!({"absolute_minutes": 129_601}), absolute.to_owned()),
        // Both out of range: the idle check comes first.
        (json!({"idle_minutes": 1, "absolute_minutes": 1}), idle.to_owned()),
        // Idle in range, absolute out: the absolute check, before the effective one.
        (json!({"idle_minutes": 500, "absolute_minutes": 1}), absolute.to_owned()),
        // Effective values are computed after defaults.
        (
            json!({"idle_minutes": 43200}),
            "Effective idle (43200min) cannot exceed effective absolute (10080min)".to_owned(),
        ),
        (
            json!({"idle_minutes": 100, "absolute_minutes": 60}),
            "Effective idle (100min) cannot exceed effective absolute (60min)".to_owned(),
        ),
        (
            json!({"absolute_minutes": 60}),
            "Effective idle (1440min) cannot exceed effective absolute (60min)".to_owned(),
        ),
    ];
    for (body, detail) in cases {
        let r = app.patch(PATH, &owner.access, body.clone()).await;
        r.assert(422, &detail);
    }
    // Nothing was changed by the refused patches.
    assert_eq!(app.get(PATH, &owner.access).await.body, defaults());
    // Bounds are inclusive.
    for body in [
        json!({"idle_minutes": 15, "absolute_minutes": 60}),
        json!({"idle_minutes": 43200, "absolute_minutes": 129600}),
    ] {
        assert_eq!(app.patch(PATH, &owner.access, body).await.status, 200);
    }
}

#[tokio::test]
async fn the_effective_check_uses_the_stored_override_when_a_key_is_left_out() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    assert_eq!(
        app.patch(PATH, &owner.access, json!({"idle_minutes": 100, "absolute_minutes": 200}))
            .await
            .status,
        200
    );
    app.patch(PATH, &owner.access, json!({"absolute_minutes": 90}))
        .await
        .assert(422, "Effective idle (100min) cannot exceed effective absolute (90min)");
    app.patch(PATH, &owner.access, json!({"idle_minutes": null}))
        .await
        .assert(422, "Effective idle (1440min) cannot exceed effective absolute (200min)");
}

#[tokio::test]
async fn non_integers_unknown_keys_and_non_objects_are_422() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let auth = format!("Bearer {}", owner.access);
    let bodies = [
        r#"{"idle_minutes": 1.5}"#,
        r#"{"idle_minutes": 60.0}"#,
        r#"{"idle_minutes": 6e1}"#,
        r#"{"idle_minutes": "60"}"#,
        r#"{"idle_minutes": true}"#,
        r#"{"idle_minutes": [60]}"#,
        r#"{"idle_minutes": {"value": 60}}"#,
        r#"{"absolute_minutes": 1e400}"#,
        r#"{"idle_minutes": 99999999999999999999999}"#,
        r#"{"idle_minutes": 60, "extra": 1}"#,
        r#"{"Idle_Minutes": 60}"#,
        r#"[]"#,
        r#"[60, 120]"#,
        r#"60"#,
        r#""idle""#,
        r#"null"#,
        r#"true"#,
    ];
    for body in bodies {
        let r = app
            .raw(
                Method::PATCH,
                PATH,
                &[("authorization", &auth), ("content-type", "application/json")],
                body.into(),
            )
            .await;
        assert_eq!(r.status, 422, "{body} -> {}", r.text);
        assert!(r.body["detail"].is_string(), "{body} -> {}", r.text);
    }
    assert_eq!(app.get(PATH, &owner.access).await.body, defaults());
}

#[tokio::test]
async fn a_successful_patch_is_audited_with_old_new_and_effective_values() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.patch(PATH, &owner.access, json!({"idle_minutes": 30})).await;
    app.patch(PATH, &owner.access, json!({"idle_minutes": 45, "absolute_minutes": 600})).await;
    app.patch(PATH, &owner.access, json!({"idle_minutes": 99999})).await; // refused: no audit
    let events = app.audit(&owner.access, "account.session_policy_update").await;
    assert_eq!(events.len(), 2, "{events:?}");
    let latest = &events[0];
    assert_eq!(latest["user_id"], t.owner.id.to_string());
    assert_eq!(latest["resource_type"], "account");
    assert_eq!(latest["resource_id"], t.account.to_string());
    assert_eq!(
        latest["details"],
        json!({
            "old": {"idle_minutes": 30, "absolute_minutes": null},
            "new": {"idle_minutes": 45, "absolute_minutes": 600},
            "effective_old": {"idle_minutes": 30, "absolute_minutes": 10080},
            "effective_new": {"idle_minutes": 45, "absolute_minutes": 600},
        })
    );
}

#[tokio::test]
async fn only_owners_may_read_or_change_the_policy() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    for user in [&t.admin, &t.engineer] {
        let tok = app.login(user).await;
        app.get(PATH, &tok.access).await.assert(403, "owner_required");
        app.patch(PATH, &tok.access, json!({"idle_minutes": 30}))
            .await
            .assert(403, "owner_required");
        // 403 comes before the body is looked at.
        app.patch(PATH, &tok.access, json!({"bogus": true})).await.assert(403, "owner_required");
    }
    let owner = app.login(&t.owner).await;
    assert_eq!(app.get(PATH, &owner.access).await.body, defaults());
    app.request(Method::GET, PATH, None, None).await.assert(401, "not_authenticated");
    app.request(Method::PATCH, PATH, None, Some(json!({}))).await.assert(401, "not_authenticated");
}

#[tokio::test]
async fn the_database_itself_refuses_idle_above_absolute() {
    let app = TestApp::spawn_inspectable().await;
    let t = app.tenant("Acme").await;
    let id = t.account.to_string();
    let refused = app.try_sql(
        "UPDATE accounts SET idle_minutes = 500, absolute_minutes = 100 WHERE id = ?1",
        &[&id],
    );
    let err = refused.expect_err("CHECK constraint must refuse idle > absolute");
    // SQLite's words, or PostgreSQL's naming the constraint.
    assert!(
        err.contains("CHECK constraint failed") || err.contains("idle_not_above_absolute"),
        "{err}"
    );
    // Only one override set is not the database's business (the effective check is).
    app.try_sql("UPDATE accounts SET idle_minutes = 500 WHERE id = ?1", &[&id]).unwrap();
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    // A misspelt preview flag, or one that is not a boolean, must not make the change.
    for query in ["dryrun=true", "dry_run=yes", "dry_run=1", "dry_run=true&x=1"] {
        let r =
            app.patch(&format!("{PATH}?{query}"), &owner.access, json!({"idle_minutes": 30})).await;
        assert_eq!(r.status, 422, "{query}: {}", r.text);
    }
    assert_eq!(app.get(PATH, &owner.access).await.body, defaults());
    assert!(app.audit(&owner.access, "account.session_policy_update").await.is_empty());
}
