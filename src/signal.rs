//! SIGTERM and SIGINT as events: blocked in every thread and collected by one thread with
//! `sigwait(2)`, so no code runs in signal-handler context.
//!
//! The first signal begins a graceful shutdown; a second one exits at once.

use std::io;

use crate::server::ShutdownHandle;

/// The set {SIGINT, SIGTERM}.
fn shutdown_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t; these calls only fail for invalid signals.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
    }
    set
}

/// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it starts afterwards.
///
/// # Errors
/// If `pthread_sigmask` fails.
pub fn block_shutdown_signals() -> io::Result<()> {
    let set = shutdown_signals();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Waits for the next SIGINT or SIGTERM (which must be blocked); returns its number.
fn wait_for_signal() -> io::Result<i32> {
    let set = shutdown_signals();
    let mut signal: libc::c_int = 0;
    // SAFETY: `set` is initialised and `signal` is a valid place for the result.
    let rc = unsafe { libc::sigwait(&set, &mut signal) };
    if rc == 0 {
        Ok(signal)
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Starts the thread that turns the first signal into `shutdown.begin()` and a second one into
/// an immediate exit (status 128 + the signal's number, as a shell reports a killed process).
/// Call [`block_shutdown_signals`] first, before starting other threads.
///
/// # Errors
/// If the thread cannot be started.
pub fn spawn_signal_thread(shutdown: ShutdownHandle, quiet: bool) -> io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            while let Ok(signal) = wait_for_signal() {
                seen += 1;
                if seen == 1 {
                    if !quiet {
                        eprintln!("asycamore: signal {signal}: shutting down (again to exit now)");
                    }
                    shutdown.begin();
                } else {
                    std::process::exit(128 + signal);
                }
            }
        })?;
    Ok(())
}
