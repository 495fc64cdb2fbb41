//! The connection coroutine: one per client, from the first byte to the close.
//!
//! ```text
//!            ┌──────────────── keep-alive ─────────────────┐
//!            ▼                                             │
//!      ReadingHead ──head──▶ Handling ──done──▶ (Draining) ─┘
//!            │                  │    └──101──▶ Upgraded    │
//!       bad head / 408     panic / close          │   over the limit / close
//!            ▼                  ▼     tunnel done / idle   ▼
//!         Closing ◀─────────────────────────────────┘──────┘
//!            └──flushed──▶ Lingering ──EOF or timeout──▶ Done
//! ```
//!
//! A connection the client asked to close, having sent nothing after its request, goes from the
//! response to `Finishing` instead of `Closing`: it sends the rest and closes without lingering.
//!
//! `Upgraded` runs the application's [`Tunnel`] on the raw byte stream after a
//! `101 Switching Protocols` ([`crate::service::upgrade`]): no more HTTP on this connection.
//!
//! Each state is a variant of a private `State` enum carrying what it needs (a head's deadline,
//! the handler, the bytes a drain may still discard); each step takes the state and returns the
//! next one as a [`Next`]: go on at once, or wait, having registered in `cx` what wakes it. What the current
//! request has done lives in `request::Request` (the body's progress, the response's, whether
//! `100 Continue` is owed), whose `persistence` method is the one place that decides between
//! keep-alive and close.
//!
//! Pipelining: every complete request already in the read buffer is answered before the next
//! read, and the responses produced in one wake leave together in as few `write`s as the socket
//! allows. Parsing stops while the output is above its high-water mark, so a client that pipelines
//! without reading cannot grow the server's memory.
//!
//! Memory: an idle keep-alive connection holds its `Connection` (264 bytes on x86-64: socket,
//! peer addresses, state, empty buffer handles, shared handles) and the executor's entry for
//! it, and nothing else: between requests the read buffer, the output buffer and the request
//! (detector, parsed head, field table) go back to the worker's spares, and the next request on
//! any connection takes them (`compare`'s `idle10k` cell: about 540 bytes of RSS per idle
//! connection in all).
//!
//! The connection is generic over its transport ([`Stream`]): a `TcpStream` in the server, a
//! simulated stream under the simulator (`tests/simulation.rs`), the same code monomorphized for
//! each.

pub(crate) mod request;

use std::mem;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use executor::net::{Sends, Stream, sends_on_this_thread};
use executor::{Coroutine, Cx, Interest, Next, Step};

use crate::buffer::{BODY_READ_CAPACITY, Filled, READ_BUFFER_INITIAL, ReadBuffer, WriteBuffer};
use crate::config::Config;
use crate::response;
use crate::service::error::InputError;
use crate::service::{App, Environ, Exchange, Handler, Peer, Tunnel, Upgraded, rejected};
use crate::shutdown::{Membership, SHUTDOWN_IDLE_WAIT, WorkerShutdown};
use crate::stats::ServerStats;

use request::{Body, CloseReason, FileBody, Framing, Persistence, RequestSlot, Response};

/// Resumes of the handler (or head parses) in one resume of the connection before it yields, so
/// one busy connection cannot hold the loop.
const STEP_BUDGET: usize = 64;

/// How long a closing connection keeps reading (and discarding) after it has sent its last byte,
/// so the client reads the response before its unread request bytes make the kernel send a reset
/// (RFC 9112 §9.6).
pub const LINGER: Duration = Duration::from_secs(2);

/// Most bytes read and discarded while lingering.
const LINGER_LIMIT: usize = 256 * 1024;

/// Largest output buffer kept among the worker's spares once flushed; a larger one is freed.
const IDLE_OUTPUT_CAPACITY: usize = 4 * 1024;

/// Room beyond the head limit that a body being read may fill the read buffer to.
const BODY_READ_SLACK: usize = 64 * 1024;

/// What the connection is doing.
enum State {
    /// Waiting for the next request head, or for the rest of one.
    ReadingHead(HeadWait),
    /// The application's handler is producing the response to the current request.
    Handling(Box<dyn Handler>),
    /// The response is complete but the request body is not: discarding up to `left` more bytes
    /// so the next request can be read.
    Draining {
        /// Bytes that may still be discarded before giving up and closing.
        left: u64,
    },
    /// After a `101 Switching Protocols`: the application's tunnel owns the byte stream. `active`
    /// is when a byte last moved either way (the upgrade idle timeout runs from it).
    Upgraded {
        /// The application's step machine for the stream.
        tunnel: Box<dyn Tunnel>,
        /// When a byte was last read or sent.
        active: Instant,
    },
    /// The handler gave a file as the rest of the body ([`Exchange::send_file`]): sending it,
    /// after the output. `moved` is when a byte last went out (the write timeout runs from it).
    SendingFile {
        /// When a byte last went out.
        moved: Instant,
    },
    /// The client asked to close and sent nothing after its request: sending what is left of the
    /// output, then closing at once — no lingering, as there is nothing of the client's to
    /// drain (RFC 9112 §9.6: a client that sent `close` sends no further request).
    Finishing,
    /// Sending what is left of the output before closing.
    Closing,
    /// Output sent and the write side shut: reading until the client closes, or `until`.
    Lingering {
        /// When to stop waiting for the client's close.
        until: Instant,
        /// Bytes discarded so far.
        discarded: usize,
    },
    /// Closed.
    Done,
}

