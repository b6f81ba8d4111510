//! The store writer: one OS thread that owns every write of the daemon and commits them in
//! groups.
//!
//! A durable redb commit costs one or two fsyncs whatever it holds, so committing each
//! passage alone caps a gate PC at one fsync per passage, and doing it inline on an async
//! worker thread stalls every other task of that worker meanwhile. The [`Writer`] moves all
//! writes to one dedicated thread (`kakou-store-writer`): callers queue a job and wait for its
//! answer; the thread takes the first job and every job queued behind it (up to
//! [`MAX_BATCH`]), runs them in order in one write transaction, commits once with
//! `Durability::Immediate`, and only then answers them all. Concurrent callers share one
//! fsync, and the async executor never blocks on the disk.
//!
//! One failing job must not cost the others, and redb cannot roll back part of a dirty
//! transaction, so when a job fails (or panics) the transaction is aborted, that job gets its
//! error, and the batch is run again without it on a fresh transaction. Jobs are therefore
//! `FnMut`, and must touch nothing but the [`WriteTx`] (see [`Writer::write`]).

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use redb::Database;
use tokio::sync::oneshot;

use super::{Db, Store, StoreError, WriteTx};

/// The most jobs committed in one transaction. A bound keeps one batch's work (and the time
/// its first caller waits) in proportion; the rest wait for the next commit.
pub const MAX_BATCH: usize = 256;

/// How long lazy jobs ([`Writer::write_lazy`]) wait for a durable job to share its commit
/// before they are committed on their own. On a busy gate they ride on the next passage's
/// commit; on a quiet one they cost one commit per `LAZY_HOLD` at most.
pub const LAZY_HOLD: Duration = Duration::from_millis(500);

/// A handle on the store writer thread. Cheap to clone and share (a channel sender); every
/// clone queues on the same thread. When the last handle is dropped, the thread commits what
/// is queued and exits; [`Writer::shutdown`] does the same and waits for it.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.shared.path)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What the writer has done since it started, for metrics. Every counter only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: u64,
    /// Jobs committed (their writes are on disk), over all batches.
    pub jobs: u64,
    /// The most jobs one committed transaction held.
    pub largest_batch: u64,
    /// Jobs that returned an error or panicked (nothing of them was stored).
    pub failed_jobs: u64,
    /// Batches that could not be begun, committed or aborted (every job of them failed).
    pub failed_batches: u64,
    /// Time spent in redb's commit (mostly fsync), over all batches.
    pub commit_time: Duration,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    jobs: AtomicU64,
    largest_batch: AtomicU64,
    failed_jobs: AtomicU64,
    failed_batches: AtomicU64,
    commit_nanos: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> WriterStats {
        WriterStats {
            batches: self.batches.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            failed_jobs: self.failed_jobs.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            commit_time: Duration::from_nanos(self.commit_nanos.load(Ordering::Relaxed)),
        }
    }
}

struct Shared {
    path: Arc<Path>,
    counters: Counters,
}

enum Msg {
    Job(Box<dyn Job>),
    /// Stop after the jobs queued before this; answer with the final counters.
    Stop(oneshot::Sender<WriterStats>),
}

