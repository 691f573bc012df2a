//! Storage tests: query plans of the hot statements, and the in-memory database shared
//! by every pooled connection.

use super::{Db, DbError, Synchronous, maintenance, refresh_tokens, sessions, users};
use crate::revocation::Reason;

fn plan(db: &Db, sql: &str) -> String {
    plan_on(&db.sqlite_connection(), sql)
}

fn plan_on(conn: &rusqlite::Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
    // The plan does not depend on the values; bind NULL to every parameter.
    let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
    let rows = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .expect("plan rows")
        .collect::<Result<Vec<_>, _>>()
        .expect("plan");
    rows.join("\n")
}

/// Neither the refresh lookup nor any revoke may scan the token table: their cost must
/// not grow with revoked history or with other accounts' tokens.
#[test]
fn hot_statements_use_indexes_not_scans() {
    let db = Db::open(":memory:", 2).expect("open");
    hot_token_statements_use_their_indexes(&db.sqlite_connection());
    // The account's users are found through their index too.
    for sql in [
        refresh_tokens::REVOKE_ACCOUNT_SQL,
        refresh_tokens::COUNT_ACCOUNT_SQL,
        refresh_tokens::LIVE_SESSION_TIMES_SQL,
    ] {
        let plan = plan(&db, sql);
        assert!(plan.contains("users_by_account"), "{plan}");
        assert!(!plan.contains("SCAN users"), "{plan}");
    }
}

/// The token statements of the refresh and the revokes, each through its index.
fn hot_token_statements_use_their_indexes(conn: &rusqlite::Connection) {
    let cases = [
        (refresh_tokens::FIND_PRESENTED_SQL, "sqlite_autoindex_refresh_tokens"),
        (refresh_tokens::REVOKE_ACCOUNT_SQL, "refresh_tokens_active_by_user"),
        (refresh_tokens::COUNT_ACCOUNT_SQL, "refresh_tokens_active_by_user"),
        (refresh_tokens::LIVE_SESSION_TIMES_SQL, "refresh_tokens_active_by_user"),
        (refresh_tokens::SESSION_END_SQL, "refresh_tokens_ended_by_session"),
        (refresh_tokens::REVOKE_SESSION_SQL, "refresh_tokens_active_by_user"),
        (refresh_tokens::REVOKE_USER_SQL, "refresh_tokens_active_by_user"),
        (users::SESSION_STATE_SQL, "refresh_tokens_active_by_user"),
    ];
    for (sql, index) in cases {
        let plan = plan_on(conn, sql);
        assert!(!plan.contains("SCAN refresh_tokens") && !plan.contains("SCAN t"), "{sql}\n{plan}");
        assert!(plan.contains(index), "{sql} should use {index}:\n{plan}");
    }
}

/// The owner's session list reads the account's live tokens only; the prune reads old
/// revoked tokens and live ones through their indexes, never the whole history.
#[test]
fn session_list_and_prune_use_indexes_not_scans() {
    let db = Db::open(":memory:", 2).expect("open");
    let cases: [(&str, &[&str]); 4] = [
        (sessions::LIVE_BY_ACCOUNT_SQL, &["users_by_account", "refresh_tokens_active_by_user"]),
        (sessions::LIVE_IN_ACCOUNT_SQL, &["users_by_account", "refresh_tokens_active_by_user"]),
        (maintenance::LIVE_ISSUED_BEFORE_SQL, &["refresh_tokens_active_by_user"]),
        (
            maintenance::REVOKED_BEFORE_SQL,
            &[
                "refresh_tokens_revoked ",
                "refresh_tokens_active_by_user",
                "refresh_tokens_ended_by_session",
            ],
        ),
    ];
    for (sql, indexes) in cases {
        let plan = plan(&db, sql);
        for table in ["refresh_tokens", "t", "s", "users", "u", "accounts", "a"] {
            assert!(!plan.contains(&format!("SCAN {table}")), "{sql}\n{plan}");
        }
        for index in indexes {
            assert!(plan.contains(index), "{sql} should use {index}:\n{plan}");
        }
    }
}

