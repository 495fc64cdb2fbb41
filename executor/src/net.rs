//! Non-blocking TCP: [`TcpListener`], [`TcpStream`] and the [`Connect`] coroutine.
//!
//! # The return convention
//!
//! Every operation that could block answers `io::Result<Step<T>>`: `Ok(Step::Ready(v))` when it
//! did something, `Ok(Step::WouldBlock)` where the kernel said `EAGAIN`, `Err(e)` for real errors.
//! "Would block" is not an error here, so the caller's `match` reads like the coroutine it is in:
//!
//! ```no_run
//! # use executor::{Cx, Step, net::TcpStream};
//! # use std::os::fd::AsRawFd;
//! # fn f(stream: &TcpStream, buf: &mut [u8], cx: &mut Cx<'_>) -> std::io::Result<Step<usize>> {
//! match stream.read(buf)? {
//!     Step::Ready(0) => { /* the peer closed its side */ Ok(Step::Ready(0)) }
//!     Step::Ready(n) => { /* use buf[..n] */ Ok(Step::Ready(n)) }
//!     Step::WouldBlock => {
//!         cx.wait_readable(stream.as_raw_fd());
//!         Ok(Step::WouldBlock)
//!     }
//! }
//! # }
//! ```
//!
//! Every descriptor is created non-blocking and close-on-exec, and lives in an `OwnedFd` from the
//! moment it exists. Writes use `MSG_NOSIGNAL`, so writing to a closed peer is `EPIPE`, never a
//! SIGPIPE that kills the process.
//!
//! The [`Stream`] and [`Listener`] traits let the service layer run over these sockets and over the
//! simulated ones in [`crate::sim`] alike.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::step::{Cx, Step};
use crate::sys;

/// Options for [`TcpListener::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Length of the kernel's queue of connections not yet accepted (capped by
    /// `net.core.somaxconn`).
    pub backlog: i32,
    /// Set `SO_REUSEPORT`, so several listeners (one per worker thread) can bind the same port and
    /// the kernel spreads connections between them.
    pub reuse_port: bool,
    /// Set `TCP_DEFER_ACCEPT` for this many seconds (Linux; 0 leaves it off): the kernel keeps a
    /// new connection to itself until its first bytes arrive, so accepting it is followed by a
    /// read that finds the request, instead of a read that finds nothing, a registration and a
    /// wake for the bytes. A client that sends nothing is accepted anyway once the time passes
    /// (at the first retransmitted SYN-ACK it acknowledges). Only for protocols where the
    /// client speaks first, as in HTTP.
    pub defer_accept_secs: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backlog: 1024,
            reuse_port: false,
            defer_accept_secs: 0,
        }
    }
}

/// The sending system calls (`send`, `sendmsg`, `sendfile`) made on this thread's sockets of
/// this module and of [`crate::unix`], and the bytes they took: the figure behind "how many
/// `write`s did that response cost", which a buffer that coalesces small writes must keep low.
/// The executor reports what its own thread sent since it was created ([`crate::Stats::sends`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sends {
    /// System calls, including those that answered `EAGAIN` or failed.
    pub calls: u64,
    /// Bytes they accepted.
    pub bytes: u64,
}

thread_local! {
    /// This thread's [`Sends`]; a plain cell, since a socket is used by the thread that polls it.
    static SENDS: std::cell::Cell<Sends> = const { std::cell::Cell::new(Sends { calls: 0, bytes: 0 }) };
}

/// What this thread's sockets have sent so far (see [`Sends`]).
pub fn sends_on_this_thread() -> Sends {
    SENDS.with(std::cell::Cell::get)
}

/// Counts one sending call and what it took, then converts it as [`step`] does.
pub(crate) fn sent(result: io::Result<usize>) -> io::Result<Step<usize>> {
    SENDS.with(|cell| {
        let mut sends = cell.get();
        sends.calls += 1;
        sends.bytes += *result.as_ref().unwrap_or(&0) as u64;
        cell.set(sends);
    });
    step(result)
}

