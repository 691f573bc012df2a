//! `sessiond serve` as a process: the listening line, signals, restarts on the same
//! file, CLI commands beside a running server, env and flag precedence.

use std::time::Duration;

use serde_json::{Value, json};

use crate::process::{Server, call, login, run, seed_owner, user_create};

const PASSWORD: &str = "a-long-password";

#[test]
fn serve_prints_exactly_one_line_and_exits_0_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(
            dir.path(),
            &["serve", "--database", ":memory:", "--listen", "127.0.0.1:0"],
            &[],
        );
        assert!(
            server.first_line.starts_with("listening on http://127.0.0.1:"),
            "{}",
            server.first_line
        );
        let port: u16 = server.first_line.rsplit(':').next().unwrap().parse().unwrap();
        assert_ne!(port, 0, "the real port is printed");
        let (status, body) = call("GET", &format!("{}/healthz", server.base), None, None);
        assert_eq!((status, body), (200, json!({"status": "ok"})));
        assert!(server.more_stdout().is_empty(), "logs go to stderr, not stdout");
        let status = server.stop_with(signal);
        assert_eq!(status.code(), Some(0), "SIG{signal}");
    }
}

/// A harness may signal the moment it has read the line: handlers are installed first.
#[test]
fn a_signal_right_after_the_listening_line_is_a_clean_exit() {
    let dir = tempfile::tempdir().unwrap();
    for signal in ["TERM", "INT"].repeat(5) {
        let server =
            Server::start(dir.path(), &["--database", ":memory:", "--listen", "127.0.0.1:0"], &[]);
        assert_eq!(server.stop_with(signal).code(), Some(0), "SIG{signal}");
    }
}

#[test]
fn no_subcommand_means_serve() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(dir.path(), &["--database", ":memory:", "--listen", "127.0.0.1:0"], &[]);
    let (status, _) = call("GET", &format!("{}/healthz", server.base), None, None);
    assert_eq!(status, 200);
}