/// Which timeout runs while the connection waits for a head.
#[derive(Debug, Clone, Copy)]
enum HeadWait {
    /// Idle when shutdown began: a request already on its way may still arrive until
    /// `deadline` ([`SHUTDOWN_IDLE_WAIT`]); then the connection closes.
    LastChance {
        /// When to give up and close.
        deadline: Instant,
    },
    /// No byte of the next head yet. The keep-alive timeout runs from `since`: the moment the
    /// output was all sent (while output is pending, the write timeout governs instead).
    Idle {
        /// When the connection became idle, once it has.
        since: Option<Instant>,
    },
    /// Bytes of the next head came with the previous request (pipelining): if it is not all
    /// there, the head timeout starts when the connection first waits for the rest.
    Buffered,
    /// Part of a head has arrived: it must be complete by `deadline` (the head timeout), else 408.
    Started {
        /// When the head timeout fires.
        deadline: Instant,
    },
}

impl HeadWait {
    /// When the head being read began to arrive, for a head that is under way.
    fn started_at(self, head_timeout: Duration) -> Option<Instant> {
        match self {
            HeadWait::Started { deadline } => deadline.checked_sub(head_timeout),
            HeadWait::Idle { .. } | HeadWait::LastChance { .. } | HeadWait::Buffered => None,
        }
    }
}

/// One client connection serving HTTP/1.x requests to an [`App`], over any [`Stream`].
pub struct Connection<S> {
    stream: S,
    peer: Peer,
    input: ReadBuffer,
    output: WriteBuffer,
    /// The current request; nothing while the connection is idle between requests.
    request: RequestSlot,
    state: State,
    app: Rc<dyn App>,
    config: Rc<Config>,
    stats: Rc<ServerStats>,
    /// The worker's shutdown, once the connection follows it.
    shutdown: Option<Membership>,
    /// Whether the worker's shutdown had begun when this resume started.
    shutting_down: bool,
    /// `TCP_NODELAY` is set ([`Connection::no_delay`]).
    nodelay: bool,
}

impl<S: Stream> Connection<S> {
    /// A connection serving `app` on an accepted `stream`.
    pub fn new(
        stream: S,
        peer: Peer,
        app: Rc<dyn App>,
        config: Rc<Config>,
        stats: Rc<ServerStats>,
    ) -> Connection<S> {
        stats.connection_opened();
        Connection {
            stream,
            peer,
            input: ReadBuffer::empty(),
            output: WriteBuffer::with_capacity(0),
            request: RequestSlot::default(),
            state: State::ReadingHead(HeadWait::Idle { since: None }),
            app,
            config,
            stats,
            shutdown: None,
            shutting_down: false,
            nodelay: false,
        }
    }

    /// Makes the connection follow the worker's graceful shutdown: once it begins, an idle
    /// connection closes and a busy one ends its current response with `Connection: close`.
    pub fn with_shutdown(mut self, shutdown: Rc<WorkerShutdown>) -> Connection<S> {
        self.shutdown = Some(Membership::new(shutdown));
        self
    }

    fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Turns Nagle's algorithm off, once, when the connection is about to write after bytes it
    /// wrote before may still be unacknowledged (a second response, a response streamed over
    /// several resumes, an upgraded stream): Nagle would hold such a small write back for an
    /// acknowledgement, and delayed acknowledgements make that up to 40 ms. A connection that
    /// answers once and closes never needs it, and saves the system call.
    fn no_delay(&mut self) {
        if !self.nodelay {
            self.nodelay = true;
            let _ = self.stream.set_nodelay();
        }
    }

    /// One step of `state`.
    fn step(&mut self, state: State, cx: &mut Cx<'_>) -> Next<State> {
        match state {
            State::ReadingHead(wait) => self.read_head(wait, cx),
            State::Handling(handler) => self.handle(handler, cx),
            State::Draining { left } => self.drain(left, cx),
            State::Upgraded { tunnel, active } => self.tunnel(tunnel, active, cx),
            State::SendingFile { moved } => self.send_file(moved, cx),
            State::Finishing => self.close(false, cx),
            State::Closing => self.close(true, cx),
            State::Lingering { until, discarded } => self.linger(until, discarded, cx),
            State::Done => Next::Go(State::Done),
        }
    }

