//! A small fixed pool of threads for blocking work, with a bounded queue.
//!
//! The loop must never block, but some libraries only know how to (a database driver, a
//! compressor, `getaddrinfo`). A handler hands such work to the pool with [`ThreadPool::submit`],
//! together with a [`Waker`] for its own task, and returns `WouldBlock` after
//! `cx.wait_wake()`. A pool thread runs the work, puts the result in the [`Pending`] slot the
//! handler holds, and wakes the task through the executor's cross-thread wake; the handler, resumed,
//! takes the result from the slot.
//!
//! The queue is bounded: when [`ThreadPool::submit`] finds it full it refuses at once
//! ([`QueueFull`]), so a burst of slow requests turns into quick 503s instead of an ever-growing
//! backlog of work nobody will wait for.
//!
//! ```
//! use asycamore::pool::ThreadPool;
//!
//! let pool = ThreadPool::new(2, 8).unwrap();
//! let (tx, rx) = std::sync::mpsc::channel();
//! pool.execute(Box::new(move || tx.send(6 * 7).unwrap())).unwrap();
//! assert_eq!(rx.recv().unwrap(), 42);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use executor::{Cx, Step, Waker};

/// Default number of pool threads (`--threads`).
pub const THREADS: usize = 4;

/// Default bound on jobs waiting for a thread (`--pool-queue`).
pub const QUEUE: usize = 64;

/// A unit of blocking work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// The queue was full: the job was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the thread pool's queue is full")
    }
}

impl std::error::Error for QueueFull {}