/// Turns `EAGAIN` into `Step::WouldBlock`.
pub(crate) fn step<T>(result: io::Result<T>) -> io::Result<Step<T>> {
    match result {
        Ok(v) => Ok(Step::Ready(v)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::WouldBlock),
        Err(e) => Err(e),
    }
}

/// Raises this process's soft limit on open descriptors to its hard limit, as a server (or a
/// load generator) holding thousands of sockets must; returns the new limit.
///
/// # Errors
/// From `getrlimit` or `setrlimit`.
pub fn raise_fd_limit() -> io::Result<u64> {
    sys::raise_fd_limit()
}

/// True for the errors that mean "out of file descriptors or kernel memory" on `accept`: the
/// acceptor should stop accepting for a while rather than retry at once (the listener stays
/// readable, so retrying would spin).
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// True for accept errors about one connection only (it was reset before we accepted it); the
/// acceptor just goes on to the next.
pub fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::ECONNRESET)
    )
}

/// A non-blocking listening TCP socket.
#[derive(Debug)]
pub struct TcpListener {
    fd: OwnedFd,
    /// Whether accepted streams get `TCP_NODELAY` ([`TcpListener::set_nodelay_on_accept`]).
    nodelay: bool,
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        crate::poller::closed::note_closed(self.fd.as_raw_fd());
    }
}

impl TcpListener {
    /// Binds and listens on `addr` with `SO_REUSEADDR` (so a restarted server can bind while old
    /// connections linger in `TIME_WAIT`) and, if asked, `SO_REUSEPORT`.
    ///
    /// # Errors
    /// From `socket`, `setsockopt`, `bind` or `listen` (`AddrInUse`, permission...).
    pub fn bind(addr: SocketAddr, options: Options) -> io::Result<TcpListener> {
        let fd = sys::tcp_socket(&addr)?;
        sys::setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if options.reuse_port {
            sys::setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        if options.defer_accept_secs > 0 {
            sys::set_defer_accept(fd.as_raw_fd(), options.defer_accept_secs)?;
        }
        sys::bind(fd.as_raw_fd(), &addr)?;
        sys::listen(fd.as_raw_fd(), options.backlog)?;
        Ok(TcpListener { fd, nodelay: true })
    }

    /// Whether [`TcpListener::accept`] sets `TCP_NODELAY` on the streams it hands out (the
    /// default). A server that sets it itself, on the connections where Nagle's algorithm could
    /// hold a write back (a second response, a stream written in pieces), saves one system call
    /// on every connection that answers once and closes.
    pub fn set_nodelay_on_accept(&mut self, on: bool) {
        self.nodelay = on;
    }

    /// Accepts one connection: the stream is non-blocking, close-on-exec and has `TCP_NODELAY`
    /// set unless [`TcpListener::set_nodelay_on_accept`] said not to (responses are written
    /// whole, so Nagle's algorithm would only add latency).
    ///
    /// # Errors
    /// See [`is_resource_exhaustion`] and [`is_connection_error`] for the ones to survive.
    pub fn accept(&self) -> io::Result<Step<(TcpStream, SocketAddr)>> {
        Ok(step(sys::accept(self.fd.as_raw_fd()))?.map(|(fd, addr)| {
            let stream = TcpStream { fd };
            if self.nodelay {
                // Fails only if the peer is already gone, which the first read will report.
                let _ = stream.set_nodelay(true);
            }
            (stream, addr)
        }))
    }

    /// The address it is bound to (with the real port after binding port 0).
    ///
    /// # Errors
    /// From `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::local_addr(self.fd.as_raw_fd())
    }

    /// Sets `TCP_DEFER_ACCEPT` to `secs` seconds, 0 turning it off (see
    /// [`Options::defer_accept_secs`]): for a listener opened elsewhere, inherited across an
    /// exec, say.
    ///
    /// # Errors
    /// From `setsockopt`.
    pub fn set_defer_accept(&self, secs: u32) -> io::Result<()> {
        sys::set_defer_accept(self.fd.as_raw_fd(), secs)
    }

