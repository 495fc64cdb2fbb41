//! Non-blocking Unix-domain stream sockets: [`UnixListener`] and [`UnixStream`].
//!
//! The same return convention as [`crate::net`] (`io::Result<Step<T>>`, `EAGAIN` as
//! `Step::WouldBlock`), the same guarantees (non-blocking and close-on-exec from creation, an
//! `OwnedFd` from the first line, `MSG_NOSIGNAL` writes), and the same [`Stream`] and
//! [`Listener`] traits, so a service written for TCP serves a socket file unchanged.
//!
//! A socket file is a name in the filesystem, so binding one is also a file operation: the file
//! must not exist yet (see [`UnixListener::bind`]), its mode decides who may connect (writing to
//! it is connecting, see unix(7)), and it outlives the socket unless someone removes it. Which
//! stale file to replace and when to remove ours is the server's decision, not this module's.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::net::{Listener, Stream, step};
use crate::step::Step;
use crate::sys;

/// A client of a [`UnixListener`]. Clients connect from unbound sockets, so there is no address
/// to report; a TCP peer's place is taken by this marker (`None` where an address is optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnixPeer;

impl From<UnixPeer> for Option<std::net::SocketAddr> {
    fn from(_: UnixPeer) -> Option<std::net::SocketAddr> {
        None
    }
}

/// A non-blocking listening Unix-domain stream socket.
#[derive(Debug)]
pub struct UnixListener {
    fd: OwnedFd,
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        crate::poller::closed::note_closed(self.fd.as_raw_fd());
    }
}

impl UnixListener {
    /// Binds `path`, sets the file's permission bits to `mode` if given (before listening, so no
    /// client can connect while the file still has the umask's mode), and listens.
    ///
    /// # Errors
    /// `AddrInUse` if `path` exists (whatever it is: a live socket, a stale one, a file);
    /// `InvalidInput` for a path longer than the kernel takes (107 bytes on Linux); `NotFound`
    /// or `PermissionDenied` for the folder; and the errors of `chmod` and `listen`.
    pub fn bind(path: &Path, backlog: i32, mode: Option<u32>) -> io::Result<UnixListener> {
        let fd = sys::unix_socket()?;
        sys::bind_unix(fd.as_raw_fd(), path)?;
        if let Some(mode) = mode
            && let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        {
            // The file is ours (we just made it): leave nothing behind.
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        sys::listen(fd.as_raw_fd(), backlog)?;
        Ok(UnixListener { fd })
    }

    /// Accepts one connection, non-blocking and close-on-exec.
    ///
    /// # Errors
    /// As [`TcpListener::accept`](crate::net::TcpListener::accept).
    pub fn accept(&self) -> io::Result<Step<(UnixStream, UnixPeer)>> {
        Ok(step(sys::accept_unnamed(self.fd.as_raw_fd()))?.map(|fd| (UnixStream { fd }, UnixPeer)))
    }

    /// The path it is bound to (`None` for an abstract or unbound socket).
    ///
    /// # Errors
    /// From `getsockname`, or `InvalidInput` if the descriptor is not a Unix-domain socket.
    pub fn local_path(&self) -> io::Result<Option<PathBuf>> {
        sys::unix_local_path(self.fd.as_raw_fd())
    }

    /// Takes over a listening Unix-domain socket (one inherited across `execve`, say), making
    /// it non-blocking.
    ///
    /// # Errors
    /// From `fcntl`.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            fd: listener.into(),
        })
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    type Addr = UnixPeer;
    fn accept(&mut self) -> io::Result<Step<(UnixStream, UnixPeer)>> {
        UnixListener::accept(self)
    }
}

/// A non-blocking connected Unix-domain stream socket.
#[derive(Debug)]
pub struct UnixStream {
    fd: OwnedFd,
}

impl Drop for UnixStream {
    fn drop(&mut self) {
        crate::poller::closed::note_closed(self.fd.as_raw_fd());
    }
}

impl UnixStream {
    /// Connects to the socket at `path`. A Unix-domain connect completes at once or fails at
    /// once (there is no handshake to wait for), except that a listener whose queue is full
    /// answers `WouldBlock`: try again later.
    ///
    /// # Errors
    /// `ConnectionRefused` when nothing listens there (a stale file), `NotFound` when there is
    /// no file, `PermissionDenied` when its mode does not let us write to it.
    pub fn connect(path: &Path) -> io::Result<Step<UnixStream>> {
        let fd = sys::unix_socket()?;
        Ok(step(sys::connect_unix(fd.as_raw_fd(), path))?.map(|()| UnixStream { fd }))
    }

    /// Reads into `buf`; `Ready(0)` means the peer closed its side (or `buf` is empty).
    ///
    /// # Errors
    /// `ConnectionReset` and the like.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Step<usize>> {
        step(sys::recv_init(self.fd.as_raw_fd(), buf))
    }

    /// Writes from `buf`, possibly only part of it.
    ///
    /// # Errors
    /// `BrokenPipe` when the peer is gone.
    pub fn write(&self, buf: &[u8]) -> io::Result<Step<usize>> {
        step(sys::send(self.fd.as_raw_fd(), buf))
    }

    /// Sends end-of-stream: the peer reads 0; reading from it still works.
    ///
    /// # Errors
    /// `NotConnected` if the connection is gone.
    pub fn shutdown_write(&self) -> io::Result<()> {
        sys::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR)
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Stream for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<Step<usize>> {
        UnixStream::read(self, buf)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<Step<usize>> {
        UnixStream::write(self, buf)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        UnixStream::shutdown_write(self)
    }
}