/// Jobs waiting for a thread, and whether the pool is closing.
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// What the pool's threads and its owner share.
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job arrives or the pool closes.
    job_ready: Condvar,
    /// Most jobs waiting at once.
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock and panics are caught, so a poisoned lock holds a sound queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fixed set of threads taking jobs from one bounded queue. `Send + Sync`: one pool may serve
/// every worker of a server (share it in an `Arc`). Dropping it lets queued jobs finish, then
/// joins the threads.
pub struct ThreadPool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads.len())
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl ThreadPool {
    /// Starts `threads` threads (at least one) sharing a queue of at most `queue` waiting jobs.
    ///
    /// # Errors
    /// If a thread cannot be spawned.
    pub fn new(threads: usize, queue: usize) -> io::Result<ThreadPool> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::with_capacity(queue),
                closed: false,
            }),
            job_ready: Condvar::new(),
            capacity: queue,
        });
        let mut pool = ThreadPool {
            shared,
            threads: Vec::new(),
        };
        for i in 0..threads.max(1) {
            let shared = Arc::clone(&pool.shared);
            // Born with the server's signals blocked, like every thread the library starts.
            let thread =
                crate::signal::mask::spawn_thread(format!("pool-{i}"), move || run(&shared))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// Queues `job` for the next free thread.
    ///
    /// # Errors
    /// [`QueueFull`] if `capacity` jobs are already waiting (the job is dropped, not run).
    pub fn execute(&self, job: Job) -> Result<(), QueueFull> {
        let mut queue = self.shared.lock();
        if queue.jobs.len() >= self.shared.capacity || queue.closed {
            return Err(QueueFull);
        }
        queue.jobs.push_back(job);
        drop(queue);
        self.shared.job_ready.notify_one();
        Ok(())
    }

    /// Runs `work` on a pool thread; when it is done, its result is put in the returned slot and
    /// `waker` is woken. A panic in `work` is caught and reported through the slot.
    ///
    /// # Errors
    /// [`QueueFull`], as [`ThreadPool::execute`].
    pub fn submit<T, F>(&self, work: F, waker: Waker) -> Result<Pending<T>, QueueFull>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        let filled = Arc::clone(&slot);
        self.execute(Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(work)).map_err(|_| CallError::Panicked);
            *filled.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
            // After the slot is filled, so the woken task finds the result.
            waker.wake();
        }))?;
        Ok(Pending { slot })
    }

    /// Runs `work` on a pool thread for the task `cx` belongs to: [`ThreadPool::submit`] with
    /// the task's own waker. Keep the [`Pending`] in the handler's state and
    /// [`poll`](Pending::poll) it — right away and on every resume — until it is `Ready`. A full
    /// queue is not an error here but the result the `Pending` holds from the start
    /// ([`CallError::QueueFull`]), so a handler has one place that handles both failures.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use asycamore::executor::{Cx, Step, ready};
    /// use asycamore::pool::{Pending, ThreadPool};
    /// use asycamore::service::{Exchange, Handler};
    ///
    /// /// Answers with a sum computed on the pool.
    /// enum Sum {
    ///     Start(Arc<ThreadPool>), // not submitted yet
    ///     Waiting(Pending<u64>),  // a pool thread is adding
    /// }
    ///
    /// impl Handler for Sum {
    ///     fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
    ///         loop {
    ///             *self = match self {
    ///                 Sum::Start(pool) => Sum::Waiting(pool.call(|| (1..=1_000_000u64).sum(), cx)),
    ///                 Sum::Waiting(pending) => {
    ///                     match ready!(pending.poll(cx)) {
    ///                         Ok(sum) => ex.respond(200, &[], sum.to_string().as_bytes()),
    ///                         Err(e) => ex.fail(e.status(), &e.to_string()),
    ///                     }
    ///                     return Step::Ready(());
    ///                 }
    ///             };
    ///         }
    ///     }
    /// }
    /// # let _ = Sum::Start(Arc::new(ThreadPool::new(1, 1).unwrap()));
    /// ```
    pub fn call<T, F>(&self, work: F, cx: &Cx<'_>) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.submit(work, cx.waker())
            .unwrap_or_else(|QueueFull| Pending {
                slot: Arc::new(Mutex::new(Some(Err(CallError::QueueFull)))),
            })
    }

    /// Jobs waiting for a thread now.
    pub fn queued(&self) -> usize {
        self.shared.lock().jobs.len()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.job_ready.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A pool thread: take jobs until the pool closes and the queue is empty.
fn run(shared: &Shared) {
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.closed {
                    return;
                }
                queue = shared
                    .job_ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A job of `submit` catches its own panics; a raw `execute` job that panics must not
        // take the thread with it.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

/// Why a [`Pending`] has no value for its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The queue was full when [`ThreadPool::call`] was made: the work never ran.
    QueueFull,
    /// The work panicked (the pool thread caught it and lives on).
    Panicked,
}

impl CallError {
    /// The status to answer with: 503 for a full queue, the server being busy for now (RFC 9110
    /// §15.6.4); 500 for work that panicked (§15.6.1).
    pub fn status(self) -> u16 {
        match self {
            CallError::QueueFull => 503,
            CallError::Panicked => 500,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::QueueFull => fmt::Display::fmt(&QueueFull, f),
            CallError::Panicked => f.write_str("the work panicked"),
        }
    }
}

impl std::error::Error for CallError {}

/// The result of submitted work, once a pool thread has put it there.
#[derive(Debug)]
pub struct Pending<T> {
    slot: Arc<Mutex<Option<Result<T, CallError>>>>,
}

impl<T> Pending<T> {
    /// The result if the work has finished (then the slot is empty again), else `None`: a
    /// handler resumed early (by some other wake) waits again.
    pub fn take(&self) -> Option<Result<T, CallError>> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The result once the work has finished; until then asks `cx` to resume the task at the
    /// pool thread's wake and answers `WouldBlock` (return it from the handler). For work
    /// started with [`ThreadPool::call`] from the same task.
    pub fn poll(&self, cx: &mut Cx<'_>) -> Step<Result<T, CallError>> {
        match self.take() {
            Some(result) => Step::Ready(result),
            None => {
                // A wake that came before this wait is not lost: the executor latches it.
                cx.wait_wake();
                Step::WouldBlock
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn a_full_queue_refuses_at_once() {
        assert_send_sync::<ThreadPool>();
        let pool = ThreadPool::new(1, 1).unwrap();
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        pool.execute(Box::new(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
        }))
        .unwrap();
        started.recv_timeout(Duration::from_secs(5)).unwrap();
        // The thread is busy: one job may wait, the next is refused.
        pool.execute(Box::new(|| {})).unwrap();
        assert_eq!(pool.queued(), 1);
        assert_eq!(pool.execute(Box::new(|| {})), Err(QueueFull));
        release.send(()).unwrap();
        drop(pool); // joins after the queued job ran
    }

    #[test]
    fn a_panicking_job_does_not_kill_its_thread() {
        let pool = ThreadPool::new(1, 4).unwrap();
        pool.execute(Box::new(|| panic!("boom"))).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.execute(Box::new(move || tx.send(1).unwrap())).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));
    }
}