#[test]
fn a_restart_on_the_same_file_keeps_policy_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    seed_owner(dir.path(), db, "owner@acme.test", PASSWORD);
    let args = ["serve", "--database", db, "--listen", "127.0.0.1:0"];

    let first = Server::start(dir.path(), &args, &[]);
    let (access, refresh) = login(&first.base, "owner@acme.test", PASSWORD);
    let (status, _) = call(
        "PATCH",
        &format!("{}/accounts/me/security", first.base),
        Some(&access),
        Some(json!({"idle_minutes": 30, "absolute_minutes": 600})),
    );
    assert_eq!(status, 200);
    assert_eq!(first.stop_with("TERM").code(), Some(0));

    let second = Server::start(dir.path(), &args, &[]);
    // The signing secret persisted, so the access token is still good...
    let (status, policy) =
        call("GET", &format!("{}/accounts/me/security", second.base), Some(&access), None);
    assert_eq!(status, 200, "{policy}");
    assert_eq!(
        (policy["idle_minutes"].clone(), policy["absolute_minutes"].clone()),
        (json!(30), json!(600))
    );
    // ...and so is the session.
    let (status, body) = call(
        "POST",
        &format!("{}/auth/refresh", second.base),
        None,
        Some(json!({"refresh_token": refresh})),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn cli_commands_work_while_a_server_runs_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let (account, _) = seed_owner(dir.path(), db, "owner@acme.test", PASSWORD);
    let server =
        Server::start(dir.path(), &["serve", "--database", db, "--listen", "127.0.0.1:0"], &[]);

    let created =
        user_create(dir.path(), db, &account, "eng@acme.test", "engineer", Some(PASSWORD));
    created.assert_ok();
    let (access, refresh) = login(&server.base, "eng@acme.test", PASSWORD);
    let (status, _) = call("GET", &format!("{}/auth/me", server.base), Some(&access), None);
    assert_eq!(status, 200);

    run(dir.path(), &["user", "disable", "--email", "eng@acme.test", "--database", db], &[], None)
        .assert_ok();
    let (status, body) = call("GET", &format!("{}/auth/me", server.base), Some(&access), None);
    assert_eq!((status, body), (401, json!({"detail": "not_authenticated"})), "refused at once");
    let (status, body) = call(
        "POST",
        &format!("{}/auth/refresh", server.base),
        None,
        Some(json!({"refresh_token": refresh})),
    );
    assert_eq!((status, body["detail"].clone()), (401, json!("invalid_refresh_token")));
    let (status, body) = call(
        "POST",
        &format!("{}/auth/login", server.base),
        None,
        Some(json!({"email": "eng@acme.test", "password": PASSWORD})),
    );
    assert_eq!((status, body), (401, json!({"detail": "invalid_credentials"})));
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file_db = dir.path().join("from-file.db");
    let env_db = dir.path().join("from-env.db");
    let flag_db = dir.path().join("from-flag.db");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!("[database]\npath = \"{}\"\n[session]\nidle_minutes_min = 20\n", file_db.display()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env_db_s = env_db.to_str().unwrap().to_owned();
    let env = [
        ("SESSIOND_DATABASE_PATH", env_db_s.as_str()),
        ("SESSIOND_SESSION_IDLE_MINUTES_MAX", "50000"),
    ];

    run(dir.path(), &["migrate", "--config", config], &env, None).assert_ok();
    assert!(env_db.exists() && !file_db.exists(), "env beats file");
    run(
        dir.path(),
        &["migrate", "--config", config, "--database", flag_db.to_str().unwrap()],
        &env,
        None,
    )
    .assert_ok();
    assert!(flag_db.exists(), "flag beats env");

    // The served policy shows the file's min and the environment's max.
    seed_owner(dir.path(), flag_db.to_str().unwrap(), "owner@acme.test", PASSWORD);
    let server = Server::start(
        dir.path(),
        &["serve", "--config", config, "--database", flag_db.to_str().unwrap()],
        &[("SESSIOND_SERVER_LISTEN", "127.0.0.1:0"), env[1]],
    );
    let (access, _) = login(&server.base, "owner@acme.test", PASSWORD);
    let (_, policy) =
        call("GET", &format!("{}/accounts/me/security", server.base), Some(&access), None);
    assert_eq!(policy["idle_minutes_min"], 20);
    assert_eq!(policy["idle_minutes_max"], 50000);
}

#[test]
fn clock_control_is_off_by_default_and_warned_about_when_on() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["serve", "--database", ":memory:", "--listen", "127.0.0.1:0"];
    let off = Server::start(dir.path(), &args, &[]);
    let (status, body) = call(
        "POST",
        &format!("{}/_test/clock", off.base),
        None,
        Some(json!({"advance_seconds": 5})),
    );
    assert_eq!((status, body), (404, json!({"detail": "not_found"})));
    drop(off);
    let on = Server::start(dir.path(), &args, &[("SESSIOND_TESTING_CLOCK_CONTROL", "true")]);
    let (status, _) = call(
        "POST",
        &format!("{}/_test/clock", on.base),
        None,
        Some(json!({"advance_seconds": 5})),
    );
    assert_eq!(status, 200);
    assert!(on.stderr().contains("clock_control"), "a warning at start: {}", on.stderr());
}

#[test]
fn json_logs_are_one_object_per_line_and_never_carry_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    seed_owner(dir.path(), db, "owner@acme.test", PASSWORD);
    let server = Server::start(
        dir.path(),
        &["serve", "--database", db, "--listen", "127.0.0.1:0"],
        &[("SESSIOND_SERVER_LOG_FORMAT", "json")],
    );
    let (access, refresh) = login(&server.base, "owner@acme.test", PASSWORD);
    call(
        "POST",
        &format!("{}/auth/refresh", server.base),
        None,
        Some(json!({"refresh_token": refresh})),
    );
    let logs = server.stderr();
    assert!(logs.lines().count() >= 3, "{logs}");
    for line in logs.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.is_object());
    }
    for secret in [PASSWORD, access.as_str(), refresh.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
}

