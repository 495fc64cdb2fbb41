//! A deterministic poller for tests: a virtual clock, scripted readiness, simulated sockets and
//! seeded fault injection.
//!
//! [`SimPoller`] implements [`Poller`] without touching the kernel. Its clock starts at a real
//! `Instant` and only moves when a poll would wait: it then jumps straight to the next scripted
//! event or to the poll's timeout, whichever comes first, so a test of a 30-second timeout takes
//! microseconds. Everything is ordered (descriptors in a `BTreeMap`, events by time then insertion)
//! and every random choice comes from one [`XorShift`] seeded by the test, so the same seed replays
//! the same schedule, trace line for trace line.
//!
//! Readiness comes from two places:
//! - the script ([`Sim::script`], [`Sim::set_ready`]): "at virtual time T, fd F becomes readable /
//!   writable / hung up". A scripted readiness is delivered once, to the first poll that finds the
//!   fd registered with a matching interest (as if the task then drained the fd);
//! - simulated sockets ([`Sim::pair`], [`Sim::listener`]): their readiness is level-triggered and
//!   follows their buffers, like the kernel's. Their operations consult the PRNG and, with the
//!   probabilities in [`Faults`], fail spuriously with `EAGAIN`, read or write short, reset the
//!   connection, or (for accept) fail with `EMFILE`.
//!
//! Simulated sockets get descriptor numbers from [`FIRST_SIM_FD`] up, so scripted tests can use
//! numbers below it freely.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::net::{Listener, Stream};
use crate::poller::{Event, Interest, Poller};
use crate::step::Step;
use crate::wake::Notify;

/// The first descriptor number given to a simulated socket.
pub const FIRST_SIM_FD: RawFd = 100_000;

/// Bytes a simulated stream buffers before its writer sees `WouldBlock`.
pub const SIM_BUFFER: usize = 16 * 1024;

/// How long (in real time) a poll with nothing scripted, no timeout and no wake waits for another
/// thread before the simulator declares the schedule deadlocked and panics.
pub const SIM_DEADLOCK_AFTER: Duration = Duration::from_secs(5);

/// A xorshift64* generator: tiny, fast, and the same sequence for the same seed everywhere.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value; zero is remapped, as xorshift must not start at 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True with probability `p` (0.0 never consumes a number, so faults off keep schedules as
    /// they were).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A number in `1..=n` (for `n >= 1`).
    pub fn one_to(&mut self, n: usize) -> usize {
        1 + (self.next_u64() % n as u64) as usize
    }
}

/// Probabilities of injected faults, each per operation, between 0.0 and 1.0.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// A read, write or accept answers `EAGAIN` although it could proceed.
    pub spurious_eagain: f64,
    /// A read or write moves fewer bytes than it could (at least one).
    pub short_io: f64,
    /// A read or write finds the connection reset by the peer (`ECONNRESET`), for both ends.
    pub reset: f64,
    /// An accept fails with `EMFILE`.
    pub emfile: f64,
}

/// A readiness the script can make happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The fd becomes readable.
    Readable,
    /// The fd becomes writable.
    Writable,
    /// The fd hangs up: reported as an error, readable and writable for whatever is registered.
    HangUp,
}

/// Pending scripted readiness of one fd.
#[derive(Debug, Clone, Copy, Default)]
struct Bits {
    readable: bool,
    writable: bool,
    hangup: bool,
}

impl Bits {
    fn add(&mut self, ready: Ready) {
        match ready {
            Ready::Readable => self.readable = true,
            Ready::Writable => self.writable = true,
            Ready::HangUp => self.hangup = true,
        }
    }
}

/// One end of a simulated connection.
#[derive(Debug, Default)]
struct Endpoint {
    /// The other end, while it exists.
    peer: Option<RawFd>,
    /// Bytes written by the peer and not read yet.
    inbound: VecDeque<u8>,
    /// The peer shut down its writing side (or went away): reads end with 0 after `inbound`.
    peer_closed: bool,
    /// The connection was reset: every operation fails.
    reset: bool,
    /// When the peer last wrote bytes into `inbound` (virtual time since the start).
    last_inbound_at: Option<Duration>,
    /// When the peer shut down its writing side or went away.
    peer_closed_at: Option<Duration>,
    /// For the client end of a connection to a simulated listener: when the server accepted it.
    accepted_at: Option<Duration>,
}

