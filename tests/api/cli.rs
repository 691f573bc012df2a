//! The real binary's CLI: commands, output, exit statuses, configuration errors.

use std::os::unix::fs::PermissionsExt;

use crate::process::{run, seed_owner, user_create};

#[test]
fn account_and_user_create_print_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let acc =
        run(dir.path(), &["account", "create", "--name", "Acme", "--database", db], &[], None);
    assert_eq!(acc.code, 0, "{acc:?}");
    let account = acc.json()["account_id"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&account).unwrap();
    assert_eq!(acc.json().as_object().unwrap().len(), 1);

    let with_stdin =
        user_create(dir.path(), db, &account, "o@acme.test", "owner", Some("a-long-password\n"));
    assert_eq!(with_stdin.code, 0, "{with_stdin:?}");
    let v = with_stdin.json();
    assert_eq!(v.as_object().unwrap().len(), 1, "no password printed when it came from stdin: {v}");
    let user = uuid::Uuid::parse_str(v["user_id"].as_str().unwrap()).unwrap();
    // A user's id starts with its account's (the token table keeps an account together).
    assert_eq!(user.to_string()[..13], account[..13], "{user} of {account}");

    let generated = user_create(dir.path(), db, &account, "e@acme.test", "engineer", None);
    assert_eq!(generated.code, 0, "{generated:?}");
    let password = generated.json()["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 16, "a generated password is long: {password}");
}

#[test]
fn usage_errors_exit_2_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let (account, _) = seed_owner(dir.path(), db, "o@acme.test", "a-long-password");
    let user = |extra: &[&str]| {
        let mut args = vec!["user", "create", "--database", db];
        args.extend_from_slice(extra);
        run(dir.path(), &args, &[], Some("a-long-password\n"))
    };
    user(&["--account", &account, "--email", "x@acme.test", "--role", "boss"])
        .assert_fails(2, "--role");
    user(&["--account", "not-a-uuid", "--email", "x@acme.test", "--role", "owner"])
        .assert_fails(2, "--account");
    user(&["--account", &account, "--role", "owner"]).assert_fails(2, "--email");
    user(&["--account", &account, "--email", "no-at-sign", "--role", "owner"])
        .assert_fails(2, "--email");
    user(&["--account", &account, "--email", "s@acme.test", "--role", "owner", "--password-stdin"])
        .assert_ok();
    run(
        dir.path(),
        &[
            "user",
            "create",
            "--database",
            db,
            "--account",
            &account,
            "--email",
            "short@acme.test",
            "--role",
            "owner",
            "--password-stdin",
        ],
        &[],
        Some("short\n"),
    )
    .assert_fails(2, "--password-stdin");
    run(dir.path(), &["account", "create", "--database", db], &[], None).assert_fails(2, "--name");
    run(dir.path(), &["frobnicate"], &[], None).assert_fails(2, "frobnicate");
    run(dir.path(), &["serve", "--bogus"], &[], None).assert_fails(2, "--bogus");
}

#[test]
fn other_failures_exit_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let (account, _) = seed_owner(dir.path(), db, "o@acme.test", "a-long-password");
    let dup = user_create(dir.path(), db, &account, "O@ACME.test", "admin", None);
    dup.assert_fails(1, "o@acme.test");
    let unknown_account = user_create(
        dir.path(),
        db,
        &uuid::Uuid::new_v4().to_string(),
        "n@acme.test",
        "admin",
        None,
    );
    unknown_account.assert_fails(1, "account");
    run(
        dir.path(),
        &["user", "disable", "--email", "ghost@acme.test", "--database", db],
        &[],
        None,
    )
    .assert_fails(1, "ghost@acme.test");
}