impl Writer {
    /// Starts the writer thread on `store`, which must be writable. The thread holds its own
    /// handle on the store until it exits.
    pub fn spawn(store: Store) -> Result<Writer, StoreError> {
        if !store.is_writable() {
            return Err(StoreError::ReadOnly {
                path: store.path().to_path_buf(),
            });
        }
        let shared = Arc::new(Shared {
            path: store.inner.path.clone(),
            counters: Counters::default(),
        });
        let (queue, jobs) = mpsc::channel();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("kakou-store-writer".into())
            .spawn(move || run(store, jobs, &thread_shared))
            .map_err(|e| StoreError::WriterSpawn {
                path: shared.path.to_path_buf(),
                source: e,
            })?;
        Ok(Writer { queue, shared })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Queues `f` and resolves to its result once the transaction that contains it is
    /// durably committed: an `Ok` means the writes are on disk, so the caller may act on it
    /// (lift a barrier, acknowledge a message). An `Err` means nothing of `f` was stored:
    /// `f`'s own error, [`StoreError::WritePanicked`], [`StoreError::BatchFailed`] when the
    /// batch could not be committed, [`StoreError::WriterStopped`] when the writer is not
    /// running; the one exception is [`StoreError::WriterLost`] (the thread died while
    /// committing), whose write may or may not be stored.
    ///
    /// `f` runs on the writer thread, in one transaction with the jobs of other callers; it
    /// sees the writes of the jobs queued before it. **It may run more than once**: when a
    /// job after it in the same batch fails, the transaction is aborted and `f` runs again on
    /// a fresh one, and only its last result is returned. So `f` must act only through the
    /// [`WriteTx`] (which the abort undoes) and give the same result for the same store
    /// contents: no sending, publishing or counting from inside it; do that once the future
    /// resolves. It should also be quick: the whole batch waits for it.
    ///
    /// The job is queued when `write` is called, not when the future is first polled, so
    /// jobs are committed in the order of the calls. Dropping the future does not cancel the
    /// write; only its answer is lost.
    pub fn write<T, E, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, E>> + Send + 'static + use<T, E, F>
    where
        F: FnMut(&mut WriteTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.queue_write(f, true)
    }

    /// [`Writer::write`] for changes that may be lost in a crash, for bookkeeping whose loss
    /// only repeats work (an outbox message marked delivered is, after a crash, published
    /// again and dropped by its receiver). Lazy jobs wait up to [`LAZY_HOLD`] for a durable
    /// job and share its commit, so on a busy gate they cost no commit of their own; when
    /// none comes they are committed together, without waiting for the disk where redb
    /// allows it. A store opened shared (the daemon's default, so that backups and checks can
    /// read it alongside) does not: there that commit is durable too. The future resolves
    /// after that commit, up to [`LAZY_HOLD`] later than a durable write's would.
    pub fn write_lazy<T, E, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, E>> + Send + 'static + use<T, E, F>
    where
        F: FnMut(&mut WriteTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.queue_write(f, false)
    }

    fn queue_write<T, E, F>(
        &self,
        f: F,
        durable: bool,
    ) -> impl Future<Output = Result<T, E>> + Send + 'static + use<T, E, F>
    where
        F: FnMut(&mut WriteTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let queued = self.submit(f, durable);
        let path = self.shared.path.clone();
        async move {
            match queued {
                Ok(answer) => answer.await.unwrap_or_else(|_| Err(lost(&path))),
                Err(e) => Err(e.into()),
            }
        }
    }

    /// [`Writer::write`] for callers on blocking threads (CLI tools, `spawn_blocking`, plain
    /// threads): blocks until the job's transaction is committed. Same contract, same errors.
    ///
    /// # Panics
    ///
    /// When called from inside an async executor (a tokio worker thread), where blocking
    /// would stall every task of that thread: use [`Writer::write`] there.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnMut(&mut WriteTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(f, true)?
            .blocking_recv()
            .unwrap_or_else(|_| Err(lost(&self.shared.path)))
    }

    fn submit<T, E, F>(
        &self,
        f: F,
        durable: bool,
    ) -> Result<oneshot::Receiver<Result<T, E>>, StoreError>
    where
        F: FnMut(&mut WriteTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            f,
            result: None,
            reply: Some(reply),
            path: self.shared.path.clone(),
            committing: false,
            durable,
        });
        self.queue
            .send(Msg::Job(job))
            .map_err(|_| StoreError::WriterStopped {
                path: self.shared.path.to_path_buf(),
            })?;
        Ok(answer)
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        self.shared.counters.snapshot()
    }

    /// Stops the writer: the jobs queued before this call are committed and answered, later
    /// writes (through other clones of this handle) fail with [`StoreError::WriterStopped`].
    /// Resolves once the thread has let go of the store, with its final counters; an `Err`
    /// when the writer had already stopped or its thread had failed. Like [`Writer::write`],
    /// the stop is queued by the call itself.
    pub fn shutdown(
        self,
    ) -> impl Future<Output = Result<WriterStats, StoreError>> + Send + 'static {
        let stopped = self.stop();
        let path = self.shared.path.clone();
        async move { stopped?.await.map_err(|_| stopped_error(&path)) }
    }

    /// [`Writer::shutdown`] for blocking threads; panics inside an async executor, like
    /// [`Writer::write_blocking`].
    pub fn shutdown_blocking(self) -> Result<WriterStats, StoreError> {
        self.stop()?
            .blocking_recv()
            .map_err(|_| stopped_error(&self.shared.path))
    }

    fn stop(&self) -> Result<oneshot::Receiver<WriterStats>, StoreError> {
        let (done, stopped) = oneshot::channel();
        self.queue
            .send(Msg::Stop(done))
            .map_err(|_| stopped_error(&self.shared.path))?;
        Ok(stopped)
    }
}

