//! The step protocol: [`Step`], the [`Coroutine`] trait and the context [`Cx`].
//!
//! A coroutine is a hand-written enum whose variants are its states, with one method,
//! [`Coroutine::resume`], that advances it as far as it can go. This is PEP 342 spelled out by hand:
//!
//! | Python generator                         | asycamore                                        |
//! |------------------------------------------|--------------------------------------------------|
//! | `gen.send(value)`                        | `coroutine.resume(cx)` (the "value" is what `cx` and the world now hold) |
//! | `yield` (suspend, hand control back)     | return [`Step::WouldBlock`] after telling `cx` what would wake it |
//! | `return v` / `StopIteration(v)`          | return [`Step::Ready(v)`](Step::Ready)          |
//! | `yield from child` (PEP 380)             | call `child.resume(cx)` from the parent's own `resume`; pass `WouldBlock` up, take `Ready(v)` as the child's result |
//!
//! Before returning `WouldBlock`, a coroutine registers in [`Cx`] every condition that should resume
//! it: a file descriptor becoming readable or writable ([`Cx::wait_readable`], [`Cx::wait_writable`]),
//! a deadline ([`Cx::wait_until`]), a wake from another thread ([`Cx::wait_wake`] with a [`Waker`]),
//! or nothing but "run me again after the others" ([`Cx::yield_now`]). Several may be registered at
//! once; the first that happens resumes the task (readable *or* deadline is the usual pair for a
//! connection with a timeout). Waits are declared afresh on every resume: a coroutine that returns
//! `WouldBlock` without registering anything is never resumed again, which the executor reports in its
//! trace as a task that went to sleep forever (a bug in the coroutine).
//!
//! ```
//! use executor::{Coroutine, Cx, Step};
//!
//! /// Counts to three, yielding to other tasks between numbers.
//! enum CountToThree {
//!     /// Holds the next number to produce.
//!     Counting(u32),
//! }
//!
//! impl Coroutine for CountToThree {
//!     type Output = u32;
//!     fn resume(&mut self, cx: &mut Cx<'_>) -> Step<u32> {
//!         match self {
//!             CountToThree::Counting(n) if *n == 3 => Step::Ready(3),
//!             CountToThree::Counting(n) => {
//!                 *n += 1;
//!                 cx.yield_now();
//!                 Step::WouldBlock
//!             }
//!         }
//!     }
//! }
//! ```

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use crate::poller::Interest;
use crate::task::TaskId;
use crate::wake::{WakeQueue, Waker};

/// The result of one resume: finished with a value, or suspended until something it registered
/// in [`Cx`] happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "a WouldBlock must be passed up to whoever drives this coroutine"]
pub enum Step<T> {
    /// The coroutine has finished (a generator's `return v`).
    Ready(T),
    /// The coroutine cannot go on now (a generator's `yield`); it has told [`Cx`] what would wake it.
    WouldBlock,
}

impl<T> Step<T> {
    /// Maps the `Ready` value, keeping `WouldBlock` as it is.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Step::Ready(v) => Step::Ready(f(v)),
            Step::WouldBlock => Step::WouldBlock,
        }
    }

    /// True for [`Step::Ready`].
    pub fn is_ready(&self) -> bool {
        matches!(self, Step::Ready(_))
    }
}

/// The value of a [`Step::Ready`], or else `return Step::WouldBlock` from the enclosing function
/// (which returns a `Step`): a generator's `v = yield from inner`, spelled as one expression.
/// The inner coroutine has already registered its wait in [`Cx`], so passing its `WouldBlock` up
/// is all there is to do.
///
/// ```
/// use executor::{Step, ready};
///
/// fn doubled(inner: Step<u32>) -> Step<u32> {
///     let v = ready!(inner);
///     Step::Ready(v * 2)
/// }
/// assert_eq!(doubled(Step::Ready(21)), Step::Ready(42));
/// assert_eq!(doubled(Step::WouldBlock), Step::WouldBlock);
/// ```
#[macro_export]
macro_rules! ready {
    ($step:expr) => {
        match $step {
            $crate::Step::Ready(value) => value,
            $crate::Step::WouldBlock => return $crate::Step::WouldBlock,
        }
    };
}