#[test]
fn memory_database_is_shared_by_all_pooled_connections() {
    let db = Db::open(":memory:", 4).expect("open");
    let held: Vec<_> = (0..4).map(|_| db.sqlite_connection()).collect();
    held[0]
        .execute_batch("CREATE TABLE probe (x INTEGER); INSERT INTO probe VALUES (42);")
        .expect("write");
    for conn in &held {
        let x: i64 = conn.query_row("SELECT x FROM probe", [], |r| r.get(0)).expect("read");
        assert_eq!(x, 42);
    }
    // A second :memory: database is a different one.
    let other = Db::open(":memory:", 1).expect("open");
    let conn = other.sqlite_connection();
    assert!(conn.query_row("SELECT x FROM probe", [], |r| r.get::<_, i64>(0)).is_err());
}

/// A database in a file of a fresh directory (kept alive by the first element).
fn on_disk() -> (tempfile::TempDir, std::path::PathBuf, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let db = Db::open(path.to_str().expect("utf-8"), 2).expect("open");
    (dir, path, db)
}

#[test]
fn every_connection_is_configured() {
    let (_dir, _path, db) = on_disk();
    let conn = db.sqlite_connection();
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).expect("pragma");
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("pragma");
    let busy: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0)).expect("pragma");
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("pragma");
    assert_eq!((fk, mode.as_str(), sync), (1, "wal", 2));
    assert!(busy >= 1000);
}

#[test]
fn synchronous_normal_is_applied_to_every_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let db = Db::open_with(path.to_str().expect("utf-8"), 2, Synchronous::Normal).expect("open");
    let held: Vec<_> = (0..2).map(|_| db.sqlite_connection()).collect();
    for conn in &held {
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("pragma");
        assert_eq!(sync, 1);
    }
}

/// A commit no longer copies a long log into the database file itself (SQLite's
/// auto-checkpoint, inside the commit, is off); the writer does it once it has answered.
#[tokio::test]
async fn a_long_log_is_checkpointed_by_the_writer_after_its_commit() {
    let (_dir, path, db) = on_disk();
    let file_size = || std::fs::metadata(&path).map_or(0, |m| m.len());
    db.write(|tx| tx.execute("CREATE TABLE filler (b BLOB)", &[])).await.expect("create");

    // 8 MB, about 2 000 pages of 4 KiB, committed outside the writer: left in the log.
    let before = file_size();
    let conn = db.sqlite_connection();
    conn.execute_batch("INSERT INTO filler VALUES (zeroblob(8000000))").expect("long write");
    drop(conn);
    assert!(file_size() < before + 1_000_000, "checkpointed inside the commit");

    // Through the writer: answered, then the log (both writes) copied into the file.
    db.write(|tx| tx.execute("INSERT INTO filler VALUES (zeroblob(8000000))", &[]))
        .await
        .expect("long write");
    // The checkpoint runs before the writer takes the next write: once that is answered,
    // it is done.
    db.write(|tx| tx.execute("INSERT INTO filler VALUES (1)", &[])).await.expect("next write");
    assert!(
        file_size() >= before + 16_000_000,
        "the log was not copied into the file: {} bytes, {before} before",
        file_size()
    );
}

/// Closing the database (every clone dropped) closes its connections: the last to close
/// checkpoints the log and removes it, so a CLI command leaves the file alone, with no
/// `-wal` beside it.
#[tokio::test]
async fn a_closed_database_leaves_no_log_behind() {
    let (_dir, path, db) = on_disk();
    let insert = "INSERT INTO server_secrets (name, value) VALUES ('k', 'v')";
    db.write(move |tx| tx.execute(insert, &[])).await.expect("write");
    let wal = path.with_extension("db-wal");
    assert!(wal.exists(), "a log while open");
    drop(db);
    // The writer's blocking task may still hold its clone for a moment after answering.
    for _ in 0..100 {
        if !wal.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!wal.exists(), "the log outlived the database's connections");
}