fn stopped_error(path: &Path) -> StoreError {
    StoreError::WriterStopped {
        path: path.to_path_buf(),
    }
}

/// The answer of a job whose reply was dropped unanswered: the thread died (its jobs answer
/// for themselves when dropped, so this is only a fallback).
fn lost<E: From<StoreError>>(path: &Path) -> E {
    StoreError::WriterLost {
        path: path.to_path_buf(),
    }
    .into()
}

// ---- the thread ----

/// Set once a store refused a non-durable commit, so that is said once.
static LAZY_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A queued write, its result kept until the batch's commit decides what to answer.
trait Job: Send {
    /// Runs the job in `tx` and keeps its result (replacing that of an earlier run). False
    /// when it failed or panicked: the transaction must be aborted and the job answered.
    fn run(&mut self, tx: &mut WriteTx) -> bool;
    /// The batch's commit starts: if the thread dies before answering, the job's outcome is
    /// unknown.
    fn committing(&mut self);
    /// Sends the kept result.
    fn answer(self: Box<Self>);
    /// Sends `e` instead: the batch failed as a whole.
    fn fail(self: Box<Self>, e: StoreError);
    /// Its batch must wait for the disk ([`Writer::write`]); false for
    /// [`Writer::write_lazy`].
    fn durable(&self) -> bool;
}

struct Pending<F, T, E: From<StoreError>> {
    f: F,
    result: Option<Result<T, E>>,
    reply: Option<oneshot::Sender<Result<T, E>>>,
    path: Arc<Path>,
    committing: bool,
    durable: bool,
}

impl<F, T, E> Job for Pending<F, T, E>
where
    F: FnMut(&mut WriteTx) -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
{
    fn run(&mut self, tx: &mut WriteTx) -> bool {
        // Unwind safety: after a panic the transaction is aborted and the job dropped, never
        // run again, so no state it left half-changed is seen.
        let result = match catch_unwind(AssertUnwindSafe(|| (self.f)(tx))) {
            Ok(result) => result,
            Err(panic) => Err(StoreError::WritePanicked {
                path: self.path.to_path_buf(),
                message: panic_message(panic.as_ref()),
            }
            .into()),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn committing(&mut self) {
        self.committing = true;
    }

    fn answer(mut self: Box<Self>) {
        if let (Some(reply), Some(result)) = (self.reply.take(), self.result.take()) {
            // The caller may have dropped its future; the write stands all the same.
            let _ = reply.send(result);
        }
    }

    fn fail(mut self: Box<Self>, e: StoreError) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(e.into()));
        }
    }
}

