//! The writer queue and group commit.
//!
//! This process's write transactions queue here and run one at a time, in the order they
//! were asked for: on SQLite, which has one writer, instead of polling its lock; on
//! PostgreSQL so that one process's serializable transactions do not abort each other
//! (see `pool.rs`).
//!
//! Writes that arrive while a transaction is in flight wait; the next transaction takes
//! all of them (up to [`MAX_GROUP`]) and commits them together, so that one commit — one
//! fsync under `synchronous = "full"` — makes many durable. Nothing waits on purpose: a
//! write that finds the queue empty runs at once, alone. Each write of a group runs in
//! its own savepoint: one that fails is rolled back alone and the others go on. Each is
//! answered only once the commit holding its change has succeeded; if a group's
//! transaction fails as a whole (its commit, or a statement that dooms the transaction),
//! each write of the group runs again alone, so that one write's failure never fails
//! another's. The closures may run more than once for that reason (as for PostgreSQL's
//! retries): everything they do is inside the transaction.
//!
//! `database.group_commit = false` makes every group a group of one: the control the
//! benchmark compares against.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::oneshot;

use super::{DbError, MAX_ATTEMPTS, Tx, TxInner, checkpoint, pool};
use crate::db::Db;

/// The most writes one transaction takes. A group's writes run one after the other
/// before the commit: a bound keeps the first of a long queue from waiting for the rest.
pub const MAX_GROUP: usize = 64;

/// The queue of this process's writes (shared by every clone of a [`Db`]).
pub(super) struct Writer {
    queue: Mutex<Queue>,
    max_group: usize,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    /// A blocking thread is taking groups off the queue: a new write only joins it.
    draining: bool,
}

/// What a group's transaction ended with.
enum Ended {
    /// Committed, or (a group of one) rolled back because its write failed: every write
    /// has its own result to answer.
    Done,
    /// The transaction failed as a whole; `retry`: running the group again may succeed.
    Failed { error: DbError, retry: bool },
}

/// One queued write: its closure, its result once run, and where the answer goes.
pub(super) trait Job: Send {
    fn queued_at(&self) -> Instant;
    /// Runs the write in `tx`; false when it failed (its changes must be undone).
    fn run(&mut self, tx: &Tx<'_>) -> bool;
    /// Answers the caller: the write's own failure if it failed; its result if it
    /// succeeded and `ended` is `Ok`; otherwise the transaction's error.
    fn answer(self: Box<Self>, ended: Result<(), &DbError>);
}

/// What the caller receives: the closure's result, or the panic it raised (resumed in
/// the caller, as if the closure had run there).
pub(super) type Answer<T, E> = Result<Result<T, E>, Box<dyn Any + Send>>;

pub(super) struct Pending<T, E, F> {
    f: F,
    result: Option<Answer<T, E>>,
    reply: oneshot::Sender<Answer<T, E>>,
    span: tracing::Span,
    queued_at: Instant,
}

impl<T, E, F> Pending<T, E, F> {
    pub(super) fn new(f: F) -> (Self, oneshot::Receiver<Answer<T, E>>) {
        let (reply, answer) = oneshot::channel();
        let queued_at = Instant::now();
        (Pending { f, result: None, reply, span: tracing::Span::current(), queued_at }, answer)
    }
}

impl<T, E, F> Job for Pending<T, E, F>
where
    F: FnMut(&Tx<'_>) -> Result<T, E> + Send,
    T: Send,
    E: From<DbError> + Send,
{
    fn queued_at(&self) -> Instant {
        self.queued_at
    }

    fn run(&mut self, tx: &Tx<'_>) -> bool {
        let _entered = self.span.enter();
        let f = &mut self.f;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(tx)));
        let ok = match &result {
            // On PostgreSQL a failed statement aborts the transaction (up to the
            // savepoint): a closure that swallowed the error has not done its work.
            Ok(Ok(_)) if tx.failed.get() => {
                let e = anyhow::anyhow!("a statement failed in a transaction that went on");
                self.result = Some(Ok(Err(E::from(DbError::Other(e)))));
                return false;
            }
            Ok(Ok(_)) => true,
            Ok(Err(_)) | Err(_) => false,
        };
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, ended: Result<(), &DbError>) {
        let answer = match (self.result, ended) {
            (Some(Ok(Err(own))), _) => Ok(Err(own)),
            (Some(Err(panic)), _) => Err(panic),
            (Some(Ok(Ok(out))), Ok(())) => Ok(Ok(out)),
            (Some(Ok(Ok(_))) | None, Err(e)) => Ok(Err(E::from(copy(e)))),
            (None, Ok(())) => {
                let e = anyhow::anyhow!("a write was answered without having run");
                Ok(Err(E::from(DbError::Other(e))))
            }
        };
        // The caller may have gone away (a client that hung up): its write stands.
        let _ = self.reply.send(answer);
    }
}

/// One failure of a group's transaction, told to each of its writes.
fn copy(e: &DbError) -> DbError {
    match e {
        DbError::NotFound => DbError::NotFound,
        DbError::Conflict(what) => DbError::Conflict(what.clone()),
        DbError::Unavailable(e) => DbError::Unavailable(anyhow::anyhow!("{e:#}")),
        DbError::Other(e) => DbError::Other(anyhow::anyhow!("{e:#}")),
    }
}