    /// The `TCP_DEFER_ACCEPT` time in seconds (0: off, and always 0 where the option does not
    /// exist). The kernel keeps it as a count of SYN-ACK retransmissions, so it may read back
    /// rounded up to what that count lasts.
    ///
    /// # Errors
    /// From `getsockopt`.
    pub fn defer_accept_secs(&self) -> io::Result<u32> {
        sys::defer_accept(self.fd.as_raw_fd())
    }

    /// Takes over a standard listener, making it non-blocking.
    ///
    /// # Errors
    /// From `fcntl`.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            fd: listener.into(),
            nodelay: true,
        })
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A non-blocking connected TCP socket.
#[derive(Debug)]
pub struct TcpStream {
    fd: OwnedFd,
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        // Before the close: an epoll-based executor must not trust its record of this number.
        crate::poller::closed::note_closed(self.fd.as_raw_fd());
    }
}

/// How much [`TcpStream::read_to_spare`] reserves when the buffer is full.
pub const READ_RESERVE: usize = 4096;

impl TcpStream {
    /// Starts connecting to `addr`; keep the returned [`Connect`] in a state and poll it on each
    /// resume until it hands out the stream (an outgoing connection, as the proxy makes).
    ///
    /// ```
    /// use std::io::Read;
    /// use executor::net::{Connect, TcpStream};
    /// use executor::{Coroutine, Cx, Executor, Step};
    ///
    /// /// Connects, then says hello (short writes aside: one tiny write fits).
    /// struct Hello(Connect);
    ///
    /// impl Coroutine for Hello {
    ///     type Output = ();
    ///     fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
    ///         match self.0.poll(cx) {
    ///             Ok(Step::WouldBlock) => Step::WouldBlock,
    ///             Ok(Step::Ready(stream)) => {
    ///                 assert!(matches!(stream.write(b"hello"), Ok(Step::Ready(5))));
    ///                 Step::Ready(())
    ///             }
    ///             Err(e) => panic!("connect: {e}"),
    ///         }
    ///     }
    /// }
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut executor = Executor::new().unwrap();
    /// executor.spawn(Hello(TcpStream::connect(listener.local_addr().unwrap())));
    /// executor.run().unwrap();
    /// let mut got = String::new();
    /// listener.accept().unwrap().0.read_to_string(&mut got).unwrap();
    /// assert_eq!(got, "hello");
    /// ```
    pub fn connect(addr: SocketAddr) -> Connect {
        Connect::Start(addr)
    }

