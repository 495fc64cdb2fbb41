//! The server: binds, runs one executor per worker thread, limits connections, shuts down
//! gracefully.
//!
//! Each worker owns an executor, its own `SO_REUSEPORT` listener on the shared address (the kernel
//! spreads new connections between them), its own [`App`] (made once per worker) and its own
//! counters: nothing is shared between workers on the hot path.
//!
//! Shutdown (see [`crate::shutdown`]): [`ShutdownHandle::begin`] (from a signal thread, say)
//! wakes every worker's shutdown watcher; the worker returns once its last connection is gone, or
//! when the grace period ends (what remains is closed then).
//!
//! [`spawn_worker`] puts one worker's tasks on any executor, over any listener: the server runs
//! it on a real poller and TCP listener, the simulation tests on the simulator's.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use asycamore_executor::EpollPoller;
use asycamore_executor::net::{Listener, Options, TcpListener};
use asycamore_executor::service::Acceptor;
use asycamore_executor::{Executor, Poller, Task, Waker};

use crate::config::Config;
use crate::conn::Connection;
use crate::service::{App, Peer};
pub use crate::shutdown::ShutdownHandle;
use crate::shutdown::{ShutdownWatcher, WorkerShutdown};
use crate::stats::ServerStats;

/// Default listen backlog: enough for a burst of thousands of connects while the loop is busy.
pub const BACKLOG: i32 = 4096;

/// Default time in-flight requests get to finish after shutdown begins.
pub const GRACE: Duration = Duration::from_secs(30);

/// How often a worker copies its executor's counters into its [`ServerStats`].
const STATS_INTERVAL: Duration = Duration::from_millis(250);

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// Limits, timeouts and buffer marks for every connection.
    pub config: Config,
    /// The kernel's queue of connections not yet accepted, per listener.
    pub backlog: i32,
    /// Worker threads, each with its own executor and listener.
    pub workers: usize,
    /// Live connections allowed in the whole server (split evenly between workers); beyond it the
    /// acceptors stop accepting and new clients wait in the kernel's backlog.
    pub max_connections: Option<usize>,
    /// See [`GRACE`].
    pub grace: Duration,
    /// Where each worker's executor gets readiness from.
    pub poller: PollerKind,
}

/// The readiness backend of the workers' executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollerKind {
    /// `poll(2)`: the executor's reference backend; each turn costs time in proportion to the
    /// connections open.
    Poll,
    /// `epoll(7)` (Linux): each turn costs time in proportion to the connections ready, so
    /// thousands of idle keep-alive connections cost nothing. The default on Linux.
    #[cfg(target_os = "linux")]
    Epoll,
}

impl Default for PollerKind {
    fn default() -> PollerKind {
        #[cfg(target_os = "linux")]
        return PollerKind::Epoll;
        #[cfg(not(target_os = "linux"))]
        return PollerKind::Poll;
    }
}

impl std::str::FromStr for PollerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<PollerKind, String> {
        match s {
            "poll" => Ok(PollerKind::Poll),
            #[cfg(target_os = "linux")]
            "epoll" => Ok(PollerKind::Epoll),
            other => Err(format!("unknown poller {other:?} (expected epoll or poll)")),
        }
    }
}

impl ServerOptions {
    /// One worker on `addr` with default settings.
    pub fn new(addr: SocketAddr) -> ServerOptions {
        ServerOptions {
            addr,
            config: Config::default(),
            backlog: BACKLOG,
            workers: 1,
            max_connections: None,
            grace: GRACE,
            poller: PollerKind::default(),
        }
    }
}

/// What a worker tells the application it makes: its index, its counters, every worker's
/// published counters, and whether it is shutting down.
#[derive(Clone)]
pub struct Worker {
    /// 0 for the first worker.
    pub index: usize,
    /// This worker's counters (also the executor's, refreshed a few times a second).
    pub stats: Rc<ServerStats>,
    /// Every worker's counters, as each last published them.
    pub board: Arc<StatusBoard>,
    /// True once shutdown has begun.
    pub shutting_down: Rc<Cell<bool>>,
}

/// The counters of all workers, each published by its worker a few times a second; the one
/// place workers share, and off the hot path (a lock taken per publication, not per request).
#[derive(Debug, Default)]
pub struct StatusBoard {
    workers: Mutex<Vec<crate::stats::StatsSnapshot>>,
}

