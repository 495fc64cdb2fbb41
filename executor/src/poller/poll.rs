//! The `poll(2)` backend: the executor's reference poller. A `Vec<libc::pollfd>` kept up to date
//! incrementally (O(1) register and deregister, with `swap_remove` and an index), `EINTR`
//! retried with what is left of the timeout.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Event, EventFd, Interest, Poller, Remaining, not_registered};
use crate::sys;
use crate::wake::Notify;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poller::Interest;

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
