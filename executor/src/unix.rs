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

use crate::net::{Listener, Stream, sent, step};
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
        sent(sys::send(self.fd.as_raw_fd(), buf))
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
    fn send_file(
        &mut self,
        file: RawFd,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<Step<usize>> {
        // sendfile(2) writes to any socket, a Unix-domain one too.
        sent(sys::sendfile(self.as_raw_fd(), file, offset, count))
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<Step<usize>> {
        UnixStream::write(self, buf)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        UnixStream::shutdown_write(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("asycamore-unix-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// Retries a non-blocking operation until it is ready (the peer is in this thread, so it
    /// is ready at once or after the other side's call).
    fn ready<T>(mut op: impl FnMut() -> io::Result<Step<T>>) -> T {
        for _ in 0..1000 {
            if let Step::Ready(v) = op().expect("socket operation") {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("not ready after 1000 tries");
    }

    #[test]
    fn a_connection_carries_bytes_both_ways_and_the_mode_is_set_before_listening() {
        let path = scratch("roundtrip");
        let listener = UnixListener::bind(&path, 8, Some(0o600)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            listener.local_path().unwrap().as_deref(),
            Some(path.as_path())
        );
        // Nobody has connected: would block, not an error.
        assert!(matches!(listener.accept(), Ok(Step::WouldBlock)));

        let client = ready(|| UnixStream::connect(&path));
        let (mut server, peer) = ready(|| listener.accept());
        assert_eq!(Option::<std::net::SocketAddr>::from(peer), None);
        assert_eq!(ready(|| client.write(b"ping")), 4);
        let mut buf = [0u8; 16];
        let n = ready(|| server.read(&mut buf));
        assert_eq!(&buf[..n], b"ping");
        // Nothing more yet: would block.
        assert!(matches!(server.read(&mut buf), Ok(Step::WouldBlock)));
        Stream::shutdown_write(&mut server).unwrap();
        assert_eq!(
            ready(|| client.read(&mut buf)),
            0,
            "end of stream after shutdown"
        );

        // A second bind on the same path: the file is there, whoever owns it.
        let err = UnixListener::bind(&path, 8, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(listener);
        // With nobody listening, a connect is refused (what marks a stale file).
        let err = UnixStream::connect(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_path_longer_than_sun_path_is_invalid_input() {
        let long = std::env::temp_dir().join("y".repeat(120));
        let err = UnixListener::bind(&long, 8, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = UnixStream::connect(Path::new("")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
