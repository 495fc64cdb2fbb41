//! The server: binds, runs one executor per worker thread, limits connections, shuts down
//! gracefully.
//!
//! Each worker owns an executor, its own `SO_REUSEPORT` listener on the shared address (the kernel
//! spreads new connections between them), its own [`App`] (made once per worker) and its own
//! counters: nothing is shared between workers on the hot path. A socket file
//! (`--bind unix:PATH`) is one socket that every worker accepts on: the kernel has no
//! `SO_REUSEPORT` spreading for Unix-domain sockets.
//!
//! Shutdown (see [`crate::shutdown`]): [`ShutdownHandle::begin`] (from a signal thread, say)
//! wakes every worker's shutdown watcher; the worker returns once its last connection is gone, or
//! when the grace period ends (what remains is closed then).
//!
//! [`spawn_worker`] puts one worker's tasks on any executor, over any listeners: the server runs
//! it on a real poller and TCP listeners, the simulation tests on the simulator's.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[cfg(target_os = "linux")]
use executor::EpollPoller;
use executor::acceptor::Acceptor;
use executor::net::{Listener, Options, TcpListener};
use executor::unix::UnixListener;
use executor::{Executor, Poller, Waker};

use crate::config::Config;
use crate::conn::Connection;
use crate::service::{App, Peer};
pub use crate::shutdown::ShutdownHandle;
use crate::shutdown::{ShutdownWatcher, WorkerShutdown};
use crate::socket_file::{self, FileMode, SocketFile};
use crate::stats::{ServerStats, StatsSnapshot};

/// Default listen backlog: enough for a burst of thousands of connects while the loop is busy.
pub const BACKLOG: i32 = 4096;

/// How long the kernel holds a new connection that has sent nothing before handing it to an
/// acceptor anyway ([`ServerOptions::defer_accept`]): one second, the first SYN-ACK
/// retransmission. Every ordinary client sends its request well within it.
pub const DEFER_ACCEPT_SECS: u32 = 1;

/// Default time in-flight requests get to finish after shutdown begins.
pub const GRACE: Duration = Duration::from_secs(30);

