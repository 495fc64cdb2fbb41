//! Restarting in place without dropping a request: on SIGUSR2 the server starts a new copy of
//! itself on the *same* listening sockets, and the old one drains once the new one serves.
//!
//! This is how nginx upgrades its binary and how gunicorn re-executes itself: the listening
//! sockets are inherited across `fork` + `execve`, so both processes accept from one kernel
//! queue per socket and a connection waiting in it is taken by whichever process accepts first.
//! Two processes binding the port with `SO_REUSEPORT` would not do: each socket has its own
//! queue, and the connections still queued on the old process's socket are reset when it
//! closes.
//!
//! The sequence:
//!
//! 1. The old process gets SIGUSR2. [`Restarter::restart`] spawns the binary it was started from
//!    with the same arguments, passing copies of its listeners as inherited descriptors named in
//!    [`LISTEN_FDS_ENV`] (`ASYCAMORE_LISTEN_FDS=3,4`) and its own pid in [`PARENT_PID_ENV`].
//! 2. The new process finds them ([`Inherited::from_env`]), serves on them instead of binding,
//!    and once every worker is accepting, sends SIGTERM to the old one ([`take_over`]).
//! 3. The old process shuts down gracefully: it stops accepting (the sockets stay open in the
//!    new process), finishes what is in flight and exits 0.
//!
//! If the new process fails to start (a broken binary, a bad flag), it exits before step 2 and
//! the old one goes on serving; the failure is reported on its standard error.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use executor::net::TcpListener;
use executor::unix::UnixListener;

use crate::signal::mask as signal;
use crate::sys::{self, ListenerFamily, SigSet};

/// The environment variable naming the inherited listening descriptors, comma-separated.
pub const LISTEN_FDS_ENV: &str = "ASYCAMORE_LISTEN_FDS";

/// The environment variable holding the pid of the process to tell once the new one serves.
pub const PARENT_PID_ENV: &str = "ASYCAMORE_PARENT_PID";

/// The running binary, for when the path it was started from no longer holds a program.
const SELF_EXE: &str = "/proc/self/exe";

/// Why a restart did not start.
#[derive(Debug)]
pub enum RestartError {
    /// A new process is already starting; it has not taken over nor failed yet.
    InProgress(u32),
    /// The new process could not be spawned.
    Spawn(io::Error),
}

impl fmt::Display for RestartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartError::InProgress(pid) => {
                write!(f, "pid {pid} is already starting to take over")
            }
            RestartError::Spawn(e) => write!(f, "cannot start the new process: {e}"),
        }
    }
}

impl std::error::Error for RestartError {}

/// What a restart needs: the program and arguments to run, and a copy of every listener.
///
/// The copies keep the sockets open for as long as the restarter lives, so drop it when shutdown
/// begins (the signal thread does) or a stopped server would keep queueing connections nobody
/// accepts.
pub struct Restarter {
    program: PathBuf,
    arg0: OsString,
    args: Vec<OsString>,
    listeners: Vec<OwnedFd>,
    /// The pid of a new process that has been started and has not exited, or 0.
    starting: Arc<AtomicU32>,
    quiet: bool,
}

impl fmt::Debug for Restarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Restarter")
            .field("program", &self.program)
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl Restarter {
    /// A restarter re-running this process's own binary and arguments on copies of `listeners`.
    ///
    /// The program is the path the binary was started from, read now: if that file is replaced
    /// by a new build before SIGUSR2 (as `install` or a package upgrade does), the new build is
    /// what starts — the binary upgrade. If nothing runnable is left there, the running binary
    /// itself (`/proc/self/exe`) is started instead.
    ///
    /// # Errors
    /// If a listener cannot be duplicated.
    pub fn new<'a>(
        listeners: impl IntoIterator<Item = BorrowedFd<'a>>,
        quiet: bool,
    ) -> io::Result<Restarter> {
        let mut argv = std::env::args_os();
        let arg0 = argv.next().unwrap_or_else(|| "asycamore".into());
        let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(SELF_EXE));
        let listeners = listeners
            .into_iter()
            .map(|fd| fd.try_clone_to_owned())
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Restarter {
            program,
            arg0,
            args: argv.collect(),
            listeners,
            starting: Arc::default(),
            quiet,
        })
    }

    /// Starts the new process (see the module documentation) and returns its pid. A thread of
    /// its own waits for it, so that a new process which fails before taking over is reported
    /// and a later SIGUSR2 may try again.
    ///
    /// # Errors
    /// [`RestartError::InProgress`] while an earlier new process is still starting;
    /// [`RestartError::Spawn`] if none could be started.
    pub fn restart(&mut self) -> Result<u32, RestartError> {
        let pid = self.starting.load(Ordering::Acquire);
        if pid != 0 {
            return Err(RestartError::InProgress(pid));
        }
        let child = match self.spawn(&self.program) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.spawn(Path::new(SELF_EXE)),
            other => other,
        }
        .map_err(RestartError::Spawn)?;
        let pid = child.id();
        self.starting.store(pid, Ordering::Release);
        let starting = Arc::clone(&self.starting);
        let quiet = self.quiet;
        let reaper = signal::spawn_thread("restart".into(), move || reap(child, &starting, quiet));
        if let Err(e) = reaper {
            // Without the reaper the child still runs; only its early failure would go unseen.
            eprintln!("asycamore: cannot watch the new process {pid}: {e}");
        }
        Ok(pid)
    }

    /// A handle that tells, later and from any thread, whether a new process started by this
    /// restarter is running: then it serves on the listeners, and their socket files are its
    /// to remove.
    pub fn successor(&self) -> Successor {
        Successor(Arc::clone(&self.starting))
    }

    /// Spawns `program` with our arguments and the listeners (see [`sys::spawn_inheriting`]).
    fn spawn(&self, program: &Path) -> io::Result<std::process::Child> {
        let fds: Vec<RawFd> = self.listeners.iter().map(AsRawFd::as_raw_fd).collect();
        let list: Vec<String> = fds.iter().map(RawFd::to_string).collect();
        let mut command = Command::new(program);
        command
            .arg0(&self.arg0)
            .args(&self.args)
            .env(LISTEN_FDS_ENV, list.join(","))
            .env(PARENT_PID_ENV, std::process::id().to_string());
        sys::spawn_inheriting(&mut command, fds, SigSet::of(&signal::HANDLED_SIGNALS))
    }
}

