//! `sessiond backup --to PATH`: a consistent copy of a database a server is writing to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, params};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::process::{Server, run, seed_owner};

const PASSWORD: &str = "a-long-password";

/// History to make the file worth copying: `n` revoked tokens of finished sessions.
fn add_history(db: &str, user: &str, n: usize) {
    let mut c = Connection::open(db).unwrap();
    let tx = c.transaction().unwrap();
    for _ in 0..n {
        tx.execute(
            "INSERT INTO refresh_tokens
               (id, session_id, user_id, token_hash, session_started_at, issued_at, revoked_at,
                user_agent, ip)
             VALUES (?1, ?2, ?3, ?4, 0, 0, 1, 'Mozilla/5.0 (X11; Linux x86_64)', '127.0.0.1')",
            params![
                // The token's and session's ids: 16 bytes (schema version 7).
                Uuid::new_v4().as_bytes().to_vec(),
                Uuid::new_v4().as_bytes().to_vec(),
                user,
                Uuid::new_v4().as_bytes().to_vec()
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

fn login(base: &str) -> String {
    let r = client()
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": "owner@acme.test", "password": PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().unwrap()["refresh_token"].as_str().unwrap().to_owned()
}

/// Four clients refresh as fast as they can; every token the server acknowledged (200)
/// before the backup started must be in the copy.
#[test]
fn a_backup_under_write_load_holds_every_acknowledged_write() {
    if crate::helpers::sqlite_only("SQLite online backup of a database file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("live.db");
    let db = db_path.to_str().unwrap();
    let (_, owner) = seed_owner(dir.path(), db, "owner@acme.test", PASSWORD);
    add_history(db, &owner, 50_000);
    let server =
        Server::start(dir.path(), &["serve", "--database", db, "--listen", "127.0.0.1:0"], &[]);

    let acked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (base, acked, stop) = (server.base.clone(), acked.clone(), stop.clone());
            let mut token = login(&base);
            std::thread::spawn(move || {
                let c = client();
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let r = c
                        .post(format!("{base}/auth/refresh"))
                        .json(&json!({"refresh_token": token}))
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    token =
                        r.json::<Value>().unwrap()["refresh_token"].as_str().unwrap().to_owned();
                    acked.lock().unwrap().push(sessiond::auth::refresh::lookup_key(&token));
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(5));
    }

    let copy = dir.path().join("backups").join("copy.db");
    std::fs::create_dir(copy.parent().unwrap()).unwrap();
    let before: Vec<Vec<u8>> = acked.lock().unwrap().clone();
    let started = Instant::now();
    let out =
        run(dir.path(), &["backup", "--database", db, "--to", copy.to_str().unwrap()], &[], None);
    let took = started.elapsed();
    let during = acked.lock().unwrap().len() - before.len();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    out.assert_ok();
    let answer = out.json();
    let bytes = std::fs::metadata(&copy).unwrap().len();
    assert_eq!(answer["backup"], copy.to_str().unwrap());
    assert_eq!(answer["bytes"], bytes);
    assert!(answer["pages"].as_u64().unwrap() > 0, "{answer}");
    assert_eq!(out.stderr, "");

    let c = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let mut find = c.prepare("SELECT count(*) FROM refresh_tokens WHERE token_hash = ?1").unwrap();
    for hash in &before {
        let n: i64 = find.query_row([hash.as_slice()], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "a token acknowledged before the backup is missing from the copy");
    }
    let rows: i64 = c.query_row("SELECT count(*) FROM refresh_tokens", [], |r| r.get(0)).unwrap();
    assert!(rows >= 50_000 + before.len() as i64);
    eprintln!(
        "backup: {bytes} bytes, {rows} token rows, {} acknowledged before, {during} during, in {took:?}",
        before.len()
    );
    drop(find);
    drop(c);
    // No temporary file is left beside the copy.
    let names: Vec<_> = std::fs::read_dir(copy.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["copy.db"]);

    // The copy serves: a server started on it knows the owner.
    drop(server);
    let restored = Server::start(
        dir.path(),
        &["serve", "--database", copy.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &[],
    );
    login(&restored.base);
}

#[test]
fn backup_refuses_to_overwrite_and_names_what_is_wrong() {
    if crate::helpers::sqlite_only("SQLite online backup of a database file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let db = db.to_str().unwrap();
    seed_owner(dir.path(), db, "owner@acme.test", PASSWORD);
    let taken = dir.path().join("taken.db");
    std::fs::write(&taken, b"precious").unwrap();
    let taken = taken.to_str().unwrap();

    let backup = |args: &[&str]| {
        let mut all = vec!["backup"];
        all.extend_from_slice(args);
        run(dir.path(), &all, &[], None)
    };
    backup(&["--database", db, "--to", taken]).assert_fails(1, "already exists");
    assert_eq!(std::fs::read(taken).unwrap(), b"precious");
    let missing = dir.path().join("nope.db");
    let fresh = dir.path().join("fresh.db");
    let fresh = fresh.to_str().unwrap();
    backup(&["--database", missing.to_str().unwrap(), "--to", fresh])
        .assert_fails(1, "no database file");
    assert!(!missing.exists(), "no empty database was created to back up");
    backup(&["--database", ":memory:", "--to", fresh]).assert_fails(2, ":memory:");
    backup(&["--database", db]).assert_fails(2, "--to");
    let no_dir = dir.path().join("no").join("such").join("dir.db");
    backup(&["--database", db, "--to", no_dir.to_str().unwrap()]).assert_fails(1, "cannot create");
    // None of the refusals left a file behind.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("live.db"))
        .collect();
    names.sort();
    assert_eq!(names, ["taken.db"]);
    // And the good case, from the default config path.
    let out = backup(&["--database", db, "--to", fresh]);
    out.assert_ok();
    assert_eq!(out.json()["backup"], fresh);
}

/// Contract §6: a backup holds all the database does, so it is created 0600 like the
/// database itself, whatever the umask (here 022, which would give 0644).
#[test]
fn a_backup_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let db = db.to_str().unwrap();
    seed_owner(dir.path(), db, "owner@acme.test", PASSWORD);
    let copy = dir.path().join("copy.db");
    let out = std::process::Command::new("/bin/sh")
        .current_dir(dir.path())
        .env_clear()
        .args(["-c", "umask 022 && exec \"$0\" \"$@\"", crate::process::bin()])
        .args(["backup", "--database", db, "--to", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "backup mode {mode:o}");
    // A file created the ordinary way under the same umask would have been 0644: the
    // test is not passing by the umask alone.
    let plain = dir.path().join("plain");
    let made = std::process::Command::new("/bin/sh")
        .current_dir(dir.path())
        .args(["-c", "umask 022 && : > plain"])
        .status()
        .unwrap();
    assert!(made.success());
    assert_eq!(std::fs::metadata(plain).unwrap().permissions().mode() & 0o777, 0o644);
}