/// How often a worker copies its executor's counters into its [`ServerStats`].
const STATS_INTERVAL: Duration = Duration::from_millis(250);

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The addresses to listen on (every worker accepts on all of them).
    pub addrs: Vec<SocketAddr>,
    /// Socket files to listen on (`--bind unix:PATH`): one socket each, which every worker
    /// accepts on.
    pub unix: Vec<PathBuf>,
    /// The permission bits of each socket file (see [`crate::socket_file`]).
    pub unix_mode: FileMode,
    /// Limits, timeouts and buffer marks for every connection.
    pub config: Config,
    /// The kernel's queue of connections not yet accepted, per listener.
    pub backlog: i32,
    /// Accept a TCP connection only once its first bytes have arrived (`TCP_DEFER_ACCEPT` for
    /// [`DEFER_ACCEPT_SECS`], as Apache httpd does by default and nginx's `listen … deferred`):
    /// the acceptor's first read then finds the request, and a connection costs no
    /// registration, no wake for its first bytes and no read that finds nothing (HTTP/1.0 with
    /// one request per connection: about a third less server CPU per request). On by default
    /// (`--no-defer-accept` turns it off). Socket files are unaffected.
    pub defer_accept: bool,
    /// Worker threads, each with its own executor and listeners.
    pub workers: usize,
    /// Live connections allowed in the whole server (split evenly between workers, and between
    /// a worker's listeners); beyond it the acceptors stop accepting and new clients wait in the
    /// kernel's backlog.
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
    /// The `TCP_DEFER_ACCEPT` time for the TCP listeners: [`DEFER_ACCEPT_SECS`], or 0 (off).
    fn defer_accept_secs(&self) -> u32 {
        if self.defer_accept {
            DEFER_ACCEPT_SECS
        } else {
            0
        }
    }

    /// One worker on `addr` with default settings.
    pub fn new(addr: SocketAddr) -> ServerOptions {
        ServerOptions {
            addrs: vec![addr],
            unix: Vec::new(),
            unix_mode: socket_file::DEFAULT_MODE,
            config: Config::default(),
            backlog: BACKLOG,
            defer_accept: true,
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
///
/// Each worker publishes only its own slot, from its own thread, and its counters only grow, so
/// every slot only grows. A page showing server-wide totals (`/metrics`, `/_status`) is served by
/// one worker: it publishes its live counters first, then sums every slot. The sum then
/// includes everything that worker had counted, and every other worker's last publication —
/// never less than what an earlier page showed, whichever worker served it: totals never go
/// down between two scrapes.
#[derive(Debug)]
pub struct StatusBoard {
    workers: Mutex<Vec<StatsSnapshot>>,
    started: SystemTime,
}

impl Default for StatusBoard {
    fn default() -> StatusBoard {
        StatusBoard::new(0)
    }
}

impl StatusBoard {
    /// A board for `workers` workers, all counters zero.
    pub fn new(workers: usize) -> StatusBoard {
        StatusBoard {
            workers: Mutex::new(vec![Default::default(); workers]),
            started: crate::stats::process_start(),
        }
    }

    /// When the server started (see [`crate::stats::process_start`]).
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// Publishes worker `index`'s live counters, then returns every worker's last published
    /// counters (by index) and their total: what a page of server-wide figures shows.
    pub fn publish_and_read(
        &self,
        index: usize,
        live: StatsSnapshot,
    ) -> (Vec<StatsSnapshot>, StatsSnapshot) {
        self.publish(index, live);
        let all = self.snapshots();
        let total = StatsSnapshot::total(&all);
        (all, total)
    }

    /// Records worker `index`'s counters.
    pub fn publish(&self, index: usize, snapshot: StatsSnapshot) {
        if let Ok(mut workers) = self.workers.lock()
            && let Some(slot) = workers.get_mut(index)
        {
            *slot = snapshot;
        }
    }

    /// Every worker's last published counters, by index.
    pub fn snapshots(&self) -> Vec<StatsSnapshot> {
        self.workers.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

/// A bound server: its listeners are open (so an address in use is reported before anything
/// runs); [`Server::run`] starts the workers.
pub struct Server {
    /// Every listening socket, each once.
    sockets: Vec<TcpListener>,
    /// For each worker, the indexes in `sockets` of the listeners it accepts on.
    assignment: Vec<Vec<usize>>,
    /// The address of each socket.
    locals: Vec<SocketAddr>,
    /// Every Unix-domain listening socket, each once; every worker accepts on each.
    unix: Vec<UnixListener>,
    /// The files of `unix` this process is to remove when it is done with them.
    socket_files: Vec<SocketFile>,
    options: ServerOptions,
    shutdown: ShutdownHandle,
}

impl Server {
    /// Binds every address of `options.addrs`, one listener per worker on each (with
    /// `SO_REUSEPORT` when there are several workers, so the kernel spreads connections), then
    /// every socket file of `options.unix`, one socket each (see [`SocketFile::bind`]).
    ///
    /// # Errors
    /// If an address cannot be bound (in use, not local, no permission), or none is given.
    pub fn bind(options: ServerOptions) -> io::Result<Server> {
        crate::stats::process_start();
        if options.addrs.is_empty() && options.unix.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no address to listen on",
            ));
        }
        let workers = options.workers.max(1);
        let reuse_port = workers > 1;
        let mut sockets = Vec::new();
        let mut assignment = vec![Vec::new(); workers];
        for &addr in &options.addrs {
            if reuse_port {
                // SO_REUSEPORT would let us share a port another server holds with the same
                // option; a plain bind first makes "address in use" mean what it says.
                drop(
                    TcpListener::bind(
                        addr,
                        Options {
                            backlog: 1,
                            ..Options::default()
                        },
                    )
                    .map_err(|e| with_addr(e, addr))?,
                );
            }
            let mut local = addr;
            for worker in &mut assignment {
                let listener = TcpListener::bind(
                    local,
                    Options {
                        backlog: options.backlog,
                        reuse_port,
                        defer_accept_secs: options.defer_accept_secs(),
                    },
                )
                .map_err(|e| with_addr(e, addr))?;
                // Port 0 picks a port on the first bind; the other workers join that one.
                local = listener.local_addr()?;
                worker.push(sockets.len());
                sockets.push(listener);
            }
        }
        let mut unix = Vec::new();
        let mut socket_files: Vec<SocketFile> = Vec::new();
        for path in &options.unix {
            match SocketFile::bind(path, options.backlog, options.unix_mode) {
                Ok((listener, file)) => {
                    unix.push(listener);
                    socket_files.push(file);
                }
                Err(e) => {
                    // Leave no file of ours behind for a server that does not start.
                    drop(unix);
                    for file in socket_files {
                        file.remove();
                    }
                    return Err(with_path(e, path));
                }
            }
        }
        Server::assemble(sockets, assignment, unix, socket_files, options)
    }

    /// A server on listeners that are already open — inherited from the process this one
    /// replaces ([`crate::restart`]) — instead of binding `options.addrs` and `options.unix`.
    /// The TCP listeners of one address are shared out between the workers: each worker accepts
    /// on at least one per address, and every listener has a worker accepting on it (a listener
    /// nobody accepts on would still get its share of connections from the kernel, and leave
    /// them waiting). Every worker accepts on every Unix-domain listener, and this process
    /// removes their files when done, as if it had bound them.
    ///
    /// # Errors
    /// If a listener's address cannot be read or none is given.
    pub fn from_listeners(
        listeners: Vec<TcpListener>,
        unix: Vec<UnixListener>,
        options: ServerOptions,
    ) -> io::Result<Server> {
        crate::stats::process_start();
        if listeners.is_empty() && unix.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no listener to serve on",
            ));
        }
        let workers = options.workers.max(1);
        let mut groups: Vec<(SocketAddr, Vec<usize>)> = Vec::new();
        for (i, listener) in listeners.iter().enumerate() {
            // This process's `--no-defer-accept`, not the one it replaces, decides.
            listener.set_defer_accept(options.defer_accept_secs())?;
            let local = listener.local_addr()?;
            match groups.iter_mut().find(|(addr, _)| *addr == local) {
                Some((_, members)) => members.push(i),
                None => groups.push((local, vec![i])),
            }
        }
        let mut assignment = vec![Vec::new(); workers];
        for (_, members) in &groups {
            for (w, worker) in assignment.iter_mut().enumerate() {
                // Worker w takes listeners w, w + workers, ...; with fewer listeners than
                // workers, it shares listener w mod n with another worker.
                let mine: Vec<usize> = members.iter().copied().skip(w).step_by(workers).collect();
                if mine.is_empty() {
                    worker.push(members[w % members.len()]);
                } else {
                    worker.extend(mine);
                }
            }
        }
        let mut socket_files = Vec::new();
        for listener in &unix {
            if let Some(path) = listener.local_path()? {
                socket_files.push(SocketFile::adopt(&path)?);
            }
        }
        Server::assemble(listeners, assignment, unix, socket_files, options)
    }

    fn assemble(
        sockets: Vec<TcpListener>,
        assignment: Vec<Vec<usize>>,
        unix: Vec<UnixListener>,
        socket_files: Vec<SocketFile>,
        options: ServerOptions,
    ) -> io::Result<Server> {
        let locals = sockets
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Server {
            sockets,
            assignment,
            locals,
            unix,
            socket_files,
            options,
            shutdown: ShutdownHandle::default(),
        })
    }

    /// The first TCP address the server listens on (the real port when bound to port 0).
    ///
    /// # Panics
    /// If it listens on socket files only.
    pub fn local_addr(&self) -> SocketAddr {
        self.locals[0]
    }

    /// Every address the server listens on, each once, in the order given.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for addr in &self.locals {
            if !addrs.contains(addr) {
                addrs.push(*addr);
            }
        }
        addrs
    }

    /// The socket files the server listens on, in the order given.
    pub fn socket_paths(&self) -> Vec<&Path> {
        self.socket_files.iter().map(SocketFile::path).collect()
    }

    /// Every listening socket, TCP and Unix-domain, each once: what a restart hands to the new
    /// process ([`crate::restart::Restarter::new`]).
    pub fn listener_fds(&self) -> Vec<BorrowedFd<'_>> {
        let tcp = self.sockets.iter().map(AsFd::as_fd);
        tcp.chain(self.unix.iter().map(AsFd::as_fd)).collect()
    }

    /// Hands over the socket files, for the caller to remove once the server has returned
    /// (unless a restarted process serves on them then: see [`SocketFile::remove`]).
    pub fn take_socket_files(&mut self) -> Vec<SocketFile> {
        std::mem::take(&mut self.socket_files)
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
    pub fn run<F>(self, make_app: F) -> io::Result<Vec<StatsSnapshot>>
    where
        F: Fn(&Worker) -> Rc<dyn App> + Send + Sync + 'static,
    {
        self.run_and_notify(make_app, || {})
    }

    /// As [`Server::run`], calling `serving` (on the calling thread) once every worker has made
    /// its application and is accepting: the moment a restarted server tells the old one to
    /// drain. It is not called if a worker fails to start.
    ///
    /// # Errors
    /// As [`Server::run`].
    pub fn run_and_notify<F>(
        self,
        make_app: F,
        serving: impl FnOnce(),
    ) -> io::Result<Vec<StatsSnapshot>>
    where
        F: Fn(&Worker) -> Rc<dyn App> + Send + Sync + 'static,
    {
        let Server {
            sockets,
            assignment,
            locals,
            unix,
            socket_files: _,
            options,
            shutdown,
        } = self;
        let make_app = Arc::new(make_app);
        let workers = assignment.len();
        let board = Arc::new(StatusBoard::new(workers));
        let mut slots: Vec<Option<TcpListener>> = sockets.into_iter().map(Some).collect();
        let mut uses = vec![0usize; slots.len()];
        for &i in assignment.iter().flatten() {
            uses[i] += 1;
        }
        let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
        let mut threads = Vec::new();
        for (index, mine) in assignment.iter().enumerate() {
            let mut listeners = Vec::with_capacity(mine.len());
            for &i in mine {
                uses[i] -= 1;
                let listener = if uses[i] == 0 {
                    slots[i].take()
                } else {
                    // Shared with another worker: each gets its own descriptor of the socket.
                    slots[i].as_ref().map(duplicate).transpose()?
                };
                if let Some(listener) = listener {
                    listeners.push((listener, locals[i]));
                }
            }
            // Every worker accepts on each socket file, through a descriptor of its own.
            let unix_listeners = unix
                .iter()
                .map(duplicate_unix)
                .collect::<io::Result<Vec<_>>>()?;
            let per_listener_cap = options.max_connections.map(|n| {
                let count = listeners.len() + unix_listeners.len();
                n.div_ceil(workers).div_ceil(count.max(1)).max(1)
            });
            let make_app = Arc::clone(&make_app);
            let options = options.clone();
            let shutdown = shutdown.clone();
            let board = Arc::clone(&board);
            let ready = ready_tx.clone();
            let thread = crate::signal::mask::spawn_thread(format!("worker-{index}"), move || {
                let place = Placement {
                    index,
                    max_connections: per_listener_cap,
                    board,
                    ready,
                };
                let listeners = WorkerListeners {
                    tcp: listeners,
                    unix: unix_listeners,
                };
                run_worker(&place, listeners, &options, &shutdown, &*make_app)
            })?;
            threads.push(thread);
        }
        drop(unix);
        drop(ready_tx);
        // Every worker says it is ready, or ends (dropping its sender) before it could.
        if ready.iter().take(workers).count() == workers {
            serving();
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

/// Names the address in a bind error, which the kernel's message does not.
fn with_addr(e: io::Error, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("{addr}: {e}"))
}

/// Names the socket file in a bind error.
fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("unix:{}: {e}", path.display()))
}