#[test]
fn configuration_errors_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let cases = [
        ("[session]\nidle_minutes_mx = 5\n", "idle_minutes_mx"),
        ("[sesion]\nidle_minutes_max = 5\n", "sesion"),
        (
            "[session]\nidle_minutes_min = 500\nidle_minutes_max = 100\nidle_minutes_default = 200\n",
            "idle_minutes_min",
        ),
        ("[session]\nabsolute_minutes_default = 30\n", "absolute_minutes_default"),
        ("[session]\nidle_minutes_default = 20000\n", "idle_minutes_default"),
        ("[session]\nidle_minutes_max = \"lots\"\n", "idle_minutes_max"),
        ("[auth]\njwt_secret = \"too-short\"\n", "jwt_secret"),
        ("[auth]\njwt_secret = 987654321987654321987654321\n", "jwt_secret"),
        ("[auth]\njwt_secret = 98765\n", "jwt_secret"),
        ("[auth]\njwt_secret = \"unterminated-98765-secret\n", "jwt_secret"),
        ("[database]\npool_size = 0\n", "pool_size"),
        ("[server]\nlisten = \"not an address\"\n", "listen"),
        ("[server]\nlog_format = \"xml\"\n", "log_format"),
        ("this is not toml", "c.toml"),
        ("[auth]\naccess_token_minutes = 999999999999999\n", "access_token_minutes"),
        ("[session]\nabsolute_minutes_max = 9223372036854775807\n", "absolute_minutes_max"),
        ("[session]\nretention_days = 0\n", "retention_days"),
        ("[server]\nrequest_timeout_seconds = 0\n", "server.request_timeout_seconds"),
        ("[server]\nshutdown_grace_seconds = 7200\n", "server.shutdown_grace_seconds"),
        ("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy\"]\n", "server.trusted_proxies"),
        ("[server]\ntrusted_proxies = \"10.0.0.1\"\n", "trusted_proxies"),
    ];
    for (text, key) in cases {
        let path = write("c.toml", text);
        let out =
            run(dir.path(), &["migrate", "--config", &path, "--database", ":memory:"], &[], None);
        out.assert_fails(2, key);
        for secret in ["too-short", "98765"] {
            assert!(!out.stderr.contains(secret), "the secret is never printed: {out:?}");
        }
    }
    run(dir.path(), &["migrate", "--config", "/nonexistent/c.toml"], &[], None)
        .assert_fails(2, "--config");
    run(
        dir.path(),
        &["migrate", "--database", ":memory:"],
        &[("SESSIOND_SESSION_IDLE_MINUTES_MAX", "lots")],
        None,
    )
    .assert_fails(2, "SESSIOND_SESSION_IDLE_MINUTES_MAX");
    run(
        dir.path(),
        &["migrate", "--database", ":memory:"],
        &[("SESSIOND_SESSION_IDLE_MINUTES_MIN", "99999")],
        None,
    )
    .assert_fails(2, "idle_minutes_min");
    run(
        dir.path(),
        &["migrate", "--database", ":memory:"],
        &[("SESSIOND_SERVER_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/33")],
        None,
    )
    .assert_fails(2, "server.trusted_proxies");
}

#[test]
fn huge_durations_from_the_environment_are_refused_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    for (var, key) in [
        ("SESSIOND_SESSION_REUSE_GRACE_SECONDS", "reuse_grace_seconds"),
        ("SESSIOND_AUTH_ACCESS_TOKEN_MINUTES", "access_token_minutes"),
    ] {
        let out = run(
            dir.path(),
            &["serve", "--database", ":memory:"],
            &[(var, "100000000000000000")],
            None,
        );
        out.assert_fails(2, key);
    }
}

#[test]
fn a_database_that_cannot_be_opened_fails_at_once_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a_u8; 8192]).unwrap();
    for db in [dir.path().to_str().unwrap(), garbage.to_str().unwrap()] {
        let started = std::time::Instant::now();
        let out = run(dir.path(), &["migrate", "--database", db], &[], None);
        out.assert_fails(1, db);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "no pool wait: {out:?}");
    }
}

#[test]
fn a_group_command_without_its_subcommand_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for group in ["account", "user"] {
        run(dir.path(), &[group], &[], None).assert_fails(2, "subcommand");
    }
}

#[test]
fn a_config_toml_in_the_working_directory_is_read_by_default() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[session]\nidle_minutes_mx = 5\n").unwrap();
    run(dir.path(), &["migrate", "--database", ":memory:"], &[], None)
        .assert_fails(2, "idle_minutes_mx");
}

#[test]
fn migrate_creates_the_database_directory_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/s.db");
    let db = db.to_str().unwrap();
    for _ in 0..2 {
        let out = run(dir.path(), &["migrate", "--database", db], &[], None);
        assert_eq!(out.code, 0, "{out:?}");
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('accounts', 'users', 'refresh_tokens', 'audit_events')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 4);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn the_default_database_lives_under_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["account", "create", "--name", "Acme"], &[], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(dir.path().join("data/sessiond.db").exists());
}

#[test]
fn user_disable_revokes_in_one_go_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    seed_owner(dir.path(), db, "o@acme.test", "a-long-password");
    let out = run(
        dir.path(),
        &["user", "disable", "--email", "O@acme.test", "--database", db],
        &[],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["revoked_count"], 0);
    let conn = rusqlite::Connection::open(db).unwrap();
    let active: i64 = conn
        .query_row("SELECT is_active FROM users WHERE email = 'o@acme.test'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(active, 0);
}

#[test]
fn the_generated_secret_file_is_private_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let server = crate::process::Server::start(
        dir.path(),
        &["serve", "--database", db.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &[],
    );
    let secret_path = dir.path().join("s.db.jwt-secret");
    let meta = std::fs::metadata(&secret_path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let secret = std::fs::read_to_string(&secret_path).unwrap();
    assert!(secret.trim().len() >= 32);
    assert!(!server.stderr().contains(secret.trim()), "the secret is never logged");
    drop(server);
}

/// Warnings wait until the server is listening: a failed start says one thing, even with
/// the test clock on and a harness's own SESSIOND_* variable in the environment.
#[test]
fn a_failed_start_prints_one_line_whatever_else_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let env = [("SESSIOND_TESTING_CLOCK_CONTROL", "true"), ("SESSIOND_HARNESS_URL", "http://x")];
    let out = run(dir.path(), &["serve", "--database", ":memory:", "--listen", &addr], &env, None);
    out.assert_fails(1, &addr);
}
