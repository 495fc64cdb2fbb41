//! `proxy`: a reverse proxy over a non-blocking outgoing socket.
//!
//! A tutorial of the Web-SIG "fd-wait" proposal: a handler that talks to another socket without
//! blocking the loop. The handler opens its own connection to the upstream and, whenever the
//! upstream is not ready, registers the upstream's fd in `cx` (`wait_writable` while connecting
//! and sending, `wait_readable` while waiting for the answer) together with a deadline, and
//! returns `WouldBlock`. When it waits for the *client* instead (the next piece of the request
//! body, room in the output) it lets the exchange register the client's socket, exactly as
//! `echo` does.
//!
//! ```text
//!  Start ─┬─▶ Connecting ─▶ Exchanging ───────────────────────────────────────▶ Done
//!         │   (upstream     up:   head, then body pieces ─▶ upstream        (connection
//!         │    writable)    down: upstream ─▶ head ─▶ body pieces ─▶ client  back to the pool)
//!         └── a pooled connection ──▶ Exchanging
//! ```
//!
//! Each part is a small state machine of its own, one enum with one `match`: the handler here
//! (`State`), the request's way up (`upward.rs`), the response's way down (`downward.rs`); the
//! request head is built in `request.rs`, idle upstream connections wait in a [`pool`]. Once
//! connected, the two directions run side by side: every resume, each goes as far as it can, then the
//! handler waits for whatever either is blocked on — the upstream writable, the upstream readable,
//! the next piece of the client's body, room in the client's output. Doing them one after the
//! other would deadlock with an upstream that answers while it reads (an echo: its output fills,
//! it stops reading, and a proxy still sending the body waits for ever). Each side holds at most
//! one piece, so each side's slowness holds the other back: backpressure both ways.
//!
//! The request goes up as `METHOD target HTTP/1.1` with the mount prefix removed from the target
//! (`PATH_INFO` and the query, as the client spelled them), its headers minus the hop-by-hop ones
//! (RFC 9110 §7.6.1), and `X-Forwarded-For` extended with the client's address; the upstream
//! connection is kept for the next request unless the upstream closes it. A `Content-Length` body is
//! forwarded with its length; a chunked one is re-chunked piece by piece (its trailers follow).
//! The response head is read with the server's own response-head detector and its body decoded
//! with the server's own body decoder, then handed to the
//! exchange, which frames it again for the client; the upstream's trailer fields follow it
//! (when the client's framing is chunked; an HTTP/1.0 client gets none).
//!
//! Errors are a [`ProxyError`], each with its status: no upstream configured → `503`; the upstream
//! refuses or breaks the protocol → `502`; the upstream is silent for the timeout (connecting, or
//! at any point of the exchange) → `504`; once the response has begun, a cut-short response (the
//! connection closes) instead.

mod downward;
pub mod pool;
mod request;
mod upward;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use executor::net::{Connect, TcpStream};
use executor::{Cx, Next, Step};

use crate::detect::{BodyFraming, ResponseError};
use crate::service::{App, Environ, Exchange, Handler, InputError};

use downward::Downward;
pub use pool::Pool;
pub use request::raw_path_after;
use upward::Upward;

/// How long the upstream may stay silent (while connecting, taking the request or answering)
/// before the proxy gives up with a `504`.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a proxied request failed; each maps to a status ([`ProxyError::status`]), answered if the
/// response has not begun (it is cut short otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// No upstream was configured (503).
    NoUpstream,
    /// The upstream could not be reached (502).
    Connect(io::ErrorKind),
    /// The upstream was silent for the timeout (504).
    Silent,
    /// The upstream closed without answering (502).
    Closed,
    /// The upstream closed in the middle of its response head (502).
    ClosedMidHead,
    /// The upstream closed before the end of its body (the response is cut short).
    ClosedMidBody,
    /// The upstream's response head was refused (502).
    BadHead(ResponseError),
    /// The upstream answered with a status the server cannot pass on (502).
    BadStatus,
    /// The upstream's body framing is broken (the response is cut short).
    BadBody,
    /// Reading from the upstream failed (502).
    Failed(io::ErrorKind),
    /// The client's request body could not be read (its own status).
    Input(InputError),
    /// The client's response could not be written (the connection closes).
    ClientGone,
}