    /// `ReadingHead`: parse the next head from the buffer, reading more when needed.
    fn read_head(&mut self, wait: HeadWait, cx: &mut Cx<'_>) -> Next<State> {
        if self.output.len() >= self.config.output_high_water {
            // Backpressure: no more requests until the client reads what it asked for.
            return self.flush_or_wait(State::ReadingHead(wait), cx);
        }
        let wait = match wait {
            HeadWait::Idle { since }
                if self.shutting_down() && self.input.is_empty() && self.output.is_empty() =>
            {
                // Idle when shutdown began (or became idle since): wait a moment more for a
                // request already on its way, no longer than the keep-alive timeout would.
                let last_chance = cx.now() + SHUTDOWN_IDLE_WAIT;
                let idle_end = since.map(|s| s + self.config.keepalive_timeout);
                HeadWait::LastChance {
                    deadline: idle_end.map_or(last_chance, |end| end.min(last_chance)),
                }
            }
            other => other,
        };
        let detected = if self.input.is_empty() {
            // Nothing to look at, as after most responses: the detector would say WouldBlock
            // too (it holds no partial head then), at the cost of a call.
            Ok((0, Step::WouldBlock))
        } else {
            let request = self.request.get();
            request.detector.set_limits(self.config.limits);
            request
                .detector
                .detect(self.input.data(), &mut request.head)
        };
        match detected {
            Ok((head_len, Step::Ready(()))) => {
                let (head, data) = (&self.request.get().head, self.input.data());
                cx.note(|| {
                    format!(
                        "head of {head_len} bytes: {} {} {}",
                        head.method(data),
                        String::from_utf8_lossy(head.target(data)),
                        head.version().as_str()
                    )
                });
                self.begin_request(head_len, cx.now())
            }
            Err(e) => {
                cx.note(|| format!("bad head: {} {}", e.status(), e.reason()));
                self.stats.request_error(e.status());
                let since = wait.started_at(self.config.head_timeout);
                Next::Go(self.reject(e.status(), e.reason(), since, cx.now()))
            }
            Ok((_, Step::WouldBlock)) => self.wait_for_head(wait, cx),
        }
    }

    /// The buffer holds no complete head: flush what earlier requests produced, then read.
    fn wait_for_head(&mut self, wait: HeadWait, cx: &mut Cx<'_>) -> Next<State> {
        if self.flush(cx).is_err() {
            return Next::Go(State::Done);
        }
        // Everything is sent: the output buffer goes to the worker's spares (one grown past the
        // idle capacity is freed), and the next response takes one back.
        self.output.release_when_empty(IDLE_OUTPUT_CAPACITY);
        self.input
            .shrink_when_empty(2 * READ_BUFFER_INITIAL, READ_BUFFER_INITIAL);
        let limit = self
            .config
            .limits
            .max_head
            .saturating_add(READ_BUFFER_INITIAL);
        let read = if self.input.socket_drained() {
            Ok(Step::WouldBlock)
        } else {
            self.input.read_from(&mut self.stream, limit)
        };
        let now = cx.now();
        match read {
            // The client closed; a partial head is abandoned, not answered.
            Ok(Step::Ready(Filled::Closed)) => Next::Go(State::Closing),
            Ok(Step::Ready(Filled::Bytes(n))) => {
                cx.note(|| format!("read {n} bytes"));
                self.stats.bytes_read(n);
                let wait = match wait {
                    HeadWait::Idle { .. } | HeadWait::LastChance { .. } | HeadWait::Buffered => {
                        HeadWait::Started {
                            deadline: now + self.config.head_timeout,
                        }
                    }
                    started => started,
                };
                Next::Go(State::ReadingHead(wait))
            }
            Ok(Step::Ready(Filled::Full)) => {
                let since = wait.started_at(self.config.head_timeout);
                Next::Go(self.reject(431, "request head too large", since, now))
            }
            Ok(Step::WouldBlock) => {
                let wait = match wait {
                    HeadWait::Idle { since: None } if self.output.is_empty() => {
                        HeadWait::Idle { since: Some(now) }
                    }
                    // The pipelined part is not a whole head: its timeout starts now.
                    HeadWait::Buffered => HeadWait::Started {
                        deadline: now + self.config.head_timeout,
                    },
                    other => other,
                };
                let deadline = match wait {
                    HeadWait::Idle { since } => since.map(|s| s + self.config.keepalive_timeout),
                    HeadWait::Buffered => None,
                    HeadWait::Started { deadline } | HeadWait::LastChance { deadline } => {
                        Some(deadline)
                    }
                };
                if deadline.is_some_and(|d| now >= d) {
                    return Next::Go(match wait {
                        HeadWait::Started { deadline } => {
                            cx.note(|| "head timeout: 408".into());
                            self.stats.timeout();
                            let since = deadline.checked_sub(self.config.head_timeout);
                            self.reject(408, "request head timed out", since, now)
                        }
                        HeadWait::Idle { .. } | HeadWait::Buffered => {
                            cx.note(|| "keep-alive timeout: closing".into());
                            self.stats.timeout();
                            State::Closing
                        }
                        HeadWait::LastChance { .. } => {
                            cx.note(|| "shutting down: closing an idle connection".into());
                            State::Closing
                        }
                    });
                }
                if self.write_stalled(now) {
                    return Next::Go(State::Done);
                }
                // Idle between requests: hold no read buffer and no request either (the next
                // read and head take spares).
                self.input.release_when_empty();
                if self.input.is_empty() && self.output.is_empty() {
                    self.request.release();
                }
                cx.wait_readable(self.stream.as_raw_fd());
                if let Some(deadline) = deadline {
                    cx.wait_until(deadline);
                }
                self.wait_output(cx);
                Next::Wait(State::ReadingHead(wait))
            }
            Err(_) => Next::Go(State::Done),
        }
    }

