//! The scheduler (stub: to be written).

/// Identifies a task: a slab index plus a generation, so a stale id never names a newer task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// Slot in the slab.
    pub index: u32,
    /// Generation of the slot when the task was spawned.
    pub generation: u32,
}