/// Whether a new process started by a [`Restarter`] runs; see [`Restarter::successor`].
#[derive(Debug, Clone)]
pub struct Successor(Arc<AtomicU32>);

impl Successor {
    /// True while a new process started by the restarter has not exited.
    pub fn running(&self) -> bool {
        self.0.load(Ordering::Acquire) != 0
    }
}

/// Waits for the new process; if it ends while this one still runs, it did not take over (or
/// died afterwards): say so and allow another restart.
fn reap(mut child: std::process::Child, starting: &AtomicU32, quiet: bool) {
    let pid = child.id();
    let status = child.wait();
    starting.store(0, Ordering::Release);
    match status {
        Ok(status) if !quiet || !status.success() => {
            eprintln!("asycamore: the new process {pid} exited ({status}); still serving");
        }
        Ok(_) => {}
        Err(e) => eprintln!("asycamore: waiting for the new process {pid}: {e}"),
    }
}

/// Listening sockets this process inherited from the one that started it, and that process.
#[derive(Debug)]
pub struct Inherited {
    /// The TCP listeners, in the order the environment named them.
    pub tcp: Vec<TcpListener>,
    /// The Unix-domain listeners, in the order the environment named them.
    pub unix: Vec<UnixListener>,
    /// The process to tell once this one serves ([`take_over`]).
    pub parent: Option<u32>,
}

impl Inherited {
    /// The listeners [`LISTEN_FDS_ENV`] names, taken over (made close-on-exec and non-blocking
    /// again), or `None` when it is not set: an ordinary start. Call it once, first thing in
    /// `main`, before anything else could open a descriptor.
    ///
    /// # Errors
    /// A message naming the variable if it is malformed or names a descriptor that is not a
    /// listening TCP or Unix-domain socket.
    pub fn from_env() -> Result<Option<Inherited>, String> {
        let Some(list) = std::env::var_os(LISTEN_FDS_ENV) else {
            return Ok(None);
        };
        let bad = |why: String| format!("{LISTEN_FDS_ENV}={}: {why}", list.to_string_lossy());
        let list = list.to_str().ok_or_else(|| bad("not text".into()))?;
        let mut fds: Vec<RawFd> = Vec::new();
        for part in list.split(',') {
            let fd: RawFd = part
                .trim()
                .parse()
                .map_err(|_| bad(format!("{part:?} is not a descriptor number")))?;
            if fds.contains(&fd) {
                return Err(bad(format!("descriptor {fd} is named twice")));
            }
            fds.push(fd);
        }
        let (mut tcp, mut unix) = (Vec::new(), Vec::new());
        for fd in fds {
            let (owned, family) = sys::adopt_listener(fd)
                .map_err(|e| bad(format!("descriptor {fd} is not a listening socket: {e}")))?;
            let taken = match family {
                ListenerFamily::Inet => TcpListener::from_std(std::net::TcpListener::from(owned))
                    .map(|listener| tcp.push(listener)),
                ListenerFamily::Unix => {
                    UnixListener::from_std(std::os::unix::net::UnixListener::from(owned))
                        .map(|listener| unix.push(listener))
                }
            };
            taken.map_err(|e| bad(format!("descriptor {fd}: {e}")))?;
        }
        let parent = std::env::var(PARENT_PID_ENV)
            .ok()
            .and_then(|p| p.trim().parse().ok());
        Ok(Some(Inherited { tcp, unix, parent }))
    }

    /// The local address of every inherited TCP listener.
    ///
    /// # Errors
    /// From `getsockname`.
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.tcp.iter().map(TcpListener::local_addr).collect()
    }
}

/// Tells the process that started this one that we serve now, so it drains and exits: SIGTERM,
/// its graceful shutdown. Only if it is still our parent — a pid from the environment that now
/// names some other process must not be signalled. Returns whether it was told.
///
/// # Errors
/// From `kill`.
pub fn take_over(parent: u32) -> io::Result<bool> {
    if parent == 0 || sys::parent_pid() != parent {
        return Ok(false);
    }
    sys::kill(parent, libc::SIGTERM)?;
    Ok(true)
}