    /// A head of `head_len` bytes is at the front of the buffer: make the handler.
    fn begin_request(&mut self, head_len: usize, now: Instant) -> Next<State> {
        let is_head = self.request.get().head.method_bytes(self.input.data()) == b"HEAD";
        self.request
            .get()
            .begin(head_len, &self.config, is_head, now);
        self.stats.request_started();
        let mut environ = Environ::new(
            &self.input.data()[..head_len],
            &self.request.get().head,
            &self.peer,
        );
        let app = &self.app;
        match catch_unwind(AssertUnwindSafe(|| app.handler(&mut environ))) {
            Ok(handler) => {
                let script_len = environ.script_len();
                self.request.get().script_len = script_len;
                if self.config.profile {
                    self.request.get().profile_slot = self.stats.profile_request(handler.kind());
                }
                Next::Go(State::Handling(handler))
            }
            Err(panic) => {
                log_panic(&*panic);
                self.stats.panic();
                Next::Go(self.reject(500, "internal server error", None, now))
            }
        }
    }

    /// `Handling`: resume the handler until it finishes or waits.
    fn handle(&mut self, mut handler: Box<dyn Handler>, cx: &mut Cx<'_>) -> Next<State> {
        let fd = self.stream.as_raw_fd();
        let shutting_down = self.shutting_down();
        for _ in 0..STEP_BUDGET {
            cx.clear_waits();
            let started = self.config.profile.then(Instant::now);
            // A handler may send on sockets of its own (a proxy's upstream).
            let sends_before = self.config.profile.then(sends_on_this_thread);
            cx.note(|| format!("resume handler ({})", handler.kind()));
            let step = {
                let mut exchange = Exchange {
                    fd,
                    input: &self.input,
                    output: &mut self.output,
                    request: self.request.get(),
                    peer: &self.peer,
                    config: &self.config,
                    shutting_down,
                    now: cx.now(),
                };
                catch_unwind(AssertUnwindSafe(|| handler.resume(&mut exchange, cx)))
            };
            if let Some(started) = started {
                let slot = self.request.profile_slot();
                self.stats
                    .handler_step(handler.kind(), slot, started.elapsed());
            }
            profile_sends_since(&self.stats, self.request.profile_slot(), sends_before);
            match step {
                Ok(Step::Ready(())) => {
                    cx.clear_waits();
                    let status = self.request.get().status;
                    cx.note(|| format!("handler done: {status}"));
                    if self.request.get().file_body.is_some() {
                        return Next::Go(State::SendingFile { moved: cx.now() });
                    }
                    return Next::Go(self.finish_response(cx));
                }
                Err(panic) => {
                    cx.clear_waits();
                    log_panic(&*panic);
                    self.stats.panic();
                    return Next::Go(if self.request.get().response.started() {
                        // The client sees a cut-short response, never a wrong one.
                        State::Closing
                    } else {
                        self.error_response(500, "internal server error")
                    });
                }
                Ok(Step::WouldBlock) => {}
            }
            // The handler waits: what it writes next may follow bytes still unacknowledged.
            if self.request.get().response.started() {
                self.no_delay();
            }
            // What it waits for on the client's socket the exchange has registered in `cx`:
            // send what it wrote, and see whether that is here already.
            let wants = interest_in(cx, fd);
            if self.flush(cx).is_err() {
                return Next::Go(State::Done);
            }
            let room = wants.is_some_and(Interest::is_writable)
                && self.output.len() < self.config.output_high_water;
            let arrived = wants.is_some_and(Interest::is_readable) && self.fill_input();
            if !room && !arrived {
                if self.write_stalled(cx.now()) {
                    return Next::Go(State::Done);
                }
                self.wait_output(cx);
                cx.note(|| "handler waits".into());
                return Next::Wait(State::Handling(handler));
            }
        }
        cx.clear_waits();
        cx.yield_now();
        Next::Wait(State::Handling(handler))
    }

    /// Reads request-body bytes for a handler (or a drain) that waits for them. Returns true if
    /// anything changed: bytes arrived, or the client closed.
    fn fill_input(&mut self) -> bool {
        // A tunnel reads through here too, and holds no request.
        if self.input.is_full()
            && let Some(request) = self.request.held_mut()
            && let Body::Reading { at, handed, .. } = &mut request.body
        {
            // Drop the body bytes already handed out, keeping the head in front.
            *at += mem::take(handed);
            self.input
                .consume_at(request.head_len, *at - request.head_len);
            *at = request.head_len;
        }
        if self.input.socket_drained() || self.input.is_closed() {
            return false;
        }
        self.input.reserve_capacity(BODY_READ_CAPACITY);
        let limit = self.config.limits.max_head.saturating_add(BODY_READ_SLACK);
        match self.input.read_from(&mut self.stream, limit) {
            Ok(Step::Ready(Filled::Bytes(n))) => {
                self.stats.bytes_read(n);
                if let Some(request) = self.request.held_mut() {
                    request.body.bytes_arrived();
                }
                true
            }
            // Closed (or failed): the reader hears it. Full of bytes not taken yet: let the
            // reader take them first.
            Ok(Step::Ready(Filled::Closed | Filled::Full)) | Err(_) => true,
            Ok(Step::WouldBlock) => false,
        }
    }

