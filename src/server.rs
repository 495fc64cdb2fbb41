//! The server: binds, accepts, and runs connections for an [`App`] on an executor.
//!
//! [`Server::bind`] opens the listener (so an address in use is reported before anything runs);
//! [`Server::run`] drives an executor with the acceptor and one [`Connection`] task per client
//! until the executor is stopped.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use asycamore_executor::net::{Options, TcpListener};
use asycamore_executor::service::Acceptor;
use asycamore_executor::{Executor, StopHandle};

use crate::config::Config;
use crate::conn::Connection;
use crate::service::{App, Peer};
use crate::stats::ServerStats;

/// Default listen backlog: enough for a burst of thousands of connects while the loop is busy.
pub const BACKLOG: i32 = 4096;

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    local: SocketAddr,
    config: Rc<Config>,
    stats: Rc<ServerStats>,
    executor: Executor,
}

impl Server {
    /// Binds `addr` (with `SO_REUSEADDR`, and `SO_REUSEPORT` when `reuse_port`).
    ///
    /// # Errors
    /// If the address cannot be bound (in use, not local, no permission) or the executor cannot be
    /// made.
    pub fn bind(
        addr: SocketAddr,
        config: Config,
        backlog: i32,
        reuse_port: bool,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(
            addr,
            Options {
                backlog,
                reuse_port,
            },
        )?;
        let local = listener.local_addr()?;
        Ok(Server {
            listener,
            local,
            config: Rc::new(config),
            stats: Rc::new(ServerStats::default()),
            executor: Executor::new()?,
        })
    }

    /// The address the server listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The worker's counters.
    pub fn stats(&self) -> Rc<ServerStats> {
        Rc::clone(&self.stats)
    }

    /// A handle that stops [`Server::run`] from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        self.executor.stop_handle()
    }

    /// Serves `app` until stopped.
    ///
    /// # Errors
    /// If polling fails (which does not happen in normal operation).
    pub fn run(self, app: Rc<dyn App>) -> io::Result<()> {
        let Server {
            listener,
            local,
            config,
            stats,
            mut executor,
        } = self;
        let acceptor = Acceptor::new(listener, move |stream, remote| {
            let peer = Peer { remote, local };
            Box::new(Connection::new(
                stream,
                peer,
                Rc::clone(&app),
                Rc::clone(&config),
                Rc::clone(&stats),
            ))
        });
        executor.spawn(acceptor);
        executor.run()
    }
}
