//! Every call into libc made by the crate, each wrapped in a small safe function.
//!
//! Keeping the `unsafe` blocks here (and only here) means the rest of the crate reasons about
//! `OwnedFd`s, slices and `io::Result`s. Every new file descriptor goes into an [`OwnedFd`] on the
//! line that creates it, so no error path can leak one.

use std::io::{self, IoSlice};
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::c_int;

/// Values that a syscall returns as -1 on failure.
pub(crate) trait MinusOne: Copy + PartialEq {
    /// The failure value.
    const MINUS_ONE: Self;
}

impl MinusOne for c_int {
    const MINUS_ONE: Self = -1;
}

impl MinusOne for isize {
    const MINUS_ONE: Self = -1;
}

/// The one place where the C convention (-1 and `errno`) becomes an `io::Error`.
pub(crate) fn cvt<T: MinusOne>(ret: T) -> io::Result<T> {
    if ret == T::MINUS_ONE {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`], but retries while the call was interrupted by a signal.
fn cvt_retry<T: MinusOne>(mut call: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Wraps a freshly returned descriptor.
fn owned(fd: c_int) -> OwnedFd {
    // SAFETY: every caller passes a descriptor that a syscall has just returned (after `cvt`
    // checked it is not -1); nothing else owns it yet.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `poll(2)`; `EINTR` is returned to the caller, which recomputes its timeout.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live, exclusively borrowed slice of pollfd.
    let n = cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) })?;
    Ok(n as usize)
}

/// A close-on-exec `epoll(7)` instance.
#[cfg(target_os = "linux")]
pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: epoll_create1 takes no pointers.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    Ok(owned(fd))
}

/// `epoll_ctl(2)`: adds, changes or removes `fd` in the `epoll` set, with `events` and the fd
/// itself as the event's data.
#[cfg(target_os = "linux")]
pub(crate) fn epoll_ctl(epoll: RawFd, op: c_int, fd: RawFd, events: u32) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `event` is a live local; the kernel only reads it (and ignores it for DEL).
    cvt(unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) })?;
    Ok(())
}

/// `epoll_wait(2)` into the whole of `events`; returns how many were filled. `EINTR` is returned
/// to the caller, which recomputes its timeout.
#[cfg(target_os = "linux")]
pub(crate) fn epoll_wait(
    epoll: RawFd,
    events: &mut [libc::epoll_event],
    timeout_ms: c_int,
) -> io::Result<usize> {
    let max = c_int::try_from(events.len()).unwrap_or(c_int::MAX);
    // SAFETY: the pointer and `max` describe a live, exclusively borrowed slice; the kernel
    // writes at most `max` entries.
    let n = cvt(unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), max, timeout_ms) })?;
    Ok(n as usize)
}

/// `epoll_pwait2(2)` (Linux 5.11): `epoll_wait` with a nanosecond timeout (`None`: no limit),
/// no signal mask. `ENOSYS` on an older kernel (or `EPERM` under a seccomp filter), where the caller falls back to [`epoll_wait`];
/// `EINTR` is returned to the caller, which recomputes its timeout.
#[cfg(target_os = "linux")]
pub(crate) fn epoll_pwait2(
    epoll: RawFd,
    events: &mut [libc::epoll_event],
    timeout: Option<std::time::Duration>,
) -> io::Result<usize> {
    let max = c_int::try_from(events.len()).unwrap_or(c_int::MAX);
    let spec = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^9, so it fits any target's c_long (32 bits on 32-bit Linux, where
        // `From<u32>` does not exist).
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::timespec);
    let no_mask: *const libc::sigset_t = std::ptr::null();
    // SAFETY: the events pointer and `max` describe a live, exclusively borrowed slice the
    // kernel writes at most `max` entries into; the timespec, when given, is a live local; a
    // null signal mask means "leave the mask alone", and the size argument is then unused.
    let n = unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait2,
            epoll,
            events.as_mut_ptr(),
            max,
            spec_ptr,
            no_mask,
            mem::size_of::<libc::sigset_t>(),
        )
    };
    let n = cvt(n as isize)?;
    Ok(n as usize)
}

/// A non-blocking, close-on-exec `eventfd(2)` counter.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    Ok(owned(fd))
}

/// Adds one to an eventfd counter, making it readable.
pub(crate) fn eventfd_signal(fd: RawFd) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live local u64, as eventfd requires.
    match cvt_retry(|| unsafe { libc::write(fd, (&one as *const u64).cast(), 8) }) {
        // EAGAIN means the counter is saturated: it is readable already, which is all we need.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other.map(drop),
    }
}

/// Resets an eventfd counter to zero so it stops being readable.
pub(crate) fn eventfd_drain(fd: RawFd) -> io::Result<()> {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a live local u64, as eventfd requires.
    match cvt_retry(|| unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) }) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other.map(drop),
    }
}

/// A non-blocking, close-on-exec stream socket for `addr`'s family.
pub(crate) fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes no pointers.
    let fd = cvt(unsafe { libc::socket(family, ty, 0) })?;
    Ok(owned(fd))
}

/// Sets an integer socket option.
pub(crate) fn setsockopt_int(fd: RawFd, level: c_int, name: c_int, value: c_int) -> io::Result<()> {
    let len = mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: the option value points at a live c_int of the length given.
    cvt(unsafe { libc::setsockopt(fd, level, name, (&value as *const c_int).cast(), len) })?;
    Ok(())
}

/// Reads an integer socket option.
pub(crate) fn getsockopt_int(fd: RawFd, level: c_int, name: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: value and len are live locals; len tells the kernel how much room value has.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut c_int).cast(), &mut len) })?;
    Ok(value)
}

/// `bind(2)`.
pub(crate) fn bind(fd: RawFd, addr: &SocketAddr) -> io::Result<()> {
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: storage is a live sockaddr_storage holding an address of length len.
    cvt(unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) })?;
    Ok(())
}

/// `TCP_DEFER_ACCEPT` for `secs` seconds on a listening socket (see
/// [`crate::net::Options::defer_accept_secs`]); nothing where the option does not exist.
pub(crate) fn set_defer_accept(fd: RawFd, secs: u32) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let secs = c_int::try_from(secs).unwrap_or(c_int::MAX);
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, secs)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (fd, secs);
        Ok(())
    }
}

/// The `TCP_DEFER_ACCEPT` seconds of a listening socket (0: off, and where the option does not
/// exist).
pub(crate) fn defer_accept(fd: RawFd) -> io::Result<u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let secs = getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT)?;
        Ok(u32::try_from(secs).unwrap_or(0))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Ok(0)
    }
}

/// `listen(2)`.
pub(crate) fn listen(fd: RawFd, backlog: c_int) -> io::Result<()> {
    // SAFETY: listen takes no pointers.
    cvt(unsafe { libc::listen(fd, backlog) })?;
    Ok(())
}

/// `connect(2)`; a non-blocking socket answers `EINPROGRESS`, which the caller handles.
pub(crate) fn connect(fd: RawFd, addr: &SocketAddr) -> io::Result<()> {
    let (storage, len) = to_sockaddr(addr);
    // SAFETY: storage is a live sockaddr_storage holding an address of length len. Not retried on
    // EINTR: the connection attempt continues in the background and reports through SO_ERROR.
    cvt(unsafe { libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) })?;
    Ok(())
}

/// `accept4(2)` returning a non-blocking, close-on-exec socket and the peer's address.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: storage has room for any address and len says how much; both are live locals.
    let new =
        cvt_retry(|| unsafe { libc::accept4(fd, storage.as_mut_ptr().cast(), &mut len, flags) })?;
    let stream = owned(new);
    // SAFETY: zeroed is a valid sockaddr_storage, and accept4 wrote at most its size.
    let storage = unsafe { storage.assume_init() };
    Ok((stream, from_sockaddr(&storage, len)?))
}

/// `accept4(2)` for a listener whose clients have no address worth reading (a Unix-domain
/// client connects from an unbound socket): a non-blocking, close-on-exec socket.
pub(crate) fn accept_unnamed(fd: RawFd) -> io::Result<OwnedFd> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: null address and length pointers ask the kernel not to write the peer's address.
    let new = cvt_retry(|| unsafe {
        libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), flags)
    })?;
    Ok(owned(new))
}

/// A non-blocking, close-on-exec Unix-domain stream socket.
pub(crate) fn unix_socket() -> io::Result<OwnedFd> {
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes no pointers.
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, ty, 0) })?;
    Ok(owned(fd))
}

/// Encodes a socket path for the kernel: at most `sun_path`'s size less the terminating NUL
/// (107 bytes on Linux), and no NUL inside (a leading NUL would name an abstract socket).
fn to_sockaddr_un(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data, for which all-zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a socket path must be non-empty and contain no NUL byte",
        ));
    }
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the socket path is {} bytes long; the kernel takes at most {}",
                bytes.len(),
                addr.sun_path.len() - 1
            ),
        ));
    }
    for (slot, &b) in addr.sun_path.iter_mut().zip(bytes) {
        *slot = b as libc::c_char;
    }
    // The family, the path and its terminating NUL (already zero).
    let len = mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// `bind(2)` to a filesystem path.
pub(crate) fn bind_unix(fd: RawFd, path: &Path) -> io::Result<()> {
    let (addr, len) = to_sockaddr_un(path)?;
    // SAFETY: addr is a live sockaddr_un holding an address of length len.
    cvt(unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len) })?;
    Ok(())
}

/// `connect(2)` to a filesystem path; a non-blocking socket may answer `EAGAIN` (the listener's
/// queue is full) or `EINPROGRESS`, which the caller handles.
pub(crate) fn connect_unix(fd: RawFd, path: &Path) -> io::Result<()> {
    let (addr, len) = to_sockaddr_un(path)?;
    // SAFETY: addr is a live sockaddr_un holding an address of length len.
    cvt(unsafe { libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) })?;
    Ok(())
}

/// The path a Unix-domain socket is bound to (`None` for an unbound or abstract one).
pub(crate) fn unix_local_path(fd: RawFd) -> io::Result<Option<PathBuf>> {
    // SAFETY: sockaddr_un is plain data, for which all-zero is valid.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: addr has room for a Unix-domain address and len says how much.
    cvt(unsafe { libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_un).cast(), &mut len) })?;
    if addr.sun_family as c_int != libc::AF_UNIX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a Unix-domain socket",
        ));
    }
    let room = (len as usize)
        .saturating_sub(mem::size_of::<libc::sa_family_t>())
        .min(addr.sun_path.len());
    let raw: Vec<u8> = addr.sun_path[..room].iter().map(|&c| c as u8).collect();
    let path = raw.split(|&b| b == 0).next().unwrap_or_default();
    if raw.first().is_none_or(|&b| b == 0) {
        return Ok(None);
    }
    Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(path))))
}

/// `recv(2)` into possibly uninitialized memory; returns how many bytes are now initialized.
pub(crate) fn recv(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live, exclusively borrowed buffer; recv only
    // writes bytes into it.
    let n = cvt_retry(|| unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })?;
    Ok(n as usize)
}

/// `recv(2)` into an initialized buffer.
pub(crate) fn recv_init(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len();
    // SAFETY: a `&mut [u8]` is valid as `[MaybeUninit<u8>]` of the same length, and recv only
    // writes initialized bytes into it, so `buf` stays initialized.
    let uninit = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast(), len) };
    recv(fd, uninit)
}

/// `recv(2)` into the spare capacity of `buf`, extending its length by what was read.
pub(crate) fn recv_to_spare(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let n = recv(fd, buf.spare_capacity_mut())?;
    // SAFETY: recv initialized the first n bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Raises this process's soft limit on open descriptors to its hard limit (a server holding
/// thousands of connections needs more than the usual 1,024); returns the new limit.
pub(crate) fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: `limit` is a valid rlimit.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })?;
    Ok(limit.rlim_cur)
}

/// `send(2)` with `MSG_NOSIGNAL`, so a closed peer is `EPIPE` rather than a process-killing SIGPIPE.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live borrowed buffer that send only reads.
    let n = cvt_retry(|| unsafe {
        libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
    })?;
    Ok(n as usize)
}

/// `send(2)` with `MSG_MORE` as well: the caller sends more at once (a file body after its
/// head), so the kernel holds these bytes for it instead of sending a short segment.
pub(crate) fn send_more(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live borrowed buffer that send only reads.
    let n = cvt_retry(|| unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL | libc::MSG_MORE,
        )
    })?;
    Ok(n as usize)
}

/// `sendfile(2)`: up to `count` bytes of the file `file`, from `*offset` (which it advances by
/// what was sent), to the socket `socket`, without copying them through user space. `Ok(0)` at
/// the end of the file.
pub(crate) fn sendfile(
    socket: RawFd,
    file: RawFd,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let mut off =
        libc::off_t::try_from(*offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both are descriptors the caller holds open; `off` is a live local the kernel reads
    // and updates; sendfile touches no other memory of ours.
    let n = cvt_retry(|| unsafe { libc::sendfile(socket, file, &mut off, count) })?;
    *offset = u64::try_from(off).unwrap_or(*offset);
    Ok(n as usize)
}

/// `sendmsg(2)` of several buffers with `MSG_NOSIGNAL`. At most `IOV_MAX` buffers are sent.
pub(crate) fn sendmsg(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // 1024 is IOV_MAX on Linux; more would fail with EINVAL instead of a short write.
    let bufs = &bufs[..bufs.len().min(1024)];
    // SAFETY: msghdr is plain data, for which all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with iovec on Unix; sendmsg only reads through it.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: msg points at bufs.len() live iovecs borrowed for the duration of the call.
    let n = cvt_retry(|| unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) })?;
    Ok(n as usize)
}

/// `shutdown(2)`.
pub(crate) fn shutdown(fd: RawFd, how: c_int) -> io::Result<()> {
    // SAFETY: shutdown takes no pointers.
    cvt(unsafe { libc::shutdown(fd, how) })?;
    Ok(())
}

/// The local address of a socket.
pub(crate) fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage has room for any address and len says how much.
    cvt(unsafe { libc::getsockname(fd, storage.as_mut_ptr().cast(), &mut len) })?;
    // SAFETY: zeroed is a valid sockaddr_storage, and the kernel wrote at most its size.
    from_sockaddr(&unsafe { storage.assume_init() }, len)
}

/// The peer address of a connected socket (`ENOTCONN` while a connect is in progress).
pub(crate) fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage has room for any address and len says how much.
    cvt(unsafe { libc::getpeername(fd, storage.as_mut_ptr().cast(), &mut len) })?;
    // SAFETY: zeroed is a valid sockaddr_storage, and the kernel wrote at most its size.
    from_sockaddr(&unsafe { storage.assume_init() }, len)
}

/// Encodes a socket address for the kernel.
fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data, for which all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr type.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr type.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Decodes a socket address the kernel wrote.
fn from_sockaddr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> io::Result<SocketAddr> {
    let len = len as usize;
    match storage.ss_family as c_int {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is long enough.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6, and it is long enough.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "unsupported socket address family",
        )),
    }
}
