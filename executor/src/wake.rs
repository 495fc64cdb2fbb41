//! Waking a task from another thread (or from another task): [`Waker`] and the [`WakeQueue`]
//! behind it.
//!
//! A wake pushes the task's id onto a mutex-protected list and, if the executor has not been told
//! yet since it last looked, pokes the poller's [`Notify`] handle (an `eventfd` registered in the
//! [`PollPoller`](crate::poller::PollPoller) under its own slot), so a blocked `poll(2)` returns. The
//! executor collects the list at the start of each turn and after each poll. The atomic flag keeps a
//! burst of wakes down to one `eventfd` write.
//!
//! A wake is never lost: if it arrives while the task runs, or before the task waits for wakes,
//! the executor remembers it and resumes the task as soon as it calls
//! [`Cx::wait_wake`](crate::Cx::wait_wake). A wake for a task that has finished is ignored, even if
//! the task's slot now holds a newer task (the id's generation differs).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::task::TaskId;

/// Something that interrupts a blocked poll; implemented by each poller's wake-up mechanism.
pub trait Notify: Send + Sync {
    /// Makes the poller's current or next poll return promptly.
    fn notify(&self);
}

/// Tasks woken from other threads, waiting for the executor to collect them.
#[derive(Default)]
pub struct WakeQueue {
    woken: Mutex<Vec<TaskId>>,
    /// Set by the first wake after the executor last collected; cleared when it collects.
    notified: AtomicBool,
    /// Interrupts the poller; `None` for a queue that nobody polls (coroutines driven by hand).
    notify: Option<Arc<dyn Notify>>,
}

impl fmt::Debug for WakeQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WakeQueue")
            .field("notified", &self.notified.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl WakeQueue {
    /// A queue whose wakes interrupt the poller through `notify`.
    pub fn new(notify: Arc<dyn Notify>) -> WakeQueue {
        WakeQueue {
            woken: Mutex::default(),
            notified: AtomicBool::new(false),
            notify: Some(notify),
        }
    }

    /// Records a wake for `task` and interrupts the poller if nobody has yet.
    pub fn push(&self, task: TaskId) {
        // A poisoned lock only means another waker panicked mid-push; the list is still sound.
        self.woken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        if !self.notified.swap(true, Ordering::AcqRel)
            && let Some(n) = &self.notify
        {
            n.notify();
        }
    }

    /// Interrupts the poller without waking any task (the executor then notices, say, a stop).
    pub fn interrupt(&self) {
        self.notified.store(true, Ordering::Release);
        if let Some(n) = &self.notify {
            n.notify();
        }
    }

    /// True if a wake is waiting to be collected.
    pub fn is_pending(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Moves every pending wake into `into`, oldest first.
    pub fn collect(&self, into: &mut Vec<TaskId>) {
        // Clear the flag before taking the list: a wake pushed in between notifies again (a
        // spurious poll return at worst) instead of being left unnoticed.
        if !self.notified.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        into.append(&mut woken);
    }
}

/// Wakes one task from any thread. Cheap to clone; waking a finished task does nothing.
#[derive(Debug, Clone)]
pub struct Waker {
    queue: Arc<WakeQueue>,
    task: TaskId,
}

impl Waker {
    /// A waker for `task`.
    pub fn new(queue: Arc<WakeQueue>, task: TaskId) -> Waker {
        Waker { queue, task }
    }

    /// Wakes the task: it is resumed with [`Reason::Wake`](crate::Reason::Wake) once it waits for
    /// wakes (at once if it already does).
    pub fn wake(&self) {
        self.queue.push(self.task);
    }

    /// The task this waker wakes.
    pub fn task_id(&self) -> TaskId {
        self.task
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Notify for Count {
        fn notify(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn a_burst_of_wakes_notifies_once() {
        assert_send_sync_clone::<Waker>();
        let count = Arc::new(Count::default());
        let queue = Arc::new(WakeQueue::new(count.clone()));
        let a = TaskId {
            index: 0,
            generation: 0,
        };
        let b = TaskId {
            index: 1,
            generation: 0,
        };
        Waker::new(queue.clone(), a).wake();
        Waker::new(queue.clone(), b).wake();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        let mut woken = Vec::new();
        queue.collect(&mut woken);
        assert_eq!(woken, [a, b]);
        Waker::new(queue.clone(), a).wake();
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
    }
}