    /// Takes over a standard stream, making it non-blocking.
    ///
    /// # Errors
    /// From `fcntl`.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream { fd: stream.into() })
    }

    /// Reads into `buf`; `Ready(0)` means the peer closed its side (or `buf` is empty).
    ///
    /// # Errors
    /// `ConnectionReset` and the like.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Step<usize>> {
        step(sys::recv_init(self.fd.as_raw_fd(), buf))
    }

    /// Reads into the spare capacity of `buf` (reserving [`READ_RESERVE`] bytes if it has none)
    /// and extends its length by what was read; no uninitialized byte is ever viewed as `u8`.
    ///
    /// # Errors
    /// As [`TcpStream::read`].
    pub fn read_to_spare(&self, buf: &mut Vec<u8>) -> io::Result<Step<usize>> {
        if buf.capacity() == buf.len() {
            buf.reserve(READ_RESERVE);
        }
        step(sys::recv_to_spare(self.fd.as_raw_fd(), buf))
    }

    /// Writes from `buf`, possibly only part of it.
    ///
    /// # Errors
    /// `BrokenPipe` or `ConnectionReset` when the peer is gone.
    pub fn write(&self, buf: &[u8]) -> io::Result<Step<usize>> {
        sent(sys::send(self.fd.as_raw_fd(), buf))
    }

    /// As [`TcpStream::write`], telling the kernel more follows at once (`MSG_MORE`): a head
    /// written before a [`TcpStream::send_file`] body leaves with the body's first bytes, not
    /// in a short segment of its own.
    ///
    /// # Errors
    /// As [`TcpStream::write`].
    pub fn write_more(&self, buf: &[u8]) -> io::Result<Step<usize>> {
        sent(sys::send_more(self.fd.as_raw_fd(), buf))
    }

    /// Writes from several buffers in one system call (at most 1024 of them), possibly only part.
    ///
    /// # Errors
    /// As [`TcpStream::write`].
    pub fn writev(&self, bufs: &[IoSlice<'_>]) -> io::Result<Step<usize>> {
        sent(sys::sendmsg(self.fd.as_raw_fd(), bufs))
    }

    /// Sends FIN: the peer reads end-of-stream; reading from it still works.
    ///
    /// # Errors
    /// `NotConnected` if the connection is gone.
    pub fn shutdown_write(&self) -> io::Result<()> {
        sys::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR)
    }

    /// Sends up to `count` bytes of the open file `file` from `*offset` with `sendfile(2)`, the
    /// kernel copying from the page cache to the socket; advances `*offset` by what was sent.
    /// `Ready(0)` means the file ended before `*offset + count` (it shrank), `WouldBlock` that
    /// the socket's buffer is full (wait until writable).
    ///
    /// # Errors
    /// From `sendfile`; `Unsupported` where the file cannot be sent this way (`EINVAL`: a file
    /// system without the page-cache path `sendfile` needs), so the caller can copy it instead.
    pub fn send_file(
        &self,
        file: RawFd,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<Step<usize>> {
        let result = sys::sendfile(self.fd.as_raw_fd(), file, offset, count);
        sent(result.map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
                io::Error::new(io::ErrorKind::Unsupported, e)
            }
            _ => e,
        }))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// # Errors
    /// From `setsockopt`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sys::setsockopt_int(
            self.fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            on.into(),
        )
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// From `getsockopt`.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(sys::getsockopt_int(self.fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0)
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// From `getsockopt`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let code = sys::getsockopt_int(self.fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((code != 0).then(|| io::Error::from_raw_os_error(code)))
    }

    /// The peer's address.
    ///
    /// # Errors
    /// `NotConnected` while a connect is in progress or after the peer left.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::peer_addr(self.fd.as_raw_fd())
    }

    /// The local address.
    ///
    /// # Errors
    /// From `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::local_addr(self.fd.as_raw_fd())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Connecting a [`TcpStream`] without blocking: `connect` answers `EINPROGRESS`, the socket
/// becomes writable when the handshake ends, and `SO_ERROR` says how it ended.
///
/// A step a coroutine nests (PEP 380's `yield from`): keep it in a state and call
/// [`Connect::poll`] on each resume until it is ready. Like every operation of this module it
/// answers `io::Result<Step<T>>`; on `WouldBlock` it has registered the socket in `cx`.
#[derive(Debug)]
pub enum Connect {
    /// Not started.
    Start(SocketAddr),
    /// Handshake in progress.
    Connecting(TcpStream),
    /// Finished (the stream has been handed out, or the attempt failed).
    Done,
}