    /// `SendingFile`: the output first (the head), then the file, with `sendfile(2)` where the
    /// stream can and through the output where it cannot (a simulated stream); then the
    /// response is complete.
    fn send_file(&mut self, mut moved: Instant, cx: &mut Cx<'_>) -> Next<State> {
        for _ in 0..STEP_BUDGET {
            let now = cx.now();
            let remaining = match &self.request.get().file_body {
                Some(body) if body.remaining > 0 => body.remaining,
                _ => {
                    self.request.get().file_body = None;
                    return Next::Go(self.finish_response(cx));
                }
            };
            // The head goes first, with `MSG_MORE`: the kernel holds it for the file's first
            // bytes, so even a small body shares the head's segment (a head sent alone would
            // cost the client a second segment and a second wake), and no byte of the file is
            // copied through user space (nginx's `sendfile on` with `tcp_nopush`, in one flag
            // instead of two `setsockopt` calls per response).
            if self.flush_as(cx, true).is_err() {
                return Next::Go(State::Done);
            }
            if !self.output.is_empty() {
                // The bytes before the file must go first.
                if self.write_stalled(now) {
                    return Next::Go(State::Done);
                }
                self.wait_output(cx);
                return Next::Wait(State::SendingFile { moved });
            }
            let slot = self.request.profile_slot();
            let Some(body) = self.request.get().file_body.as_mut() else {
                return Next::Go(self.finish_response(cx));
            };
            let count = usize::try_from(remaining).map_or(FILE_PIECE, |n| n.min(FILE_PIECE));
            let fd = body.file.as_raw_fd();
            let sent = {
                let before = self.config.profile.then(sends_on_this_thread);
                let sent = self.stream.send_file(fd, &mut body.offset, count);
                profile_sends_since(&self.stats, slot, before);
                match sent {
                    Err(e) if e.kind() == std::io::ErrorKind::Unsupported => copy_file_piece(
                        body,
                        self.output.vec(),
                        count.min(self.config.output_high_water),
                    )
                    .map(Step::Ready),
                    other => other.inspect(|step| {
                        if let Step::Ready(n) = step {
                            self.stats.bytes_written(*n);
                        }
                    }),
                }
            };
            match sent {
                Ok(Step::Ready(0)) | Err(_) => {
                    // The file shrank (or cannot be read, or the socket failed): the body ends
                    // short, and the close that follows (the persistence decision sees the
                    // short length) is all the client can be told.
                    cx.note(|| "file body ended short".into());
                    self.request.get().file_body = None;
                    return Next::Go(self.finish_response(cx));
                }
                Ok(Step::Ready(n)) => {
                    body.remaining -= n as u64;
                    self.request.get().file_sent(n as u64);
                    moved = now;
                }
                Ok(Step::WouldBlock) => {
                    let until = moved + self.config.write_timeout;
                    if now >= until {
                        self.stats.timeout();
                        return Next::Go(State::Done);
                    }
                    cx.wait_writable(self.stream.as_raw_fd());
                    cx.wait_until(until);
                    return Next::Wait(State::SendingFile { moved });
                }
            }
        }
        cx.yield_now();
        Next::Wait(State::SendingFile { moved })
    }

    /// The handler is done: end the body's framing and choose the next state.
    fn finish_response(&mut self, cx: &mut Cx<'_>) -> State {
        let framing = match self.request.get().response {
            Response::NotStarted => {
                eprintln!("asycamore: handler finished without a response");
                return self.error_response(500, "internal server error");
            }
            Response::HeadSent(f) | Response::Streaming(f) => {
                if f == Framing::Chunked && !self.request.get().is_head {
                    response::write_last_chunk(self.output.vec());
                }
                f
            }
            // Ended by the handler (with trailers).
            Response::Complete(f) => f,
        };
        self.request.get().response = Response::Complete(framing);
        if self.request.get().ended_short() {
            // Fewer bytes than declared: the close that follows is all the client can be told.
            self.stats.short_response();
        }
        // Most requests are answered in the turn they arrived in: no clock arithmetic then.
        let now = cx.now();
        let took = if now == self.request.get().started {
            Duration::ZERO
        } else {
            now.saturating_duration_since(self.request.get().started)
        };
        self.stats.request_done(self.request.get().status, took);
        if let Some(tunnel) = self.request.get().upgrade.take() {
            return self.switch(tunnel, now);
        }
        self.after_response()
    }

    /// The handler answered `101 Switching Protocols`: the request's bytes are dropped (it had
    /// no body), and what follows them is the tunnel's (RFC 9110 §7.8).
    fn switch(&mut self, tunnel: Box<dyn Tunnel>, now: Instant) -> State {
        self.no_delay();
        if let Body::Drained { end } = self.request.get().body {
            self.input.consume(end);
        }
        // The stream is the tunnel's from here on: no request will be read on it again.
        self.request.release();
        self.stats.upgrade_began();
        State::Upgraded {
            tunnel,
            active: now,
        }
    }

