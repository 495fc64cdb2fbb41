//! Cross-thread wakes (stub: to be written).
use crate::executor::TaskId;
use std::sync::{Arc, Mutex};

/// Tasks woken from other threads, waiting for the executor to collect them.
#[derive(Debug, Default)]
pub struct WakeQueue {
    woken: Mutex<Vec<TaskId>>,
}

/// Wakes one task from any thread.
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
    /// Wakes the task.
    pub fn wake(&self) {
        if let Ok(mut w) = self.queue.woken.lock() {
            w.push(self.task);
        }
    }
}
