//! Checkpoints of the SQLite log off the request path.
//!
//! SQLite's own auto-checkpoint runs inside the commit that takes the log past 1 000
//! pages: that request waits while the log is copied into the database file and (under
//! `synchronous = "full"`) the file is synced — about 6 of the 51 ms of a 10 000-token
//! bulk revoke (docs/PERFORMANCE.md). Instead, every pooled connection reports through
//! its WAL hook how long the log is after each commit; past [`AT_PAGES`] the committing
//! thread hands the checkpoint to a thread of this database's own, with a connection of
//! its own, and goes on to answer. A PASSIVE checkpoint there never blocks a writer.
//!
//! Should that thread fall behind (or be gone), the log still has a bound: past
//! [`BACKSTOP_PAGES`] the committing connection checkpoints itself, as SQLite would.

use std::cell::Cell;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

/// Log pages past which a checkpoint is handed to the background: SQLite's default
/// auto-checkpoint threshold.
pub(super) const AT_PAGES: i32 = 1_000;
/// Log pages past which the committing connection checkpoints itself (the background
/// has fallen behind): 40 MB of 4 KiB pages.
pub(super) const BACKSTOP_PAGES: i32 = 10_000;

thread_local! {
    /// Pages in the log after the last commit on this thread (0 once taken).
    static LOG_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// Installs the hook on a pooled connection. It replaces SQLite's auto-checkpoint (which
/// is itself a WAL hook).
pub(super) fn install(conn: &Connection) {
    conn.wal_hook(Some(after_commit));
}

/// Called by SQLite on the committing thread, after each commit to the log.
fn after_commit(wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    if pages >= BACKSTOP_PAGES {
        // A failed checkpoint is no failed commit: the commit is in the log already.
        if let Err(e) = wal.checkpoint() {
            tracing::warn!(error = %e, pages, "inline checkpoint of a long log failed");
        }
        INLINE.fetch_add(1, Ordering::Relaxed);
        LOG_PAGES.set(0);
    } else {
        LOG_PAGES.set(pages);
    }
    Ok(())
}

/// Checkpoints run inline by the backstop, process-wide (for the tests).
static INLINE: AtomicU64 = AtomicU64::new(0);

/// Pages the log held after this thread's last commit, reset to 0.
fn take_log_pages() -> i32 {
    LOG_PAGES.replace(0)
}

/// The background checkpointer of one database file. Its thread ends when the last
/// [`Db`](super::Db) of the file is dropped.
pub(super) struct Checkpointer {
    /// `None` once dropped: the thread then closes its connection and ends.
    nudge: Mutex<Option<SyncSender<()>>>,
    /// Joined on drop, so that the connection is closed before the process may exit: the
    /// last connection to close checkpoints the log and removes it, as it did before this
    /// thread existed (a `sessiond migrate` leaves no `-wal` file behind).
    thread: Option<JoinHandle<()>>,
    /// Checkpoints the thread has run (read by the tests).
    #[cfg(test)]
    done: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Starts the thread, with `conn` (configured like the pool's) as its connection.
    pub(super) fn start(conn: Connection) -> std::io::Result<Checkpointer> {
        // One pending nudge is enough: a checkpoint copies everything committed before it.
        let (nudge, nudged) = mpsc::sync_channel(1);
        let done = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("sessiond-checkpoint".into())
            .spawn(move || run(conn, &nudged, &counted))?;
        #[cfg(not(test))]
        drop(done);
        Ok(Checkpointer {
            nudge: Mutex::new(Some(nudge)),
            thread: Some(thread),
            #[cfg(test)]
            done,
        })
    }

    /// After a commit on this thread: hands a checkpoint to the background when the log
    /// has grown past [`AT_PAGES`].
    pub(super) fn after_commit(&self) {
        if take_log_pages() < AT_PAGES {
            return;
        }
        let nudge = self.nudge.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match nudge.as_ref().map(|n| n.try_send(())) {
            // Full: a checkpoint is already asked for and will copy this commit too.
            None | Some(Ok(()) | Err(TrySendError::Full(()))) => {}
            Some(Err(TrySendError::Disconnected(()))) => {
                tracing::warn!("the checkpoint thread is gone; the log is checkpointed inline")
            }
        }
    }

    /// Background checkpoints run so far.
    #[cfg(test)]
    pub(super) fn background_runs(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

/// Checkpoints run inline by the backstop in this process so far.
#[cfg(test)]
pub(super) fn inline_runs() -> u64 {
    INLINE.load(Ordering::Relaxed)
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.nudge.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the checkpoint thread panicked");
        }
    }
}

fn run(conn: Connection, nudged: &Receiver<()>, done: &AtomicU64) {
    while nudged.recv().is_ok() {
        // busy = 1 when a reader's snapshot (or another checkpoint) kept part of the log:
        // the next nudge copies the rest.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        }) {
            Ok((busy, log, copied)) => tracing::debug!(busy, log, copied, "checkpoint"),
            Err(e) => tracing::warn!(error = %e, "background checkpoint failed"),
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the checkpoint connection failed");
    }
}
