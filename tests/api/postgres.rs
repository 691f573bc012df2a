//! PostgreSQL only: several real `sessiond serve` processes on one database, a database
//! that goes away while serving, and a server that cannot reach its database at start.
//!
//! These need a PostgreSQL server (`SESSIOND_TEST_DATABASE_URL`, see the README); without
//! one they say so and pass vacuously, in the SQLite pass of the suite. `.ci/run` runs the
//! suite a second time with the variable set, where they all run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Store, assert_tokens_and_rotations_kept, fresh_pg_schema, pg_url, with_pg};
use crate::process::{Server, call, client, login, run, run_within, seed_owner, user_create};

const PASSWORD: &str = "correct horse battery";

/// The test server's URL, or `None` after saying why the test does not run.
fn pg() -> Option<String> {
    let url = pg_url();
    if url.is_none() {
        eprintln!("skipped: needs a PostgreSQL server (SESSIOND_TEST_DATABASE_URL)");
    }
    url
}

/// `n` servers on the database at `url`, started one after the other, each with its
/// own listener; the signing secret is the one generated and kept in the database.
fn servers(dir: &std::path::Path, url: &str, n: usize) -> Vec<Server> {
    (0..n)
        .map(|_| Server::start(dir, &["serve", "--database", url, "--listen", "127.0.0.1:0"], &[]))
        .collect()
}

/// An account with an owner and an engineer, made with the CLI; the engineer's email.
fn seed(dir: &std::path::Path, url: &str) -> (String, String) {
    let (account, _) = seed_owner(dir, url, "owner@acme.test", PASSWORD);
    user_create(dir, url, &account, "eng@acme.test", "engineer", Some(&format!("{PASSWORD}\n")))
        .assert_ok();
    ("owner@acme.test".into(), "eng@acme.test".into())
}