/// A commit outside the writer that leaves more than 10 000 pages in the log checkpoints
/// on its own connection, before it returns: the log has a bound whoever writes.
#[test]
fn a_log_past_the_backstop_is_checkpointed_by_the_committing_connection() {
    let (_dir, path, db) = on_disk();
    // A pooled connection's commit outside `Db::write`.
    let conn = db.sqlite_connection();
    conn.execute_batch("CREATE TABLE filler (b BLOB); INSERT INTO filler VALUES (zeroblob(2000));")
        .expect("create");
    let before = std::fs::metadata(&path).expect("file").len();
    // 45 MB: about 11 000 pages.
    conn.execute_batch("INSERT INTO filler VALUES (zeroblob(45000000))").expect("long write");
    let after = std::fs::metadata(&path).expect("file").len();
    assert!(after >= before + 45_000_000, "not checkpointed on commit: {before} → {after}");
}

#[tokio::test]
async fn a_failed_write_rolls_back() {
    let db = Db::open(":memory:", 2).expect("open");
    let result: Result<(), DbError> = db
        .write(|tx| {
            tx.sqlite()
                .expect("sqlite")
                .execute_batch("CREATE TABLE probe (x INTEGER); INSERT INTO probe VALUES (1);")?;
            Err(DbError::Conflict("stop".into()))
        })
        .await;
    assert!(result.is_err());
    let exists: i64 = db
        .read(|tx| {
            Ok::<_, DbError>(tx.sqlite().expect("sqlite").query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'probe'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .expect("read");
    assert_eq!(exists, 0);
}

/// The SQLite migrations in order: `SQLITE_MIGRATIONS[n - 1]` is version n.
const SQLITE_MIGRATIONS: [&str; 9] = [
    include_str!("../../migrations/sqlite/V1__init.sql"),
    include_str!("../../migrations/sqlite/V2__revoke_reasons.sql"),
    include_str!("../../migrations/sqlite/V3__prune_indexes.sql"),
    include_str!("../../migrations/sqlite/V4__login_failures.sql"),
    include_str!("../../migrations/sqlite/V5__server_secrets.sql"),
    include_str!("../../migrations/sqlite/V6__tokens_by_user.sql"),
    include_str!("../../migrations/sqlite/V7__token_ids_as_bytes.sql"),
    include_str!("../../migrations/sqlite/V8__forget_stale_samples.sql"),
    include_str!("../../migrations/sqlite/V9__cheaper_reason_check.sql"),
];

/// An in-memory database at schema `version`, migrated the way it was built, one
/// version after the other (without refinery's history table).
fn at_version(version: usize) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().expect("open");
    for (n, sql) in SQLITE_MIGRATIONS[..version].iter().enumerate() {
        conn.execute_batch(sql).unwrap_or_else(|e| panic!("version {}: {e}", n + 1));
    }
    conn
}

/// Applies schema `version` to `conn`.
fn migrate_to(conn: &rusqlite::Connection, version: usize) {
    conn.execute_batch(SQLITE_MIGRATIONS[version - 1])
        .unwrap_or_else(|e| panic!("version {version}: {e}"));
}

/// Every column of every token row, in the order of the column `id`, as text.
fn token_rows(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare("SELECT * FROM refresh_tokens ORDER BY id")
        .expect("prepare")
        .query_map([], |r| {
            Ok((0..13)
                .map(|i| format!("{:?}", r.get_ref(i).expect("column")))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Version 2 records why tokens were revoked. Rows revoked under version 1 keep a
/// known cause only for rotations (they have a successor); any other cause stays unknown.
#[test]
fn the_v2_migration_backfills_rotations_only() {
    let conn = at_version(1);
    conn.execute_batch(
        "INSERT INTO accounts (id, name, created_at) VALUES ('a', 'A', 0);
         INSERT INTO users (id, account_id, email, password_hash, role, created_at)
             VALUES ('u', 'a', 'u@a.test', 'x', 'owner', 0);
         INSERT INTO refresh_tokens (id, session_id, user_id, token_hash, session_started_at,
                                     issued_at, revoked_at, replaced_by)
             VALUES ('t1', 's', 'u', x'01', 0, 0, 5, 't2'),
                    ('t2', 's', 'u', x'02', 0, 5, 9, NULL),
                    ('t3', 's2', 'u', x'03', 0, 0, NULL, NULL);",
    )
    .expect("v1 rows");
    migrate_to(&conn, 2);
    let rows: Vec<(String, Option<String>)> = conn
        .prepare("SELECT id, revoke_reason FROM refresh_tokens ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        rows,
        vec![("t1".into(), Some("rotated".into())), ("t2".into(), None), ("t3".into(), None)]
    );
    // The column refuses names this version does not know.
    let err = conn.execute("UPDATE refresh_tokens SET revoke_reason = 'bored' WHERE id = 't2'", []);
    assert!(err.is_err());
}

/// Version 6 rebuilds the token table clustered by (user, session, id): every row and
/// column comes across, the CHECK of version 2 and the uniqueness of id and hash hold, the
/// table has no rowid, and a revoke finds the live tokens through the user-keyed index.
#[test]
fn the_v6_migration_moves_every_token_into_the_clustered_table() {
    let conn = at_version(5);
    conn.execute_batch(
        "INSERT INTO accounts (id, name, created_at) VALUES ('a', 'A', 0);
         INSERT INTO users (id, account_id, email, password_hash, role, created_at)
             VALUES ('u2', 'a', 'u2@a.test', 'x', 'owner', 0),
                    ('u1', 'a', 'u1@a.test', 'x', 'engineer', 0);
         INSERT INTO refresh_tokens (id, session_id, user_id, token_hash, session_started_at,
                                     issued_at, revoked_at, replaced_by, user_agent, ip,
                                     revoke_reason, revoked_by_event, revoke_limit_minutes)
             VALUES ('t1', 's', 'u2', x'01', 1, 2, 5, 't2', 'ua', '10.0.0.1', 'rotated', NULL,
                     NULL),
                    ('t2', 's', 'u2', x'02', 1, 5, 9, NULL, 'ua', '10.0.0.1', 'idle_timeout',
                     NULL, 30),
                    ('t3', 's2', 'u1', x'03', 3, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                    ('t4', 's3', 'u1', x'04', 3, 4, 8, NULL, NULL, NULL, 'revoked_all', 'e1',
                     NULL);",
    )
    .expect("v5 rows");
    let before = token_rows(&conn);
    migrate_to(&conn, 6);
    assert_eq!(token_rows(&conn), before);
    // Stored in key order: user, then session (a scan of the table itself: `ip` is in no
    // index).
    let order: Vec<String> = conn
        .prepare("SELECT id, ip FROM refresh_tokens")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(order, ["t3", "t4", "t1", "t2"]);
    assert!(conn.prepare("SELECT rowid FROM refresh_tokens").is_err(), "WITHOUT ROWID");
    for bad in [
        "UPDATE refresh_tokens SET revoke_reason = 'bored' WHERE id = 't2'",
        "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash, session_started_at,
             issued_at) VALUES ('t1', 's9', 'u1', x'09', 0, 0)",
        "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash, session_started_at,
             issued_at) VALUES ('t9', 's9', 'u1', x'01', 0, 0)",
        "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash, session_started_at,
             issued_at) VALUES ('t9', 's9', 'u1', 'text', 0, 0)",
    ] {
        assert!(conn.execute(bad, []).is_err(), "{bad}");
    }
    let old: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE '%v5%'", [], |r| r.get(0))
        .expect("count");
    assert_eq!(old, 0);
}

/// Version 7 stores the token table's own ids (id, session, successor) as 16 bytes:
/// every row comes across with the same UUIDs and every other column unchanged, in the
/// same key order; the table refuses text or ids of another length there; the planner's
/// figures are back, and once version 8 has dropped the samples of the old table, its
/// plans too.
#[test]
fn the_v7_migration_stores_token_ids_as_sixteen_bytes() {
    use rusqlite::types::Value;
    let conn = at_version(6);
    let [t1, t2, t3, s1, s2] = [0; 5].map(|_| uuid::Uuid::new_v4().to_string());
    conn.execute("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'A', 0);", [])
        .expect("account");
    conn.execute_batch(
        "INSERT INTO users (id, account_id, email, password_hash, role, created_at)
             VALUES ('u2', 'a', 'u2@a.test', 'x', 'owner', 0),
                    ('u1', 'a', 'u1@a.test', 'x', 'engineer', 0);",
    )
    .expect("users");
    let insert = "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash,
                      session_started_at, issued_at, revoked_at, replaced_by, user_agent, ip,
                      revoke_reason, revoked_by_event, revoke_limit_minutes)
                  VALUES (?1, ?2, ?3, ?4, 1, 2, ?5, ?6, 'ua', '10.0.0.1', ?7, ?8, ?9)";
    let row = |params: &[&dyn rusqlite::ToSql]| conn.execute(insert, params).expect("v6 row");
    let (none, no_text) = (None::<i64>, None::<&str>);
    row(rusqlite::params![t1, s1, "u2", b"1", 5, t2, "rotated", no_text, none]);
    row(rusqlite::params![t2, s1, "u2", b"2", 9, no_text, "idle_timeout", "e1", 30]);
    row(rusqlite::params![t3, s2, "u1", b"3", none, no_text, no_text, no_text, none]);
    // Every column of every row in the table's own order, the ids of columns 0, 1 and 7
    // (id, session, successor) as their text.
    let dump = |conn: &rusqlite::Connection| -> Vec<Vec<Value>> {
        conn.prepare("SELECT * FROM refresh_tokens")
            .expect("prepare")
            .query_map([], |r| {
                (0..13)
                    .map(|i| {
                        Ok(match r.get::<_, Value>(i)? {
                            Value::Blob(b) if [0, 1, 7].contains(&i) => Value::Text(
                                uuid::Uuid::from_slice(&b).expect("16 bytes").to_string(),
                            ),
                            v => v,
                        })
                    })
                    .collect()
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    // An operator's ANALYZE before the upgrade: sqlite_stat4 (the bundled SQLite keeps
    // it) holds samples of the text ids, which version 7 leaves there.
    conn.execute_batch("ANALYZE").expect("analyze");
    let before = dump(&conn);
    migrate_to(&conn, 7);
    assert_eq!(dump(&conn), before);
    let blobs: (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(replaced_by) FROM refresh_tokens
             WHERE typeof(id) = 'blob' AND typeof(session_id) = 'blob'
               AND typeof(replaced_by) IN ('blob', 'null')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("types");
    assert_eq!(blobs, (3, 1));
    let sixteen = [7u8; 16];
    for (bad, id, session) in [
        ("text id", Value::Text(t3.clone()), Value::Blob(sixteen.to_vec())),
        ("15-byte id", Value::Blob(vec![9; 15]), Value::Blob(sixteen.to_vec())),
        ("text session", Value::Blob(vec![9; 16]), Value::Text(s2.clone())),
    ] {
        let err = conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash, session_started_at,
                 issued_at) VALUES (?1, ?2, 'u1', x'09', 0, 0)",
            rusqlite::params![id, session],
        );
        assert!(err.is_err(), "{bad}");
    }
    let left: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE '%v6%'", [], |r| r.get(0))
        .expect("count");
    assert_eq!(left, 0);
    let stats: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'refresh_tokens'", [], |r| {
            r.get(0)
        })
        .expect("stats");
    assert_eq!(stats, 6);
    // Version 8 forgets those samples, which would otherwise turn the account's revoke
    // to the table's own key.
    let samples = || -> i64 {
        conn.query_row("SELECT count(*) FROM sqlite_stat4 WHERE tbl = 'refresh_tokens'", [], |r| {
            r.get(0)
        })
        .expect("samples")
    };
    assert!(samples() > 0, "the test's ANALYZE left samples");
    migrate_to(&conn, 8);
    assert_eq!(samples(), 0);
    hot_token_statements_use_their_indexes(&conn);
}

/// Version 9 rewrites the CHECK on `revoke_reason` in the schema's text, without
/// rebuilding the table: the rows are untouched, the file is sound, and a connection
/// opened afterwards accepts every reason the server stores and refuses any other name.
#[test]
fn the_v9_migration_keeps_the_reason_check_and_the_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v9.db");
    let conn = rusqlite::Connection::open(&path).expect("open");
    for version in 1..=8 {
        migrate_to(&conn, version);
    }
    conn.execute_batch(
        "INSERT INTO accounts (id, name, created_at) VALUES ('a', 'A', 0);
         INSERT INTO users (id, account_id, email, password_hash, role, created_at)
             VALUES ('u', 'a', 'u@a.test', 'x', 'owner', 0);",
    )
    .expect("user");
    let stored: Vec<&str> =
        Reason::ALL.iter().filter(|r| **r != Reason::UnknownToken).map(|r| r.as_str()).collect();
    let insert = |conn: &rusqlite::Connection, n: u8, reason: Option<&str>| {
        conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, user_id, token_hash,
                 session_started_at, issued_at, revoked_at, revoke_reason)
             VALUES (?1, ?1, 'u', ?2, 0, 0, 1, ?3)",
            rusqlite::params![[n; 16], [n; 32], reason],
        )
    };
    for (n, reason) in (1..).zip(stored.iter().map(|r| Some(*r)).chain([None])) {
        insert(&conn, n, reason).expect("a version-8 row");
    }
    let columns = |conn: &rusqlite::Connection| -> Vec<String> {
        conn.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo('refresh_tokens')")
            .expect("prepare")
            .query_map([], |r| {
                Ok(format!(
                    "{}:{}:{}:{}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?
                ))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("columns")
    };
    let (rows, shape) = (token_rows(&conn), columns(&conn));
    let cookie = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA schema_version", [], |r| r.get(0)).expect("cookie")
    };
    let before = cookie(&conn);
    // Another connection, open before the upgrade, with the old schema read.
    let other = rusqlite::Connection::open(&path).expect("open another");
    assert_eq!(token_rows(&other), rows);
    // In one transaction, as refinery applies the pending versions.
    conn.execute_batch("BEGIN").expect("begin");
    migrate_to(&conn, 9);
    conn.execute_batch("COMMIT").expect("commit");
    assert!(cookie(&conn) > before, "other connections are told to reload the schema");
    drop(conn);
    let table_sql = |conn: &rusqlite::Connection| -> String {
        conn.query_row("SELECT sql FROM sqlite_schema WHERE name = 'refresh_tokens'", [], |r| {
            r.get(0)
        })
        .expect("schema")
    };
    let seen_by_other = table_sql(&other);
    assert!(!seen_by_other.contains("revoke_reason IN"), "{seen_by_other}");

    let conn = rusqlite::Connection::open(&path).expect("reopen");
    let sql = table_sql(&conn);
    assert!(!sql.contains("revoke_reason IN"), "{sql}");
    assert!(sql.contains("revoke_reason = 'absolute_timeout'"), "{sql}");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
    assert_eq!(check, "ok");
    assert_eq!(token_rows(&conn), rows);
    assert_eq!(columns(&conn), shape);
    for (n, reason) in (100..).zip(&stored) {
        insert(&conn, n, Some(reason)).unwrap_or_else(|e| panic!("{reason}: {e}"));
    }
    for bad in ["unknown_token", "bored", "Rotated", ""] {
        let refused = insert(&conn, 200, Some(bad)).expect_err(bad);
        assert_eq!(
            refused.sqlite_error().map(|e| e.extended_code),
            Some(rusqlite::ffi::SQLITE_CONSTRAINT_CHECK),
            "{bad:?}: {refused}"
        );
    }
    // The connection opened before the upgrade goes on writing, under the check.
    insert(&other, 201, Some("revoked_all")).expect("a stored reason, from the other");
    assert!(insert(&other, 202, Some("bored")).is_err(), "the other connection's CHECK");
}

/// Both dialects' migration folders hold the same versions under the same names: a
/// database of either kind is at the same schema version for the same sessiond.
#[test]
fn both_dialects_have_the_same_migrations() {
    let names = |dialect: &str| -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    };
    let (sqlite, postgres) = (names("sqlite"), names("postgres"));
    assert!(sqlite.len() >= 3, "{sqlite:?}");
    assert_eq!(sqlite, postgres);
    assert_eq!(sqlite.len(), SQLITE_MIGRATIONS.len(), "the migration tests' list is complete");
    // Nothing left in the old single folder, where refinery would no longer look.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let stray: Vec<_> = std::fs::read_dir(root)
        .expect("migrations")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name())
        .collect();
    assert!(stray.is_empty(), "migrations outside a dialect's folder: {stray:?}");
}