impl Endpoint {
    /// Records the peer's end of stream at `now` (the first time only).
    fn close_from_peer(&mut self, now: Duration) {
        self.peer_closed = true;
        self.peer_closed_at.get_or_insert(now);
    }
}

/// Everything the poller and the simulated sockets share.
#[derive(Debug)]
struct World {
    base: Instant,
    clock: Duration,
    rng: XorShift,
    faults: Faults,
    /// (time, insertion number, fd, readiness), earliest first.
    script: BinaryHeap<Reverse<(Duration, u64, RawFd, ReadyOrd)>>,
    script_seq: u64,
    pending: BTreeMap<RawFd, Bits>,
    registered: BTreeMap<RawFd, Interest>,
    endpoints: BTreeMap<RawFd, Endpoint>,
    /// Listeners and the server ends of connections waiting to be accepted.
    listeners: BTreeMap<RawFd, VecDeque<RawFd>>,
    next_fd: RawFd,
}

/// [`Ready`] with an order, for the script heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ReadyOrd(u8);

impl From<Ready> for ReadyOrd {
    fn from(r: Ready) -> Self {
        ReadyOrd(match r {
            Ready::Readable => 0,
            Ready::Writable => 1,
            Ready::HangUp => 2,
        })
    }
}

impl From<ReadyOrd> for Ready {
    fn from(r: ReadyOrd) -> Self {
        match r.0 {
            0 => Ready::Readable,
            1 => Ready::Writable,
            _ => Ready::HangUp,
        }
    }
}

impl World {
    fn now(&self) -> Instant {
        self.base + self.clock
    }

    fn allocate_fd(&mut self) -> RawFd {
        let fd = self.next_fd;
        self.next_fd += 1;
        fd
    }

    /// Moves scripted readiness due by now into `pending`.
    fn apply_script(&mut self) {
        while let Some(Reverse((at, _, _, _))) = self.script.peek() {
            if *at > self.clock {
                break;
            }
            let Some(Reverse((_, _, fd, ready))) = self.script.pop() else {
                break;
            };
            self.pending.entry(fd).or_default().add(ready.into());
        }
    }

    /// Level-triggered readiness of a simulated socket: (readable, writable, error).
    fn socket_readiness(&self, fd: RawFd) -> Option<(bool, bool, bool)> {
        if let Some(backlog) = self.listeners.get(&fd) {
            return Some((!backlog.is_empty(), false, false));
        }
        let end = self.endpoints.get(&fd)?;
        if end.reset {
            return Some((true, true, true));
        }
        let readable = !end.inbound.is_empty() || end.peer_closed;
        let writable = match end.peer.and_then(|p| self.endpoints.get(&p)) {
            Some(peer) => peer.inbound.len() < SIM_BUFFER,
            // Writing will fail with EPIPE: report it so the writer finds out.
            None => true,
        };
        Some((readable, writable, false))
    }

    /// Appends the events a poll would report now; scripted readiness is consumed.
    fn collect(&mut self, events: &mut Vec<Event>) {
        // Only two kinds of fds can be ready: those with scripted readiness pending, and
        // simulated sockets. Looking at just those keeps a poll cheap with thousands of waiters.
        let mut candidates: Vec<(RawFd, Interest)> = self
            .pending
            .keys()
            .filter_map(|fd| self.registered.get(fd).map(|&i| (*fd, i)))
            .chain(
                self.registered
                    .range(FIRST_SIM_FD..)
                    .map(|(&fd, &i)| (fd, i)),
            )
            .collect();
        candidates.sort_unstable_by_key(|&(fd, _)| fd);
        candidates.dedup_by_key(|&mut (fd, _)| fd);
        for (fd, interest) in candidates {
            let (mut readable, mut writable, mut error) = (false, false, false);
            if let Some((r, w, e)) = self.socket_readiness(fd) {
                readable |= r;
                writable |= w;
                error |= e;
            }
            if let Some(bits) = self.pending.get_mut(&fd) {
                let r = bits.readable && interest.is_readable();
                let w = bits.writable && interest.is_writable();
                if r || w || bits.hangup {
                    readable |= r;
                    writable |= w;
                    error |= bits.hangup;
                    bits.readable &= !r;
                    bits.writable &= !w;
                    bits.hangup = false;
                }
            }
            let readable = (readable || error) && interest.is_readable();
            let writable = (writable || error) && interest.is_writable();
            if readable || writable {
                events.push(Event {
                    fd,
                    readable,
                    writable,
                    error,
                });
            }
        }
        self.pending
            .retain(|_, b| b.readable || b.writable || b.hangup);
    }

