//! Descriptor numbers closed on this thread, for an executor that must not trust its record of a
//! number: epoll watches the open socket, not the number, so a task that closes a socket and,
//! in the same resume, waits on a new one that got the same number would look unchanged to the
//! executor's diff of waits (see [`EpollPoller`](super::EpollPoller)). Sockets record their
//! closes here; the executor registers a recorded number afresh.

use std::cell::RefCell;
use std::os::fd::RawFd;

thread_local! {
    /// Descriptor numbers closed on this thread since the executor last looked.
    static CLOSED: RefCell<Vec<RawFd>> = const { RefCell::new(Vec::new()) };
}

/// Records that `fd` is being closed on this thread, so an executor over [`EpollPoller`](super::EpollPoller)
/// on this thread registers the number afresh if a task waits on it again (see the module docs).
///
/// The sockets of [`crate::net`] call it when dropped. A task that waits on descriptors it opens
/// and closes itself (not through [`crate::net`]) should call it before closing one.
pub fn note_closed(fd: RawFd) {
    CLOSED.with(|closed| closed.borrow_mut().push(fd));
}

/// Moves the descriptors recorded by [`note_closed`] into `into` (cleared first).
pub(crate) fn take_closed(into: &mut Vec<RawFd>) {
    into.clear();
    CLOSED.with(|closed| {
        let mut closed = closed.borrow_mut();
        if !closed.is_empty() {
            std::mem::swap(&mut *closed, into);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_are_recorded_per_thread() {
        let mut seen = Vec::new();
        take_closed(&mut seen);
        note_closed(42);
        note_closed(43);
        take_closed(&mut seen);
        assert_eq!(seen, [42, 43]);
        take_closed(&mut seen);
        assert!(seen.is_empty());
    }
}
