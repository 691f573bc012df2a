//! `database.url` on the command line (contract §7): the URL's password never printed,
//! wrong URLs refused with exit 2 naming the key, and `backup` refused on PostgreSQL
//! before any connection is tried. None of these needs a PostgreSQL server.

use std::time::Duration;

use crate::process::{run, run_within};

const PASSWORD: &str = "hunter2-db-password";

/// A URL whose host is unroutable (TEST-NET-1): a command that tried to connect would
/// hang far longer than the limit these tests allow.
fn unroutable() -> String {
    format!("postgres://sessiond:{PASSWORD}@192.0.2.1:5432/sessiond")
}

#[test]
fn backup_is_refused_on_postgres_naming_pg_dump_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("copy.db");
    let to = to.to_str().unwrap();
    let url = unroutable();
    let limit = Duration::from_secs(10);
    let by_flag =
        run_within(dir.path(), &["backup", "--database", &url, "--to", to], &[], None, limit);
    let by_env = run_within(
        dir.path(),
        &["backup", "--to", to],
        &[("SESSIOND_DATABASE_URL", url.as_str())],
        None,
        limit,
    );
    for out in [by_flag, by_env] {
        out.assert_fails(2, "pg_dump");
        assert!(!out.stderr.contains(PASSWORD), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    assert!(!std::path::Path::new(to).exists(), "nothing written");
}

#[test]
fn wrong_database_urls_exit_2_naming_the_key_and_never_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let cases = [
        (format!("mysql://root:{PASSWORD}@127.0.0.1/db"), "postgres://"),
        (format!("postgres://root:{PASSWORD}@127.0.0.1:99999/db"), "not a valid URL"),
        (format!("postgres://root:{PASSWORD}@[::1/db"), "not a valid URL"),
    ];
    for (url, needle) in &cases {
        let by_flag = run(dir.path(), &["migrate", "--database", url], &[], None);
        let by_env =
            run(dir.path(), &["migrate"], &[("SESSIOND_DATABASE_URL", url.as_str())], None);
        std::fs::write(&config, format!("[database]\nurl = \"{url}\"\n")).unwrap();
        let by_file =
            run(dir.path(), &["migrate", "--config", config.to_str().unwrap()], &[], None);
        for out in [by_flag, by_env, by_file] {
            out.assert_fails(2, "database.url");
            assert!(out.stderr.contains(needle), "{url}: {out:?}");
            assert!(!out.stderr.contains(PASSWORD), "{out:?}");
        }
    }
    // `:memory:` means nothing on PostgreSQL.
    let out = run(
        dir.path(),
        &["migrate"],
        &[("SESSIOND_DATABASE_URL", &unroutable()), ("SESSIOND_DATABASE_PATH", ":memory:")],
        None,
    );
    out.assert_fails(2, ":memory:");
    assert!(!out.stderr.contains(PASSWORD), "{out:?}");
    // Nothing was created for a URL mistaken for a file name.
    let entries: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("c.toml")]);
}

#[test]
fn help_never_shows_the_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = unroutable();
    for args in [&["--help"][..], &["backup", "--help"], &["user", "unlock", "--help"]] {
        let out = run(dir.path(), args, &[("SESSIOND_DATABASE_URL", url.as_str())], None);
        out.assert_ok();
        assert!(out.stdout.contains("--database"), "{out:?}");
        assert!(!out.stdout.contains(PASSWORD) && !out.stdout.contains("192.0.2.1"), "{out:?}");
    }
}

/// A database that refuses connections: `serve` and the other commands exit 1 with one
/// line naming the host, and never print the password, at the most verbose log level
/// in either log format.
#[test]
fn an_unreachable_database_fails_in_one_line_naming_the_host_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let url = format!("postgres://sessiond:{PASSWORD}@127.0.0.1:1/sessiond");
    for format in ["text", "json"] {
        let env = [
            ("SESSIOND_DATABASE_URL", url.as_str()),
            ("SESSIOND_SERVER_LOG_FORMAT", format),
            ("RUST_LOG", "trace"),
        ];
        for args in [&["serve", "--listen", "127.0.0.1:0"][..], &["migrate"], &["prune"]] {
            let out = run_within(dir.path(), args, &env, None, Duration::from_secs(15));
            out.assert_fails(1, "127.0.0.1");
            assert!(!out.stderr.contains(PASSWORD), "{out:?}");
            assert!(out.stdout.is_empty(), "{out:?}");
        }
    }
}
