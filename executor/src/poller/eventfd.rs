//! [`EventFd`]: the `eventfd(2)` counter a poller registers so that another thread can interrupt
//! its wait (the [`Notify`] of `poll(2)` and `epoll(7)` alike).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::{Interest, Poller};
use crate::sys;
use crate::wake::Notify;

/// An `eventfd(2)` used to interrupt [`PollPoller::poll`](super::PollPoller::poll) from another thread.
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