impl<F, T, E: From<StoreError>> Drop for Pending<F, T, E> {
    /// A job dropped unanswered: the writer stopped before running it (it was queued behind a
    /// shutdown), or the thread is unwinding.
    fn drop(&mut self) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let path = self.path.to_path_buf();
        let e = if self.committing {
            StoreError::WriterLost { path }
        } else {
            StoreError::WriterStopped { path }
        };
        let _ = reply.send(Err(e.into()));
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// The thread: serves the queue, then lets go of the store and the queue before telling the
/// callers of [`Writer::shutdown`] it is done.
fn run(store: Store, queue: mpsc::Receiver<Msg>, shared: &Shared) {
    let mut stops = serve(&store, &queue, shared);
    // Jobs queued behind a stop are dropped and answer `WriterStopped` themselves; a second
    // stop already queued gets the counters too.
    for msg in queue.try_iter() {
        if let Msg::Stop(done) = msg {
            stops.push(done);
        }
    }
    drop(queue);
    drop(store);
    let stats = shared.counters.snapshot();
    for done in stops {
        let _ = done.send(stats);
    }
}

/// Batch after batch until every handle is gone or a stop is asked for; returns the stops.
fn serve(
    store: &Store,
    queue: &mpsc::Receiver<Msg>,
    shared: &Shared,
) -> Vec<oneshot::Sender<WriterStats>> {
    let mut stops = Vec::new();
    let Db::Rw(db) = &store.inner.db else {
        // Refused by `Writer::spawn`.
        return stops;
    };
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    // When the batch so far holds only lazy jobs: since when, and so until when it may wait
    // for a durable job to share its commit.
    let mut lazy_since: Option<Instant> = None;
    loop {
        let msg = match lazy_since {
            None => match queue.recv() {
                Ok(msg) => msg,
                // Every handle dropped and the queue empty.
                Err(_) => break,
            },
            Some(since) => {
                let left = LAZY_HOLD.saturating_sub(since.elapsed());
                match queue.recv_timeout(left) {
                    Ok(msg) => msg,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        lazy_since = None;
                        commit(db, &shared.path, &mut batch, &shared.counters);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Job(job) => batch.push(job),
                Msg::Stop(done) => {
                    stops.push(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        let only_lazy = !batch.iter().any(|j| j.durable());
        if only_lazy && stops.is_empty() && batch.len() < MAX_BATCH {
            // Lazy jobs alone would cost a commit of their own (a durable one on a shared
            // store): hold them a while for the next durable job.
            lazy_since.get_or_insert_with(Instant::now);
            continue;
        }
        lazy_since = None;
        commit(db, &shared.path, &mut batch, &shared.counters);
        if !stops.is_empty() {
            break;
        }
    }
    // Whatever is held when the last handle goes is committed before the thread lets go.
    commit(db, &shared.path, &mut batch, &shared.counters);
    stops
}

/// Runs the batch in one transaction and commits it; a failing job is taken out and the rest
/// run again. Empties `batch`, every job answered.
fn commit(db: &Database, path: &Arc<Path>, batch: &mut Vec<Box<dyn Job>>, counters: &Counters) {
    'attempt: while !batch.is_empty() {
        let mut tx = match WriteTx::begin(db, path) {
            Ok(tx) => tx,
            Err(e) => return fail_all(path, batch, "begin a write transaction", e, counters),
        };
        for i in 0..batch.len() {
            if batch[i].run(&mut tx) {
                continue;
            }
            let failed = batch.remove(i);
            counters.failed_jobs.fetch_add(1, Ordering::Relaxed);
            let aborted = tx.txn.abort();
            // Answered once its writes are undone.
            failed.answer();
            if let Err(e) = aborted {
                return fail_all(
                    path,
                    batch,
                    "abort a failed transaction",
                    e.into(),
                    counters,
                );
            }
            continue 'attempt;
        }
        if !batch.iter().any(|j| j.durable()) {
            // Only lazy jobs: on disk with the next durable commit (see `write_lazy`). A store
            // shared with other processes refuses that; the batch is then committed durably.
            if let Err(e) = tx.txn.set_durability(redb::Durability::None)
                && !LAZY_REFUSED.swap(true, Ordering::Relaxed)
            {
                tracing::info!("store writer: lazy writes are committed durably here ({e})");
            }
        }
        for job in batch.iter_mut() {
            job.committing();
        }
        let started = Instant::now();
        let committed = tx.txn.commit();
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if let Err(e) = committed {
            return fail_all(path, batch, "commit", e.into(), counters);
        }
        let n = batch.len() as u64;
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.jobs.fetch_add(n, Ordering::Relaxed);
        counters.largest_batch.fetch_max(n, Ordering::Relaxed);
        counters.commit_nanos.fetch_add(took, Ordering::Relaxed);
        for job in batch.drain(..) {
            job.answer();
        }
    }
}

fn fail_all(
    path: &Path,
    batch: &mut Vec<Box<dyn Job>>,
    stage: &'static str,
    e: redb::Error,
    counters: &Counters,
) {
    tracing::error!(path = %path.display(), stage, error = %e, jobs = batch.len(), "store writer batch failed");
    counters.failed_batches.fetch_add(1, Ordering::Relaxed);
    let source = Arc::new(e);
    let jobs = batch.len();
    for job in batch.drain(..) {
        job.fail(StoreError::BatchFailed {
            path: path.to_path_buf(),
            stage,
            jobs,
            source: source.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    //! Real redb files in temporary folders. Batches are formed deterministically by holding
    //! the writer thread inside a job (a gate) while the others queue behind it.

    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::sample::synthetic_passage;
    use crate::store::{OutboxMessage, PassageRecord};

    const BASE_MS: i64 = 1_795_737_600_000;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("kakou.redb")).expect("open store");
        (dir, store)
    }

    fn passage(n: u64) -> PassageRecord {
        synthetic_passage(n, BASE_MS)
    }

    /// A passage and its outbox message, as a lane writes them; returns the message id.
    fn put(tx: &mut WriteTx, rec: &PassageRecord) -> Result<u64, StoreError> {
        tx.put_passage(rec)?;
        tx.outbox_push(&OutboxMessage::new(
            "kakou/test/passage",
            rec.id().as_bytes().to_vec(),
            BASE_MS,
        ))
    }

    fn stored(store: &Store, rec: &PassageRecord) -> bool {
        store.passage(rec.id()).expect("read passage").is_some()
    }

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("refused by the job")]
        Refused,
        #[error(transparent)]
        Store(#[from] StoreError),
    }

    /// Queues a job that holds the writer thread until the returned sender is dropped, and
    /// waits until the thread is inside it: whatever is queued meanwhile is committed
    /// together in the next batch.
    async fn hold(
        w: &Writer,
    ) -> (
        mpsc::Sender<()>,
        impl Future<Output = Result<(), StoreError>> + use<>,
    ) {
        let (started, mut inside) = tokio::sync::mpsc::unbounded_channel();
        let (release, released) = mpsc::channel::<()>();
        let held = w.write(move |_tx| {
            let _ = started.send(());
            // Returns when the sender is dropped (at once on a rerun).
            let _ = released.recv();
            Ok(())
        });
        inside.recv().await.expect("the gate job ran");
        (release, held)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_commits_and_every_write_is_stored_when_answered() {
        const TASKS: u64 = 8;
        const EACH: u64 = 200;
        let (_dir, store) = store();
        let w = Writer::spawn(store.clone()).expect("spawn writer");
        let (release, held) = hold(&w).await;
        let (queued, mut first_queued) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let (w, store, queued) = (w.clone(), store.clone(), queued.clone());
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..EACH {
                    let rec = passage(t * EACH + i);
                    let job = rec.clone();
                    let answer = w.write(move |tx| put(tx, &job));
                    if i == 0 {
                        queued.send(()).expect("test alive");
                    }
                    ids.push(answer.await.expect("write"));
                    assert!(stored(&store, &rec), "{} answered but not stored", rec.id());
                }
                ids
            }));
        }
        // Every task's first write waits behind the gate, so they commit together.
        for _ in 0..TASKS {
            first_queued.recv().await.expect("task queued");
        }
        drop(release);
        held.await.expect("gate job");
        let mut ids = Vec::new();
        for t in tasks {
            ids.extend(t.await.expect("task"));
        }
        ids.sort_unstable();
        assert_eq!(ids, (1..=TASKS * EACH).collect::<Vec<_>>());
        assert_eq!(
            store
                .snapshot()
                .expect("snapshot")
                .passage_count()
                .expect("count"),
            TASKS * EACH
        );
        assert_eq!(
            store.outbox_pending(usize::MAX).expect("outbox").len() as u64,
            TASKS * EACH
        );

        let stats = w.stats();
        assert_eq!(stats.jobs, TASKS * EACH + 1, "{stats:?}");
        assert!(
            stats.batches < stats.jobs,
            "no batch held two jobs: {stats:?}"
        );
        assert!(stats.largest_batch >= TASKS, "{stats:?}");
        assert_eq!((stats.failed_jobs, stats.failed_batches), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_gets_its_error_and_the_rest_of_its_batch_commits_without_it() {
        let (_dir, store) = store();
        let w = Writer::spawn(store.clone()).expect("spawn writer");
        let (release, held) = hold(&w).await;

        let (a, b, c) = (passage(1), passage(2), passage(3));
        let runs_a = Arc::new(AtomicUsize::new(0));
        let before = {
            let (a, runs) = (a.clone(), runs_a.clone());
            w.write(move |tx| {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, TestError>(put(tx, &a)?)
            })
        };
        let failing = {
            let b = b.clone();
            w.write(move |tx| {
                put(tx, &b)?;
                Err::<u64, _>(TestError::Refused)
            })
        };
        let runs_c = Arc::new(AtomicUsize::new(0));
        let after = {
            let (c, runs) = (c.clone(), runs_c.clone());
            w.write(move |tx| {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, TestError>(put(tx, &c)?)
            })
        };
        drop(release);
        held.await.expect("gate job");

        assert!(matches!(failing.await, Err(TestError::Refused)));
        // The outbox ids come from the rerun: the aborted first run of `before` is forgotten.
        assert_eq!(before.await.expect("job before the failing one"), 1);
        assert_eq!(after.await.expect("job after the failing one"), 2);
        assert_eq!(runs_a.load(Ordering::SeqCst), 2, "ran, aborted, ran again");
        assert_eq!(runs_c.load(Ordering::SeqCst), 1);

        assert!(stored(&store, &a) && stored(&store, &c));
        assert!(!stored(&store, &b), "the failing job's passage was stored");
        let outbox = store.outbox_pending(usize::MAX).expect("outbox");
        let payloads: Vec<&[u8]> = outbox
            .iter()
            .map(|e| e.message.payload.as_slice())
            .collect();
        assert_eq!(payloads, [a.id().as_bytes(), c.id().as_bytes()]);

        let stats = w.stats();
        assert_eq!(stats.batches, 2, "the gate, then the three jobs: {stats:?}");
        assert_eq!(stats.jobs, 3, "{stats:?}");
        assert_eq!(stats.largest_batch, 2, "{stats:?}");
        assert_eq!(stats.failed_jobs, 1, "{stats:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_gets_the_panic_as_its_error_and_the_writer_goes_on() {
        let (_dir, store) = store();
        let w = Writer::spawn(store.clone()).expect("spawn writer");
        let (release, held) = hold(&w).await;
        let (a, b, c) = (passage(1), passage(2), passage(3));
        let before = {
            let a = a.clone();
            w.write(move |tx| put(tx, &a))
        };
        let panicking = {
            let b = b.clone();
            w.write(move |tx| -> Result<u64, StoreError> {
                put(tx, &b)?;
                panic!("boom in job {}", b.id());
            })
        };
        drop(release);
        held.await.expect("gate job");
        before.await.expect("job in the same batch");
        match panicking.await {
            Err(StoreError::WritePanicked { message, .. }) => {
                assert_eq!(message, format!("boom in job {}", b.id()))
            }
            other => panic!("expected the panic as an error, got {other:?}"),
        }
        let later = {
            let c = c.clone();
            w.write(move |tx| put(tx, &c)).await
        };
        assert_eq!(later.expect("write after the panic"), 2);
        assert!(stored(&store, &a) && stored(&store, &c) && !stored(&store, &b));
        assert_eq!(w.stats().failed_jobs, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_commits_the_queued_jobs_and_later_writes_are_refused() {
        let (_dir, store) = store();
        let w = Writer::spawn(store.clone()).expect("spawn writer");
        let other = w.clone();
        let (release, held) = hold(&w).await;
        let recs: Vec<_> = (0..50).map(passage).collect();
        let queued: Vec<_> = recs
            .iter()
            .map(|rec| {
                let rec = rec.clone();
                w.write(move |tx| put(tx, &rec))
            })
            .collect();
        let stopped = w.shutdown();
        drop(release);
        let stats = stopped.await.expect("shutdown");
        assert_eq!(stats.jobs, 51, "{stats:?}");
        held.await.expect("gate job");
        for answer in queued {
            answer.await.expect("queued write");
        }
        assert!(recs.iter().all(|r| stored(&store, r)));

        let refused = other.write(|tx| put(tx, &passage(99))).await;
        assert!(
            matches!(refused, Err(StoreError::WriterStopped { .. })),
            "{refused:?}"
        );
        assert!(other.shutdown().await.is_err());
        assert!(!stored(&store, &passage(99)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lazy_writes_are_committed_and_reach_the_disk_with_the_next_durable_one() {
        let (dir, store) = store();
        let w = Writer::spawn(store.clone()).expect("spawn writer");
        let lazy = passage(1);
        let l = lazy.clone();
        w.write_lazy(move |tx| put(tx, &l))
            .await
            .expect("lazy write");
        assert!(stored(&store, &lazy), "visible once answered");
        let durable = passage(2);
        let d = durable.clone();
        w.write(move |tx| put(tx, &d)).await.expect("durable write");
        w.shutdown().await.expect("shutdown");
        drop(store);
        // Opened again from the file: both are there.
        let again = Store::open(dir.path().join("kakou.redb")).expect("reopen");
        assert!(stored(&again, &lazy) && stored(&again, &durable));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_every_handle_lets_the_queued_jobs_finish() {
        let (_dir, store) = store();
        let w = Writer::spawn(store.clone()).expect("spawn writer");
        let (release, held) = hold(&w).await;
        let recs: Vec<_> = (0..20).map(passage).collect();
        let queued: Vec<_> = recs
            .iter()
            .map(|rec| {
                let rec = rec.clone();
                w.write(move |tx| put(tx, &rec))
            })
            .collect();
        drop(w);
        drop(release);
        held.await.expect("gate job");
        for answer in queued {
            answer.await.expect("queued write");
        }
        assert!(recs.iter().all(|r| stored(&store, r)));
    }

    #[test]
    fn write_blocking_from_plain_threads() {
        let (_dir, store) = store();
        let w = Writer::spawn(store.clone()).expect("spawn writer");
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| {
                            let rec = passage(t * 25 + i);
                            w.write_blocking(move |tx| put(tx, &rec)).expect("write")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ids: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=100).collect::<Vec<_>>());
        assert!((0..100).all(|n| stored(&store, &passage(n))));
        let err = w.write_blocking(|_tx| Err::<(), _>(TestError::Refused));
        assert!(matches!(err, Err(TestError::Refused)));
        let stats = w.shutdown_blocking().expect("shutdown");
        assert_eq!((stats.jobs, stats.failed_jobs), (100, 1));
    }

    #[test]
    fn a_read_only_store_is_refused() {
        let (dir, store) = store();
        drop(store);
        let ro = Store::open_read_only(dir.path().join("kakou.redb")).expect("open read-only");
        assert!(matches!(
            Writer::spawn(ro),
            Err(StoreError::ReadOnly { .. })
        ));
    }

    /// A result whose drop panics: answering it to a caller that went away kills the thread.
    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("a result that panics when dropped");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_writer_thread_gives_errors_instead_of_hanging() {
        let (_dir, store) = store();
        let w = Writer::spawn(store.clone()).expect("spawn writer");
        let (release, held) = hold(&w).await;
        let (a, b) = (passage(1), passage(2));
        let bomb = {
            let a = a.clone();
            w.write(move |tx| {
                put(tx, &a)?;
                Ok::<_, StoreError>(Bomb)
            })
        };
        drop(bomb);
        let same_batch = {
            let b = b.clone();
            w.write(move |tx| put(tx, &b))
        };
        drop(release);
        held.await.expect("gate job");
        // Committed, but the thread died before answering: the caller is told it may be.
        let lost = same_batch.await;
        assert!(
            matches!(lost, Err(StoreError::WriterLost { .. })),
            "{lost:?}"
        );
        assert!(stored(&store, &a) && stored(&store, &b));

        let refused = w.write(|tx| put(tx, &passage(3))).await;
        assert!(
            matches!(refused, Err(StoreError::WriterStopped { .. })),
            "{refused:?}"
        );
        assert!(matches!(
            w.shutdown().await,
            Err(StoreError::WriterStopped { .. })
        ));
    }
}