    fn reset(&mut self, fd: RawFd) {
        let peer = self.endpoints.get(&fd).and_then(|e| e.peer);
        for end in [Some(fd), peer].into_iter().flatten() {
            if let Some(e) = self.endpoints.get_mut(&end) {
                e.reset = true;
                e.inbound.clear();
            }
        }
    }
}

/// The cross-thread wake of the simulator: a flag and a condition variable.
#[derive(Debug, Default)]
struct SimNotify {
    notified: Mutex<bool>,
    changed: Condvar,
}

impl Notify for SimNotify {
    fn notify(&self) {
        *self.notified.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }
}

impl SimNotify {
    /// Takes the flag, waiting up to `wait` (real time) for it.
    fn take(&self, wait: Duration) -> bool {
        let guard = self.notified.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut guard, _) = self
            .changed
            .wait_timeout_while(guard, wait, |n| !*n)
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *guard)
    }
}

/// The simulated poller; hand it to [`Executor::with_poller`](crate::Executor::with_poller) and
/// keep its [`Sim`] handle (from [`SimPoller::handle`]) to script and to make sockets.
#[derive(Debug)]
pub struct SimPoller {
    world: Rc<RefCell<World>>,
    notify: Arc<SimNotify>,
}

impl SimPoller {
    /// A simulator whose random choices all derive from `seed`; the clock starts now, no faults.
    pub fn new(seed: u64) -> SimPoller {
        let world = World {
            base: Instant::now(),
            clock: Duration::ZERO,
            rng: XorShift::new(seed),
            faults: Faults::default(),
            script: BinaryHeap::new(),
            script_seq: 0,
            pending: BTreeMap::new(),
            registered: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            listeners: BTreeMap::new(),
            next_fd: FIRST_SIM_FD,
        };
        SimPoller {
            world: Rc::new(RefCell::new(world)),
            notify: Arc::default(),
        }
    }

    /// A handle for scripting and making sockets; it shares the world with this poller.
    pub fn handle(&self) -> Sim {
        Sim {
            world: Rc::clone(&self.world),
        }
    }
}

impl Poller for SimPoller {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let mut world = self.world.borrow_mut();
        if world.registered.insert(fd, interest).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "fd already registered",
            ));
        }
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        match self.world.borrow_mut().registered.get_mut(&fd) {
            Some(i) => {
                *i = interest;
                Ok(())
            }
            None => Err(io::Error::new(io::ErrorKind::NotFound, "fd not registered")),
        }
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        match self.world.borrow_mut().registered.remove(&fd) {
            Some(_) => Ok(()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "fd not registered")),
        }
    }

    fn poll(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        let mut world = self.world.borrow_mut();
        let deadline = timeout.map(|t| world.clock.saturating_add(t));
        loop {
            world.apply_script();
            world.collect(events);
            if !events.is_empty() || self.notify.take(Duration::ZERO) {
                return Ok(());
            }
            let next_scripted = world.script.peek().map(|Reverse((at, ..))| *at);
            match (next_scripted, deadline) {
                (Some(at), Some(d)) if d < at => {
                    world.clock = world.clock.max(d);
                    return Ok(());
                }
                (Some(at), _) => world.clock = world.clock.max(at),
                (None, Some(d)) => {
                    world.clock = world.clock.max(d);
                    return Ok(());
                }
                (None, None) => {
                    // Only another thread can change anything now.
                    drop(world);
                    assert!(
                        self.notify.take(SIM_DEADLOCK_AFTER),
                        "simulated deadlock: a poll without timeout, nothing scripted, no wake"
                    );
                    return Ok(());
                }
            }
        }
    }

    fn now(&self) -> Instant {
        self.world.borrow().now()
    }

    fn notifier(&mut self) -> io::Result<Arc<dyn Notify>> {
        Ok(Arc::clone(&self.notify) as Arc<dyn Notify>)
    }
}