/// `?N` parameters become `$N` for PostgreSQL; nothing else changes.
#[test]
fn parameters_are_rewritten_for_postgres() {
    assert_eq!(
        super::pg::dollar_params("SELECT ?1, ?12 FROM t WHERE a = ?2 AND b IS NULL"),
        "SELECT $1, $12 FROM t WHERE a = $2 AND b IS NULL"
    );
}

/// PostgreSQL only (`SESSIOND_TEST_DATABASE_URL`): the bulk revoke and its dry-run count,
/// and the per-user and per-session revokes, reach the live tokens through the indexes,
/// never by a sequential scan of the token table. The schema holds 40,000 tokens (one in
/// twenty live) of 2,000 users in 200 accounts, analysed, so that the planner weighs
/// real sizes: on a near-empty table a sequential scan is the right plan and proves
/// nothing.
#[test]
fn postgres_revokes_use_the_indexes_not_a_sequential_scan() {
    let Some(url) = std::env::var("SESSIOND_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: needs a PostgreSQL server (SESSIOND_TEST_DATABASE_URL)");
        return;
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    admin.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options=-csearch_path%3D{schema}");
    let db = Db::open(&url, 2).expect("open and migrate");
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    c.batch_execute(
        "INSERT INTO accounts (id, name, created_at)
             SELECT 'a' || a, 'A', 0 FROM generate_series(1, 200) a;
         INSERT INTO users (id, account_id, email, password_hash, role, created_at)
             SELECT 'u' || a || '-' || u, 'a' || a, 'u' || a || '-' || u || '@x.test', 'h',
                    'engineer', 0
             FROM generate_series(1, 200) a, generate_series(1, 10) u;
         INSERT INTO refresh_tokens
             (id, session_id, user_id, token_hash, session_started_at, issued_at, revoked_at)
             SELECT 't' || a || '-' || u || '-' || t, 's' || a || '-' || u || '-' || t,
                    'u' || a || '-' || u, decode(md5(a || '-' || u || '-' || t), 'hex'), 0, 0,
                    CASE WHEN t = 1 THEN NULL ELSE 5 END
             FROM generate_series(1, 200) a, generate_series(1, 10) u, generate_series(1, 20) t;
         ANALYZE;",
    )
    .expect("rows");
    let mut explain = |sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]| -> String {
        let rows = c
            .query(&format!("EXPLAIN {}", super::pg::dollar_params(sql)), params)
            .expect("explain");
        rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
    };
    let (at, reason, event, limit) = (10_i64, "revoked_all", Some("e".to_owned()), None::<i64>);
    let (account, keep) = ("a7".to_owned(), None::<String>);
    let cases = [
        (
            "bulk revoke",
            refresh_tokens::REVOKE_ACCOUNT_SQL,
            explain(
                refresh_tokens::REVOKE_ACCOUNT_SQL,
                &[&at, &reason, &event, &limit, &account, &keep],
            ),
        ),
        (
            "bulk revoke's count",
            refresh_tokens::COUNT_ACCOUNT_SQL,
            explain(refresh_tokens::COUNT_ACCOUNT_SQL, &[&account, &keep]),
        ),
        (
            "user revoke",
            refresh_tokens::REVOKE_USER_SQL,
            explain(
                refresh_tokens::REVOKE_USER_SQL,
                &[&at, &reason, &event, &limit, &"u7-1".to_owned(), &keep],
            ),
        ),
        (
            "session revoke",
            refresh_tokens::REVOKE_SESSION_SQL,
            explain(
                refresh_tokens::REVOKE_SESSION_SQL,
                &[&at, &reason, &event, &limit, &"u7-1".to_owned(), &"s7-1-1".to_owned()],
            ),
        ),
    ];
    for (what, sql, plan) in &cases {
        eprintln!("{what}:\n{plan}");
        assert!(!plan.contains("Seq Scan on refresh_tokens"), "{what}: {sql}\n{plan}");
        assert!(plan.contains("refresh_tokens_active_by_"), "{what}: {sql}\n{plan}");
    }
    assert!(cases[0].2.contains("users_by_account"), "{}", cases[0].2);
    drop(db);
    let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
}