/// A second descriptor of the same listening socket.
fn duplicate(listener: &TcpListener) -> io::Result<TcpListener> {
    let fd = listener.as_fd().try_clone_to_owned()?;
    TcpListener::from_std(std::net::TcpListener::from(fd))
}

/// A second descriptor of the same Unix-domain listening socket.
fn duplicate_unix(listener: &UnixListener) -> io::Result<UnixListener> {
    let fd = listener.as_fd().try_clone_to_owned()?;
    UnixListener::from_std(std::os::unix::net::UnixListener::from(fd))
}

/// The listeners one worker accepts on.
struct WorkerListeners {
    /// Each TCP listener with its address.
    tcp: Vec<(TcpListener, SocketAddr)>,
    /// Each Unix-domain listener.
    unix: Vec<UnixListener>,
}

/// Where one worker stands among the others.
struct Placement {
    index: usize,
    /// The cap of each of its acceptors.
    max_connections: Option<usize>,
    board: Arc<StatusBoard>,
    /// Told once the worker accepts.
    ready: std::sync::mpsc::Sender<()>,
}

/// One worker thread's life: build its executor and app, serve, shut down.
fn run_worker(
    place: &Placement,
    listeners: WorkerListeners,
    options: &ServerOptions,
    shutdown: &ShutdownHandle,
    make_app: &dyn Fn(&Worker) -> Rc<dyn App>,
) -> io::Result<StatsSnapshot> {
    match options.poller {
        PollerKind::Poll => serve(
            Executor::new()?,
            place,
            listeners,
            options,
            shutdown,
            make_app,
        ),
        #[cfg(target_os = "linux")]
        PollerKind::Epoll => serve(
            Executor::with_poller(EpollPoller::new()?)?,
            place,
            listeners,
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
    listeners: WorkerListeners,
    options: &ServerOptions,
    shutdown: &ShutdownHandle,
    make_app: &dyn Fn(&Worker) -> Rc<dyn App>,
) -> io::Result<StatsSnapshot> {
    let Placement {
        index,
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
    let setup = WorkerSetup {
        app: make_app(&worker),
        config: Rc::new(options.config.clone()),
        stats: Rc::clone(&stats),
        shutdown: Rc::clone(&worker_shutdown),
        max_connections,
    };
    let mut tasks = WorkerTasks::new(setup);
    for (mut listener, local) in listeners.tcp {
        // The connection sets TCP_NODELAY itself, once it writes a second time (see
        // `Connection::no_delay`): a connection answered once and closed never needs it.
        listener.set_nodelay_on_accept(false);
        tasks.accept_on(&mut executor, listener, Some(local));
    }
    for listener in listeners.unix {
        tasks.accept_on(&mut executor, listener, None);
    }
    shutdown.register(tasks.watch(&mut executor));
    // The acceptors run on the first turn; connections arriving meanwhile wait in the backlog.
    let _ = place.ready.send(());

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
    /// Live connections each of its acceptors allows; see [`ServerOptions::max_connections`].
    pub max_connections: Option<usize>,
}

/// Spawns one worker's tasks on `executor`: an acceptor on each listener (with the address it
/// accepts on, for `SERVER_PORT` and `SERVER_NAME` without `Host`), which starts a
/// [`Connection`] task for each client, and the shutdown watcher. Returns the watcher's waker:
/// wake it (through a [`ShutdownHandle`]) to begin this worker's graceful shutdown.
///
/// Listeners of several kinds (TCP and Unix-domain) go through [`WorkerTasks`], one kind at a
/// time.
pub fn spawn_worker<P, L>(
    executor: &mut Executor<P>,
    listeners: Vec<(L, SocketAddr)>,
    setup: WorkerSetup,
) -> Waker
where
    P: Poller,
    L: Listener + 'static,
    L::Stream: 'static,
    L::Addr: Into<Option<SocketAddr>>,
{
    let mut tasks = WorkerTasks::new(setup);
    for (listener, local) in listeners {
        tasks.accept_on(executor, listener, Some(local));
    }
    tasks.watch(executor)
}

/// One worker's tasks, spawned in two steps: an acceptor per listener, whatever its kind
/// ([`WorkerTasks::accept_on`]), then the shutdown watcher that stops them all
/// ([`WorkerTasks::watch`]).
pub struct WorkerTasks {
    setup: WorkerSetup,
    stop_accepting: Arc<AtomicBool>,
    acceptors: Vec<Waker>,
}

impl WorkerTasks {
    /// No task spawned yet.
    pub fn new(setup: WorkerSetup) -> WorkerTasks {
        WorkerTasks {
            setup,
            stop_accepting: Arc::new(AtomicBool::new(false)),
            acceptors: Vec::new(),
        }
    }

    /// Spawns an acceptor on `listener`, which starts a [`Connection`] for each client; `local`
    /// is the address it accepts on (`None` for a Unix-domain socket).
    pub fn accept_on<P, L>(
        &mut self,
        executor: &mut Executor<P>,
        listener: L,
        local: Option<SocketAddr>,
    ) where
        P: Poller,
        L: Listener + 'static,
        L::Stream: 'static,
        L::Addr: Into<Option<SocketAddr>>,
    {
        let setup = &self.setup;
        let factory = {
            let (app, config) = (Rc::clone(&setup.app), Rc::clone(&setup.config));
            let (stats, shutdown) = (Rc::clone(&setup.stats), Rc::clone(&setup.shutdown));
            // The connection itself, not a boxed task: the acceptor's counting wrapper holds it
            // inline, so a connection costs one allocation.
            move |stream: L::Stream, remote: L::Addr| {
                let peer = Peer {
                    remote: remote.into(),
                    local,
                };
                Connection::new(
                    stream,
                    peer,
                    Rc::clone(&app),
                    Rc::clone(&config),
                    Rc::clone(&stats),
                )
                .with_shutdown(Rc::clone(&shutdown))
            }
        };
        let mut acceptor =
            Acceptor::new(listener, factory).with_stop(Arc::clone(&self.stop_accepting));
        if let Some(max) = setup.max_connections {
            acceptor = acceptor.with_max_connections(max);
        }
        let id = executor.spawn(acceptor);
        self.acceptors.push(executor.waker(id));
    }

    /// Spawns the shutdown watcher over every acceptor spawned so far and returns its waker.
    pub fn watch<P: Poller>(self, executor: &mut Executor<P>) -> Waker {
        let watcher = executor.spawn(ShutdownWatcher {
            shutdown: self.setup.shutdown,
            stop_accepting: self.stop_accepting,
            acceptors: self.acceptors,
        });
        executor.waker(watcher)
    }
}
