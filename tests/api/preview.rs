//! Contract §4c, "Impact preview": `?dry_run=true` validates like the real call, writes
//! nothing, and its counts agree with what the real call then does.

use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, Tokens};

const POLICY: &str = "/accounts/me/security";
const REVOKE: &str = "/accounts/me/security/revoke-sessions";
const MINUTE: i64 = 60;

/// Sessions of different ages in a fresh account, all alive under the default policy
/// (idle 1440, absolute 10080). At the end, as minutes since login / since the last
/// login or refresh: A 250/10, B 250/250, C 190/190, D 130/130, E 70/70, F 40/25,
/// G 10/10, H 0/0. C, F and H are the owner's; H is returned apart too, to call with.
async fn sessions_of_many_ages(app: &TestApp, name: &str) -> (Tenant, Tokens, Vec<Tokens>) {
    let t = app.tenant(name).await;
    let mut a = app.login(&t.engineer).await;
    let b = app.login(&t.admin).await;
    app.advance(60 * MINUTE).await;
    a = app.rotate(&a.refresh).await;
    let c = app.login(&t.owner).await;
    app.advance(60 * MINUTE).await;
    a = app.rotate(&a.refresh).await;
    let d = app.login(&t.engineer).await;
    app.advance(60 * MINUTE).await;
    a = app.rotate(&a.refresh).await;
    let e = app.login(&t.admin).await;
    app.advance(30 * MINUTE).await;
    let mut f = app.login(&t.owner).await;
    app.advance(15 * MINUTE).await;
    f = app.rotate(&f.refresh).await;
    app.advance(15 * MINUTE).await;
    a = app.rotate(&a.refresh).await;
    let g = app.login(&t.engineer).await;
    app.advance(10 * MINUTE).await;
    let h = app.login(&t.owner).await;
    (t, h.clone(), vec![a, b, c, d, e, f, g, h])
}

fn without_preview_fields(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("sessions_ending");
    v
}

#[tokio::test]
async fn a_policy_preview_agrees_with_what_the_change_then_does() {
    let app = TestApp::spawn().await;
    let cases = [
        json!({"idle_minutes": 15}),
        json!({"idle_minutes": 60}),
        json!({"idle_minutes": 120}),
        json!({"idle_minutes": 60, "absolute_minutes": 60}),
        json!({"idle_minutes": 180, "absolute_minutes": 200}),
        json!({"idle_minutes": 30, "absolute_minutes": 200}),
        json!({"idle_minutes": 43200, "absolute_minutes": 129600}),
        json!({}),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (i, change) in cases.iter().enumerate() {
        let (_, owner, sessions) = sessions_of_many_ages(&app, &format!("Case {i}")).await;
        let preview =
            app.patch(&format!("{POLICY}?dry_run=true"), &owner.access, change.clone()).await;
        assert_eq!(preview.status, 200, "{change}: {}", preview.text);
        let ending = preview.body["sessions_ending"].as_u64().unwrap();
        seen.insert(ending);

        let applied = app.set_policy(&owner.access, change.clone()).await;
        assert_eq!(without_preview_fields(preview.body.clone()), applied.body, "{change}");
        let mut failed = 0;
        for s in &sessions {
            let r = app.refresh(&s.refresh).await;
            match r.status.as_u16() {
                200 => {}
                401 => failed += 1,
                other => panic!("{change}: unexpected {other}: {}", r.text),
            }
        }
        assert_eq!(failed, ending, "{change}: preview said {ending}");
    }
    assert!(seen.len() >= 4, "the cases should end different numbers of sessions: {seen:?}");
}

/// Sessions already over under the current policy are not "ending": the change does not
/// end them, and a looser policy revives them.
#[tokio::test]
async fn sessions_already_over_are_not_counted_as_ending() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    app.set_policy(&owner.access, json!({"idle_minutes": 30})).await;
    let stale = app.login(&t.engineer).await; // will be 40 minutes idle: over already
    app.advance(20 * MINUTE).await;
    let idle_20 = app.login(&t.admin).await; // will be 20 minutes idle
    app.advance(20 * MINUTE).await;
    let owner = app.login(&t.owner).await; // fresh
    let preview = |body: Value| {
        let (app, access) = (&app, owner.access.clone());
        async move {
            let r = app.patch(&format!("{POLICY}?dry_run=true"), &access, body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body["sessions_ending"].as_u64().unwrap()
        }
    };
    // Tighter: only the 20-minute session is newly ended; the stale one was over anyway.
    assert_eq!(preview(json!({"idle_minutes": 15})).await, 1);
    // Looser: nothing ends, and the stale session comes back to life.
    assert_eq!(preview(json!({"idle_minutes": 60})).await, 0);
    app.set_policy(&owner.access, json!({"idle_minutes": 60})).await;
    app.rotate(&stale.refresh).await;
    app.rotate(&idle_20.refresh).await;
}

#[tokio::test]
async fn a_policy_preview_writes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let eng = app.login(&t.engineer).await;
    app.login(&t.admin).await;
    app.advance(20 * MINUTE).await;
    let owner = app.login(&t.owner).await;
    let before = app.get(POLICY, &owner.access).await.body;
    let r = app
        .patch(&format!("{POLICY}?dry_run=true"), &owner.access, json!({"idle_minutes": 15}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["idle_minutes"], 15);
    assert_eq!(r.body["effective_idle_minutes"], 15);
    assert_eq!(r.body["sessions_ending"], 2, "{}", r.text);
    assert_eq!(app.get(POLICY, &owner.access).await.body, before);
    assert!(app.audit(&owner.access, "account.session_policy_update").await.is_empty());
    assert_eq!(app.refresh(&eng.refresh).await.status, 200, "the session lives on");

    // dry_run=false is the real call, answered as such.
    let r = app
        .patch(&format!("{POLICY}?dry_run=false"), &owner.access, json!({"idle_minutes": 30}))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("sessions_ending").is_none(), "{}", r.text);
    assert_eq!(app.get(POLICY, &owner.access).await.body["idle_minutes"], 30);
}