/// Three processes race for one refresh token, five rounds: exactly one exchange wins
/// each round, whichever process answers, and the others are told `rotated`.
#[test]
fn a_refresh_race_across_three_processes_has_exactly_one_winner() {
    let Some(base) = pg() else { return };
    let url = fresh_pg_schema(&base);
    let dir = tempfile::tempdir().unwrap();
    let (_, eng) = seed(dir.path(), &url);
    let procs = servers(dir.path(), &url, 3);
    for round in 0..5 {
        let (_, refresh) = login(&procs[round % 3].base, &eng, PASSWORD);
        let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..12)
                .map(|i| {
                    let (base, refresh) = (procs[i % 3].base.clone(), refresh.clone());
                    s.spawn(move || {
                        call(
                            "POST",
                            &format!("{base}/auth/refresh"),
                            None,
                            Some(json!({"refresh_token": refresh})),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
            assert_eq!(*status, 401, "round {round}: {body}");
            assert_eq!(body["detail"], "invalid_refresh_token", "{body}");
            assert_eq!(body["reason"], "rotated", "{body}");
        }
        // The winner's pair works on every process.
        let access = winners[0].1["access_token"].as_str().unwrap();
        for p in &procs {
            assert_eq!(call("GET", &format!("{}/auth/me", p.base), Some(access), None).0, 200);
        }
    }
}

/// A bulk revoke committed by one process is refused by the others at the very next
/// request: the access token at once, the refresh token with the revoke's reason.
#[test]
fn a_revoke_on_one_process_is_refused_by_the_others_at_the_next_request() {
    let Some(base) = pg() else { return };
    let url = fresh_pg_schema(&base);
    let dir = tempfile::tempdir().unwrap();
    let (owner, eng) = seed(dir.path(), &url);
    let procs = servers(dir.path(), &url, 3);
    let (eng_access, eng_refresh) = login(&procs[1].base, &eng, PASSWORD);
    for p in &procs {
        assert_eq!(call("GET", &format!("{}/auth/me", p.base), Some(&eng_access), None).0, 200);
    }
    let (owner_access, _) = login(&procs[0].base, &owner, PASSWORD);
    let (status, body) = call(
        "POST",
        &format!("{}/accounts/me/security/revoke-sessions", procs[0].base),
        Some(&owner_access),
        Some(json!({"scope": "others"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_count"], 1, "{body}");
    for p in &procs[1..] {
        let (status, body) = call("GET", &format!("{}/auth/me", p.base), Some(&eng_access), None);
        assert_eq!((status, &body["detail"]), (401, &json!("not_authenticated")), "{body}");
    }
    let (status, body) = call(
        "POST",
        &format!("{}/auth/refresh", procs[2].base),
        None,
        Some(json!({"refresh_token": eng_refresh})),
    );
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["reason"], "revoked_others", "{body}");
}

/// Three processes started at the same moment on an empty schema: one migrates, the
/// others wait for it and find nothing to do; all serve, with one shared secret.
#[test]
fn processes_starting_together_migrate_once_and_share_one_secret() {
    let Some(base) = pg() else { return };
    let url = fresh_pg_schema(&base);
    let dir = tempfile::tempdir().unwrap();
    let procs: Vec<Server> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (dir, url) = (dir.path(), url.as_str());
                s.spawn(move || {
                    Server::start(
                        dir,
                        &["serve", "--database", url, "--listen", "127.0.0.1:0"],
                        &[],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let history = with_pg(&url, |c| {
        c.query("SELECT version, name FROM refinery_schema_history ORDER BY version", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, i32>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
    });
    let versions: Vec<i32> = history.iter().map(|(v, _)| *v).collect();
    let mut unique = versions.clone();
    unique.dedup();
    assert_eq!(versions, unique, "each migration recorded once: {history:?}");
    assert!(versions.len() >= 3, "{history:?}");
    let secrets: i64 =
        with_pg(&url, |c| c.query_one("SELECT count(*) FROM server_secrets", &[]).unwrap().get(0));
    assert_eq!(secrets, 1);
    // A token signed by one process is good on the others.
    let (account, _) = seed_owner(dir.path(), &url, "owner@acme.test", PASSWORD);
    assert!(!account.is_empty());
    let (access, _) = login(&procs[0].base, "owner@acme.test", PASSWORD);
    for p in &procs {
        let (status, body) = call("GET", &format!("{}/healthz", p.base), None, None);
        assert_eq!((status, body), (200, json!({"status": "ok"})));
        assert_eq!(call("GET", &format!("{}/auth/me", p.base), Some(&access), None).0, 200);
    }
}

#[derive(Default)]
struct Record {
    /// Every refresh token handed out (login or refresh answered 200).
    issued: Vec<String>,
    /// Every acknowledged exchange: (presented, received).
    rotations: Vec<(String, String)>,
    /// Answers by status after the kill, from the surviving processes.
    survivors: HashMap<u16, usize>,
    /// Answers that are neither 200 nor a connection error to the killed process.
    unexpected: Vec<String>,
}

/// Three processes under refresh load; one is killed with SIGKILL halfway. Nothing any
/// process acknowledged is lost (every token handed out is stored, every acknowledged
/// exchange recorded as such), and the other two keep serving without an error.
#[test]
fn kill_9_of_one_process_under_load_loses_nothing_acknowledged() {
    let Some(base) = pg() else { return };
    let url = fresh_pg_schema(&base);
    let dir = tempfile::tempdir().unwrap();
    let (account, _) = seed_owner(dir.path(), &url, "owner@acme.test", PASSWORD);
    let users: Vec<String> = (0..6)
        .map(|i| {
            let email = format!("eng{i}@acme.test");
            let pw = format!("{PASSWORD}\n");
            user_create(dir.path(), &url, &account, &email, "engineer", Some(&pw)).assert_ok();
            email
        })
        .collect();
    let mut procs = servers(dir.path(), &url, 3);
    let bases: Vec<String> = procs.iter().map(|p| p.base.clone()).collect();
    let victim = bases[0].clone();
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rec = Arc::new(Mutex::new(Record::default()));
    let until = Instant::now() + Duration::from_secs(3);
    std::thread::scope(|s| {
        for (i, email) in users.iter().enumerate() {
            let (bases, rec, killed, victim) =
                (bases.clone(), rec.clone(), killed.clone(), victim.clone());
            s.spawn(move || {
                let c = client();
                let (_, mut refresh) = login(&bases[(i + 1) % 3], email, PASSWORD);
                rec.lock().unwrap().issued.push(refresh.clone());
                let mut n = i;
                while Instant::now() < until {
                    n += 1;
                    let target = &bases[n % 3];
                    let sent = c
                        .post(format!("{target}/auth/refresh"))
                        .json(&json!({"refresh_token": refresh}))
                        .send();
                    let after_kill = killed.load(std::sync::atomic::Ordering::SeqCst);
                    let resp = match sent {
                        Ok(r) => r,
                        // The killed process: the exchange was never acknowledged. The
                        // token may or may not have been exchanged; try it elsewhere.
                        Err(_) if *target == victim => continue,
                        Err(e) => {
                            rec.lock().unwrap().unexpected.push(format!("{target}: {e}"));
                            continue;
                        }
                    };
                    let status = resp.status().as_u16();
                    let body: Value = resp.json().unwrap_or(Value::Null);
                    let mut r = rec.lock().unwrap();
                    if after_kill && *target != victim {
                        *r.survivors.entry(status).or_default() += 1;
                    }
                    if status == 200 {
                        let new = body["refresh_token"].as_str().unwrap().to_owned();
                        r.issued.push(new.clone());
                        r.rotations.push((refresh.clone(), new.clone()));
                        refresh = new;
                    } else if status == 401 && *target != victim && after_kill {
                        // The victim may have exchanged it and died before answering:
                        // the chain ends here for this client (reason `rotated`).
                        if body["reason"] != "rotated" {
                            r.unexpected.push(format!("{status} {body}"));
                        }
                        break;
                    } else {
                        r.unexpected.push(format!("{target}: {status} {body}"));
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1200));
        let victim_proc = procs.remove(0);
        let pid = victim_proc.pid().to_string();
        assert!(
            std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success()
        );
        killed.store(true, std::sync::atomic::Ordering::SeqCst);
        victim_proc.wait();
    });
    let rec = Arc::try_unwrap(rec).ok().unwrap().into_inner().unwrap();
    assert!(rec.unexpected.is_empty(), "{:#?}", rec.unexpected);
    assert!(rec.survivors.get(&200).copied().unwrap_or(0) > 0, "{:?}", rec.survivors);
    assert!(rec.survivors.keys().all(|s| *s < 500), "{:?}", rec.survivors);
    let store = Store::open(&url);
    assert_tokens_and_rotations_kept(&store, &rec.issued, &rec.rotations);
    // No session has two live tokens (no exchange happened twice).
    let forks: i64 = with_pg(&url, |c| {
        c.query_one(
            "SELECT count(*) FROM (SELECT session_id FROM refresh_tokens WHERE revoked_at IS NULL
             GROUP BY session_id HAVING count(*) > 1) AS s",
            &[],
        )
        .unwrap()
        .get(0)
    });
    assert_eq!(forks, 0);
    eprintln!(
        "figures: kill -9 under load: {} exchanges acknowledged, survivors answered {:?}",
        rec.rotations.len(),
        rec.survivors
    );
}

/// A database the server loses while serving: 503 `database_unavailable` (also from
/// /healthz) while it is away, and by itself back to normal when it returns.
#[test]
fn a_database_that_goes_away_gives_503_and_the_server_recovers() {
    let Some(base) = pg() else { return };
    // A database of its own: connections to it are refused by the server while the test
    // says so, without touching any other test's.
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    with_pg(&base, |c| c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap());
    let url = with_dbname(&base, &name);
    let dir = tempfile::tempdir().unwrap();
    let (_, eng) = seed(dir.path(), &url);
    let server =
        Server::start(dir.path(), &["serve", "--database", &url, "--listen", "127.0.0.1:0"], &[]);
    let (access, refresh) = login(&server.base, &eng, PASSWORD);

    with_pg(&base, |c| {
        c.batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .unwrap()
    });
    let started = Instant::now();
    let (status, body) = call("GET", &format!("{}/healthz", server.base), None, None);
    assert_eq!((status, body), (503, json!({"detail": "database_unavailable"})));
    let (status, body) = call("GET", &format!("{}/auth/me", server.base), Some(&access), None);
    assert_eq!((status, body), (503, json!({"detail": "database_unavailable"})));
    eprintln!("figures: 503 while the database is away, answered within {:?}", started.elapsed());

    with_pg(&base, |c| {
        c.batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).unwrap()
    });
    let back = Instant::now();
    loop {
        let (status, _) = call("GET", &format!("{}/healthz", server.base), None, None);
        if status == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(20), "never recovered: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(call("GET", &format!("{}/auth/me", server.base), Some(&access), None).0, 200);
    let (status, body) = call(
        "POST",
        &format!("{}/auth/refresh", server.base),
        None,
        Some(json!({"refresh_token": refresh})),
    );
    assert_eq!(status, 200, "{body}");
    drop(server);
    with_pg(&base, |c| {
        let _ = c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"));
    });
}

/// `url` naming database `name` instead.
fn with_dbname(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let host_end = head[scheme_end..].find('/').map_or(head.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &head[..host_end])
}

/// An unreachable server at start: exit 1 within 10 s, one line naming the host and the
/// reason, and never the password. Needs no PostgreSQL server: nothing listens there.
#[test]
fn an_unreachable_database_at_start_exits_1_naming_the_host_not_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://sessiond:hunter2secret@127.0.0.1:{port}/sessiond");
    let started = Instant::now();
    let out = run_within(
        dir.path(),
        &["serve", "--database", &url, "--listen", "127.0.0.1:0"],
        &[],
        None,
        Duration::from_secs(10),
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    out.assert_fails(1, &format!("127.0.0.1:{port}"));
    assert!(out.stderr.contains("refused"), "the reason: {out:?}");
    assert!(!out.stderr.contains("hunter2secret"), "the password leaked: {out:?}");
    // And `migrate` the same way.
    let out = run(dir.path(), &["migrate", "--database", &url], &[], None);
    out.assert_fails(1, &format!("127.0.0.1:{port}"));
    assert!(!out.stderr.contains("hunter2secret"), "{out:?}");
}

/// The start-up checks of a SQLite file, where they apply on PostgreSQL: a schema that
/// holds another application's tables, or one migrated by a newer sessiond, is refused
/// with exit 1 and one line, and left as it was.
#[test]
fn a_foreign_or_newer_schema_is_refused_and_left_as_it_was() {
    let Some(base) = pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let foreign = fresh_pg_schema(&base);
    with_pg(&foreign, |c| c.batch_execute("CREATE TABLE orders (id BIGINT)").unwrap());
    let out = run(dir.path(), &["migrate", "--database", &foreign], &[], None);
    out.assert_fails(1, "another application");
    let tables: i64 = with_pg(&foreign, |c| {
        c.query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        )
        .unwrap()
        .get(0)
    });
    assert_eq!(tables, 1, "nothing added");

    let newer = fresh_pg_schema(&base);
    run(dir.path(), &["migrate", "--database", &newer], &[], None).assert_ok();
    with_pg(&newer, |c| {
        c.batch_execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (999, 'future', '2030-01-01T00:00:00Z', '1')",
        )
        .unwrap()
    });
    let out = run_within(
        dir.path(),
        &["serve", "--database", &newer, "--listen", "127.0.0.1:0"],
        &[],
        None,
        Duration::from_secs(20),
    );
    out.assert_fails(1, "newer");
}