impl StatusBoard {
    /// A board for `workers` workers, all counters zero.
    pub fn new(workers: usize) -> StatusBoard {
        StatusBoard {
            workers: Mutex::new(vec![Default::default(); workers]),
        }
    }

    /// Records worker `index`'s counters.
    pub fn publish(&self, index: usize, snapshot: crate::stats::StatsSnapshot) {
        if let Ok(mut workers) = self.workers.lock()
            && let Some(slot) = workers.get_mut(index)
        {
            *slot = snapshot;
        }
    }

    /// Every worker's last published counters, by index.
    pub fn snapshots(&self) -> Vec<crate::stats::StatsSnapshot> {
        self.workers.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

/// A bound server: its listeners are open (so an address in use is reported before anything
/// runs); [`Server::run`] starts the workers.
pub struct Server {
    listeners: Vec<TcpListener>,
    local: SocketAddr,
    options: ServerOptions,
    shutdown: ShutdownHandle,
}

impl Server {
    /// Binds `options.workers` listeners on `options.addr`.
    ///
    /// # Errors
    /// If the address cannot be bound (in use, not local, no permission).
    pub fn bind(options: ServerOptions) -> io::Result<Server> {
        let workers = options.workers.max(1);
        let reuse_port = workers > 1;
        if reuse_port {
            // SO_REUSEPORT would let us share a port another server holds with the same option;
            // a plain bind first makes "address in use" mean what it says.
            drop(TcpListener::bind(
                options.addr,
                Options {
                    backlog: 1,
                    reuse_port: false,
                },
            )?);
        }
        let first = TcpListener::bind(
            options.addr,
            Options {
                backlog: options.backlog,
                reuse_port,
            },
        )?;
        let local = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..workers {
            listeners.push(TcpListener::bind(
                local,
                Options {
                    backlog: options.backlog,
                    reuse_port,
                },
            )?);
        }
        Ok(Server {
            listeners,
            local,
            options,
            shutdown: ShutdownHandle::default(),
        })
    }

    /// The address the server listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A handle that begins a graceful shutdown from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Runs every worker until shutdown completes; `make_app` is called once in each worker
    /// thread. Returns each worker's final counters (and executor profile).
    ///
    /// # Errors
    /// If a worker cannot start its executor, or polling fails.
    pub fn run<F>(self, make_app: F) -> io::Result<Vec<crate::stats::StatsSnapshot>>
    where
        F: Fn(&Worker) -> Rc<dyn App> + Send + Sync + 'static,
    {
        let Server {
            listeners,
            local,
            options,
            shutdown,
        } = self;
        let make_app = Arc::new(make_app);
        let workers = listeners.len();
        let per_worker_cap = options.max_connections.map(|n| n.div_ceil(workers).max(1));
        let board = Arc::new(StatusBoard::new(workers));
        let mut threads = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            let make_app = Arc::clone(&make_app);
            let options = options.clone();
            let shutdown = shutdown.clone();
            let board = Arc::clone(&board);
            let thread = std::thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || {
                    let place = Placement {
                        index,
                        local,
                        max_connections: per_worker_cap,
                        board,
                    };
                    run_worker(&place, listener, &options, &shutdown, &*make_app)
                })?;
            threads.push(thread);
        }
        let mut snapshots = Vec::new();
        let mut first_error = None;
        for thread in threads {
            match thread.join() {
                Ok(Ok(snapshot)) => snapshots.push(snapshot),
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => first_error = first_error.or(Some(io::Error::other("a worker panicked"))),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(snapshots),
        }
    }
}

/// Where one worker stands among the others.
struct Placement {
    index: usize,
    local: SocketAddr,
    max_connections: Option<usize>,
    board: Arc<StatusBoard>,
}

/// One worker thread's life: build its executor and app, serve, shut down.
fn run_worker(
    place: &Placement,
    listener: TcpListener,
    options: &ServerOptions,
    shutdown: &ShutdownHandle,
    make_app: &dyn Fn(&Worker) -> Rc<dyn App>,
) -> io::Result<crate::stats::StatsSnapshot> {
    match options.poller {
        PollerKind::Poll => serve(
            Executor::new()?,
            place,
            listener,
            options,
            shutdown,
            make_app,
        ),
        #[cfg(target_os = "linux")]
        PollerKind::Epoll => serve(
            Executor::with_poller(EpollPoller::new()?)?,
            place,
            listener,
            options,
            shutdown,
            make_app,
        ),
    }
}

/// [`run_worker`] on an executor over the chosen poller.
fn serve<P: Poller>(
    mut executor: Executor<P>,
    place: &Placement,
    listener: TcpListener,
    options: &ServerOptions,
    shutdown: &ShutdownHandle,
    make_app: &dyn Fn(&Worker) -> Rc<dyn App>,
) -> io::Result<crate::stats::StatsSnapshot> {
    let Placement {
        index,
        local,
        max_connections,
        ..
    } = *place;
    let stats = Rc::new(ServerStats::default());
    let worker_shutdown = Rc::new(WorkerShutdown::default());
    let worker = Worker {
        index,
        stats: Rc::clone(&stats),
        board: Arc::clone(&place.board),
        shutting_down: Rc::clone(&worker_shutdown.flag),
    };
    let app = make_app(&worker);
    let setup = WorkerSetup {
        app,
        config: Rc::new(options.config.clone()),
        stats: Rc::clone(&stats),
        shutdown: Rc::clone(&worker_shutdown),
        local,
        max_connections,
    };
    let watcher = spawn_worker(&mut executor, listener, setup);
    shutdown.register(watcher);

    let mut grace_deadline: Option<Instant> = None;
    loop {
        let tick = Instant::now() + STATS_INTERVAL;
        let tick = grace_deadline.map_or(tick, |g| tick.min(g));
        executor.run_until(tick)?;
        stats.set_executor(executor.stats());
        place.board.publish(index, stats.snapshot());
        if worker_shutdown.flag.get() {
            let deadline = *grace_deadline.get_or_insert_with(|| Instant::now() + options.grace);
            if stats.snapshot().connections_open == 0 || Instant::now() >= deadline {
                break;
            }
        }
    }
    Ok(stats.snapshot())
}

/// What one worker serves, and with what: shared by all its connections.
pub struct WorkerSetup {
    /// The application, made once for this worker.
    pub app: Rc<dyn App>,
    /// Limits and timeouts.
    pub config: Rc<Config>,
    /// The worker's counters.
    pub stats: Rc<ServerStats>,
    /// The worker's shutdown state, which its connections and the watcher share.
    pub shutdown: Rc<WorkerShutdown>,
    /// The address connections are accepted on (`SERVER_PORT`, and `SERVER_NAME` without Host).
    pub local: SocketAddr,
    /// Live connections this worker allows; see [`ServerOptions::max_connections`].
    pub max_connections: Option<usize>,
}

/// Spawns one worker's tasks on `executor`: the acceptor on `listener`, which starts a
/// [`Connection`] task for each client, and the shutdown watcher. Returns the watcher's waker:
/// wake it (through a [`ShutdownHandle`]) to begin this worker's graceful shutdown.
pub fn spawn_worker<P, L>(executor: &mut Executor<P>, listener: L, setup: WorkerSetup) -> Waker
where
    P: Poller,
    L: Listener + 'static,
    L::Stream: 'static,
{
    let WorkerSetup {
        app,
        config,
        stats,
        shutdown,
        local,
        max_connections,
    } = setup;
    let stop_accepting = Arc::new(AtomicBool::new(false));
    let factory = {
        let shutdown = Rc::clone(&shutdown);
        move |stream: L::Stream, remote| -> Task {
            let peer = Peer { remote, local };
            Box::new(
                Connection::new(
                    stream,
                    peer,
                    Rc::clone(&app),
                    Rc::clone(&config),
                    Rc::clone(&stats),
                )
                .with_shutdown(Rc::clone(&shutdown)),
            )
        }
    };
    let mut acceptor = Acceptor::new(listener, factory).with_stop(Arc::clone(&stop_accepting));
    if let Some(max) = max_connections {
        acceptor = acceptor.with_max_connections(max);
    }
    let acceptor_id = executor.spawn(acceptor);
    let acceptor = executor.waker(acceptor_id);
    let watcher = executor.spawn(ShutdownWatcher {
        shutdown,
        stop_accepting,
        acceptor,
    });
    executor.waker(watcher)
}
