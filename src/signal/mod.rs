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
//!
//! [`mask`] keeps the handled signals blocked in every thread (and says why that comes first);
//! this module turns them into [`Request`]s on one thread of its own.

pub mod mask;

use std::io;

use libc::c_int;

use crate::restart::Restarter;
use crate::shutdown::ShutdownHandle;
use crate::sys;

pub use mask::{
    HANDLED_SIGNALS, REOPEN_SIGNALS, RESTART_SIGNAL, SHUTDOWN_SIGNALS, block_handled,
    handled_are_blocked, spawn_thread,
};

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
        let set = mask::handled();
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