    /// `Upgraded`: resume the tunnel until it ends or waits; close the connection once it has
    /// ended, or when no byte has moved for the upgrade idle timeout.
    fn tunnel(
        &mut self,
        mut tunnel: Box<dyn Tunnel>,
        mut active: Instant,
        cx: &mut Cx<'_>,
    ) -> Next<State> {
        let fd = self.stream.as_raw_fd();
        let mut ending = false;
        for _ in 0..STEP_BUDGET {
            cx.clear_waits();
            cx.note(|| format!("resume tunnel ({})", tunnel.kind()));
            let step = {
                let mut io = Upgraded {
                    fd,
                    input: &mut self.input,
                    output: &mut self.output,
                    high_water: self.config.output_high_water,
                    shutting_down: self.shutting_down,
                    ending,
                    now: cx.now(),
                };
                catch_unwind(AssertUnwindSafe(|| tunnel.resume(&mut io, cx)))
            };
            let done = match step {
                Ok(Step::Ready(())) => true,
                Err(panic) => {
                    log_panic(&*panic);
                    self.stats.panic();
                    true
                }
                Ok(Step::WouldBlock) => false,
            };
            if done {
                cx.clear_waits();
                cx.note(|| "tunnel done: closing".into());
                self.stats.upgrade_ended();
                return Next::Go(State::Closing);
            }
            let wants = interest_in(cx, fd);
            let pending = self.output.len();
            if self.flush(cx).is_err() {
                self.stats.upgrade_ended();
                return Next::Go(State::Done);
            }
            let now = cx.now();
            let sent = self.output.len() < pending;
            let room = wants.is_some_and(Interest::is_writable)
                && self.output.len() < self.config.output_high_water;
            let wants_input = wants.is_some_and(Interest::is_readable);
            let closed_before = self.input.is_closed();
            let arrived = wants_input && self.fill_input();
            if sent || arrived {
                active = now;
            }
            if wants_input && closed_before && self.input.is_empty() {
                // The tunnel saw the client's close and still asks for bytes: none will come.
                cx.clear_waits();
                self.stats.upgrade_ended();
                return Next::Go(State::Closing);
            }
            if !room && !arrived {
                let idle_end = active + self.config.upgrade_idle_timeout;
                if now >= idle_end && !ending {
                    // Once more, so the tunnel can say goodbye in its protocol.
                    cx.note(|| "upgrade idle timeout: the tunnel's last resume".into());
                    self.stats.timeout();
                    ending = true;
                    continue;
                }
                if ending {
                    cx.clear_waits();
                    cx.note(|| "upgrade idle timeout: closing".into());
                    self.stats.upgrade_ended();
                    return Next::Go(State::Closing);
                }
                if self.write_stalled(now) {
                    self.stats.upgrade_ended();
                    return Next::Go(State::Done);
                }
                cx.wait_until(idle_end);
                self.wait_output(cx);
                return Next::Wait(State::Upgraded { tunnel, active });
            }
        }
        cx.clear_waits();
        cx.yield_now();
        Next::Wait(State::Upgraded { tunnel, active })
    }

    /// The response is complete: close, discard the rest of the body, or read the next head, as
    /// the request's persistence says.
    fn after_response(&mut self) -> State {
        let shutting_down = self.shutting_down();
        match self.request.get().persistence(shutting_down) {
            Persistence::Close(CloseReason::ClientAsked) if self.client_is_done() => {
                State::Finishing
            }
            Persistence::Close(_) => State::Closing,
            Persistence::KeepAlive => match self.request.get().body {
                Body::Drained { end } => self.next_request(end),
                _ => State::Draining {
                    left: self.config.drain_limit,
                },
            },
        }
    }

    /// Drops the finished request (whose bytes end at `end`) and waits for the next head.
    fn next_request(&mut self, end: usize) -> State {
        self.no_delay();
        self.input.consume(end);
        self.request.get().body = Body::Idle;
        State::ReadingHead(if self.input.is_empty() {
            HeadWait::Idle { since: None }
        } else {
            HeadWait::Buffered
        })
    }

    /// `Draining`: discard the unread rest of a body so the next request can be parsed.
    fn drain(&mut self, left: u64, cx: &mut Cx<'_>) -> Next<State> {
        let left = match self.discard_buffered(left) {
            Ok(left) => left,
            // Drained (the next request follows) or failed (the connection closes).
            Err(()) => return Next::Go(self.after_response()),
        };
        if self.input.is_closed() {
            self.request.get().body = Body::Failed(InputError::Incomplete);
            return Next::Go(self.after_response());
        }
        if self.flush(cx).is_err() {
            return Next::Go(State::Done);
        }
        if self.fill_input() {
            return Next::Go(State::Draining { left });
        }
        let now = cx.now();
        let Body::Reading { deadline, .. } = &mut self.request.get().body else {
            return Next::Go(self.after_response());
        };
        let until = *deadline.get_or_insert(now + self.config.body_timeout);
        if now >= until {
            self.stats.timeout();
            self.request.get().body = Body::Failed(InputError::Timeout);
            return Next::Go(self.after_response());
        }
        if self.write_stalled(now) {
            return Next::Go(State::Done);
        }
        cx.wait_readable(self.stream.as_raw_fd());
        cx.wait_until(until);
        self.wait_output(cx);
        Next::Wait(State::Draining { left })
    }

    /// Decodes and discards the body bytes in the buffer, at most `left` of them. `Ok` with what
    /// may still be discarded when more bytes are needed; `Err` once the body is drained or has
    /// failed (too long to discard, or malformed), as `self.request.get().body` then says.
    fn discard_buffered(&mut self, mut left: u64) -> Result<u64, ()> {
        let request = self.request.get();
        if let Body::Unread(_) = request.body
            && let Body::Unread(decoder) = mem::take(&mut request.body)
        {
            request.body = Body::Reading {
                decoder,
                at: request.head_len,
                handed: 0,
                deadline: None,
                declared: 0,
            };
        }
        let Body::Reading {
            decoder,
            at,
            handed,
            ..
        } = &mut request.body
        else {
            return Err(());
        };
        *at += mem::take(handed);
        loop {
            let (consumed, step) = match decoder.decode(self.input.data_from(*at)) {
                Ok(decoded) => decoded,
                Err(e) => {
                    request.body = Body::Failed(InputError::Malformed(e));
                    return Err(());
                }
            };
            if consumed as u64 > left {
                // The promise of keep-alive is not worth reading this much for.
                request.body = Body::Failed(InputError::TooLarge);
                return Err(());
            }
            left -= consumed as u64;
            *at += consumed;
            match step {
                Step::Ready(crate::detect::BodyEvent::End { .. }) => {
                    let end = *at;
                    request.body = Body::Drained { end };
                    return Err(());
                }
                Step::Ready(_) => {}
                Step::WouldBlock => break,
            }
        }
        // Room for more: everything after the head that was read is discarded.
        self.input
            .consume_at(request.head_len, *at - request.head_len);
        *at = request.head_len;
        Ok(left)
    }