/// What one step of a state machine tells the loop that drives it: go on at once in the next
/// state, or wait in it, having registered in [`Cx`] what wakes it. The connection, the echo
/// connection and the demo proxy spell their state loops with it; a step that takes the state
/// by value and returns a `Next` cannot forget to say which state comes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a step's next state must be kept"]
pub enum Next<S> {
    /// Go on at once in this state.
    Go(S),
    /// Wait in this state: the step has registered in `cx` what wakes it.
    Wait(S),
}

/// A resumable computation: a hand-written generator.
pub trait Coroutine {
    /// What the coroutine produces when it finishes.
    type Output;

    /// Advances the coroutine as far as it can go without blocking.
    ///
    /// Returns `Ready(v)` when finished; after that it must not be resumed again. Returns
    /// `WouldBlock` after registering in `cx` what should resume it.
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<Self::Output>;

    /// A short name for this kind of coroutine, used in the executor's per-kind counters and traces.
    fn kind(&self) -> &'static str {
        "task"
    }
}

impl<C: Coroutine + ?Sized> Coroutine for Box<C> {
    type Output = C::Output;
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<C::Output> {
        (**self).resume(cx)
    }
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
}

/// A top-level task: a coroutine the executor owns and drives to completion.
pub type Task = Box<dyn Coroutine<Output = ()>>;

/// Why a task is being resumed now; also what the executor's trace records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// First resume after being spawned.
    Spawned,
    /// A file descriptor it waited on became ready (or reported an error or hang-up).
    Fd(RawFd),
    /// A deadline it waited for has passed.
    Deadline,
    /// Another thread (or task) woke it through a [`Waker`].
    Wake,
    /// It yielded and its turn came again.
    Yield,
}

/// What one suspended task asked to be woken for; filled through [`Cx`] during a resume.
#[derive(Debug, Default, Clone)]
pub struct Waits {
    /// File descriptors and the readiness wanted on each (at most one entry per fd).
    pub fds: WaitFds,
    /// The earliest deadline asked for, if any.
    pub deadline: Option<Instant>,
    /// True if a [`Waker`] may resume the task.
    pub wake: bool,
    /// True if the task asked to run again after the others ([`Cx::yield_now`]).
    pub yielded: bool,
}

/// How many waited descriptors [`WaitFds`] keeps without allocating: a connection waits on its
/// socket, a proxying handler on its client's and its upstream's.
const INLINE_FDS: usize = 2;

/// The descriptors one task waits on, each with the readiness wanted: up to two held inline, more
/// in a vector. Every suspended task keeps its waits, so with 10,000 idle connections a vector
/// each would be 10,000 small allocations (48 bytes apiece with the allocator's header), and one
/// more cache line to fetch on every resume.
///
/// Dereferences to a slice, in the order the descriptors were first waited on.
#[derive(Debug, Clone)]
pub struct WaitFds(FdStore);

/// Where [`WaitFds`] keeps its entries.
#[derive(Debug, Clone)]
enum FdStore {
    /// The first `len` of `items` are the waits; nothing allocated.
    Inline {
        len: u8,
        items: [(RawFd, Interest); INLINE_FDS],
    },
    /// More than fit inline were waited on once: a vector, kept (emptied) from then on.
    Spilled(Vec<(RawFd, Interest)>),
}

impl Default for WaitFds {
    fn default() -> WaitFds {
        WaitFds(FdStore::Inline {
            len: 0,
            items: [(-1, Interest::Readable); INLINE_FDS],
        })
    }
}

impl WaitFds {
    /// Adds a wait on `fd` (the caller merges a second wait on the same fd; see [`Cx::wait_fd`]).
    pub fn push(&mut self, fd: RawFd, interest: Interest) {
        match &mut self.0 {
            FdStore::Inline { len, items } if usize::from(*len) < INLINE_FDS => {
                items[usize::from(*len)] = (fd, interest);
                *len += 1;
            }
            FdStore::Inline { items, .. } => {
                let mut spilled = Vec::with_capacity(2 * INLINE_FDS);
                spilled.extend_from_slice(items);
                spilled.push((fd, interest));
                self.0 = FdStore::Spilled(spilled);
            }
            FdStore::Spilled(spilled) => spilled.push((fd, interest)),
        }
    }

