//! Starts that must fail: a database directory that cannot be made, a database from a
//! newer sessiond, a damaged or foreign file, an unusable secret file. Each exits 1 with
//! one stderr line saying what and where, and leaves the file as it was.
//!
//! Tests may run as root (CI does), and root ignores permission bits: every unwritable
//! place here is one that refuses root too (a path through a regular file, procfs, a
//! name longer than the file system allows).

use std::path::Path;
use std::time::Duration;

use crate::process::{Out, run, run_within};

/// Each failing start is tried as `serve` (which must not get as far as listening),
/// `migrate`, and a command that writes (`account create`).
fn every_command(dir: &Path, db: &str) -> Vec<(String, Out)> {
    let commands: [&[&str]; 3] = [
        &["serve", "--listen", "127.0.0.1:0", "--database", db],
        &["migrate", "--database", db],
        &["account", "create", "--name", "Acme", "--database", db],
    ];
    commands
        .iter()
        .map(|args| {
            let out = run_within(dir, args, &[], None, Duration::from_secs(30));
            (args[0].to_owned(), out)
        })
        .collect()
}

#[track_caller]
fn assert_refused(dir: &Path, db: &str, needles: &[&str]) -> usize {
    let outcomes = every_command(dir, db);
    for (command, out) in &outcomes {
        for needle in needles {
            out.assert_fails(1, needle);
        }
        assert!(out.stdout.is_empty(), "{command}: nothing on stdout (no listening line): {out:?}");
    }
    outcomes.len()
}

fn bytes_of(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The file and nothing beside it: no `-wal`, `-shm` or `-journal` left behind.
#[track_caller]
fn assert_untouched(path: &Path, before: &[u8]) {
    assert!(bytes_of(path) == before, "{} was modified", path.display());
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = format!("{}{suffix}", path.display());
        assert!(!Path::new(&side).exists(), "{side} was left behind");
    }
}

/// A database migrated by this binary, its server stopped.
fn migrated_db(dir: &Path, name: &str) -> std::path::PathBuf {
    let db = dir.join(name);
    run(dir, &["migrate", "--database", db.to_str().unwrap()], &[], None).assert_ok();
    let seeded = run(
        dir,
        &["account", "create", "--name", "Acme", "--database", db.to_str().unwrap()],
        &[],
        None,
    );
    seeded.assert_ok();
    db
}