impl ProxyError {
    /// The status to answer with, if no response has begun.
    pub fn status(self) -> u16 {
        match self {
            ProxyError::NoUpstream => 503,
            ProxyError::Silent => 504,
            ProxyError::Input(e) => e.status(),
            _ => 502,
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NoUpstream => {
                f.write_str("no upstream configured: start asycamore with --upstream HOST:PORT")
            }
            ProxyError::Connect(kind) => write!(f, "cannot connect to the upstream: {kind}"),
            ProxyError::Silent => f.write_str("the upstream did not answer in time"),
            ProxyError::Closed => f.write_str("the upstream closed without answering"),
            ProxyError::ClosedMidHead => f.write_str("the upstream closed in its response head"),
            ProxyError::ClosedMidBody => {
                f.write_str("the upstream closed before the end of its body")
            }
            ProxyError::BadHead(e) => write!(f, "the upstream sent a bad response: {e}"),
            ProxyError::BadStatus => {
                f.write_str("the upstream sent a status that cannot be passed on")
            }
            ProxyError::BadBody => f.write_str("the upstream broke its body's framing"),
            ProxyError::Failed(kind) => write!(f, "the upstream failed: {kind}"),
            ProxyError::Input(e) => write!(f, "{e}"),
            ProxyError::ClientGone => f.write_str("the client went away"),
        }
    }
}

impl std::error::Error for ProxyError {}

impl From<ResponseError> for ProxyError {
    fn from(e: ResponseError) -> ProxyError {
        ProxyError::BadHead(e)
    }
}

impl From<InputError> for ProxyError {
    fn from(e: InputError) -> ProxyError {
        ProxyError::Input(e)
    }
}

/// The `proxy` application: one per worker, with that worker's [`Pool`] of upstream
/// connections.
#[derive(Debug, Clone)]
pub struct Proxy {
    upstream: Option<SocketAddr>,
    timeout: Duration,
    pool: Rc<Pool>,
}

impl Proxy {
    /// Forwards to `upstream`, or answers `503` if there is none; gives up after `timeout` of
    /// upstream silence.
    pub fn new(upstream: Option<SocketAddr>, timeout: Duration) -> Proxy {
        Proxy {
            upstream,
            timeout,
            pool: Rc::new(Pool::new()),
        }
    }

    /// The idle upstream connections this proxy keeps.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// Where one proxied request is.
#[derive(Debug)]
enum State {
    /// No upstream configured.
    NoUpstream,
    /// Not started: the upstream's address.
    Start(SocketAddr),
    /// Connecting; `up` holds the request head, ready to go.
    Connecting {
        /// The connect in progress.
        connect: Connect,
        /// The request's way up.
        up: Upward,
    },
    /// Connected: the request goes up and the response comes down at the same time.
    Exchanging {
        /// The upstream connection.
        upstream: TcpStream,
        /// The request's way up.
        up: Upward,
        /// The response's way down.
        down: Downward,
        /// The connection came from the pool: if the upstream closed it while it waited, the
        /// request (which has no body) goes again on a fresh one.
        pooled: Option<SocketAddr>,
    },
    /// Finished.
    Done,
}

/// The handler of one proxied request.
#[derive(Debug)]
pub struct ProxyHandler {
    timeout: Duration,
    pool: Rc<Pool>,
    /// While waiting on the upstream: when to give up. Cleared whenever anything moves, so it
    /// measures silence, not the length of the whole exchange.
    deadline: Option<Instant>,
    state: State,
}

impl App for Proxy {
    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(ProxyHandler {
            timeout: self.timeout,
            pool: Rc::clone(&self.pool),
            deadline: None,
            state: match self.upstream {
                Some(addr) => State::Start(addr),
                None => State::NoUpstream,
            },
        })
    }
}

impl Handler for ProxyHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let state = std::mem::replace(&mut self.state, State::Done);
            match self.step(state, ex, cx) {
                Ok(Next::Go(State::Done)) => return Step::Ready(()),
                Ok(Next::Go(state)) => self.state = state,
                Ok(Next::Wait(state)) => {
                    self.state = state;
                    return Step::WouldBlock;
                }
                Err(e) => {
                    cx.clear_waits();
                    if ex.response_started() {
                        // The client sees a truncated body, not a wrong one.
                        ex.close_after();
                    } else {
                        ex.fail(e.status(), &e.to_string());
                    }
                    return Step::Ready(());
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "proxy"
    }
}

impl ProxyHandler {
    /// One step of `state`.
    fn step(
        &mut self,
        state: State,
        ex: &mut Exchange<'_>,
        cx: &mut Cx<'_>,
    ) -> Result<Next<State>, ProxyError> {
        match state {
            State::NoUpstream => Err(ProxyError::NoUpstream),
            State::Start(addr) => Ok(Next::Go(self.start(addr, ex, cx))),
            State::Connecting { connect, up } => self.connect(connect, up, cx),
            State::Exchanging {
                upstream,
                up,
                down,
                pooled,
            } => self.exchange(upstream, up, down, pooled, ex, cx),
            State::Done => Ok(Next::Go(State::Done)),
        }
    }

