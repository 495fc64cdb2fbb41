//! The `epoll(7)` backend (Linux): the same level-triggered readiness as [`PollPoller`], at a
//! cost that follows the number of ready descriptors instead of the number registered.
//!
//! `poll(2)` hands the kernel the whole `pollfd` array on every call, and the kernel asks every
//! socket in it whether it is ready: with 10,000 idle keep-alive connections one turn of the loop
//! costs about a millisecond (the executor's benchmark measures it). An epoll set lives in the
//! kernel; registering is one `epoll_ctl(2)`, and `epoll_wait(2)` returns only what is ready.
//!
//! Level-triggered (no `EPOLLET`), so it is a drop-in for [`PollPoller`]: a descriptor that stays
//! readable is reported on every poll until it is drained or deregistered, and a task that skips a
//! read cannot lose a wake-up.
//!
//! One difference matters. `poll(2)` watches descriptor *numbers*; epoll watches the open socket
//! behind the number, and closing it leaves the set silently. A task that closes a socket and, in
//! the same resume, waits on a new one that got the same number would look unchanged to the
//! executor, and the new socket would never be watched. So closes are recorded
//! ([`note_closed`](super::closed::note_closed), done by [`crate::net`]'s sockets when dropped) and the executor registers a
//! recorded number afresh instead of trusting its diff.
//!
//! [`PollPoller`]: super::PollPoller

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Event, EventFd, Interest, Poller, Remaining, not_registered};
use crate::sys;
use crate::wake::Notify;

/// Events asked of `epoll_wait` at first; the buffer doubles (up to [`MAX_EVENTS`]) whenever a
/// poll fills it, so a busy server gets everything ready in one call.
const INITIAL_EVENTS: usize = 64;

/// The most events taken from one `epoll_wait`.
const MAX_EVENTS: usize = super::MAX_EVENTS_PER_POLL;

/// Marks an unregistered descriptor in [`EpollPoller`]'s interest table.
const ABSENT: u8 = 0;

/// The `epoll(7)` backend.
#[derive(Debug)]
pub struct EpollPoller {
    epoll: OwnedFd,
    /// The interest of each registered descriptor ([`interest_bits`]), indexed by descriptor;
    /// [`ABSENT`] if not registered. Kept here to answer `NotFound`/`AlreadyExists` as
    /// [`PollPoller`](crate::poller::PollPoller) does, and to turn an error into readiness for
    /// whatever was asked.
    interest: Vec<u8>,
    /// How many descriptors are registered (including the notifier's).
    registered: usize,
    /// What `epoll_wait` fills; its length is how many events one call may return.
    ready: Vec<libc::epoll_event>,
    /// The eventfd behind [`Poller::notifier`], once created; its readiness is consumed here,
    /// never reported.
    notifier: Option<Arc<EventFd>>,
    /// Whether waits use `epoll_pwait2(2)`'s nanosecond timeout
    /// ([`EpollPoller::with_nanosecond_timeouts`]; false again if the kernel lacks the call).
    nanosecond_timeouts: bool,
}

/// Bit for a readable interest in [`EpollPoller::interest`].
const READ: u8 = 1;
/// Bit for a writable interest in [`EpollPoller::interest`].
const WRITE: u8 = 2;

fn interest_bits(interest: Interest) -> u8 {
    let mut bits = 0;
    if interest.is_readable() {
        bits |= READ;
    }
    if interest.is_writable() {
        bits |= WRITE;
    }
    bits
}

/// The epoll event mask for an interest. Errors and hang-ups need no bits: the kernel always
/// reports them.
fn epoll_events(bits: u8) -> u32 {
    let mut events = 0;
    if bits & READ != 0 {
        events |= libc::EPOLLIN as u32;
    }
    if bits & WRITE != 0 {
        events |= libc::EPOLLOUT as u32;
    }
    events
}

impl EpollPoller {
    /// An empty epoll set.
    ///
    /// # Errors
    /// If the kernel refuses a new epoll instance (out of descriptors).
    pub fn new() -> io::Result<EpollPoller> {
        Ok(EpollPoller {
            epoll: sys::epoll_create()?,
            interest: Vec::new(),
            registered: 0,
            ready: vec![libc::epoll_event { events: 0, u64: 0 }; INITIAL_EVENTS],
            notifier: None,
            nanosecond_timeouts: false,
        })
    }

