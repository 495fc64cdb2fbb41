//! The [`Acceptor`] task, which accepts connections and spawns one task per
//! client.
//!
//! ```no_run
//! use executor::{Executor, Task, echo::Echo, net::{Options, TcpListener}, acceptor::Acceptor};
//!
//! let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), Options::default())?;
//! let mut executor = Executor::new()?;
//! executor.spawn(Acceptor::new(listener, |stream, _peer| -> Task { Box::new(Echo::new(stream)) }));
//! executor.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The acceptor accepts a bounded batch per resume (then yields, so a connection storm cannot
//! starve established connections), survives running out of file descriptors by not polling the
//! listener for [`Acceptor::backoff`] (the listener stays readable while connections queue up, so
//! retrying at once would spin at 100% CPU), and can cap the number of live connections: at the cap
//! it stops polling the listener until a connection ends. It stops when its stop flag is set and it
//! is woken (see [`Acceptor::with_stop`]).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::net::{self, Listener};
use crate::step::{Coroutine, Cx, Step, Task};
use crate::wake::Waker;

/// Connections accepted per resume before the acceptor yields to other tasks.
pub const DEFAULT_ACCEPT_BATCH: usize = 64;

/// How long the acceptor stops accepting after `EMFILE`/`ENFILE`: long enough not to burn CPU,
/// short enough that clients barely notice once a descriptor frees up.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(50);

/// Counters shared between an [`Acceptor`] and whoever watches it; see [`Acceptor::connections`].
#[derive(Debug, Default)]
pub struct Connections {
    live: Cell<usize>,
    max: Cell<usize>,
    accepted: Cell<u64>,
    backoffs: Cell<u64>,
    /// The acceptor's waker while it waits for a connection to end (at the cap).
    acceptor: RefCell<Option<Waker>>,
}

impl Connections {
    /// Connections spawned and not yet finished.
    pub fn live(&self) -> usize {
        self.live.get()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.get()
    }

    /// Times the acceptor backed off after an accept error such as `EMFILE`.
    pub fn backoffs(&self) -> u64 {
        self.backoffs.get()
    }

    fn at_capacity(&self) -> bool {
        self.live.get() >= self.max.get()
    }
}

/// A connection task wrapped so that its end is counted (and wakes an acceptor at the cap). The
/// task is held inline: the executor boxes the two together, one allocation per connection.
struct Counted<C> {
    task: C,
    connections: Rc<Connections>,
}

impl<C: Coroutine<Output = ()>> Coroutine for Counted<C> {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        self.task.resume(cx)
    }
    fn kind(&self) -> &'static str {
        self.task.kind()
    }
}