    /// True if the request (with its whole body) is all the client sent: nothing after it in
    /// the buffer, and the last read in this resume found the socket empty.
    fn client_is_done(&self) -> bool {
        let request = self.request.held();
        request.is_some_and(|r| matches!(r.body, Body::Drained { end } if end == self.input.len()))
            && self.input.socket_drained()
    }

    /// `Closing` (`linger`) and `Finishing` (not): send what is left, then close. `Closing` shuts
    /// the write side and lingers; `Finishing` closes at once, unless the client sent more
    /// meanwhile (it should not have): then it lingers too, so that the client's unread bytes do
    /// not make the kernel reset the connection under the response.
    fn close(&mut self, linger: bool, cx: &mut Cx<'_>) -> Next<State> {
        let now = cx.now();
        if self.flush(cx).is_err() {
            return Next::Go(State::Done);
        }
        if !self.output.is_empty() {
            if self.write_stalled(now) {
                return Next::Go(State::Done);
            }
            self.wait_output(cx);
            return Next::Wait(if linger {
                State::Closing
            } else {
                State::Finishing
            });
        }
        if !linger && self.client_sent_nothing_more() {
            cx.note(|| "closing: the client sent nothing more".into());
            return Next::Go(State::Done);
        }
        let _ = self.stream.shutdown_write();
        cx.note(|| "closing: write side shut, lingering".into());
        Next::Go(State::Lingering {
            until: now + LINGER,
            discarded: 0,
        })
    }

    /// True if nothing has come from the client since its request: the socket was found empty in
    /// this resume, or a one-byte read finds it empty now (a byte it does find is discarded, as
    /// lingering would).
    fn client_sent_nothing_more(&mut self) -> bool {
        if self.input.socket_drained() {
            return true;
        }
        let mut probe = [0u8; 1];
        matches!(
            self.stream.read(&mut probe),
            Ok(Step::WouldBlock | Step::Ready(0))
        )
    }

    /// `Lingering`: read and discard until the client closes or `until` passes.
    fn linger(&mut self, until: Instant, mut discarded: usize, cx: &mut Cx<'_>) -> Next<State> {
        let mut scratch = [0u8; 4096];
        loop {
            if cx.now() >= until || discarded > LINGER_LIMIT {
                return Next::Go(State::Done);
            }
            match self.stream.read(&mut scratch) {
                Ok(Step::Ready(0)) | Err(_) => return Next::Go(State::Done),
                Ok(Step::Ready(n)) => discarded += n,
                Ok(Step::WouldBlock) => {
                    cx.wait_readable(self.stream.as_raw_fd());
                    cx.wait_until(until);
                    return Next::Wait(State::Lingering { until, discarded });
                }
            }
        }
    }

    /// Answers a head the connection refused (or that timed out) before any handler was made:
    /// tells the application (the access log logs it), then [`Connection::error_response`].
    /// `since` is when the head's first byte arrived, if in an earlier read.
    fn reject(&mut self, status: u16, reason: &str, since: Option<Instant>, now: Instant) -> State {
        rejected::report(
            &*self.app,
            &self.peer,
            (status, reason),
            self.input.data(),
            since,
            now,
        );
        self.error_response(status, reason)
    }

    /// Queues a short error response that closes the connection: nothing after it is parsed.
    fn error_response(&mut self, status: u16, reason: &str) -> State {
        // A response to HEAD has no content (RFC 9110 §9.3.2), even when the head it answers
        // did not parse: the method is the first word, if it is there at all.
        let data = self.input.data();
        let start = data
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(0);
        if data[start..].starts_with(b"HEAD ") {
            response::write_error_head(self.output.vec(), status, reason);
        } else {
            response::write_error_response(self.output.vec(), status, reason);
        }
        self.stats.response(status);
        State::Closing
    }

    /// Writes pending output, keeping its stall deadline.
    fn flush(&mut self, cx: &mut Cx<'_>) -> std::io::Result<()> {
        self.flush_as(cx, false)
    }

    /// [`Connection::flush`]; with `more`, telling the kernel that more follows at once (a
    /// file body, sent next with `sendfile(2)`), so a head and a small body share a segment.
    fn flush_as(&mut self, cx: &mut Cx<'_>, more: bool) -> std::io::Result<()> {
        let before = self.config.profile.then(sends_on_this_thread);
        let now = cx.now();
        let flushed =
            self.output
                .flush_timed(&mut self.stream, now, self.config.write_timeout, more);
        profile_sends_since(&self.stats, self.request.profile_slot(), before);
        let written = flushed?;
        if written > 0 {
            let left = self.output.len();
            cx.note(|| format!("wrote {written} bytes ({left} left)"));
        }
        self.stats.bytes_written(written);
        Ok(())
    }

