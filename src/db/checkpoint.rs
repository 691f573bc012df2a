//! Checkpoints of the SQLite log after the answer, not before it.
//!
//! SQLite's own auto-checkpoint runs inside the commit that takes the log past 1 000
//! pages: the request whose write did it waits while the log is copied into the database
//! file and (under `synchronous = "full"`) the file is synced — about 6 of the 51 ms of a
//! 10 000-token bulk revoke (docs/PERFORMANCE.md). Instead, every pooled connection
//! reports through its WAL hook how long the log is after each commit, and the writer
//! thread checkpoints on the same connection once it has answered the writes of that
//! commit (`writer.rs`), before it takes the next group. Writes that arrive meanwhile
//! wait, as they would have behind SQLite's own checkpoint, and then share one commit.
//!
//! Why not a thread of its own: a checkpoint from another connection copies the log but
//! does not shorten it. Only a writer that begins when the whole log has been copied
//! starts it over, and under a steady load some commit always lands between the copy and
//! the next write; a thread asked after every commit past the threshold ran one
//! checkpoint (two fsyncs) per commit, and cost a quarter of the refreshes at 1 client.
//! On the writer's own connection nothing commits during the copy, so the next write
//! starts the log over.
//!
//! The migrations commit outside the writer, on the connection that opens the database,
//! which then calls [`if_due`] itself (`pool.rs`). Any commit that reaches neither still
//! has a bound: past [`BACKSTOP_PAGES`] the committing connection checkpoints itself, as
//! SQLite would.

use std::cell::Cell;
use std::os::raw::c_int;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

/// Log pages past which the writer checkpoints after answering: SQLite's default
/// auto-checkpoint threshold.
pub(super) const AT_PAGES: i32 = 1_000;
/// Log pages past which the committing connection checkpoints itself, before its commit
/// returns: 40 MB of 4 KiB pages.
pub(super) const BACKSTOP_PAGES: i32 = 10_000;

thread_local! {
    /// Pages in the log after the last commit on this thread (0 once taken).
    static LOG_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// Installs the hook on a connection. It replaces SQLite's auto-checkpoint (which is
/// itself a WAL hook).
pub(super) fn install(conn: &Connection) {
    conn.wal_hook(Some(after_commit));
}

/// Called by SQLite on the committing thread, after each commit to the log.
fn after_commit(wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    if pages >= BACKSTOP_PAGES {
        // A failed checkpoint is no failed commit: the commit is in the log already.
        if let Err(e) = wal.checkpoint() {
            tracing::warn!(error = %e, pages, "checkpoint of a long log failed");
        }
        LOG_PAGES.set(0);
    } else {
        LOG_PAGES.set(pages);
    }
    Ok(())
}

/// After this thread's commit on `conn` has been answered: copies the log into the
/// database file when it has grown past [`AT_PAGES`].
pub(super) fn if_due(conn: &Connection) {
    if LOG_PAGES.replace(0) < AT_PAGES {
        return;
    }
    // busy = 1 when a reader's snapshot kept part of the log: a later round copies it.
    let ran = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match ran {
        Ok((busy, log, copied)) => tracing::debug!(busy, log, copied, "checkpoint"),
        Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
    }
}
