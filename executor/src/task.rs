//! [`TaskId`]: how the executor, the wakers and the step context name a task.

use std::fmt;

/// Identifies a task: a slab index plus a generation, so a stale id never names a newer task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// Slot in the slab.
    pub index: u32,
    /// Generation of the slot when the task was spawned.
    pub generation: u32,
}

impl fmt::Display for TaskId {
    /// `t3` for the first task in slot 3, `t3.1` for the next one, and so on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.generation == 0 {
            write!(f, "t{}", self.index)
        } else {
            write!(f, "t{}.{}", self.index, self.generation)
        }
    }
}