#[tokio::test]
async fn a_policy_preview_validates_exactly_like_the_change() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    let bad = [
        json!({"idle_minutes": 14}),
        json!({"absolute_minutes": 129601}),
        json!({"idle_minutes": 43200}),
        json!({"idle_minutes": 60.0}),
        json!({"idle_minutes": "60"}),
        json!({"nope": 1}),
        json!([1]),
    ];
    for body in bad {
        let real = app.patch(POLICY, &owner.access, body.clone()).await;
        let preview =
            app.patch(&format!("{POLICY}?dry_run=true"), &owner.access, body.clone()).await;
        assert_eq!(real.status, 422, "{body}");
        assert_eq!((preview.status, preview.body.clone()), (real.status, real.body), "{body}");
    }
    let eng = app.login(&t.engineer).await;
    let r = app.patch(&format!("{POLICY}?dry_run=true"), &eng.access, json!({})).await;
    r.assert(403, "owner_required");
}

#[tokio::test]
async fn a_revoke_preview_counts_what_the_revoke_then_revokes_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, owner, sessions) = sessions_of_many_ages(&app, "Acme").await;
    let other = app.tenant("Globex").await;
    app.login(&other.engineer).await;
    let owner_sessions = 3; // C, F and H
    assert_eq!(sessions.len(), 8);

    let preview = |scope: &'static str| {
        let app = &app;
        let access = owner.access.clone();
        async move {
            app.post(&format!("{REVOKE}?dry_run=true"), Some(&access), json!({ "scope": scope }))
                .await
        }
    };
    let r = preview("others").await;
    assert_eq!(r.body, json!({"revoked_count": 8 - owner_sessions, "dry_run": true}), "{}", r.text);
    let r = preview("all").await;
    assert_eq!(r.body, json!({"revoked_count": 8, "dry_run": true}));
    // Nothing audited; that nothing was revoked shows in the real call's count below.
    assert!(app.audit(&owner.access, "account.sessions_revoked_bulk").await.is_empty());

    let r = app.post(REVOKE, Some(&owner.access), json!({"scope": "others"})).await;
    assert_eq!(r.body, json!({"revoked_count": 8 - owner_sessions}));
    assert_eq!(preview("others").await.body["revoked_count"], 0);
    assert_eq!(preview("all").await.body["revoked_count"], owner_sessions);
    let r = app.post(REVOKE, Some(&owner.access), json!({"scope": "all"})).await;
    assert_eq!(r.body, json!({"revoked_count": owner_sessions}));
}

#[tokio::test]
async fn a_revoke_preview_validates_like_the_revoke() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let owner = app.login(&t.owner).await;
    for body in [json!({"scope": "everyone"}), json!({"scope": null}), json!([])] {
        let real = app.post(REVOKE, Some(&owner.access), body.clone()).await;
        let preview =
            app.post(&format!("{REVOKE}?dry_run=true"), Some(&owner.access), body.clone()).await;
        assert_eq!(real.status, 422, "{body}");
        assert_eq!((preview.status, preview.body.clone()), (real.status, real.body), "{body}");
    }
    let eng = app.login(&t.engineer).await;
    let r = app.post(&format!("{REVOKE}?dry_run=true"), Some(&eng.access), json!({})).await;
    r.assert(403, "owner_required");
    assert!(app.access_ok(&owner.access).await);
}