impl<C> Drop for Counted<C> {
    fn drop(&mut self) {
        self.connections.live.set(self.connections.live.get() - 1);
        if let Some(waker) = self.connections.acceptor.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// Where the acceptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptorState {
    /// Accepting whenever the listener is readable.
    Accepting,
    /// Not polling the listener until this time, after running out of descriptors.
    BackingOff(Instant),
    /// Not polling the listener until a connection ends.
    AtCapacity,
    /// Stopped; the listener is closed when the task is dropped.
    Stopped,
}

/// The listener task: accepts connections and spawns `factory(stream, peer)` for each, a
/// coroutine of type `C` (a boxed [`Task`] by default; a concrete type saves a box per
/// connection).
pub struct Acceptor<L, F, C = Task> {
    listener: L,
    factory: F,
    /// The factory's output type, named so the impls can bound it.
    spawns: PhantomData<fn() -> C>,
    state: AcceptorState,
    batch: usize,
    backoff: Duration,
    connections: Rc<Connections>,
    stop: Option<Arc<AtomicBool>>,
}

impl<L, F, C> Acceptor<L, F, C>
where
    L: Listener,
    F: FnMut(L::Stream, L::Addr) -> C,
    C: Coroutine<Output = ()> + 'static,
{
    /// An acceptor with the default batch and backoff and no connection cap.
    pub fn new(listener: L, factory: F) -> Acceptor<L, F, C> {
        let connections = Rc::new(Connections::default());
        connections.max.set(usize::MAX);
        Acceptor {
            listener,
            factory,
            spawns: PhantomData,
            state: AcceptorState::Accepting,
            batch: DEFAULT_ACCEPT_BATCH,
            backoff: DEFAULT_BACKOFF,
            connections,
            stop: None,
        }
    }

    /// Caps live connections: at `max`, the listener is not polled until one ends (new clients
    /// wait in the kernel's backlog).
    pub fn with_max_connections(self, max: usize) -> Self {
        self.connections.max.set(max.max(1));
        self
    }

    /// Sets how many connections one resume accepts at most.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Sets how long to stop accepting after running out of descriptors.
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Stops accepting (and finishes) once `flag` is true and the task is woken, for instance by
    /// a signal-handling thread holding [`Executor::waker`](crate::Executor::waker) for it.
    pub fn with_stop(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// The shared counters (live connections, accepted, backoffs).
    pub fn connections(&self) -> Rc<Connections> {
        Rc::clone(&self.connections)
    }

    /// The current state.
    pub fn state(&self) -> AcceptorState {
        self.state
    }

    /// The backoff after running out of descriptors.
    pub fn backoff(&self) -> Duration {
        self.backoff
    }

    fn stop_requested(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Acquire))
    }

    /// Accepts up to one batch; returns the next state, having registered its waits.
    fn accept_batch(&mut self, cx: &mut Cx<'_>) -> AcceptorState {
        for _ in 0..self.batch {
            if self.connections.at_capacity() {
                return AcceptorState::AtCapacity;
            }
            match self.listener.accept() {
                Ok(Step::Ready((stream, peer))) => {
                    let connections = &self.connections;
                    connections.live.set(connections.live.get() + 1);
                    connections.accepted.set(connections.accepted.get() + 1);
                    let task = (self.factory)(stream, peer);
                    cx.spawn(Counted {
                        task,
                        connections: Rc::clone(connections),
                    });
                }
                Ok(Step::WouldBlock) => {
                    cx.wait_readable(self.listener.as_raw_fd());
                    return AcceptorState::Accepting;
                }
                Err(e) if net::is_connection_error(&e) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EMFILE and friends, and anything unexpected: retrying at once would spin, since
                // the listener stays readable.
                Err(_) => {
                    self.connections
                        .backoffs
                        .set(self.connections.backoffs.get() + 1);
                    return AcceptorState::BackingOff(cx.now() + self.backoff);
                }
            }
        }
        // A full batch: let the connections just spawned run before accepting more.
        cx.yield_now();
        AcceptorState::Accepting
    }
}

impl<L, F, C> Coroutine for Acceptor<L, F, C>
where
    L: Listener,
    F: FnMut(L::Stream, L::Addr) -> C,
    C: Coroutine<Output = ()> + 'static,
{
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if self.stop_requested() {
            self.state = AcceptorState::Stopped;
        }
        self.state = match self.state {
            AcceptorState::Stopped => return Step::Ready(()),
            AcceptorState::BackingOff(until) if cx.now() < until => {
                cx.wait_until(until);
                AcceptorState::BackingOff(until)
            }
            AcceptorState::AtCapacity if self.connections.at_capacity() => {
                AcceptorState::AtCapacity
            }
            _ => self.accept_batch(cx),
        };
        match self.state {
            AcceptorState::AtCapacity => {
                *self.connections.acceptor.borrow_mut() = Some(cx.waker());
            }
            AcceptorState::BackingOff(until) => cx.wait_until(until),
            AcceptorState::Accepting | AcceptorState::Stopped => {}
        }
        cx.wait_wake();
        Step::WouldBlock
    }

    fn kind(&self) -> &'static str {
        "acceptor"
    }
}
