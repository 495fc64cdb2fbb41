//! Readiness from the operating system: the [`Poller`] trait, with its backends each in a file of
//! its own as mio splits its selectors — `poll(2)` ([`PollPoller`], the reference) and `epoll(7)`
//! ([`EpollPoller`], Linux) — the `eventfd(2)` that interrupts either ([`EventFd`]), and the
//! record of descriptors closed under a waiting executor ([`closed`]).
//!
//! A poller keeps a set of registered file descriptors, each with an [`Interest`], and on
//! [`Poller::poll`] reports which of them are ready. It also owns the clock ([`Poller::now`]), so
//! the simulated backend in [`crate::sim`] can run the executor on virtual time, and it knows how to
//! interrupt a blocked poll from another thread ([`Poller::notifier`]).
//!
//! Readiness is level-triggered, as `poll(2)` is: a descriptor that stays readable is reported again
//! on every poll until it is drained or deregistered.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::c_int;

use crate::wake::Notify;

pub mod closed;
#[cfg(target_os = "linux")]
mod epoll;
mod eventfd;
mod poll;

#[cfg(target_os = "linux")]
pub use epoll::EpollPoller;
pub use eventfd::EventFd;
pub use poll::PollPoller;

/// The most events one poll of the epoll backend returns; the executor's default budget
/// ([`crate::executor::DEFAULT_BUDGET`]) is the same, so one turn serves a whole poll.
pub(crate) const MAX_EVENTS_PER_POLL: usize = 4096;

/// Which readiness of a file descriptor a task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interest {
    /// Data can be read, or the peer closed, or an error is pending.
    Readable,
    /// Data can be written, or an error is pending.
    Writable,
    /// Either of the above.
    Both,
}

impl Interest {
    /// True if this interest includes readability.
    pub fn is_readable(self) -> bool {
        matches!(self, Interest::Readable | Interest::Both)
    }

    /// True if this interest includes writability.
    pub fn is_writable(self) -> bool {
        matches!(self, Interest::Writable | Interest::Both)
    }

    /// The union of two interests.
    pub fn union(self, other: Interest) -> Interest {
        if (self.is_readable() || other.is_readable())
            && (self.is_writable() || other.is_writable())
        {
            Interest::Both
        } else if self.is_readable() || other.is_readable() {
            Interest::Readable
        } else {
            Interest::Writable
        }
    }
}

/// One ready file descriptor, as reported by [`Poller::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The descriptor.
    pub fd: RawFd,
    /// Reading will not block (data, end of stream, or an error to collect).
    pub readable: bool,
    /// Writing will not block (room, or an error to collect).
    pub writable: bool,
    /// The kernel reported a hang-up or an error (`POLLHUP`, `POLLERR`, `POLLNVAL`); the owner
    /// sees which on its next read or write. Such an event is also readable and writable for
    /// whatever interest was registered, so the owner is always resumed.
    pub error: bool,
}

/// A source of readiness events and of the time.
///
/// Each descriptor is registered at most once. Registering, modifying and deregistering cost
/// O(1), so the executor can follow its tasks' waits closely.
pub trait Poller {
    /// Starts watching `fd` for `interest`.
    ///
    /// # Errors
    /// `AlreadyExists` if `fd` is registered already.
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;

    /// Changes the interest of a registered `fd`.
    ///
    /// # Errors
    /// `NotFound` if `fd` is not registered.
    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()>;

    /// Stops watching `fd`.
    ///
    /// # Errors
    /// `NotFound` if `fd` is not registered.
    fn deregister(&mut self, fd: RawFd) -> io::Result<()>;

    /// Stops watching `fd`, which was closed ([`closed::note_closed`]) while registered with
    /// nobody waiting on it ([`crate::Cx::keep_registered`]). For `poll(2)` and the simulator
    /// this is [`Poller::deregister`]; epoll dropped the socket from its set when it closed (no
    /// duplicate of its descriptor being open, as `keep_registered` requires), so the epoll
    /// backend forgets the number without asking the kernel, which could not be asked anyway:
    /// the number is closed.
    ///
    /// # Errors
    /// `NotFound` if `fd` is not registered.
    fn forget_closed(&mut self, fd: RawFd) -> io::Result<()> {
        self.deregister(fd)
    }

    /// Waits until a registered descriptor is ready, `timeout` passes (`None`: no limit;
    /// `Some(ZERO)`: just look), or the notifier fires; appends what is ready to `events`.
    ///
    /// # Errors
    /// Whatever the underlying system call reports, except interruptions by signals, which are
    /// retried with the remaining time.
    fn poll(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;

    /// The current time on this poller's clock.
    fn now(&self) -> Instant;

    /// A handle that makes a blocked (or the next) [`Poller::poll`] return, from any thread.
    ///
    /// # Errors
    /// If the wake-up mechanism cannot be created.
    fn notifier(&mut self) -> io::Result<Arc<dyn Notify>>;
}

/// Converts a timeout to whole milliseconds for `poll(2)`: rounded up, so a 0.3 ms timer does not
/// turn into a busy loop of zero-timeout polls, and capped at `c_int::MAX` (about 24 days);
/// `None` is -1, no limit.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> c_int {
    match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            ms.min(c_int::MAX as u128) as c_int
        }
    }
}

/// A poll's timeout across retries after a signal: a retry waits only for what is left, so a
/// signal neither shortens nor lengthens the total wait. Only a timed, non-zero wait reads the
/// clock (once, and again on a retry): the zero-timeout polls of a busy loop read none.
pub(crate) struct Remaining {
    timeout: Option<Duration>,
    started: Option<Instant>,
    retried: bool,
}

impl Remaining {
    /// Starts counting `timeout` (`None`: no limit).
    pub(crate) fn new(timeout: Option<Duration>) -> Remaining {
        let started = match timeout {
            Some(t) if !t.is_zero() => Some(Instant::now()),
            _ => None,
        };
        Remaining {
            timeout,
            started,
            retried: false,
        }
    }

    /// The timeout of the next attempt, in `poll(2)`'s milliseconds.
    pub(crate) fn next_ms(&mut self) -> c_int {
        timeout_ms(self.next())
    }

    /// The timeout of the next attempt, exact (`None`: no limit).
    pub(crate) fn next(&mut self) -> Option<Duration> {
        let left = match (self.timeout, self.started) {
            (Some(t), Some(started)) if self.retried => Some(t.saturating_sub(started.elapsed())),
            (t, _) => t,
        };
        self.retried = true;
        left
    }
}

/// The error for an operation on a descriptor that is not registered.
pub(crate) fn not_registered() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "fd not registered")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_and_cap() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_millis(7))), 7);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), c_int::MAX);
    }

    #[test]
    fn a_retry_waits_only_for_what_is_left() {
        let mut zero = Remaining::new(Some(Duration::ZERO));
        assert!(zero.started.is_none(), "no clock read for a zero timeout");
        assert_eq!((zero.next_ms(), zero.next_ms()), (0, 0));
        let mut forever = Remaining::new(None);
        assert_eq!((forever.next_ms(), forever.next_ms()), (-1, -1));
        let mut timed = Remaining::new(Some(Duration::from_secs(10)));
        assert_eq!(timed.next_ms(), 10_000);
        timed.started = Some(Instant::now() - Duration::from_secs(4));
        let left = timed.next_ms();
        assert!((5_000..=6_000).contains(&left), "{left}");
    }
}