    /// Waits with `epoll_pwait2(2)`'s nanosecond timeout (Linux 5.11; on an older kernel, whole
    /// milliseconds still): a timer 300 µs away wakes the loop after 300 µs, not after a
    /// millisecond, which is what lets an open-loop load tool send on schedule. A server is
    /// better off without: timeouts rounded up to the millisecond let the timers due within one
    /// millisecond fire in one wake, as tokio's and nginx's millisecond timers do.
    pub fn with_nanosecond_timeouts(mut self) -> EpollPoller {
        self.nanosecond_timeouts = true;
        self
    }

    /// How many descriptors are registered (including the notifier's).
    pub fn len(&self) -> usize {
        self.registered
    }

    /// True if no descriptor is registered.
    pub fn is_empty(&self) -> bool {
        self.registered == 0
    }

    fn bits(&self, fd: RawFd) -> u8 {
        usize::try_from(fd)
            .ok()
            .and_then(|slot| self.interest.get(slot))
            .copied()
            .unwrap_or(ABSENT)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, bits: u8) -> io::Result<()> {
        sys::epoll_ctl(self.epoll.as_raw_fd(), op, fd, epoll_events(bits))
    }
}

impl Poller for EpollPoller {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let slot = usize::try_from(fd)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative fd"))?;
        if self.bits(fd) != ABSENT {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "fd already registered",
            ));
        }
        let bits = interest_bits(interest);
        match self.ctl(libc::EPOLL_CTL_ADD, fd, bits) {
            // Still in the set through a duplicate of a closed descriptor: take it over.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.ctl(libc::EPOLL_CTL_MOD, fd, bits)?;
            }
            other => other?,
        }
        if self.interest.len() <= slot {
            self.interest.resize(slot + 1, ABSENT);
        }
        self.interest[slot] = bits;
        self.registered += 1;
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        if self.bits(fd) == ABSENT {
            return Err(not_registered());
        }
        let bits = interest_bits(interest);
        match self.ctl(libc::EPOLL_CTL_MOD, fd, bits) {
            // Closed and reopened under the same number: the old socket left the set with its
            // close, so the new one is added.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.ctl(libc::EPOLL_CTL_ADD, fd, bits)?;
            }
            other => other?,
        }
        self.interest[fd as usize] = bits;
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        if self.bits(fd) == ABSENT {
            return Err(not_registered());
        }
        self.interest[fd as usize] = ABSENT;
        self.registered -= 1;
        match self.ctl(libc::EPOLL_CTL_DEL, fd, 0) {
            // Closed already, which removed it from the set: nothing left to undo.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EBADF)) => Ok(()),
            other => other,
        }
    }

    fn forget_closed(&mut self, fd: RawFd) -> io::Result<()> {
        if self.bits(fd) == ABSENT {
            return Err(not_registered());
        }
        // The close removed the socket from the set (epoll(7): a file leaves every epoll set
        // once all descriptors referring to it are closed).
        self.interest[fd as usize] = ABSENT;
        self.registered -= 1;
        Ok(())
    }

    fn poll(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        let mut wait = Remaining::new(timeout);
        let n = loop {
            let epoll = self.epoll.as_raw_fd();
            let waited = if self.nanosecond_timeouts {
                sys::epoll_pwait2(epoll, &mut self.ready, wait.next())
            } else {
                sys::epoll_wait(epoll, &mut self.ready, wait.next_ms())
            };
            match waited {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if self.nanosecond_timeouts
                        && matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) =>
                {
                    // A kernel before 5.11 (ENOSYS), or a seccomp filter that refuses the
                    // newer call (EPERM, as some container runtimes do): whole milliseconds
                    // from now on.
                    self.nanosecond_timeouts = false;
                    wait = Remaining::new(timeout);
                }
                Err(e) => return Err(e),
            }
        };
        for i in 0..n {
            let ready = self.ready[i];
            let (mask, fd) = (ready.events, ready.u64 as RawFd);
            if EventFd::consume_if_mine(&self.notifier, fd)? {
                continue;
            }
            let bits = self.bits(fd);
            if bits == ABSENT {
                // In the kernel's set but not in the table (a number forgotten though still
                // open). Level-triggered, it would be reported on every poll; it leaves the set
                // now.
                let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0);
                continue;
            }
            let error = mask & (libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
            events.push(Event {
                fd,
                readable: mask & (libc::EPOLLIN | libc::EPOLLPRI) as u32 != 0
                    || (error && bits & READ != 0),
                writable: mask & libc::EPOLLOUT as u32 != 0 || (error && bits & WRITE != 0),
                error,
            });
        }
        if n == self.ready.len() && n < MAX_EVENTS {
            // Full: more may be ready than one call can take. Take more next time.
            let grown = (n * 2).min(MAX_EVENTS);
            self.ready
                .resize(grown, libc::epoll_event { events: 0, u64: 0 });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Options, TcpListener, TcpStream};
    use crate::step::Step;

    fn pair() -> (TcpStream, TcpStream) {
        let listener =
            TcpListener::bind("127.0.0.1:0".parse().unwrap(), Options::default()).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let server = loop {
            if let Step::Ready((stream, _)) = listener.accept().expect("accept") {
                break stream;
            }
        };
        (TcpStream::from_std(client).expect("nonblocking"), server)
    }

    fn ready(poller: &mut EpollPoller, timeout_ms: u64) -> Vec<Event> {
        let mut events = Vec::new();
        poller
            .poll(&mut events, Some(Duration::from_millis(timeout_ms)))
            .unwrap();
        events
    }

    #[test]
    fn level_triggered_like_poll() {
        let (a, b) = pair();
        let mut poller = EpollPoller::new().unwrap();
        poller.register(b.as_raw_fd(), Interest::Readable).unwrap();
        assert!(ready(&mut poller, 0).is_empty());
        assert_eq!(a.write(b"x").unwrap(), Step::Ready(1));
        for _ in 0..2 {
            // Not drained: reported again.
            let events = ready(&mut poller, 1000);
            assert_eq!(events.len(), 1);
            assert!(events[0].readable && !events[0].writable);
        }
        poller.modify(b.as_raw_fd(), Interest::Writable).unwrap();
        let events = ready(&mut poller, 1000);
        assert!(events[0].writable && !events[0].readable);
        poller.deregister(b.as_raw_fd()).unwrap();
        assert!(ready(&mut poller, 0).is_empty());
        assert!(poller.is_empty());
    }

    /// A number the table forgot while its socket is still open, so still in the kernel's set:
    /// its first readiness removes it from the set, so it is not reported, now or on every poll
    /// after.
    #[test]
    fn a_registration_the_table_forgot_leaves_the_set_when_it_turns_ready() {
        let (a, b) = pair();
        let fd = b.as_raw_fd();
        let mut poller = EpollPoller::new().unwrap();
        poller.register(fd, Interest::Readable).unwrap();
        poller.forget_closed(fd).unwrap();
        assert_eq!(a.write(b"x").unwrap(), Step::Ready(1));
        assert!(ready(&mut poller, 100).is_empty());
        let gone = poller.ctl(libc::EPOLL_CTL_MOD, fd, READ).unwrap_err();
        assert_eq!(
            gone.raw_os_error(),
            Some(libc::ENOENT),
            "still in the kernel's set"
        );
        assert!(ready(&mut poller, 0).is_empty());
    }

    #[test]
    fn registry_errors_match_the_poll_backend() {
        let (_a, b) = pair();
        let fd = b.as_raw_fd();
        let mut poller = EpollPoller::new().unwrap();
        assert_eq!(
            poller.modify(fd, Interest::Readable).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        poller.register(fd, Interest::Readable).unwrap();
        assert_eq!(
            poller.register(fd, Interest::Readable).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        poller.deregister(fd).unwrap();
        assert_eq!(
            poller.deregister(fd).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    /// The hazard in the module docs, at the poller's level: a closed socket leaves the set, and
    /// a new socket with the same number is watched once registered afresh.
    #[test]
    fn a_closed_and_reused_number_can_be_registered_again() {
        let (a, b) = pair();
        let fd = b.as_raw_fd();
        let mut poller = EpollPoller::new().unwrap();
        poller.register(fd, Interest::Readable).unwrap();
        drop(b);
        drop(a);
        let (c, d) = pair();
        let reused = [c.as_raw_fd(), d.as_raw_fd()].contains(&fd);
        // Deregistering a closed descriptor succeeds (the close removed it already).
        poller.deregister(fd).unwrap();
        if reused {
            poller.register(fd, Interest::Readable).unwrap();
            let other = if c.as_raw_fd() == fd { &d } else { &c };
            assert_eq!(other.write(b"y").unwrap(), Step::Ready(1));
            let events = ready(&mut poller, 1000);
            assert_eq!(events.iter().map(|e| e.fd).collect::<Vec<_>>(), [fd]);
        }
    }

    #[test]
    fn a_full_buffer_grows_so_one_poll_takes_more() {
        let mut poller = EpollPoller::new().unwrap();
        let mut pairs = Vec::new();
        for _ in 0..INITIAL_EVENTS + 10 {
            let (a, b) = pair();
            poller.register(b.as_raw_fd(), Interest::Writable).unwrap();
            pairs.push((a, b));
        }
        assert_eq!(ready(&mut poller, 1000).len(), INITIAL_EVENTS);
        assert_eq!(ready(&mut poller, 1000).len(), INITIAL_EVENTS + 10);
    }
}
