//! The signals the server handles, kept blocked in every thread it starts.
//!
//! The kernel delivers a process-directed signal to any one thread that does not block it. A
//! thread started before the signals were blocked keeps an open mask, so a SIGTERM could land
//! there and run the default action — killing the process mid-response, with the access log's
//! buffered lines lost. A thread inherits its creator's mask, so the binary calls
//! [`block_handled`] as the very first thing in `main`, before any thread exists; every thread
//! started afterwards is born with the handled signals blocked. For programs that embed the
//! library and do not do that, every thread the library starts goes through [`spawn_thread`],
//! which blocks the handled signals around the spawn: the library's threads never take a signal
//! meant for the program, whatever the program's own main thread does.

use std::io;
use std::thread::JoinHandle;

use libc::c_int;

use crate::sys::{self, SigSet};

/// The signals that begin a graceful shutdown.
pub const SHUTDOWN_SIGNALS: [c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT];

/// The signals that reopen the access log (there is no configuration file to reload).
pub const REOPEN_SIGNALS: [c_int; 2] = [libc::SIGHUP, libc::SIGUSR1];

/// The signal that restarts the server in place (see [`crate::restart`]).
pub const RESTART_SIGNAL: c_int = libc::SIGUSR2;

/// Every signal the server handles: blocked everywhere, waited for by the signal thread.
pub const HANDLED_SIGNALS: [c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// The handled signals as a set.
pub(crate) fn handled() -> SigSet {
    SigSet::of(&HANDLED_SIGNALS)
}

/// Blocks every handled signal in the calling thread, and so in every thread it starts
/// afterwards, and ignores SIGPIPE. The binary calls it first thing in `main`, before any thread
/// exists (see the module documentation).
///
/// # Errors
/// If `pthread_sigmask` or `sigaction` fails.
pub fn block_handled() -> io::Result<()> {
    // The Rust runtime already ignores SIGPIPE in a binary; saying so here makes it a property of
    // the server rather than of the runtime's defaults.
    sys::ignore_signal(libc::SIGPIPE)?;
    sys::block_signals(&handled()).map(drop)
}

/// True if every handled signal is blocked in the calling thread.
///
/// # Errors
/// If `pthread_sigmask` fails.
pub fn handled_are_blocked() -> io::Result<bool> {
    let mask = sys::signal_mask()?;
    Ok(HANDLED_SIGNALS.iter().all(|&s| mask.contains(s)))
}

/// Starts a thread named `name` with the handled signals blocked from its first instruction,
/// whatever the calling thread's mask (which is left as it was). Every thread the library
/// starts — workers, the pool, the access-log writer, the signal thread — goes through here.
///
/// # Errors
/// If the thread cannot be spawned or the mask cannot be changed.
pub fn spawn_thread<F, T>(name: String, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // A new thread inherits the creator's mask: block, spawn, then give the creator its mask back.
    let before = sys::block_signals(&handled())?;
    let spawned = std::thread::Builder::new().name(name).spawn(f);
    sys::set_signal_mask(&before)?;
    spawned
}
