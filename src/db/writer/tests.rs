//! Group commit: writes queued behind a transaction in flight share the next one; each is
//! undone alone when it fails, and answered only with its own outcome.

use std::sync::mpsc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::db::tests::postgres_db;
use crate::db::{Db, DbError};
use crate::metrics::Metrics;

const INSERT: &str = "INSERT INTO server_secrets (name, value) VALUES (?1, 'x')";

/// What one queued write does.
#[derive(Clone, Copy)]
enum Write {
    Insert,
    InsertThenFail,
    InsertThenPanic,
    /// Ends the transaction under the group's feet (SQLite): the group cannot commit.
    InsertThenBreakTheTransaction,
}

/// Holds the writer busy with a first write, queues `writes` behind it (each inserting a
/// row named after its position), waits until all are queued, then lets the first one
/// finish. Answers each queued write's outcome (`Err` with the panic's text if it
/// panicked).
async fn queue_behind_a_busy_writer(db: &Db, writes: &[Write]) -> Vec<Result<(), String>> {
    let (release, blocked) = mpsc::channel::<()>();
    let first = {
        let db = db.clone();
        tokio::spawn(async move {
            db.write(move |tx| {
                tx.execute(INSERT, &[&"first"])?;
                // Blocks this write (on its blocking thread) until the others are queued.
                let _ = blocked.recv_timeout(Duration::from_secs(30));
                Ok::<_, DbError>(())
            })
            .await
        })
    };
    wait_for_queue(db, 0).await;
    let handles: Vec<JoinHandle<Result<(), DbError>>> = writes
        .iter()
        .enumerate()
        .map(|(i, &write)| {
            let db = db.clone();
            let name = format!("w{i}");
            tokio::spawn(async move {
                db.write(move |tx| {
                    tx.execute(INSERT, &[&name])?;
                    match write {
                        Write::Insert => Ok(()),
                        Write::InsertThenFail => Err(DbError::Conflict("refused".into())),
                        Write::InsertThenPanic => panic!("a write panicked"),
                        Write::InsertThenBreakTheTransaction => {
                            tx.sqlite().expect("sqlite").execute_batch("ROLLBACK")?;
                            Ok(())
                        }
                    }
                })
                .await
            })
        })
        .collect();
    wait_for_queue(db, writes.len()).await;
    release.send(()).expect("release the first write");
    first.await.expect("first write's task").expect("first write");
    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(match handle.await {
            Ok(result) => result.map_err(|e| format!("{e:#}")),
            Err(e) if e.is_panic() => Err("panicked".to_owned()),
            Err(e) => Err(format!("task: {e}")),
        });
    }
    outcomes
}

/// Waits until `n` writes wait in the queue (behind the one in flight).
async fn wait_for_queue(db: &Db, n: usize) {
    for _ in 0..3000 {
        if db.writer.queued() == n && (n > 0 || db.writer.draining()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{n} writes never queued");
}

async fn stored_names(db: &Db) -> Vec<String> {
    db.read(|tx| tx.query("SELECT name FROM server_secrets ORDER BY name", &[], |r| r.text(0)))
        .await
        .expect("read")
}

/// `(transactions, writes)` as the write-group histogram counted them.
fn groups(metrics: &Metrics, db: &Db) -> (String, String) {
    let text = metrics.render(db.pool_state());
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("{name} not in:\n{text}"))
    };
    (value("sessiond_db_write_group_size_count "), value("sessiond_db_write_group_size_sum "))
}

fn with_metrics(db: Db) -> (Db, Metrics) {
    let metrics = Metrics::prometheus().expect("metrics");
    (db.with_metrics(metrics.clone()), metrics)
}

async fn queued_writes_share_a_commit_and_a_failing_one_is_undone_alone(db: Db) {
    let (db, metrics) = with_metrics(db);
    let outcomes = queue_behind_a_busy_writer(
        &db,
        &[Write::Insert, Write::InsertThenFail, Write::Insert, Write::Insert],
    )
    .await;
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok() && outcomes[3].is_ok(), "{outcomes:?}");
    assert!(outcomes[1].as_ref().is_err_and(|e| e.contains("refused")), "{outcomes:?}");
    assert_eq!(stored_names(&db).await, ["first", "w0", "w2", "w3"]);
    // Two transactions: the first write alone, then the four queued behind it.
    assert_eq!(groups(&metrics, &db), ("2".to_owned(), "5".to_owned()));
}

#[tokio::test]
async fn sqlite_queued_writes_share_a_commit_and_a_failing_one_is_undone_alone() {
    let db = Db::open(":memory:", 2).expect("open");
    queued_writes_share_a_commit_and_a_failing_one_is_undone_alone(db).await;
}

#[tokio::test]
async fn postgres_queued_writes_share_a_commit_and_a_failing_one_is_undone_alone() {
    let Some(db) = tokio::task::spawn_blocking(postgres_db).await.expect("open") else { return };
    queued_writes_share_a_commit_and_a_failing_one_is_undone_alone(db).await;
}

/// A grouped write that panics is undone alone; its caller sees the panic, the others
/// commit.
#[tokio::test]
async fn a_panicking_grouped_write_is_undone_alone() {
    let db = Db::open(":memory:", 2).expect("open");
    let outcomes =
        queue_behind_a_busy_writer(&db, &[Write::Insert, Write::InsertThenPanic, Write::Insert])
            .await;
    assert_eq!(outcomes, [Ok(()), Err("panicked".to_owned()), Ok(())]);
    assert_eq!(stored_names(&db).await, ["first", "w0", "w2"]);
}

/// A write that breaks the group's transaction (here: ends it) makes the group fail as a
/// whole; each write then runs again alone, so only the culprit fails.
#[tokio::test]
async fn a_group_that_cannot_commit_runs_each_write_again_alone() {
    let db = Db::open(":memory:", 2).expect("open");
    let outcomes = queue_behind_a_busy_writer(
        &db,
        &[Write::Insert, Write::InsertThenBreakTheTransaction, Write::Insert],
    )
    .await;
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
    assert!(outcomes[1].is_err(), "{outcomes:?}");
    assert_eq!(stored_names(&db).await, ["first", "w0", "w2"]);
}

/// `database.group_commit = false`: every write in a transaction of its own, in order.
#[tokio::test]
async fn without_group_commit_each_write_commits_alone() {
    let (db, metrics) =
        with_metrics(Db::open(":memory:", 2).expect("open").with_group_commit(false));
    let outcomes =
        queue_behind_a_busy_writer(&db, &[Write::Insert, Write::InsertThenFail, Write::Insert])
            .await;
    assert!(outcomes[0].is_ok() && outcomes[1].is_err() && outcomes[2].is_ok(), "{outcomes:?}");
    assert_eq!(stored_names(&db).await, ["first", "w0", "w2"]);
    assert_eq!(groups(&metrics, &db), ("4".to_owned(), "4".to_owned()));
}
