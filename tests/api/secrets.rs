//! Secrets hygiene, on the real binary: no password, refresh token, access token, JWT
//! secret or password hash reaches the logs — in text or JSON format, at the most verbose
//! level (`RUST_LOG=trace`), with a generated or a configured secret — or is stored in
//! plain text in the database file, its WAL or its shared-memory file. The database, its
//! side files and the generated secret are private (0600), whatever the umask.
//!
//! Also covered elsewhere: `Cache-Control: no-store` on every answer of the token
//! endpoints (hostile.rs checks it on each of its login and refresh cases, throttle.rs on
//! the 429s, auth.rs and refresh.rs on the 200s); a configured secret never printed in a
//! configuration error (cli.rs).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::process::{Server, bin, run, seed_owner};

const PASSWORD: &str = "Pa55-for-the-secrets-test";
const WRONG_PASSWORD: &str = "Wr0ng-guess-for-the-secrets-test";
const STRANGER_PASSWORD: &str = "Str4nger-password-for-the-secrets-test";
const CONFIGURED_SECRET: &str = "configured-jwt-secret-for-the-secrets-test-0123456789";
const EMAIL: &str = "owner@secrets.test";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

fn post(base: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().unwrap()).unwrap_or(Value::Null))
}

/// Logins (good, wrong password, unknown email, bodies holding the password that are
/// refused), refreshes (good, replayed, an access token in its place), bearer requests
/// (good, a refresh token in its place), a logout. Returns every token handed out.
fn exercise(base: &str) -> Vec<String> {
    let login = json!({"email": EMAIL, "password": PASSWORD}).to_string();
    let (status, first) = post(base, "/auth/login", None, &login);
    assert_eq!(status, 200, "{first}");
    let (a1, r1) =
        (first["access_token"].as_str().unwrap(), first["refresh_token"].as_str().unwrap());
    let (status, second) =
        post(base, "/auth/refresh", None, &json!({"refresh_token": r1}).to_string());
    assert_eq!(status, 200, "{second}");
    let (a2, r2) =
        (second["access_token"].as_str().unwrap(), second["refresh_token"].as_str().unwrap());
    let refused = [
        ("/auth/refresh", None, json!({"refresh_token": r1}).to_string(), 401),
        ("/auth/refresh", None, json!({"refresh_token": a2}).to_string(), 401),
        ("/auth/login", None, json!({"email": EMAIL, "password": WRONG_PASSWORD}).to_string(), 401),
        (
            "/auth/login",
            None,
            json!({"email": "stranger@secrets.test", "password": STRANGER_PASSWORD}).to_string(),
            401,
        ),
        ("/auth/login", None, format!(r#"{{"email": "{EMAIL}", "password": "{PASSWORD}""#), 400),
        (
            "/auth/login",
            None,
            format!(r#"{{"email": "{EMAIL}", "password": "{PASSWORD}", "x": 1}}"#),
            422,
        ),
        ("/auth/login", None, format!(r#"{{"email": 5, "password": "{PASSWORD}"}}"#), 422),
        ("/auth/logout", None, format!(r#"{{"refresh_token": "{r2}", "x": 1}}"#), 422),
        ("/accounts/me/security/revoke-sessions", Some(r2), "{}".to_owned(), 401),
    ];
    for (path, token, body, expected) in refused {
        let (status, answer) = post(base, path, token, &body);
        assert_eq!(status, expected, "{path}: {answer}");
    }
    let me = client().get(format!("{base}/auth/me")).bearer_auth(a2).send().unwrap();
    assert_eq!(me.status(), 200);
    let (status, _) = post(base, "/auth/logout", None, &json!({"refresh_token": r2}).to_string());
    assert_eq!(status, 204);
    vec![a1.to_owned(), r1.to_owned(), a2.to_owned(), r2.to_owned()]
}

/// Everything that must stay out of logs and storage, with a name for the message.
fn secrets(dir: &Path, db: &str, tokens: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("the password".into(), PASSWORD.into()),
        ("a wrong password".into(), WRONG_PASSWORD.into()),
        ("an unknown email's password".into(), STRANGER_PASSWORD.into()),
        ("the configured JWT secret".into(), CONFIGURED_SECRET.into()),
    ];
    let generated = std::fs::read_to_string(format!("{db}.jwt-secret")).unwrap();
    out.push(("the generated JWT secret".into(), generated.trim().into()));
    for (i, t) in tokens.iter().enumerate() {
        out.push((format!("token {i}"), t.clone().into_bytes()));
        if t.contains('.') {
            // A JWT's signature alone would let no one in, but logging it means the token
            // was logged in pieces.
            out.push((format!("token {i}'s signature"), t.rsplit('.').next().unwrap().into()));
        } else {
            out.push((
                format!("refresh token {i}'s raw bytes"),
                URL_SAFE_NO_PAD.decode(t).unwrap(),
            ));
        }
    }
    let conn = rusqlite::Connection::open(dir.join(db)).unwrap();
    let hash: String = conn
        .query_row("SELECT password_hash FROM users WHERE email = ?1", [EMAIL], |r| r.get(0))
        .unwrap();
    out.push(("the password hash".into(), hash.into()));
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_secret_reaches_the_logs_or_the_database_file() {
    if crate::helpers::sqlite_only("secrets in the SQLite file, its WAL and side files; file modes")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap().to_owned();
    seed_owner(dir.path(), &db, EMAIL, PASSWORD);

    let mut tokens = Vec::new();
    let mut logs = Vec::new();
    let runs = [("text", false), ("json", true), ("json", false), ("text", true)];
    for (format, configured) in runs {
        let mut env = vec![("SESSIOND_SERVER_LOG_FORMAT", format), ("RUST_LOG", "trace")];
        if configured {
            env.push(("SESSIOND_AUTH_JWT_SECRET", CONFIGURED_SECRET));
        }
        let server = Server::start(
            dir.path(),
            &["serve", "--database", &db, "--listen", "127.0.0.1:0"],
            &env,
        );
        tokens.extend(exercise(&server.base));
        let stdout = server.more_stdout();
        assert_eq!(server.stop_with("TERM").code(), Some(0));
        let stderr = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("stderr-"))
            .map(|p| std::fs::read(p).unwrap())
            .collect::<Vec<_>>()
            .concat();
        assert!(stdout.is_empty(), "stdout holds only the listening line: {stdout:?}");
        let text = String::from_utf8_lossy(&stderr).into_owned();
        assert!(text.lines().count() >= 20, "the logs were captured ({format}): {text}");
        if format == "json" {
            let last = text.lines().last().unwrap();
            assert!(serde_json::from_str::<Value>(last).is_ok(), "JSON lines: {last}");
        }
        logs.push((
            format!(
                "{format} logs, {} secret",
                if configured { "configured" } else { "generated" }
            ),
            text,
        ));
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let p = f.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with("stderr-") {
                std::fs::remove_file(p).unwrap();
            }
        }
    }

    // A last run killed hard, so the WAL keeps what it holds.
    let server =
        Server::start(dir.path(), &["serve", "--database", &db, "--listen", "127.0.0.1:0"], &[]);
    tokens.extend(exercise(&server.base));
    let mut stored = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let bytes = std::fs::read(format!("{db}{suffix}")).unwrap_or_default();
        stored.push((format!("database file{suffix} (server running)"), bytes));
    }
    Command::new("kill").args(["-KILL", &server.pid().to_string()]).status().unwrap();
    server.wait();
    let wal = std::fs::read(format!("{db}-wal")).unwrap();
    assert!(!wal.is_empty(), "the killed server left its WAL");
    for suffix in ["", "-wal", "-shm"] {
        stored.push((
            format!("database file{suffix} (after kill -9)"),
            std::fs::read(format!("{db}{suffix}")).unwrap(),
        ));
    }

    let secrets = secrets(dir.path(), &db, &tokens);
    let mut looked = 0;
    for (what, bytes) in &secrets {
        for (name, text) in &logs {
            assert!(!find(text.as_bytes(), bytes), "{what} is in the {name}");
            looked += 1;
        }
        if what == "the password hash" {
            continue; // stored, of course
        }
        for (name, bytes_stored) in &stored {
            assert!(!find(bytes_stored, bytes), "{what} is in the {name}");
            looked += 1;
        }
    }
    // The scan works: what is stored in plain text is found.
    assert!(stored.iter().any(|(_, b)| find(b, EMAIL.as_bytes())), "the scan finds stored text");
    assert!(logs.iter().all(|(_, t)| t.contains("/auth/login")), "the scan reads request logs");
    eprintln!(
        "figures: secrets: {} secrets ({} tokens) searched for in {} captured logs ({} lines) and \
         {} database snapshots ({} bytes): {looked} searches, 0 found",
        secrets.len(),
        tokens.len(),
        logs.len(),
        logs.iter().map(|(_, t)| t.lines().count()).sum::<usize>(),
        stored.len(),
        stored.iter().map(|(_, b)| b.len()).sum::<usize>(),
    );
}

/// The database, its WAL and shared-memory files, and the generated secret are created
/// 0600 even under `umask 000`.
#[test]
fn the_database_and_the_secret_are_private_whatever_the_umask() {
    if crate::helpers::sqlite_only("secrets in the SQLite file, its WAL and side files; file modes")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/s.db");
    let db = db.to_str().unwrap().to_owned();
    let mut child = Command::new("sh")
        .args([
            "-c",
            "umask 000; exec \"$0\" \"$@\"",
            bin(),
            "serve",
            "--database",
            &db,
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base =
        line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line}")).to_owned();
    let health = client().get(format!("{base}/healthz")).send().unwrap();
    assert_eq!(health.status(), 200);
    let mode = |p: String| std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o777).ok();
    let modes: Vec<(String, Option<u32>)> = ["", "-wal", "-shm", ".jwt-secret"]
        .iter()
        .map(|s| (format!("s.db{s}"), mode(format!("{db}{s}"))))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    for (file, m) in &modes {
        assert_eq!(*m, Some(0o600), "{file}: {modes:?}");
    }
    // A file that already exists keeps the mode its owner gave it.
    let shared = dir.path().join("shared.db");
    std::fs::write(&shared, b"").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    run(dir.path(), &["migrate", "--database", shared.to_str().unwrap()], &[], None).assert_ok();
    assert_eq!(mode(shared.to_str().unwrap().to_owned()), Some(0o640));
}

/// A secret file others can read is warned about once the server is listening (not
/// before: a start that fails must print one line).
#[test]
fn a_readable_secret_file_is_warned_about_once_serving() {
    if crate::helpers::sqlite_only("secrets in the SQLite file, its WAL and side files; file modes")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap().to_owned();
    let secret = "a-world-readable-secret-of-more-than-32-bytes-0123456789";
    let secret_file = format!("{db}.jwt-secret");
    std::fs::write(&secret_file, secret).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let server =
        Server::start(dir.path(), &["serve", "--database", &db, "--listen", "127.0.0.1:0"], &[]);
    let health = client().get(format!("{}/healthz", server.base)).send().unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(server.stop_with("TERM").code(), Some(0));
    let logs: String = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("stderr-"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(logs.contains("is readable by others"), "{logs}");
    assert!(logs.contains(&secret_file), "names the file: {logs}");
    assert!(!logs.contains(secret), "not the secret itself");

    // The port is taken: the start fails with one line, the warning not among them.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(dir.path(), &["serve", "--database", &db, "--listen", &addr], &[], None);
    out.assert_fails(1, &addr);
}
