//! Graceful shutdown: the handle any thread uses to begin it, and what one worker's connections
//! see of it.
//!
//! In order: [`ShutdownHandle::begin`] (from the signal thread, say) wakes every worker's
//! [`ShutdownWatcher`] task, which stops the acceptors at once, sets the worker's
//! [`WorkerShutdown::flag`] (`/healthz` answers 503 from then on) and wakes every connection in
//! its [`ConnectionRegistry`]: an idle one waits at most [`SHUTDOWN_IDLE_WAIT`] more for a
//! request that may be on its way, then closes; a busy one (or one whose request arrives)
//! finishes its current response with `Connection: close`. The worker itself decides when to
//! stop its loop (see `server`).
//!
//! Everything here but the handle is per worker and single-threaded (`Rc`, `Cell`): a connection
//! registers its waker once, when it first runs, and only the watcher reads the registry.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use executor::{Coroutine, Cx, Reason, Step, Waker};

/// How long an idle keep-alive connection still waits for a request once shutdown has begun,
/// instead of its keep-alive timeout. Closing it at once would reset a request already on its
/// way — written by a client that just read its previous response, sitting unread in the
/// kernel's buffer — and under load every busy keep-alive connection has one. Within this time
/// such a request arrives and is answered with `Connection: close`, so the client reconnects
/// cleanly (to the new process, after a restart); a connection that stays silent is closed
/// after it, which is the keep-alive timeout's ordinary race that clients already handle.
pub const SHUTDOWN_IDLE_WAIT: Duration = Duration::from_secs(1);

/// Begins a graceful shutdown of every worker, from any thread.
#[derive(Clone, Default)]
pub struct ShutdownHandle {
    begun: Arc<AtomicBool>,
    workers: Arc<Mutex<Vec<Waker>>>,
}

impl ShutdownHandle {
    /// Begins shutdown (once; later calls do nothing).
    pub fn begin(&self) {
        if self.begun.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Ok(workers) = self.workers.lock() {
            for waker in workers.iter() {
                waker.wake();
            }
        }
    }

    /// True once [`ShutdownHandle::begin`] has been called.
    pub fn has_begun(&self) -> bool {
        self.begun.load(Ordering::Acquire)
    }

    /// Makes `watcher` (a [`ShutdownWatcher`]'s task) hear of the shutdown.
    pub fn register(&self, watcher: Waker) {
        if let Ok(mut workers) = self.workers.lock() {
            workers.push(watcher.clone());
        }
        // A shutdown that began before this worker registered still reaches it.
        if self.has_begun() {
            watcher.wake();
        }
    }
}

/// Connections of one worker that want to hear about shutdown: the wakers of their tasks.
#[derive(Default)]
pub struct ConnectionRegistry {
    wakers: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl ConnectionRegistry {
    /// Records a connection's waker; returns its slot, for [`ConnectionRegistry::remove`].
    pub fn insert(&self, waker: Waker) -> usize {
        let mut wakers = self.wakers.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(slot) => {
                wakers[slot] = Some(waker);
                slot
            }
            None => {
                wakers.push(Some(waker));
                wakers.len() - 1
            }
        }
    }

    /// Forgets a connection.
    pub fn remove(&self, slot: usize) {
        if let Some(entry) = self.wakers.borrow_mut().get_mut(slot)
            && entry.take().is_some()
        {
            self.free.borrow_mut().push(slot);
        }
    }

    /// Wakes every registered connection.
    pub fn wake_all(&self) {
        for waker in self.wakers.borrow().iter().flatten() {
            waker.wake();
        }
    }
}

/// The shutdown state one worker's connections see.
#[derive(Default)]
pub struct WorkerShutdown {
    /// True once shutdown has begun.
    pub flag: Rc<Cell<bool>>,
    /// Connections to wake when it begins.
    pub registry: ConnectionRegistry,
}

/// A connection's membership in its worker's [`ConnectionRegistry`]: registered on the
/// connection's first resume (a waker needs the task's id), removed when it is dropped.
pub struct Membership {
    shutdown: Rc<WorkerShutdown>,
    slot: Option<usize>,
}

impl Membership {
    /// Not registered yet.
    pub fn new(shutdown: Rc<WorkerShutdown>) -> Membership {
        Membership {
            shutdown,
            slot: None,
        }
    }

    /// Registers the running task on its first call; afterwards only says whether shutdown has
    /// begun.
    pub fn watch(&mut self, cx: &Cx<'_>) -> bool {
        if self.slot.is_none() {
            self.slot = Some(self.shutdown.registry.insert(cx.waker()));
        }
        self.shutdown.flag.get()
    }

    /// True once shutdown has begun.
    pub fn has_begun(&self) -> bool {
        self.shutdown.flag.get()
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.shutdown.registry.remove(slot);
        }
    }
}

/// The task that waits for the shutdown wake, then stops the acceptors and wakes every
/// connection.
pub struct ShutdownWatcher {
    /// The worker's shutdown state.
    pub shutdown: Rc<WorkerShutdown>,
    /// The acceptors' stop flag.
    pub stop_accepting: Arc<AtomicBool>,
    /// Wakes the acceptors, so they see the flag.
    pub acceptors: Vec<Waker>,
}

impl Coroutine for ShutdownWatcher {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if cx.reason() != Reason::Wake {
            cx.wait_wake();
            return Step::WouldBlock;
        }
        self.shutdown.flag.set(true);
        self.stop_accepting.store(true, Ordering::Release);
        for acceptor in &self.acceptors {
            acceptor.wake();
        }
        self.shutdown.registry.wake_all();
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "shutdown"
    }
}
