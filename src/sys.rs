//! Every call into libc made by this crate (signals, process ids, inherited listeners), each
//! wrapped in a small safe function; the executor crate has its own for sockets and polling.
//!
//! Keeping the `unsafe` blocks here, and only here, lets [`crate::signal`] and
//! [`crate::restart`] reason about signal sets, `OwnedFd`s and `io::Result`s.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use libc::c_int;

/// The C convention (-1 and `errno`) as an `io::Error`.
fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The pthread convention (0, or the error number returned) as an `io::Error`.
fn cvt_pthread(ret: c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// A set of signals (`sigset_t`).
#[derive(Clone, Copy)]
pub(crate) struct SigSet(libc::sigset_t);

impl SigSet {
    /// The set holding exactly `signals`.
    pub(crate) fn of(signals: &[c_int]) -> SigSet {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable sigset_t; sigemptyset and sigaddset only fail for an
        // invalid signal number, and every caller passes libc's own constants.
        unsafe {
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::sigaddset(&mut set, signal);
            }
        }
        SigSet(set)
    }

    /// True if `signal` is in the set.
    pub(crate) fn contains(&self, signal: c_int) -> bool {
        // SAFETY: `self.0` is an initialised sigset_t; sigismember only reads it.
        unsafe { libc::sigismember(&self.0, signal) == 1 }
    }
}

/// Adds `set` to the calling thread's blocked signals; returns the mask it had before.
///
/// # Errors
/// From `pthread_sigmask` (only for an invalid argument, which this never passes).
pub(crate) fn block_signals(set: &SigSet) -> io::Result<SigSet> {
    let mut old = SigSet::of(&[]);
    // SAFETY: both pointers are to initialised sigset_t values that outlive the call.
    cvt_pthread(unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set.0, &mut old.0) })?;
    Ok(old)
}

/// Replaces the calling thread's blocked signals with `mask`.
///
/// # Errors
/// From `pthread_sigmask`.
pub(crate) fn set_signal_mask(mask: &SigSet) -> io::Result<()> {
    // SAFETY: `mask` is an initialised sigset_t; a null old-set pointer is allowed.
    cvt_pthread(unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask.0, std::ptr::null_mut()) })
}

/// The calling thread's blocked signals.
///
/// # Errors
/// From `pthread_sigmask`.
pub(crate) fn signal_mask() -> io::Result<SigSet> {
    let mut old = SigSet::of(&[]);
    // SAFETY: with a null new set, pthread_sigmask only writes the current mask into `old`.
    cvt_pthread(unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut old.0) })?;
    Ok(old)
}

/// Waits for one of `set` (which must be blocked in every thread) and returns its number.
///
/// # Errors
/// From `sigwait` (an invalid set).
pub(crate) fn wait_signal(set: &SigSet) -> io::Result<c_int> {
    let mut signal: c_int = 0;
    // SAFETY: `set` is initialised and `signal` is a valid place for the result.
    cvt_pthread(unsafe { libc::sigwait(&set.0, &mut signal) })?;
    Ok(signal)
}

/// Sets `signal`'s disposition to "ignore" for the whole process.
///
/// # Errors
/// From `sigaction`.
pub(crate) fn ignore_signal(signal: c_int) -> io::Result<()> {
    // SAFETY: sigaction is plain data; zeroed, it has an empty mask and no flags, and setting
    // sa_sigaction to SIG_IGN installs no handler code at all.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = libc::SIG_IGN;
    // SAFETY: `action` is initialised; a null old-action pointer is allowed.
    cvt(unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) }).map(drop)
}

/// Sends `signal` to process `pid`.
///
/// # Errors
/// `ESRCH` if there is no such process, `EPERM` if it is not ours to signal.
pub(crate) fn kill(pid: u32, signal: c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: kill(2) takes plain integers; a positive pid names one process, never a group.
    cvt(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// The parent process's id.
pub(crate) fn parent_pid() -> u32 {
    // SAFETY: getppid(2) cannot fail and has no arguments.
    let pid = unsafe { libc::getppid() };
    u32::try_from(pid).unwrap_or(0)
}

/// Reads an int socket option of `fd`.
fn socket_option(fd: RawFd, level: c_int, name: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes and `len` holds the size of `value`.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &mut len) })?;
    Ok(value)
}

