//! Readiness from the operating system: the [`Poller`] trait and its `poll(2)` backend
//! [`PollPoller`] (the `epoll(7)` backend is in [`crate::epoll`]).
//!
//! A poller keeps a set of registered file descriptors, each with an [`Interest`], and on
//! [`Poller::poll`] reports which of them are ready. It also owns the clock ([`Poller::now`]), so
//! the simulated backend in [`crate::sim`] can run the executor on virtual time, and it knows how to
//! interrupt a blocked poll from another thread ([`Poller::notifier`]).
//!
//! Readiness is level-triggered, as `poll(2)` is: a descriptor that stays readable is reported again
//! on every poll until it is drained or deregistered.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::c_int;

use crate::step::Interest;
use crate::sys;
use crate::wake::Notify;

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

/// Marks an absent entry in [`PollPoller`]'s index.
const ABSENT: u32 = u32::MAX;

/// The `poll(2)` backend.
///
/// The `pollfd` array is kept between polls and changed in place: `index[fd]` is the position of
/// `fd` in the array; removal swaps the last entry into the hole and fixes that entry's index. So
/// registration changes are O(1) and a poll passes the array to the kernel as it is.
#[derive(Debug, Default)]
pub struct PollPoller {
    /// What the kernel reads (fd, events) and writes (revents).
    fds: Vec<libc::pollfd>,
    /// Position of each descriptor in `fds`, indexed by descriptor; [`ABSENT`] if not registered.
    index: Vec<u32>,
    /// The eventfd behind [`Poller::notifier`], once created; it sits in `fds` like any other
    /// descriptor but its readiness is consumed here, never reported.
    notifier: Option<Arc<EventFd>>,
}

impl PollPoller {
    /// An empty poller.
    pub fn new() -> PollPoller {
        PollPoller::default()
    }

    /// How many descriptors are registered (including the notifier's).
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// True if no descriptor is registered.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    fn position(&self, fd: RawFd) -> Option<usize> {
        let slot = *self.index.get(usize::try_from(fd).ok()?)?;
        (slot != ABSENT).then_some(slot as usize)
    }
}

/// The `poll(2)` event bits for an interest. Errors and hang-ups need no bits: the kernel always
/// reports them.
fn poll_events(interest: Interest) -> i16 {
    let mut bits = 0;
    if interest.is_readable() {
        bits |= libc::POLLIN;
    }
    if interest.is_writable() {
        bits |= libc::POLLOUT;
    }
    bits
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
        let left = match (self.timeout, self.started) {
            (Some(t), Some(started)) if self.retried => Some(t.saturating_sub(started.elapsed())),
            (t, _) => t,
        };
        self.retried = true;
        timeout_ms(left)
    }
}

impl Poller for PollPoller {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let slot = usize::try_from(fd)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative fd"))?;
        if self.position(fd).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "fd already registered",
            ));
        }
        if self.index.len() <= slot {
            self.index.resize(slot + 1, ABSENT);
        }
        self.index[slot] = self.fds.len() as u32;
        self.fds.push(libc::pollfd {
            fd,
            events: poll_events(interest),
            revents: 0,
        });
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let at = self.position(fd).ok_or_else(not_registered)?;
        self.fds[at].events = poll_events(interest);
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let at = self.position(fd).ok_or_else(not_registered)?;
        self.fds.swap_remove(at);
        self.index[fd as usize] = ABSENT;
        if let Some(moved) = self.fds.get(at) {
            self.index[moved.fd as usize] = at as u32;
        }
        Ok(())
    }

    fn poll(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        let mut wait = Remaining::new(timeout);
        let mut ready = loop {
            match sys::poll(&mut self.fds, wait.next_ms()) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        for pollfd in &mut self.fds {
            if ready == 0 {
                break;
            }
            let revents = std::mem::take(&mut pollfd.revents);
            if revents == 0 {
                continue;
            }
            ready -= 1;
            if EventFd::consume_if_mine(&self.notifier, pollfd.fd)? {
                continue;
            }
            let error = revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0;
            let wants_read = pollfd.events & libc::POLLIN != 0;
            let wants_write = pollfd.events & libc::POLLOUT != 0;
            events.push(Event {
                fd: pollfd.fd,
                readable: revents & (libc::POLLIN | libc::POLLPRI) != 0 || (error && wants_read),
                writable: revents & libc::POLLOUT != 0 || (error && wants_write),
                error,
            });
        }
        Ok(())
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn notifier(&mut self) -> io::Result<Arc<dyn Notify>> {
        EventFd::shared(self, |p| &mut p.notifier)
    }
}

fn not_registered() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "fd not registered")
}

/// An `eventfd(2)` used to interrupt [`PollPoller::poll`] from another thread.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A new counter at zero (not readable).
    pub(crate) fn new() -> io::Result<EventFd> {
        Ok(EventFd {
            fd: sys::eventfd()?,
        })
    }

    /// The notifier a backend keeps in `slot(poller)`: created and registered for reading on
    /// first use, shared afterwards.
    pub(crate) fn shared<P: Poller>(
        poller: &mut P,
        slot: fn(&mut P) -> &mut Option<Arc<EventFd>>,
    ) -> io::Result<Arc<dyn Notify>> {
        if let Some(n) = slot(poller) {
            return Ok(Arc::clone(n) as Arc<dyn Notify>);
        }
        let eventfd = Arc::new(EventFd::new()?);
        poller.register(eventfd.as_raw_fd(), Interest::Readable)?;
        *slot(poller) = Some(Arc::clone(&eventfd));
        Ok(eventfd)
    }

    /// If `fd` is `notifier`'s, makes the counter unreadable again and returns true: its
    /// readiness only interrupts the poll and is never reported.
    pub(crate) fn consume_if_mine(notifier: &Option<Arc<EventFd>>, fd: RawFd) -> io::Result<bool> {
        match notifier {
            Some(n) if n.fd.as_raw_fd() == fd => {
                sys::eventfd_drain(fd)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Notify for EventFd {
    fn notify(&self) {
        // The only possible failure is a saturated counter, which is readable anyway.
        let _ = sys::eventfd_signal(self.fd.as_raw_fd());
    }
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

    #[test]
    fn swap_remove_fixes_the_moved_index() {
        let mut p = PollPoller::new();
        for fd in [3, 4, 5] {
            p.register(fd, Interest::Readable).unwrap();
        }
        p.deregister(3).unwrap();
        assert_eq!(p.position(5), Some(0));
        assert_eq!(p.position(4), Some(1));
        assert_eq!(p.position(3), None);
        p.modify(5, Interest::Both).unwrap();
        assert_eq!(p.fds[0].events, libc::POLLIN | libc::POLLOUT);
        assert!(p.register(4, Interest::Writable).is_err());
        assert!(p.deregister(3).is_err());
        p.deregister(4).unwrap();
        p.deregister(5).unwrap();
        assert!(p.is_empty());
    }
}