/// PostgreSQL only: the prune's lease is held by one process of a deployment at a time
/// (two pools on one schema stand for two processes), and free again once dropped.
#[tokio::test]
async fn postgres_a_lease_is_held_by_one_process_at_a_time() {
    let Some(url) = std::env::var("SESSIOND_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: needs a PostgreSQL server (SESSIOND_TEST_DATABASE_URL)");
        return;
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-csearch_path%3D{schema}");
    let (a, b) = tokio::task::spawn_blocking(move || {
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        admin.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("schema");
        (Db::open(&scoped, 2).expect("open a"), Db::open(&scoped, 2).expect("open b"))
    })
    .await
    .expect("open");
    let held = a.try_lease("prune").await.expect("lease").expect("free at first");
    assert!(b.try_lease("prune").await.expect("lease").is_none(), "held by the other");
    assert!(b.try_lease("other work").await.expect("lease").is_some(), "per name");
    drop(held);
    let mut again = None;
    for _ in 0..100 {
        // Released on a blocking thread: a moment later.
        again = b.try_lease("prune").await.expect("lease");
        if again.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(again.is_some(), "free once dropped");
}

/// A fresh, migrated PostgreSQL schema for a unit test, or `None` (after saying so) when
/// `SESSIOND_TEST_DATABASE_URL` is unset. Blocking.
pub(super) fn postgres_db() -> Option<Db> {
    let Some(url) = std::env::var("SESSIOND_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: needs a PostgreSQL server (SESSIOND_TEST_DATABASE_URL)");
        return None;
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    admin.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(Db::open(&format!("{url}{sep}options=-csearch_path%3D{schema}"), 2).expect("open"))
}

/// PostgreSQL only: a transaction that loses a race (SQLSTATE 40001, raised here on the
/// first attempt) runs again as a whole, and its second run commits.
#[tokio::test]
async fn postgres_a_serialization_failure_runs_the_transaction_again() {
    let Some(db) = tokio::task::spawn_blocking(postgres_db).await.expect("open") else { return };
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = attempts.clone();
    let stored = db
        .write(move |tx| {
            tx.execute(
                "INSERT INTO server_secrets (name, value) VALUES ('probe', 'x')
                 ON CONFLICT (name) DO NOTHING",
                &[],
            )?;
            if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                tx.execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'lost a race' USING ERRCODE = '40001'; END $$",
                    &[],
                )?;
            }
            tx.query_one("SELECT count(*) FROM server_secrets", &[], |r| r.i64(0))
        })
        .await
        .expect("committed on the second attempt");
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(stored, 1, "the first attempt's insert was rolled back, the second's kept");
}

/// PostgreSQL only: a failed statement aborts the transaction there (its COMMIT would
/// silently roll back), so a closure that swallows the error is not reported committed.
#[tokio::test]
async fn postgres_a_swallowed_statement_error_is_not_a_commit() {
    let Some(db) = tokio::task::spawn_blocking(postgres_db).await.expect("open") else { return };
    let result: Result<(), DbError> = db
        .write(|tx| {
            let _ = tx.execute("SELECT * FROM no_such_table", &[]);
            Ok(())
        })
        .await;
    assert!(matches!(result, Err(DbError::Other(_))), "{result:?}");
    // And a conflict is a conflict, as on SQLite.
    let insert = "INSERT INTO server_secrets (name, value) VALUES ('k', 'v')";
    db.write(move |tx| tx.execute(insert, &[])).await.expect("first");
    let again = db.write(move |tx| tx.execute(insert, &[])).await;
    assert!(matches!(again, Err(DbError::Conflict(_))), "{again:?}");
}