    /// Forgets every wait, keeping a vector it has.
    pub fn clear(&mut self) {
        match &mut self.0 {
            FdStore::Inline { len, .. } => *len = 0,
            FdStore::Spilled(spilled) => spilled.clear(),
        }
    }
}

impl std::ops::Deref for WaitFds {
    type Target = [(RawFd, Interest)];
    fn deref(&self) -> &[(RawFd, Interest)] {
        match &self.0 {
            FdStore::Inline { len, items } => &items[..usize::from(*len)],
            FdStore::Spilled(spilled) => spilled,
        }
    }
}

impl std::ops::DerefMut for WaitFds {
    fn deref_mut(&mut self) -> &mut [(RawFd, Interest)] {
        match &mut self.0 {
            FdStore::Inline { len, items } => &mut items[..usize::from(*len)],
            FdStore::Spilled(spilled) => spilled,
        }
    }
}

impl<'a> IntoIterator for &'a WaitFds {
    type Item = &'a (RawFd, Interest);
    type IntoIter = std::slice::Iter<'a, (RawFd, Interest)>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Waits {
    /// Forgets every wait, keeping the allocation.
    pub fn clear(&mut self) {
        self.fds.clear();
        self.deadline = None;
        self.wake = false;
        self.yielded = false;
    }

    /// True if nothing at all would resume the task.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty() && self.deadline.is_none() && !self.wake && !self.yielded
    }
}

/// The context of one resume: the current time, why the task runs, and the place to say what
/// would wake it next. Also lets a task spawn others and hand out [`Waker`]s.
pub struct Cx<'a> {
    now: Instant,
    reason: Reason,
    task: TaskId,
    waits: &'a mut Waits,
    spawned: &'a mut Vec<Task>,
    wake_queue: &'a Arc<WakeQueue>,
    /// Where [`Cx::note`] writes, when the executor's trace wants notes.
    notes: Option<&'a mut Vec<String>>,
    /// Where [`Cx::keep_registered`] writes, when the executor can keep registrations.
    kept: Option<&'a mut Vec<RawFd>>,
}