/// A handle on the simulated world: the script, the clock, the faults, and socket factories.
#[derive(Debug, Clone)]
pub struct Sim {
    world: Rc<RefCell<World>>,
}

impl Sim {
    /// At virtual time `at` (since the start), `fd` becomes `ready`.
    pub fn script(&self, at: Duration, fd: RawFd, ready: Ready) {
        let mut world = self.world.borrow_mut();
        let seq = world.script_seq;
        world.script_seq += 1;
        world.script.push(Reverse((at, seq, fd, ready.into())));
    }

    /// `fd` becomes `ready` now.
    pub fn set_ready(&self, fd: RawFd, ready: Ready) {
        self.world
            .borrow_mut()
            .pending
            .entry(fd)
            .or_default()
            .add(ready);
    }

    /// Sets the fault probabilities for simulated sockets.
    pub fn set_faults(&self, faults: Faults) {
        self.world.borrow_mut().faults = faults;
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.world.borrow().now()
    }

    /// Virtual time since the simulator started.
    pub fn elapsed(&self) -> Duration {
        self.world.borrow().clock
    }

    /// Moves the clock forward (a test standing in for time passing outside any poll).
    pub fn advance(&self, by: Duration) {
        self.world.borrow_mut().clock += by;
    }

    /// The next number from the simulator's PRNG (for tests that want seeded choices too).
    pub fn random(&self) -> u64 {
        self.world.borrow_mut().rng.next_u64()
    }

    /// A connected pair of simulated streams.
    pub fn pair(&self) -> (SimStream, SimStream) {
        let mut world = self.world.borrow_mut();
        let a = world.allocate_fd();
        let b = world.allocate_fd();
        world.endpoints.insert(
            a,
            Endpoint {
                peer: Some(b),
                ..Endpoint::default()
            },
        );
        world.endpoints.insert(
            b,
            Endpoint {
                peer: Some(a),
                ..Endpoint::default()
            },
        );
        drop(world);
        (self.stream(a), self.stream(b))
    }

    /// Simulated sockets still open: connection ends and listeners (a test that ends with nothing
    /// left behind expects 0).
    pub fn open_sockets(&self) -> usize {
        let world = self.world.borrow();
        world.endpoints.len() + world.listeners.len()
    }

    /// Descriptors registered with the simulated poller now.
    pub fn registered(&self) -> usize {
        self.world.borrow().registered.len()
    }

    /// A simulated listener; clients reach it with [`Sim::connect`].
    pub fn listener(&self) -> SimListener {
        let mut world = self.world.borrow_mut();
        let fd = world.allocate_fd();
        world.listeners.insert(fd, VecDeque::new());
        SimListener {
            fd,
            world: Rc::clone(&self.world),
        }
    }

    /// Connects to a simulated listener: returns the client end; the server end waits in the
    /// listener's backlog.
    ///
    /// # Errors
    /// `ConnectionRefused` if the listener is gone.
    pub fn connect(&self, listener: RawFd) -> io::Result<SimStream> {
        let (client, server) = self.pair();
        let mut world = self.world.borrow_mut();
        let backlog = world
            .listeners
            .get_mut(&listener)
            .ok_or(io::ErrorKind::ConnectionRefused)?;
        backlog.push_back(server.fd);
        std::mem::forget(server);
        Ok(client)
    }

    fn stream(&self, fd: RawFd) -> SimStream {
        SimStream {
            fd,
            world: Rc::clone(&self.world),
        }
    }
}

