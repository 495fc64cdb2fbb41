//! asycamore-executor: a minimal executor over `poll(2)` for hand-written resumable coroutines.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod executor;
pub mod step;
pub mod wake;

pub use executor::TaskId;
pub use step::{Coroutine, Cx, Interest, Reason, Step, Task, Waits};
pub use wake::{WakeQueue, Waker};