impl Connect {
    /// Advances the connection attempt.
    ///
    /// # Errors
    /// Why the connection failed (`ConnectionRefused`, `TimedOut`...); the attempt is over.
    pub fn poll(&mut self, cx: &mut Cx<'_>) -> io::Result<Step<TcpStream>> {
        let (next, step) = match std::mem::replace(self, Connect::Done) {
            Connect::Start(addr) => {
                let stream = TcpStream {
                    fd: sys::tcp_socket(&addr)?,
                };
                match sys::connect(stream.as_raw_fd(), &addr) {
                    Ok(()) => (Connect::Done, Step::Ready(stream)),
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                        cx.wait_writable(stream.as_raw_fd());
                        (Connect::Connecting(stream), Step::WouldBlock)
                    }
                    Err(e) => return Err(e),
                }
            }
            Connect::Connecting(stream) => {
                if let Some(e) = stream.take_error()? {
                    return Err(e);
                }
                // Resumed for some other reason (the parent's deadline, say) before the handshake
                // ended: getpeername still says ENOTCONN.
                match stream.peer_addr() {
                    Ok(_) => (Connect::Done, Step::Ready(stream)),
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                        cx.wait_writable(stream.as_raw_fd());
                        (Connect::Connecting(stream), Step::WouldBlock)
                    }
                    Err(e) => return Err(e),
                }
            }
            Connect::Done => {
                return Err(io::Error::other("Connect polled after it finished"));
            }
        };
        *self = next;
        Ok(step)
    }
}

/// A byte stream the service layer can drive: a [`TcpStream`] or a simulated one.
pub trait Stream: AsRawFd {
    /// As [`TcpStream::read`].
    ///
    /// # Errors
    /// As [`TcpStream::read`].
    fn read(&mut self, buf: &mut [u8]) -> io::Result<Step<usize>>;

    /// As [`TcpStream::write`].
    ///
    /// # Errors
    /// As [`TcpStream::write`].
    fn write(&mut self, buf: &[u8]) -> io::Result<Step<usize>>;

    /// As [`TcpStream::write_more`]: more follows at once. A plain write for streams with no
    /// such hint.
    ///
    /// # Errors
    /// As [`TcpStream::write`].
    fn write_more(&mut self, buf: &[u8]) -> io::Result<Step<usize>> {
        self.write(buf)
    }

    /// As [`TcpStream::shutdown_write`].
    ///
    /// # Errors
    /// As [`TcpStream::shutdown_write`].
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// Sets `TCP_NODELAY` where the stream has Nagle's algorithm to turn off (a TCP one); a
    /// no-op for the others.
    ///
    /// # Errors
    /// As [`TcpStream::set_nodelay`].
    fn set_nodelay(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// As [`TcpStream::send_file`]. A stream that cannot (a simulated one) answers
    /// `ErrorKind::Unsupported`, and the caller copies the bytes through [`Stream::write`].
    ///
    /// # Errors
    /// As [`TcpStream::send_file`].
    fn send_file(
        &mut self,
        file: RawFd,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<Step<usize>> {
        let _ = (file, offset, count);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// A source of connections: a [`TcpListener`], a [`UnixListener`](crate::unix::UnixListener) or
/// a simulated one.
pub trait Listener: AsRawFd {
    /// The connections it yields.
    type Stream: Stream;

    /// Who connected, as the socket's family names them: a [`SocketAddr`] over TCP, nothing
    /// worth reporting over a Unix-domain socket ([`UnixPeer`](crate::unix::UnixPeer)).
    type Addr: Copy;

    /// As [`TcpListener::accept`].
    ///
    /// # Errors
    /// As [`TcpListener::accept`].
    fn accept(&mut self) -> io::Result<Step<(Self::Stream, Self::Addr)>>;
}

impl Stream for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<Step<usize>> {
        TcpStream::read(self, buf)
    }
    fn send_file(
        &mut self,
        file: RawFd,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<Step<usize>> {
        TcpStream::send_file(self, file, offset, count)
    }
    fn set_nodelay(&mut self) -> io::Result<()> {
        TcpStream::set_nodelay(self, true)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<Step<usize>> {
        TcpStream::write(self, buf)
    }
    fn write_more(&mut self, buf: &[u8]) -> io::Result<Step<usize>> {
        TcpStream::write_more(self, buf)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        TcpStream::shutdown_write(self)
    }
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    type Addr = SocketAddr;
    fn accept(&mut self) -> io::Result<Step<(TcpStream, SocketAddr)>> {
        TcpListener::accept(self)
    }
}