/// One end of a simulated connection; dropping it closes it (the peer reads end-of-stream).
#[derive(Debug)]
pub struct SimStream {
    fd: RawFd,
    world: Rc<RefCell<World>>,
}

impl AsRawFd for SimStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

fn reset_error() -> io::Error {
    io::Error::from_raw_os_error(libc::ECONNRESET)
}

impl Stream for SimStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<Step<usize>> {
        let mut world = self.world.borrow_mut();
        let faults = world.faults;
        if world.endpoints.get(&self.fd).is_some_and(|e| e.reset) {
            return Err(reset_error());
        }
        if world.rng.chance(faults.reset) {
            world.reset(self.fd);
            return Err(reset_error());
        }
        if world.rng.chance(faults.spurious_eagain) {
            return Ok(Step::WouldBlock);
        }
        let short = world.rng.chance(faults.short_io);
        let pick = if short { world.rng.next_u64() } else { 0 };
        let end = world.endpoints.get_mut(&self.fd).ok_or_else(reset_error)?;
        if end.inbound.is_empty() {
            return Ok(if end.peer_closed {
                Step::Ready(0)
            } else {
                Step::WouldBlock
            });
        }
        let mut n = buf.len().min(end.inbound.len());
        if short && n > 1 {
            n = 1 + (pick % n as u64) as usize;
        }
        for (dst, src) in buf.iter_mut().zip(end.inbound.drain(..n)) {
            *dst = src;
        }
        Ok(Step::Ready(n))
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<Step<usize>> {
        let mut world = self.world.borrow_mut();
        let faults = world.faults;
        if world.endpoints.get(&self.fd).is_some_and(|e| e.reset) {
            return Err(reset_error());
        }
        if world.rng.chance(faults.reset) {
            world.reset(self.fd);
            return Err(reset_error());
        }
        if world.rng.chance(faults.spurious_eagain) {
            return Ok(Step::WouldBlock);
        }
        let short = world.rng.chance(faults.short_io);
        let pick = if short { world.rng.next_u64() } else { 0 };
        let clock = world.clock;
        let peer = world.endpoints.get(&self.fd).and_then(|e| e.peer);
        let Some(peer) = peer.and_then(|p| world.endpoints.get_mut(&p)) else {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        };
        let room = SIM_BUFFER.saturating_sub(peer.inbound.len());
        if room == 0 {
            return Ok(Step::WouldBlock);
        }
        let mut n = buf.len().min(room);
        if short && n > 1 {
            n = 1 + (pick % n as u64) as usize;
        }
        peer.inbound.extend(&buf[..n]);
        peer.last_inbound_at = Some(clock);
        Ok(Step::Ready(n))
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        let mut world = self.world.borrow_mut();
        let clock = world.clock;
        let peer = world.endpoints.get(&self.fd).and_then(|e| e.peer);
        if let Some(peer) = peer.and_then(|p| world.endpoints.get_mut(&p)) {
            peer.close_from_peer(clock);
        }
        Ok(())
    }
}

impl SimStream {
    /// Resets the connection, as a peer that closes with unread data or `SO_LINGER` 0 does: both
    /// ends fail every operation from now on (`ECONNRESET`).
    pub fn reset(&self) {
        self.world.borrow_mut().reset(self.fd);
    }

    /// True if the connection was reset (by either end, or by an injected fault).
    pub fn is_reset(&self) -> bool {
        self.world
            .borrow()
            .endpoints
            .get(&self.fd)
            .is_some_and(|e| e.reset)
    }

    /// When the other end shut down its writing side or went away, as virtual time since the
    /// simulator started; `None` while it is open.
    pub fn peer_closed_at(&self) -> Option<Duration> {
        self.world
            .borrow()
            .endpoints
            .get(&self.fd)
            .and_then(|e| e.peer_closed_at)
    }

    /// For a stream made by [`Sim::connect`]: when the listener's owner accepted the other end,
    /// as virtual time since the start; `None` until then.
    pub fn accepted_at(&self) -> Option<Duration> {
        self.world
            .borrow()
            .endpoints
            .get(&self.fd)
            .and_then(|e| e.accepted_at)
    }