impl<'a> Cx<'a> {
    /// Makes a context; the executor does this before each resume, and tests that drive a
    /// coroutine by hand may too.
    pub fn new(
        now: Instant,
        reason: Reason,
        task: TaskId,
        waits: &'a mut Waits,
        spawned: &'a mut Vec<Task>,
        wake_queue: &'a Arc<WakeQueue>,
    ) -> Cx<'a> {
        Cx {
            now,
            reason,
            task,
            waits,
            spawned,
            wake_queue,
            notes: None,
            kept: None,
        }
    }

    /// The same context, collecting [`Cx::keep_registered`]'s descriptors into `kept` (the
    /// executor does this on every resume; without it, keeping is a no-op).
    pub fn with_kept(mut self, kept: &'a mut Vec<RawFd>) -> Cx<'a> {
        self.kept = Some(kept);
        self
    }

    /// The same context, collecting [`Cx::note`]s into `notes` (the executor does this when its
    /// trace records them).
    pub fn with_notes(mut self, notes: &'a mut Vec<String>) -> Cx<'a> {
        self.notes = Some(notes);
        self
    }

    /// Stops waiting on `fd` (if this resume does not wait on it) but leaves it registered with
    /// the poller, for a socket this task alone holds and expects to wait on again soon: an
    /// upstream connection going back to a pool, taken by the next request. Waiting on it again,
    /// from any task, then costs no poller change (for the same readiness), where otherwise
    /// stopping and waiting again cost a deregistration and a registration. It stays
    /// registered until a task waits on it, it turns ready with nobody waiting (deregistered
    /// then: level-triggered, it would be reported on every poll) or it is closed.
    ///
    /// Only for a socket of [`crate::net`] or [`crate::unix`] whose descriptor is not
    /// duplicated, closed by dropping it: the drop records the close
    /// ([`note_closed`](crate::poller::closed::note_closed)), and epoll forgets the socket at
    /// its close only when no duplicate keeps it open. Never for a listener.
    pub fn keep_registered(&mut self, fd: RawFd) {
        if let Some(kept) = &mut self.kept {
            kept.push(fd);
        }
    }

    /// Says what the task is doing, for the executor's trace: a connection notes the head it
    /// parsed, the handler it resumes, the body event it hands over. `what` is called only while
    /// the trace records notes ([`Executor::enable_trace_waits`](crate::Executor::enable_trace_waits)),
    /// so a note costs one branch otherwise.
    pub fn note(&mut self, what: impl FnOnce() -> String) {
        if let Some(notes) = &mut self.notes {
            notes.push(what());
        }
    }

    /// The executor's clock (virtual under the simulator), read after the turn's poll and again
    /// every few resumes, not for each: it may lag real time by the few steps that ran before
    /// this one in the same turn (microseconds), and never runs ahead of it.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Why the task is being resumed.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The id of the running task.
    pub fn task_id(&self) -> TaskId {
        self.task
    }

    /// Resume the task when `fd` has the readiness `interest`. Waiting twice on one fd merges the
    /// interests. A file descriptor must have one waiting task at a time.
    pub fn wait_fd(&mut self, fd: RawFd, interest: Interest) {
        if let Some(entry) = self.waits.fds.iter_mut().find(|(f, _)| *f == fd) {
            entry.1 = entry.1.union(interest);
        } else {
            self.waits.fds.push(fd, interest);
        }
    }

    /// Resume the task when `fd` is readable (or hung up, or in error).
    pub fn wait_readable(&mut self, fd: RawFd) {
        self.wait_fd(fd, Interest::Readable);
    }

    /// Resume the task when `fd` is writable (or in error).
    pub fn wait_writable(&mut self, fd: RawFd) {
        self.wait_fd(fd, Interest::Writable);
    }

    /// Resume the task once `deadline` has passed. Of several deadlines, the earliest counts.
    pub fn wait_until(&mut self, deadline: Instant) {
        self.waits.deadline = Some(match self.waits.deadline {
            Some(d) if d <= deadline => d,
            _ => deadline,
        });
    }

    /// Resume the task when a [`Waker`] for it is woken (see [`Cx::waker`]). A wake that arrived
    /// while the task was running is not lost: the task is resumed at once.
    pub fn wait_wake(&mut self) {
        self.waits.wake = true;
    }

    /// Resume the task again after every other ready task has had its turn.
    pub fn yield_now(&mut self) {
        self.waits.yielded = true;
    }

    /// A handle that wakes this task from any thread (or from another task).
    pub fn waker(&self) -> Waker {
        Waker::new(Arc::clone(self.wake_queue), self.task)
    }

    /// Starts another task; it is first resumed (with [`Reason::Spawned`]) after the current
    /// resume returns.
    pub fn spawn(&mut self, task: impl Coroutine<Output = ()> + 'static) {
        self.spawned.push(Box::new(task));
    }

    /// What the task has asked to be woken for so far in this resume.
    pub fn waits(&self) -> &Waits {
        self.waits
    }

    /// Forgets the waits registered so far in this resume. A parent that resumes a child several
    /// times within one resume of its own calls this between them, so a wait the child no longer
    /// wants (a socket it has finished reading, say) cannot wake the task for nothing.
    pub fn clear_waits(&mut self) {
        self.waits.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_fds_keep_their_order_inline_and_spilled() {
        let mut fds = WaitFds::default();
        assert!(fds.is_empty());
        fds.push(3, Interest::Readable);
        fds.push(4, Interest::Writable);
        assert!(matches!(fds.0, FdStore::Inline { len: 2, .. }));
        assert_eq!(
            &fds[..],
            &[(3, Interest::Readable), (4, Interest::Writable)]
        );
        fds.push(5, Interest::Both);
        assert!(matches!(fds.0, FdStore::Spilled(_)));
        let seen: Vec<RawFd> = (&fds).into_iter().map(|&(fd, _)| fd).collect();
        assert_eq!(seen, [3, 4, 5]);
        fds[1].1 = Interest::Both;
        assert_eq!(fds[1], (4, Interest::Both));
        fds.clear();
        assert!(fds.is_empty());
        fds.push(9, Interest::Readable);
        assert_eq!(&fds[..], &[(9, Interest::Readable)]);
    }

    #[test]
    fn a_cleared_inline_store_forgets_its_entries() {
        let mut fds = WaitFds::default();
        fds.push(7, Interest::Readable);
        fds.clear();
        assert_eq!(fds.len(), 0);
        fds.push(8, Interest::Writable);
        assert_eq!(&fds[..], &[(8, Interest::Writable)]);
    }
}