    /// `Start`: the request head; a pooled connection for a request without a body, else a
    /// new one.
    fn start(&mut self, addr: SocketAddr, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> State {
        let environ = ex.environ();
        let has_body = !matches!(
            environ.head().framing(),
            BodyFraming::None | BodyFraming::Length(0)
        );
        let (head, upload) = request::request_head(&environ);
        let up = Upward::new(head, upload, has_body);
        match (!has_body).then(|| self.pool.take(cx.now())).flatten() {
            Some(upstream) => State::Exchanging {
                upstream,
                up,
                down: Downward::new(),
                pooled: Some(addr),
            },
            None => State::Connecting {
                connect: TcpStream::connect(addr),
                up,
            },
        }
    }

    /// `Connecting`: until the handshake ends, or the timeout.
    fn connect(
        &mut self,
        mut connect: Connect,
        up: Upward,
        cx: &mut Cx<'_>,
    ) -> Result<Next<State>, ProxyError> {
        let deadline = *self.deadline.get_or_insert(cx.now() + self.timeout);
        if cx.now() >= deadline {
            return Err(ProxyError::Silent);
        }
        match connect.poll(cx) {
            Ok(Step::Ready(upstream)) => {
                self.deadline = None;
                Ok(Next::Go(State::Exchanging {
                    upstream,
                    up,
                    down: Downward::new(),
                    pooled: None,
                }))
            }
            Err(e) => Err(ProxyError::Connect(e.kind())),
            Ok(Step::WouldBlock) => {
                // `connect` waits for the socket to become writable; add the deadline.
                cx.wait_until(deadline);
                Ok(Next::Wait(State::Connecting { connect, up }))
            }
        }
    }

    /// `Exchanging`: each side as far as it can go, then wait for whatever either is blocked
    /// on. Neither can unblock the other (they wait on different things), so a pass of each is
    /// enough before waiting.
    fn exchange(
        &mut self,
        upstream: TcpStream,
        mut up: Upward,
        mut down: Downward,
        pooled: Option<SocketAddr>,
        ex: &mut Exchange<'_>,
        cx: &mut Cx<'_>,
    ) -> Result<Next<State>, ProxyError> {
        let mut moved = false;
        loop {
            match up.step(&upstream, ex, cx)? {
                Next::Go(next) => {
                    up = next;
                    moved = true;
                }
                Next::Wait(next) => {
                    up = next;
                    break;
                }
            }
        }
        loop {
            let untouched = !down.started();
            let step = match (down.step(&upstream, ex, cx), pooled) {
                (Ok(step), _) => step,
                // A pooled connection the upstream had closed: the same request, afresh.
                (Err(ProxyError::Closed | ProxyError::Failed(_)), Some(addr)) if untouched => {
                    cx.clear_waits();
                    return Ok(Next::Go(self.start_fresh(addr, ex)));
                }
                (Err(e), _) => return Err(e),
            };
            match step {
                Next::Go(Downward::Done { reusable }) => {
                    if reusable && matches!(up, Upward::Sent) {
                        // The next request that takes it from the pool waits on it for the
                        // same readiness: registered still, that costs no poller change.
                        cx.keep_registered(upstream.as_raw_fd());
                        self.pool.put(upstream, cx.now());
                    }
                    cx.clear_waits();
                    return Ok(Next::Go(State::Done));
                }
                Next::Go(next) => {
                    down = next;
                    moved = true;
                }
                Next::Wait(next) => {
                    down = next;
                    break;
                }
            }
        }
        // The upstream's silence counts only while nothing else holds things up: not while the
        // client is still sending the body the upstream waits for.
        let on_upstream = up.waits_on_upstream() || (up.finished() && down.waits_on_upstream());
        if moved {
            self.deadline = None;
        }
        if on_upstream {
            let deadline = *self.deadline.get_or_insert(cx.now() + self.timeout);
            if cx.now() >= deadline {
                return Err(ProxyError::Silent);
            }
            cx.wait_until(deadline);
        } else {
            self.deadline = None;
        }
        Ok(Next::Wait(State::Exchanging {
            upstream,
            up,
            down,
            pooled,
        }))
    }

    /// The request again, on a new connection.
    fn start_fresh(&mut self, addr: SocketAddr, ex: &mut Exchange<'_>) -> State {
        let (head, upload) = request::request_head(&ex.environ());
        State::Connecting {
            connect: TcpStream::connect(addr),
            up: Upward::new(head, upload, false),
        }
    }
}
