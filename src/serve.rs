//! [`serve`]: a whole server in one call — bind, signals, workers, graceful shutdown — for a
//! program of its own, as the `asycamore` binary is one.
//!
//! ```no_run
//! use std::rc::Rc;
//! use asycamore::server::ServerOptions;
//! use asycamore::service::{App, Environ, Reply, from_fn};
//!
//! fn main() -> std::io::Result<()> {
//!     let options = ServerOptions::new("127.0.0.1:8080".parse().unwrap());
//!     // Runs until SIGTERM, SIGINT or SIGQUIT, then lets in-flight requests finish.
//!     asycamore::serve(options, |_worker| {
//!         Rc::new(from_fn(|_: &mut Environ<'_>| Reply::text(200, "Hello from my main\n").boxed()))
//!             as Rc<dyn App>
//!     })?;
//!     Ok(())
//! }
//! ```
//!
//! Call it before starting threads of your own: it blocks the signals the server handles in the
//! calling thread, and only threads started afterwards inherit that (a thread started before
//! could run a signal's default action, and kill the process, see [`crate::signal`]).

use std::io;
use std::rc::Rc;

use crate::restart::Restarter;
use crate::server::{Server, ServerOptions, Worker};
use crate::service::App;
use crate::signal;
use crate::stats::StatsSnapshot;

/// What a server run with [`run`] does beyond serving.
pub struct Extras<S> {
    /// What SIGUSR1 and SIGHUP do (reopen an access log); `None`: nothing.
    pub reopen_logs: Option<Box<dyn FnMut() + Send>>,
    /// Whether SIGUSR2 restarts the binary on the same listeners (see [`crate::restart`]).
    pub restart: bool,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Called once every worker serves (see [`Server::run_and_notify`]).
    pub serving: S,
}

impl Default for Extras<fn()> {
    fn default() -> Extras<fn()> {
        Extras {
            reopen_logs: None,
            restart: false,
            quiet: true,
            serving: || {},
        }
    }
}

/// Binds `options` and serves the applications `make_app` makes (once per worker) until a
/// shutdown signal: SIGTERM, SIGINT or SIGQUIT begin a graceful shutdown (a second one exits at
/// once), SIGPIPE is ignored. Socket files (`options.unix`) are removed at the end. Returns
/// each worker's final counters.
///
/// # Errors
/// If an address cannot be bound, the signals cannot be set up, or a worker fails.
pub fn serve<F>(options: ServerOptions, make_app: F) -> io::Result<Vec<StatsSnapshot>>
where
    F: Fn(&Worker) -> Rc<dyn App> + Send + Sync + 'static,
{
    signal::block_handled()?;
    run(Server::bind(options)?, make_app, Extras::default())
}

/// Serves on a bound (or inherited) `server` with the signal thread, as [`serve`] does, plus the
/// `extras`; the binary's path, which adds the access log's reopening, restarts and its
/// start-up message. The handled signals must already be blocked ([`signal::block_handled`]).
///
/// # Errors
/// If the signal thread cannot start, or a worker fails.
pub fn run<F, S>(
    mut server: Server,
    make_app: F,
    extras: Extras<S>,
) -> io::Result<Vec<StatsSnapshot>>
where
    F: Fn(&Worker) -> Rc<dyn App> + Send + Sync + 'static,
    S: FnOnce(),
{
    let restarter = if extras.restart {
        match Restarter::new(server.listener_fds(), extras.quiet) {
            Ok(restarter) => Some(restarter),
            Err(e) => {
                eprintln!("asycamore: SIGUSR2 will not restart: cannot copy the listeners: {e}");
                None
            }
        }
    } else {
        None
    };
    let successor = restarter.as_ref().map(Restarter::successor);
    let socket_files = server.take_socket_files();
    signal::spawn_signal_thread(signal::Actions {
        shutdown: server.shutdown_handle(),
        reopen_logs: extras.reopen_logs,
        restart: restarter,
        quiet: extras.quiet,
    })?;
    let reports = server.run_and_notify(make_app, extras.serving);
    // A socket file is removed when the server is done with it, unless a restarted process
    // serves on it now (it removes the file when it is done).
    if !successor.is_some_and(|s| s.running()) {
        for file in socket_files {
            file.remove();
        }
    }
    reports
}
