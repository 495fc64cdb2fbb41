//! Signals as events: blocked in every thread and collected by one thread with `sigwait(2)`, so
//! no code runs in signal-handler context and no thread ever runs a signal's default action.
//!
//! | signal                      | what the server does                                          |
//! |-----------------------------|---------------------------------------------------------------|
//! | SIGTERM, SIGINT, SIGQUIT    | graceful shutdown; a second one exits at once (128 + signal)  |
//! | SIGHUP, SIGUSR1             | reopens the access log (logrotate's `postrotate`)             |
//! | SIGUSR2                     | restarts: re-executes the binary, handing it the listeners    |
//! | SIGPIPE                     | ignored (a write to a closed peer is an `EPIPE` error)         |
//!
//! # Why blocking comes first
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

use crate::restart::Restarter;
use crate::server::ShutdownHandle;
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

/// What a handled signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Stop accepting, finish in-flight requests, exit.
    Shutdown,
    /// Reopen the access log at its path.
    ReopenLogs,
    /// Start a new process on the same listeners, then drain this one.
    Restart,
}

impl Request {
    /// The request `signal` makes, or `None` for a signal we do not handle.
    pub fn of(signal: c_int) -> Option<Request> {
        if SHUTDOWN_SIGNALS.contains(&signal) {
            Some(Request::Shutdown)
        } else if REOPEN_SIGNALS.contains(&signal) {
            Some(Request::ReopenLogs)
        } else if signal == RESTART_SIGNAL {
            Some(Request::Restart)
        } else {
            None
        }
    }
}

fn handled() -> SigSet {
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

/// What the signal thread acts on: the shutdown handle, the log to reopen, the restarter.
pub struct Actions {
    /// Begins the graceful shutdown.
    pub shutdown: ShutdownHandle,
    /// Reopens the access log (nothing to do without one).
    pub reopen_logs: Option<Box<dyn FnMut() + Send>>,
    /// Starts the replacement process on SIGUSR2 (`None`: SIGUSR2 is only reported).
    pub restart: Option<Restarter>,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// Where the signal thread stands.
enum Phase {
    /// Serving: every request is honoured.
    Serving,
    /// Shutdown has begun: another shutdown signal exits at once, a restart is refused.
    ShuttingDown,
}

impl Actions {
    /// Acts on one signal; returns the next phase.
    fn on_signal(&mut self, phase: Phase, signal: c_int) -> Phase {
        match (phase, Request::of(signal)) {
            (Phase::Serving, Some(Request::Shutdown)) => {
                if !self.quiet {
                    eprintln!("asycamore: signal {signal}: shutting down (again to exit now)");
                }
                // Our copies of the listeners go first, so that the sockets close as soon as
                // the workers' acceptors drop theirs (or live on only in a new process).
                self.restart = None;
                self.shutdown.begin();
                Phase::ShuttingDown
            }
            (Phase::ShuttingDown, Some(Request::Shutdown)) => std::process::exit(128 + signal),
            (phase, Some(Request::ReopenLogs)) => {
                if let Some(reopen) = &mut self.reopen_logs {
                    reopen();
                }
                phase
            }
            (Phase::Serving, Some(Request::Restart)) => {
                match &mut self.restart {
                    Some(restarter) => match restarter.restart() {
                        Ok(pid) if !self.quiet => {
                            eprintln!("asycamore: signal {signal}: started pid {pid} to take over");
                        }
                        Ok(_) => {}
                        Err(e) => eprintln!("asycamore: cannot restart: {e}"),
                    },
                    None => eprintln!("asycamore: cannot restart: no listeners to hand over"),
                }
                Phase::Serving
            }
            (Phase::ShuttingDown, Some(Request::Restart)) => {
                eprintln!("asycamore: not restarting: already shutting down");
                Phase::ShuttingDown
            }
            (phase, None) => phase,
        }
    }
}

/// Starts the thread that waits for the handled signals and acts on them (see the table in the
/// module documentation). Call [`block_handled`] first, before starting other threads.
///
/// # Errors
/// If the thread cannot be started.
pub fn spawn_signal_thread(mut actions: Actions) -> io::Result<()> {
    spawn_thread("signals".into(), move || {
        let set = handled();
        let mut phase = Phase::Serving;
        while let Ok(signal) = sys::wait_signal(&set) {
            phase = actions.on_signal(phase, signal);
        }
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_handled_signal_makes_one_request() {
        let requests: Vec<_> = HANDLED_SIGNALS.iter().map(|&s| Request::of(s)).collect();
        assert_eq!(
            requests,
            [
                Some(Request::Shutdown),
                Some(Request::Shutdown),
                Some(Request::Shutdown),
                Some(Request::ReopenLogs),
                Some(Request::ReopenLogs),
                Some(Request::Restart),
            ]
        );
        assert_eq!(Request::of(libc::SIGPIPE), None);
    }

    #[test]
    fn spawned_threads_block_the_handled_signals_and_leave_the_caller_alone() {
        // The test harness's thread has an open mask; the spawned one must not.
        let before = handled_are_blocked().unwrap();
        let inside = spawn_thread("probe".into(), || handled_are_blocked().unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert!(inside);
        assert_eq!(handled_are_blocked().unwrap(), before);
    }
}