/// SIGTERM the instant after logins were written on accepted connections (argon2: tens
/// of milliseconds each, two at a time): every one of them still gets its answer, also
/// those the server had not yet read when the signal landed.
#[test]
fn sigterm_drains_in_flight_requests() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    seed_owner(dir.path(), db, "owner@acme.test", PASSWORD);
    let server =
        Server::start(dir.path(), &["serve", "--database", db, "--listen", "127.0.0.1:0"], &[]);
    let addr = server.base.strip_prefix("http://").unwrap().to_owned();
    // Spawned ahead, so the signal follows the last write by microseconds, not by a
    // process start.
    let mut killer = Command::new("sh")
        .args(["-c", &format!("read _; kill -TERM {}", server.pid())])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();

    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // A first exchange proves the server has accepted this connection.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: sessiond\r\n\r\n").unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&seen).contains(r#"{"status":"ok"}"#) {
            let n = s.read(&mut buf).unwrap();
            assert_ne!(n, 0, "connection closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        streams.push(s);
    }
    let body = json!({"email": "owner@acme.test", "password": PASSWORD}).to_string();
    let request = format!(
        "POST /auth/login HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    for s in &mut streams {
        s.write_all(request.as_bytes()).unwrap();
    }
    killer.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(killer.wait().unwrap().success());
    assert_eq!(server.wait().code(), Some(0));
    for (i, mut s) in streams.into_iter().enumerate() {
        let mut answer = String::new();
        let read = s.read_to_string(&mut answer);
        assert!(
            read.is_ok() && answer.starts_with("HTTP/1.1 200 OK"),
            "request {i}: {read:?} {answer}"
        );
        assert!(answer.contains("access_token"), "{answer}");
    }
}

/// SIGTERM while clients hold requests open (bodies promised, not yet sent): the server
/// stops accepting; a request whose body comes within `server.shutdown_grace_seconds`
/// is answered, with `Connection: close`; one whose body never comes is given up on
/// when the grace ends, and the server exits 0 — long before the request timeout
/// (60 s here) would have ended it.
#[test]
fn sigterm_with_a_stalled_client_exits_0_within_the_grace() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["serve", "--database", ":memory:", "--listen", "127.0.0.1:0"],
        &[
            ("SESSIOND_SERVER_SHUTDOWN_GRACE_SECONDS", "2"),
            ("SESSIOND_SERVER_REQUEST_TIMEOUT_SECONDS", "60"),
        ],
    );
    let addr = server.base.strip_prefix("http://").unwrap().to_owned();
    // One idle keep-alive connection, and two in the middle of a request.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: sessiond\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    assert!(idle.read(&mut buf).unwrap() > 0);
    let body = br#"{"email": "nobody@acme.test", "password": "wrong password"}"#;
    let head = format!(
        "POST /auth/login HTTP/1.1\r\nHost: sessiond\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled.write_all(head.as_bytes()).unwrap();
    stalled.write_all(&body[..10]).unwrap();
    let mut late = TcpStream::connect(&addr).unwrap();
    late.write_all(head.as_bytes()).unwrap();
    // Let the server read the heads and enter the handlers, which now wait for bodies.
    std::thread::sleep(Duration::from_millis(200));
    let signalled = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(300));
    late.write_all(body).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = late.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(answer.ends_with(r#"{"detail":"invalid_credentials"}"#), "{answer}");
    let status = server.wait();
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0));
    // `wait` gives up after 10 s; the request timeout is 60 s: the grace ended it.
    eprintln!(
        "figures: SIGTERM with one request finished in the grace (answered, Connection: close) \
         and one stalled, grace 2 s: exited 0 after {took:?}"
    );
    stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}