    /// Flushes; if output stays above the high-water mark, waits in `state` for it to drain.
    fn flush_or_wait(&mut self, state: State, cx: &mut Cx<'_>) -> Next<State> {
        if self.flush(cx).is_err() {
            return Next::Go(State::Done);
        }
        if self.output.len() < self.config.output_high_water {
            return Next::Go(state);
        }
        if self.write_stalled(cx.now()) {
            return Next::Go(State::Done);
        }
        self.wait_output(cx);
        Next::Wait(state)
    }

    /// If output is pending, asks to be woken when the socket takes more, or at the stall deadline.
    fn wait_output(&mut self, cx: &mut Cx<'_>) {
        if !self.output.is_empty() {
            cx.wait_writable(self.stream.as_raw_fd());
            if let Some(deadline) = self.output.stall_deadline() {
                cx.wait_until(deadline);
            }
        }
    }

    /// True (and counted) if pending output has not moved for the write timeout: the client is
    /// not reading, and the connection is dropped.
    fn write_stalled(&mut self, now: Instant) -> bool {
        let stalled = self.output.stalled(now);
        if stalled {
            self.stats.timeout();
        }
        stalled
    }
}

impl<S: Stream> Coroutine for Connection<S> {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if self.config.profile {
            // The request being served when the connection woke (the one it was waiting for).
            self.stats
                .profile_connection_resume(self.request.profile_slot());
        }
        self.run(cx)
    }

    fn kind(&self) -> &'static str {
        "connection"
    }
}

impl<S: Stream> Connection<S> {
    /// One resume of the connection: steps through states until one waits or the connection ends.
    fn run(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        self.input.forget_drained();
        // While a wait is elsewhere (an upstream's answer, a timer, the thread pool), the client's
        // socket stays registered: waiting on it again afterwards costs no poller change.
        cx.keep_registered(self.stream.as_raw_fd());
        // The flag only changes between resumes (the watcher is another task): read it once.
        self.shutting_down = self.shutdown.as_mut().is_some_and(|s| s.watch(cx));
        for _ in 0..STEP_BUDGET {
            let state = mem::replace(&mut self.state, State::Done);
            match self.step(state, cx) {
                Next::Go(State::Done) => return Step::Ready(()),
                Next::Go(state) => self.state = state,
                Next::Wait(state) => {
                    self.state = state;
                    if self.shutdown.is_some() {
                        // The shutdown watcher's wake reaches a connection in any state.
                        cx.wait_wake();
                    }
                    return Step::WouldBlock;
                }
            }
        }
        cx.clear_waits();
        cx.yield_now();
        Step::WouldBlock
    }
}

impl<S> Drop for Connection<S> {
    fn drop(&mut self) {
        if let State::Upgraded { .. } = self.state {
            // Dropped mid-stream (the worker's grace period ran out).
            self.stats.upgrade_ended();
        }
        self.stats.connection_closed();
    }
}

/// With `--profile`, adds the sends made since `before` to the kind of the request in `slot`:
/// the request whose bytes they carried (a pipelined next request may already have begun by the
/// end of the resume, so the count is taken at the call).
fn profile_sends_since(stats: &ServerStats, slot: u8, before: Option<Sends>) {
    if let Some(before) = before {
        let now = sends_on_this_thread();
        let sends = Sends {
            calls: now.calls - before.calls,
            bytes: now.bytes - before.bytes,
        };
        stats.profile_sends(slot, sends);
    }
}

/// What the step that just waited registered on the client's socket `fd`, if anything.
fn interest_in(cx: &Cx<'_>, fd: std::os::fd::RawFd) -> Option<Interest> {
    cx.waits()
        .fds
        .iter()
        .find(|&&(f, _)| f == fd)
        .map(|&(_, interest)| interest)
}

/// Most of a file body handed to one `sendfile(2)`.
const FILE_PIECE: usize = 1 << 20;

/// Copies up to `most` bytes of `body`'s file into `out`, for a stream that cannot send a file
/// itself; `Ok(0)` at the file's end.
fn copy_file_piece(body: &mut FileBody, out: &mut Vec<u8>, most: usize) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let start = out.len();
    out.resize(start + most, 0);
    let n = body.file.read_at(&mut out[start..], body.offset);
    out.truncate(start + *n.as_ref().unwrap_or(&0));
    let n = n?;
    body.offset += n as u64;
    Ok(n)
}

/// Logs a caught panic's message.
fn log_panic(panic: &(dyn std::any::Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    eprintln!("asycamore: a handler panicked: {message}");
}
#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// An idle keep-alive connection is its `Connection` (the executor boxes it with the
    /// acceptor's counter) plus the executor's bookkeeping: no request, no buffers. The bound
    /// keeps a field added here honest about what it costs ten thousand idle clients.
    #[test]
    fn an_idle_connection_is_small() {
        let size = mem::size_of::<Connection<executor::net::TcpStream>>();
        assert!(size <= 272, "Connection<TcpStream> is {size} bytes");
        assert!(mem::size_of::<RequestSlot>() == mem::size_of::<usize>());
    }
}