#[test]
fn a_database_directory_that_cannot_be_created_or_written_refuses_to_start() {
    if crate::helpers::sqlite_only("starts refused on SQLite database files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-regular-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let long_name = format!("{}.db", "n".repeat(300));
    let cases = [
        // A parent that is a regular file: cannot be created, for root too.
        (file.join("sub/sessiond.db"), "cannot create the database directory"),
        (file.join("sessiond.db"), "cannot create the database directory"),
        // procfs refuses new files, for root too.
        (Path::new("/proc/sessiond-test.db").to_path_buf(), "cannot open the database"),
        // A name longer than NAME_MAX.
        (dir.path().join(&long_name), "cannot open the database"),
    ];
    let mut tried = 0;
    for (db, what) in &cases {
        let db = db.to_str().unwrap();
        let parent = Path::new(db).parent().unwrap().to_str().unwrap();
        tried += assert_refused(dir.path(), db, &[what, parent]);
    }
    assert_eq!(bytes_of(&file), b"not a directory");
    eprintln!("figures: unhappy starts (unwritable): {tried} refused starts");
}

#[test]
fn a_database_from_a_newer_sessiond_is_refused_and_left_as_it_was() {
    if crate::helpers::sqlite_only("starts refused on SQLite database files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = migrated_db(dir.path(), "newer.db");
    {
        // What a newer sessiond would leave: a history row for a version this one lacks.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (1000, 'from_the_future', '2030-01-01T00:00:00Z', '12345')",
            [],
        )
        .unwrap();
    }
    let before = bytes_of(&db);
    let path = db.to_str().unwrap();
    let tried = assert_refused(dir.path(), path, &[path, "schema version 1000", "newer sessiond"]);
    assert_untouched(&db, &before);
    eprintln!("figures: unhappy starts (newer schema): {tried} refused starts, file unchanged");
}

#[test]
fn a_damaged_or_foreign_file_is_refused_and_left_as_it_was() {
    if crate::helpers::sqlite_only("starts refused on SQLite database files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = bytes_of(&migrated_db(dir.path(), "good.db"));
    assert!(good.len() >= 8 * 4096, "the seeded database has pages to damage: {}", good.len());
    let page = 4096;
    let mut random = vec![0u8; 3 * page];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);

    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("random bytes".into(), random.clone()),
        (
            "random bytes after a SQLite header".into(),
            [&b"SQLite format 3\0"[..], &random].concat(),
        ),
        ("a text file".into(), b"hello, this is not a database\n".repeat(200)),
    ];
    for cut in [50, 100, page, 2 * page, good.len() / 2, good.len() - page] {
        cases.push((format!("truncated to {cut} bytes"), good[..cut].to_vec()));
    }
    // Pages past the first overwritten: the header is fine, a table is not.
    let mut overwritten = good.clone();
    overwritten[2 * page..5 * page].copy_from_slice(&random);
    cases.push(("pages 3 to 5 overwritten".into(), overwritten));

    let mut tried = 0;
    for (i, (what, bytes)) in cases.iter().enumerate() {
        let db = dir.path().join(format!("damaged-{i}.db"));
        std::fs::write(&db, bytes).unwrap();
        let path = db.to_str().unwrap();
        let outcomes = every_command(dir.path(), path);
        for (command, out) in &outcomes {
            assert_eq!(out.code, 1, "{what}, {command}: {out:?}");
            out.assert_fails(1, path);
            out.assert_fails(1, "is damaged or is not a SQLite database");
        }
        tried += outcomes.len();
        assert_untouched(&db, bytes);
    }

    // Another application's database: tables, but no sessiond history.
    let foreign = dir.path().join("foreign.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let before = bytes_of(&foreign);
    let path = foreign.to_str().unwrap();
    tried += assert_refused(dir.path(), path, &[path, "no sessiond migration history"]);
    assert_untouched(&foreign, &before);
    eprintln!(
        "figures: unhappy starts (damaged/foreign): {} files, {tried} refused starts, all unchanged",
        cases.len() + 1
    );
}

/// A migration that fails part-way leaves nothing of itself: all pending migrations and
/// their history rows commit together or not at all.
#[test]
fn a_migration_that_fails_part_way_leaves_nothing_half_done() {
    if crate::helpers::sqlite_only("starts refused on SQLite database files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("half.db");
    {
        // An empty history (so this is a sessiond database with nothing applied) and a
        // table that collides with the last table V1 creates.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE refinery_schema_history (version INT4 PRIMARY KEY, name VARCHAR(255),
                 applied_on VARCHAR(255), checksum VARCHAR(255));
             CREATE TABLE audit_events (x INTEGER);",
        )
        .unwrap();
    }
    let path = db.to_str().unwrap();
    let out = run(dir.path(), &["migrate", "--database", path], &[], None);
    out.assert_fails(1, "cannot migrate the database");
    out.assert_fails(1, path);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["audit_events", "refinery_schema_history"], "nothing of V1 remains");
    let applied: i64 =
        conn.query_row("SELECT count(*) FROM refinery_schema_history", [], |r| r.get(0)).unwrap();
    assert_eq!(applied, 0);
}

#[test]
fn an_unusable_secret_file_refuses_to_start() {
    if crate::helpers::sqlite_only("starts refused on SQLite database files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = |db: &str| -> Vec<String> {
        ["serve", "--listen", "127.0.0.1:0", "--database", db].map(str::to_owned).to_vec()
    };
    let serve = |db: &str| {
        let a = args(db);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_within(dir.path(), &a, &[], None, Duration::from_secs(30))
    };

    // The secret's place is taken by a directory.
    let db = dir.path().join("a.db");
    std::fs::create_dir(dir.path().join("a.db.jwt-secret")).unwrap();
    let out = serve(db.to_str().unwrap());
    out.assert_fails(1, "a.db.jwt-secret");
    assert!(out.stdout.is_empty(), "{out:?}");

    // A secret file too short to sign with (someone truncated it).
    let db = dir.path().join("b.db");
    std::fs::write(dir.path().join("b.db.jwt-secret"), "short").unwrap();
    let out = serve(db.to_str().unwrap());
    out.assert_fails(1, "b.db.jwt-secret");
    assert!(!out.stderr.contains("short"), "the secret's content is not printed: {out:?}");
}