/// Takes ownership of a listening TCP or Unix-domain socket this process inherited as
/// descriptor `fd`, making it close-on-exec again (it was passed without the flag so that it survived `execve`).
///
/// # Errors
/// `EBADF` if `fd` is not open, `ENOTSOCK` if it is not a socket, `EINVAL` if it is not a
/// listening stream socket; nothing is taken then.
pub(crate) fn adopt_listener(fd: RawFd) -> io::Result<(OwnedFd, ListenerFamily)> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; an unopened number answers EBADF.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let listening = socket_option(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)?;
    let kind = socket_option(fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    if listening == 0 || kind != libc::SOCK_STREAM {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    #[cfg(target_os = "linux")]
    let family = match socket_option(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)? {
        libc::AF_INET | libc::AF_INET6 => ListenerFamily::Inet,
        libc::AF_UNIX => ListenerFamily::Unix,
        _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    #[cfg(not(target_os = "linux"))]
    let family = ListenerFamily::Inet;
    // SAFETY: F_SETFD only changes the descriptor's close-on-exec flag.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    // SAFETY: `fd` is open (F_GETFD succeeded) and is a listening socket this process did not
    // open itself: it came across `execve` from the process that started us, named by the
    // environment. The caller takes each inherited number once, at start-up, before anything of
    // ours could own it, so this `OwnedFd` is its only owner.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, family))
}

/// What kind of listening socket [`adopt_listener`] took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerFamily {
    /// TCP over IPv4 or IPv6.
    Inet,
    /// A Unix-domain stream socket.
    Unix,
}

/// Spawns `command` so that the child inherits `fds` (their close-on-exec flag cleared in the
/// child only, between `fork` and `execve`) and starts with `blocked` added to its signal mask,
/// which `execve` keeps: a signal arriving before the new program's `main` has blocked them
/// itself then waits instead of killing it.
///
/// # Errors
/// From `fork`, `execve` or the `fcntl` calls in the child (reported by `spawn`).
pub(crate) fn spawn_inheriting(
    command: &mut Command,
    fds: Vec<RawFd>,
    blocked: SigSet,
) -> io::Result<Child> {
    let child_setup = move || -> io::Result<()> {
        // Only async-signal-safe calls here (fcntl, pthread_sigmask), and no allocation: this
        // runs in the forked child of a multi-threaded process.
        for &fd in &fds {
            // SAFETY: fcntl on a descriptor number; the flags are read and written back.
            let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
            // SAFETY: as above; only FD_CLOEXEC changes.
            cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) })?;
        }
        // SAFETY: `blocked` is an initialised sigset_t; a null old-set pointer is allowed.
        cvt_pthread(unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, &blocked.0, std::ptr::null_mut())
        })
    };
    // SAFETY: the closure only makes async-signal-safe calls and does not allocate, lock or
    // touch state shared with other threads, which is what `pre_exec` requires after `fork`.
    unsafe { command.pre_exec(child_setup) };
    command.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_set_holds_what_it_was_given() {
        let set = SigSet::of(&[libc::SIGTERM, libc::SIGUSR1]);
        assert!(set.contains(libc::SIGTERM));
        assert!(set.contains(libc::SIGUSR1));
        assert!(!set.contains(libc::SIGINT));
    }

    #[test]
    fn only_listening_sockets_are_adopted() {
        use std::os::fd::{AsRawFd, IntoRawFd};
        assert_eq!(
            adopt_listener(-1).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A connected socket is not a listener.
        let client = std::net::TcpStream::connect(addr).unwrap();
        let err = adopt_listener(client.as_raw_fd()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        // A file is not a socket.
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let err = adopt_listener(file.as_raw_fd()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK));
        // A listener given up by its owner is taken, close-on-exec again.
        let (adopted, family) = adopt_listener(listener.into_raw_fd()).unwrap();
        assert_eq!(family, ListenerFamily::Inet);
        let listener = std::net::TcpListener::from(adopted);
        assert_eq!(listener.local_addr().unwrap(), addr);
        // A Unix-domain listener is taken too, and said to be one.
        let path = std::env::temp_dir().join(format!("asycamore-adopt-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let (_, family) = adopt_listener(unix.into_raw_fd()).unwrap();
        assert_eq!(family, ListenerFamily::Unix);
        let _ = std::fs::remove_file(&path);
    }
}
