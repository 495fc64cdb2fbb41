//! [`Pool`]: the upstream connections a worker keeps open between requests, so that a proxied
//! request does not pay for a connection (nginx's `keepalive` in an `upstream` block).
//!
//! A connection goes back to the pool when its response ended cleanly (the upstream did not say
//! close and sent nothing after the body) and is handed out again, most recent first, to a
//! request without a body: if the upstream closed it meanwhile, such a request can be sent again
//! on a fresh connection without anything lost (see `ProxyHandler`). Connections idle for longer
//! than [`MAX_IDLE`] are dropped, before an upstream's own keep-alive timeout would close them.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use executor::net::TcpStream;

/// Idle upstream connections one worker keeps, at most.
pub const MAX_POOLED: usize = 64;

/// How long an upstream connection may wait in the pool: shorter than the keep-alive timeouts
/// servers use (asycamore 60 s, nginx 75 s), so a pooled connection is rarely found closed.
pub const MAX_IDLE: Duration = Duration::from_secs(30);

/// One worker's idle upstream connections, with when each went idle.
#[derive(Debug, Default)]
pub struct Pool {
    idle: RefCell<Vec<(TcpStream, Instant)>>,
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Pool {
        Pool::default()
    }

    /// The most recently idle connection that has not waited too long (older ones are closed).
    pub fn take(&self, now: Instant) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
        while let Some((stream, since)) = idle.pop() {
            if now.saturating_duration_since(since) < MAX_IDLE {
                return Some(stream);
            }
            // Every older one is older still.
            idle.clear();
        }
        None
    }

    /// Keeps `stream` for a later request, if there is room.
    pub fn put(&self, stream: TcpStream, now: Instant) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < MAX_POOLED {
            idle.push((stream, now));
        }
    }

    /// How many connections wait in the pool.
    pub fn len(&self) -> usize {
        self.idle.borrow().len()
    }

    /// True if none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