impl Writer {
    /// `max_group` writes per transaction at most: 1 turns grouping off.
    pub(super) fn new(max_group: usize) -> Writer {
        Writer { queue: Mutex::default(), max_group: max_group.max(1) }
    }

    /// Queues `job`; true when the caller must start draining the queue (nobody is).
    pub(super) fn push(&self, job: Box<dyn Job>) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        q.jobs.push_back(job);
        !std::mem::replace(&mut q.draining, true)
    }

    /// Writes waiting (not counting a group in flight).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.jobs.len())
    }

    /// Whether a group is being taken off the queue or run.
    #[cfg(test)]
    pub(super) fn draining(&self) -> bool {
        self.queue.lock().is_ok_and(|q| q.draining)
    }

    /// The next group, oldest first; `None` (and draining ends) when the queue is empty.
    fn next_group(&self) -> Option<Vec<Box<dyn Job>>> {
        let mut q = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if q.jobs.is_empty() {
            q.draining = false;
            return None;
        }
        let n = q.jobs.len().min(self.max_group);
        Some(q.jobs.drain(..n).collect())
    }
}

impl Db {
    /// Takes groups off the queue and commits them until it is empty. Runs on a blocking
    /// thread, one at a time per process.
    pub(super) fn drain_writes(&self) {
        while let Some(group) = self.writer.next_group() {
            for job in &group {
                self.metrics.writer_wait(job.queued_at().elapsed());
            }
            self.metrics.write_group(group.len());
            self.commit_group(group);
        }
    }

    /// Runs `group` in one transaction (again, after a lost race on PostgreSQL), and
    /// answers each of its writes.
    fn commit_group(&self, group: Vec<Box<dyn Job>>) {
        let mut group = group;
        let mut attempt = 1;
        loop {
            let asked = Instant::now();
            let mut conn = match self.connection() {
                Ok(conn) => conn,
                Err(e) => return answer_all(group, Err(&e)),
            };
            self.metrics.pool_wait(asked.elapsed());
            match self.attempt_group(&mut conn, &mut group) {
                Ended::Done => {
                    answer_all(group, Ok(()));
                    // Only now, once the writes are answered: a long log is copied into
                    // the database file before the next group begins.
                    if let pool::Conn::Sqlite(c) = &conn {
                        checkpoint::if_due(c);
                    }
                    return;
                }
                Ended::Failed { retry: true, .. } if attempt < MAX_ATTEMPTS => {
                    drop(conn);
                    tracing::debug!(
                        attempt,
                        "transaction lost a race (or its connection); retrying"
                    );
                    pool::backoff(attempt);
                    attempt += 1;
                }
                Ended::Failed { error, .. } if group.len() > 1 => {
                    drop(conn);
                    tracing::warn!(
                        error = %format!("{error:#}"),
                        writes = group.len(),
                        "a grouped transaction failed; running its writes one by one"
                    );
                    for job in group {
                        self.commit_group(vec![job]);
                    }
                    return;
                }
                Ended::Failed { error, .. } => return answer_all(group, Err(&error)),
            }
        }
    }

    /// One transaction over `group`: each write in a savepoint of its own when there are
    /// several; a group of one runs bare, as an ungrouped write would.
    fn attempt_group(&self, conn: &mut pool::Conn, group: &mut [Box<dyn Job>]) -> Ended {
        let tx = match self.begin(conn, true) {
            Ok(tx) => tx,
            Err((error, retry)) => return Ended::Failed { error, retry },
        };
        let grouped = group.len() > 1;
        for job in group.iter_mut() {
            if grouped && let Err(error) = tx.batch("SAVEPOINT w") {
                return Ended::Failed { retry: tx.retry.get(), error };
            }
            let counted = tx.revoked.borrow().len();
            let ok = job.run(&tx);
            if tx.retry.get() {
                // PostgreSQL: the whole transaction is doomed (dropping it rolls it back).
                let error = DbError::Other(anyhow::anyhow!("the transaction lost a race"));
                return Ended::Failed { error, retry: true };
            }
            if !grouped {
                if !ok {
                    // Dropping the transaction rolls it back; the write answers its error.
                    return Ended::Done;
                }
                break;
            }
            let undo = if ok {
                "RELEASE SAVEPOINT w"
            } else {
                tx.revoked.borrow_mut().truncate(counted);
                "ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w"
            };
            if let Err(error) = tx.batch(undo) {
                return Ended::Failed { retry: tx.retry.get(), error };
            }
            tx.failed.set(false);
        }
        match self.commit(tx) {
            Ok(()) => Ended::Done,
            Err((error, retry)) => Ended::Failed { error, retry },
        }
    }
}

fn answer_all(group: Vec<Box<dyn Job>>, ended: Result<(), &DbError>) {
    for job in group {
        job.answer(ended);
    }
}

impl Tx<'_> {
    /// Runs savepoint statements (the same text on both backends).
    fn batch(&self, sql: &str) -> Result<(), DbError> {
        match &self.inner {
            TxInner::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            TxInner::Pg(tx) => tx.borrow_mut().batch_execute(sql).map_err(|e| self.pg_error(e)),
        }
    }
}

#[cfg(test)]
mod tests;