    /// When the other end last wrote bytes to this one, as virtual time since the start.
    pub fn last_received_at(&self) -> Option<Duration> {
        self.world
            .borrow()
            .endpoints
            .get(&self.fd)
            .and_then(|e| e.last_inbound_at)
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        // As a real socket of `crate::net` does, so the executor forgets a registration it left.
        crate::poller::closed::note_closed(self.fd);
        let mut world = self.world.borrow_mut();
        let clock = world.clock;
        let peer = world.endpoints.remove(&self.fd).and_then(|end| end.peer);
        if let Some(peer) = peer.and_then(|p| world.endpoints.get_mut(&p)) {
            peer.close_from_peer(clock);
            peer.peer = None;
        }
        world.pending.remove(&self.fd);
    }
}

/// A simulated listening socket.
#[derive(Debug)]
pub struct SimListener {
    fd: RawFd,
    world: Rc<RefCell<World>>,
}

impl AsRawFd for SimListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl Listener for SimListener {
    type Stream = SimStream;
    type Addr = SocketAddr;

    fn accept(&mut self) -> io::Result<Step<(SimStream, SocketAddr)>> {
        let mut world = self.world.borrow_mut();
        let faults = world.faults;
        if world.listeners.get(&self.fd).is_none_or(VecDeque::is_empty) {
            return Ok(Step::WouldBlock);
        }
        if world.rng.chance(faults.emfile) {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        if world.rng.chance(faults.spurious_eagain) {
            return Ok(Step::WouldBlock);
        }
        let Some(fd) = world
            .listeners
            .get_mut(&self.fd)
            .and_then(VecDeque::pop_front)
        else {
            return Ok(Step::WouldBlock);
        };
        let peer = world.endpoints.get(&fd).and_then(|e| e.peer).unwrap_or(0);
        let clock = world.clock;
        if let Some(client) = world.endpoints.get_mut(&peer) {
            client.accepted_at = Some(clock);
        }
        // A made-up address that names the client end, for logs.
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, peer as u16));
        Ok(Step::Ready((
            SimStream {
                fd,
                world: Rc::clone(&self.world),
            },
            addr,
        )))
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        crate::poller::closed::note_closed(self.fd);
        let backlog = self.world.borrow_mut().listeners.remove(&self.fd);
        // Connections never accepted are closed, as the kernel does.
        for fd in backlog.into_iter().flatten() {
            drop(SimStream {
                fd,
                world: Rc::clone(&self.world),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_is_deterministic() {
        let mut a = XorShift::new(42);
        let mut b = XorShift::new(42);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(XorShift::new(43).next_u64(), xs[0]);
    }

    #[test]
    fn a_poll_with_timeout_jumps_the_clock() {
        let mut poller = SimPoller::new(1);
        let sim = poller.handle();
        let start = poller.now();
        let mut events = Vec::new();
        poller
            .poll(&mut events, Some(Duration::from_secs(30)))
            .unwrap();
        assert!(events.is_empty());
        assert_eq!(poller.now() - start, Duration::from_secs(30));
        sim.script(Duration::from_secs(40), 7, Ready::Readable);
        poller.register(7, Interest::Readable).unwrap();
        poller.poll(&mut events, None).unwrap();
        assert_eq!(
            events,
            [Event {
                fd: 7,
                readable: true,
                writable: false,
                error: false
            }]
        );
        assert_eq!(sim.elapsed(), Duration::from_secs(40));
        events.clear();
        poller.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty(), "scripted readiness is delivered once");
    }

    #[test]
    fn streams_carry_bytes_and_end() {
        let poller = SimPoller::new(1);
        let sim = poller.handle();
        let (mut a, mut b) = sim.pair();
        assert_eq!(a.write(b"hello").unwrap(), Step::Ready(5));
        let mut buf = [0; 8];
        assert_eq!(b.read(&mut buf).unwrap(), Step::Ready(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(b.read(&mut buf).unwrap(), Step::WouldBlock);
        drop(a);
        assert_eq!(b.read(&mut buf).unwrap(), Step::Ready(0));
        assert!(b.write(b"x").is_err());
    }
}
