//! The connection coroutine: one per client, from the first byte to the close.
//!
//! ```text
//!            ┌──────────── keep-alive ─────────────┐
//!            ▼                                     │
//!      ReadingHead ──head──▶ Handling ──done──▶ (Draining) ──▶ ReadingHead
//!            │                  │                   │
//!       bad head / 408     panic / close       over the limit
//!            ▼                  ▼                   ▼
//!         Closing ──flushed──▶ Lingering ──EOF or timeout──▶ Done
//! ```
//!
//! Pipelining: every complete request already in the read buffer is answered before the next
//! read, and the responses produced in one wake leave together in as few `write`s as the socket
//! allows. Parsing stops while the output is above its high-water mark, so a client that pipelines
//! without reading cannot grow the server's memory.

use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use asycamore_executor::net::TcpStream;
use asycamore_executor::{Coroutine, Cx, Step};

use crate::buffer::{BODY_READ_CAPACITY, READ_BUFFER_INITIAL, ReadBuffer, WriteBuffer};
use crate::config::Config;
use crate::detect::{BodyEvent, HeadDetector};
use crate::response;
use crate::server::WorkerShutdown;
use crate::service::{
    App, Continue, Environ, Exchange, Handler, Peer, RequestState, ResponseState,
};
use crate::stats::ServerStats;

/// Resumes of the handler (or head parses) in one resume of the connection before it yields, so
/// one busy connection cannot hold the loop.
const STEP_BUDGET: usize = 64;

/// How long a closing connection keeps reading (and discarding) after it has sent its last byte,
/// so the client reads the response before its unread request bytes make the kernel send a reset
/// (RFC 9112 §9.6).
const LINGER: Duration = Duration::from_secs(2);

/// Most bytes read and discarded while lingering.
const LINGER_LIMIT: usize = 256 * 1024;

/// Output capacity kept by an idle connection; more is released once flushed.
const IDLE_OUTPUT_CAPACITY: usize = 4 * 1024;

/// What the connection is doing.
enum State {
    /// Waiting for a request head or for the rest of one.
    ReadingHead,
    /// The application's handler is producing the response to the current request.
    Handling(Box<dyn Handler>),
    /// The response is complete but the request body is not: discarding up to `left` more bytes.
    Draining {
        /// Bytes that may still be discarded before giving up and closing.
        left: u64,
    },
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

/// What one step of a state asks the resume loop to do next.
enum Next {
    /// Go on at once in `self.state`.
    Continue,
    /// Wait: the step registered its waits in `cx`.
    Block,
}

/// One client connection serving HTTP/1.x requests to an [`App`].
pub struct Connection {
    stream: TcpStream,
    peer: Peer,
    input: ReadBuffer,
    output: WriteBuffer,
    detector: HeadDetector,
    req: RequestState,
    state: State,
    app: Rc<dyn App>,
    config: Rc<Config>,
    stats: Rc<ServerStats>,
    /// When waiting for a head: the moment to give up (keep-alive idle or head timeout).
    head_deadline: Option<Instant>,
    /// True once the current head's first byte has arrived (then a timeout answers 408).
    head_started: bool,
    /// While output is pending: when the peer must have taken a byte by.
    write_deadline: Option<Instant>,
    /// The worker's shutdown state, and this connection's slot in its registry once registered.
    shutdown: Option<(Rc<WorkerShutdown>, Option<usize>)>,
}

impl Connection {
    /// A connection serving `app` on an accepted `stream`.
    pub fn new(
        stream: TcpStream,
        peer: Peer,
        app: Rc<dyn App>,
        config: Rc<Config>,
        stats: Rc<ServerStats>,
    ) -> Connection {
        stats.connection_opened();
        let detector = HeadDetector::new(config.limits);
        Connection {
            stream,
            peer,
            input: ReadBuffer::with_capacity(READ_BUFFER_INITIAL),
            output: WriteBuffer::with_capacity(0),
            detector,
            req: RequestState::new(),
            state: State::ReadingHead,
            app,
            config,
            stats,
            head_deadline: None,
            head_started: false,
            write_deadline: None,
            shutdown: None,
        }
    }

    /// Makes the connection follow the worker's graceful shutdown: once it begins, an idle
    /// connection closes and a busy one ends its current response with `Connection: close`.
    pub fn with_shutdown(mut self, shutdown: Rc<WorkerShutdown>) -> Connection {
        self.shutdown = Some((shutdown, None));
        self
    }

    /// Registers for the shutdown wake on the first resume; afterwards, notices shutdown.
    /// Returns true if the connection should close now: never at once since an idle one may have
    /// a request on its way (see `server::shutdown_idle_deadline`).
    fn check_shutdown(&mut self, cx: &mut Cx<'_>) -> bool {
        let Some((shutdown, slot)) = &mut self.shutdown else {
            return false;
        };
        if slot.is_none() {
            *slot = Some(shutdown.registry.insert(cx.waker()));
        }
        if !shutdown.flag.get() {
            return false;
        }
        self.req.closing = true;
        if matches!(self.state, State::ReadingHead)
            && self.input.is_empty()
            && self.output.is_empty()
        {
            self.head_deadline =
                crate::server::shutdown_idle_deadline(self.head_deadline, cx.now());
        }
        false
    }

    /// One step of the current state.
    fn step(&mut self, cx: &mut Cx<'_>) -> Next {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ReadingHead => self.read_head(cx),
            State::Handling(handler) => self.handle(handler, cx),
            State::Draining { left } => self.drain(left, cx),
            State::Closing => self.close(cx),
            State::Lingering { until, discarded } => self.linger(until, discarded, cx),
            State::Done => Next::Continue,
        }
    }

    /// `ReadingHead`: parse the next head from the buffer, reading more when needed.
    fn read_head(&mut self, cx: &mut Cx<'_>) -> Next {
        self.state = State::ReadingHead;
        if self.output.len() >= self.config.output_high_water {
            // Backpressure: no more requests until the client reads what it asked for.
            return self.flush_or_block(cx);
        }
        let detected = self.detector.detect(self.input.data(), &mut self.req.head);
        match detected {
            Ok(Step::Ready(head_len)) => {
                self.detector.reset();
                self.head_deadline = None;
                self.head_started = false;
                self.begin_request(head_len);
                Next::Continue
            }
            Err(e) => {
                self.stats.request_error(e.status());
                self.error_response(e.status(), e.reason());
                Next::Continue
            }
            Ok(Step::WouldBlock) => self.wait_for_head(cx),
        }
    }

    /// The buffer holds no complete head: flush what earlier requests produced, then read.
    fn wait_for_head(&mut self, cx: &mut Cx<'_>) -> Next {
        if self.flush(cx).is_err() {
            self.state = State::Done;
            return Next::Continue;
        }
        if self.output.is_empty() {
            self.output.shrink_when_empty(IDLE_OUTPUT_CAPACITY);
        }
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
            self.input.read_from(&self.stream, limit)
        };
        match read {
            Ok(Step::Ready(0)) => {
                // The client closed; a partial head is abandoned, not answered.
                self.state = State::Closing;
                Next::Continue
            }
            Ok(Step::Ready(n)) => {
                self.stats.bytes_read(n);
                if !self.head_started {
                    self.head_started = true;
                    self.head_deadline = Some(cx.now() + self.config.head_timeout);
                }
                Next::Continue
            }
            Ok(Step::WouldBlock) => {
                let now = cx.now();
                let deadline = *self.head_deadline.get_or_insert_with(|| {
                    now + if self.input.is_empty() {
                        self.config.keepalive_timeout
                    } else {
                        self.config.head_timeout
                    }
                });
                if now >= deadline {
                    self.stats.timeout();
                    if self.head_started && !self.input.is_empty() {
                        self.error_response(408, "request head timed out");
                    } else {
                        self.state = State::Closing;
                    }
                    return Next::Continue;
                }
                cx.wait_readable(self.stream.as_raw_fd());
                cx.wait_until(deadline);
                self.wait_output(cx);
                Next::Block
            }
            Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => {
                self.error_response(431, "request head too large");
                Next::Continue
            }
            Err(_) => {
                self.state = State::Done;
                Next::Continue
            }
        }
    }

    /// A head of `head_len` bytes is at the front of the buffer: make the handler.
    fn begin_request(&mut self, head_len: usize) {
        self.req
            .begin(head_len, &self.config, &self.input.data()[..head_len]);
        self.stats.request_started();
        let mut environ = Environ::new(&self.input.data()[..head_len], &self.req.head, &self.peer);
        let app = &self.app;
        match catch_unwind(AssertUnwindSafe(|| app.handler(&mut environ))) {
            Ok(handler) => {
                self.req.script_len = environ.script_len();
                self.state = State::Handling(handler);
            }
            Err(panic) => {
                log_panic(&*panic);
                self.error_response(500, "internal server error");
            }
        }
    }

    /// `Handling`: resume the handler until it finishes or waits.
    fn handle(&mut self, mut handler: Box<dyn Handler>, cx: &mut Cx<'_>) -> Next {
        if self.req.wants_input {
            self.fill_input();
        }
        for _ in 0..STEP_BUDGET {
            cx.clear_waits();
            let mut exchange = Exchange {
                stream: &self.stream,
                input: &self.input,
                output: &mut self.output,
                req: &mut self.req,
                peer: &self.peer,
                config: &self.config,
            };
            let started = self.config.profile.then(Instant::now);
            let step = catch_unwind(AssertUnwindSafe(|| handler.resume(&mut exchange, cx)));
            if let Some(started) = started {
                self.stats.handler_step(handler.kind(), started.elapsed());
            }
            match step {
                Ok(Step::Ready(())) => {
                    cx.clear_waits();
                    self.finish_response();
                    return Next::Continue;
                }
                Err(panic) => {
                    cx.clear_waits();
                    log_panic(&*panic);
                    self.stats.panic();
                    if self.req.response_started() {
                        self.req.keep_alive = false;
                        self.state = State::Closing;
                    } else {
                        self.error_response(500, "internal server error");
                    }
                    return Next::Continue;
                }
                Ok(Step::WouldBlock) => {}
            }
            // The handler waits. Send what it wrote, and see whether what it waits for is here.
            if self.flush(cx).is_err() {
                self.state = State::Done;
                return Next::Continue;
            }
            let mut progress = false;
            if self.req.wants_room && self.output.len() < self.config.output_high_water {
                self.req.wants_room = false;
                progress = true;
            }
            if self.req.wants_input && self.fill_input() {
                progress = true;
            }
            if !progress {
                self.wait_output(cx);
                if self.write_timed_out(cx) {
                    self.state = State::Done;
                    return Next::Continue;
                }
                self.state = State::Handling(handler);
                return Next::Block;
            }
        }
        cx.clear_waits();
        cx.yield_now();
        self.state = State::Handling(handler);
        Next::Block
    }

    /// Reads request-body bytes for a handler that asked for them. Returns true if anything
    /// changed (bytes arrived, or the client closed).
    fn fill_input(&mut self) -> bool {
        let req = &mut self.req;
        if self.input.is_full() && req.body_at > req.head_len {
            // Drop the body bytes already handed out, keeping the head in front.
            self.input
                .consume_at(req.head_len, req.body_at - req.head_len);
            req.body_at = req.head_len;
        }
        if self.input.socket_drained() {
            return false;
        }
        self.input.reserve_capacity(BODY_READ_CAPACITY);
        let limit = self.config.limits.max_head.saturating_add(64 * 1024);
        match self.input.read_from(&self.stream, limit) {
            // Full of bytes the handler has not taken yet: let it take them first.
            Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => true,
            Ok(Step::Ready(0)) | Err(_) => {
                req.input_closed = true;
                true
            }
            Ok(Step::Ready(n)) => {
                self.stats.bytes_read(n);
                req.body_deadline = None;
                true
            }
            Ok(Step::WouldBlock) => false,
        }
    }

    /// The handler is done: end the body's framing and choose the next state.
    fn finish_response(&mut self) {
        match self.req.response {
            ResponseState::NotStarted => {
                eprintln!("asycamore: handler finished without a response");
                self.error_response(500, "internal server error");
                return;
            }
            ResponseState::Chunked if !self.req.is_head => {
                response::write_last_chunk(self.output.vec());
            }
            ResponseState::Length { remaining } if remaining > 0 && !self.req.is_head => {
                // Fewer bytes than declared: only a close tells the client the body is cut short.
                eprintln!(
                    "asycamore: handler wrote {remaining} bytes less than its Content-Length"
                );
                self.req.keep_alive = false;
            }
            ResponseState::CloseDelimited => self.req.keep_alive = false,
            _ => {}
        }
        self.req.response = ResponseState::Finished;
        self.stats.request_done(
            self.req.status,
            self.req.now.saturating_duration_since(self.req.started),
        );
        if !self.req.keep_alive {
            self.state = State::Closing;
        } else if !self.req.body_done {
            if self.req.expect == Continue::Expected {
                // The client may still be holding the body back, or may send it: only a close
                // keeps the next request's framing certain (RFC 9110 §10.1.1).
                self.state = State::Closing;
            } else {
                self.state = State::Draining {
                    left: self.config.drain_limit,
                };
            }
        } else {
            self.next_request();
        }
    }

    /// Drops the finished request from the buffer and waits for the next head.
    fn next_request(&mut self) {
        self.input
            .consume(self.req.body_at + self.req.pending_consume);
        self.req.pending_consume = 0;
        self.state = State::ReadingHead;
    }

    /// `Draining`: discard the unread rest of a body so the next request can be parsed.
    fn drain(&mut self, mut left: u64, cx: &mut Cx<'_>) -> Next {
        let req = &mut self.req;
        req.body_at += std::mem::take(&mut req.pending_consume);
        loop {
            let data = self.input.data_from(req.body_at);
            match req.decoder.decode(data) {
                Err(_) => {
                    self.state = State::Closing;
                    return Next::Continue;
                }
                Ok((consumed, step)) => {
                    let done = matches!(step, Step::Ready(BodyEvent::End { .. }));
                    let blocked = matches!(step, Step::WouldBlock);
                    req.body_at += consumed;
                    if consumed as u64 > left {
                        self.state = State::Closing;
                        return Next::Continue;
                    }
                    left -= consumed as u64;
                    if done {
                        req.body_done = true;
                        self.next_request();
                        return Next::Continue;
                    }
                    if blocked {
                        break;
                    }
                }
            }
        }
        // Room for more: everything after the head that was read is discarded.
        self.input
            .consume_at(self.req.head_len, self.req.body_at - self.req.head_len);
        self.req.body_at = self.req.head_len;
        if self.flush(cx).is_err() {
            self.state = State::Done;
            return Next::Continue;
        }
        self.req.wants_input = true;
        if self.fill_input() {
            if self.req.input_closed {
                self.state = State::Closing;
            } else {
                self.state = State::Draining { left };
            }
            return Next::Continue;
        }
        let deadline = *self
            .req
            .body_deadline
            .get_or_insert_with(|| cx.now() + self.config.body_timeout);
        if cx.now() >= deadline {
            self.state = State::Closing;
            return Next::Continue;
        }
        cx.wait_readable(self.stream.as_raw_fd());
        cx.wait_until(deadline);
        self.wait_output(cx);
        self.state = State::Draining { left };
        Next::Block
    }

    /// `Closing`: send what is left, then shut the write side and linger.
    fn close(&mut self, cx: &mut Cx<'_>) -> Next {
        let before = self.output.len();
        let flushed = self.output.flush_to(&self.stream);
        self.stats.bytes_written(before - self.output.len());
        match flushed {
            Ok(Step::Ready(())) => {
                let _ = self.stream.shutdown_write();
                self.state = State::Lingering {
                    until: cx.now() + LINGER,
                    discarded: 0,
                };
                Next::Continue
            }
            Ok(Step::WouldBlock) => {
                self.state = State::Closing;
                self.write_deadline
                    .get_or_insert(cx.now() + self.config.write_timeout);
                if self.write_timed_out(cx) {
                    self.state = State::Done;
                    return Next::Continue;
                }
                self.wait_output(cx);
                Next::Block
            }
            Err(_) => Next::Continue,
        }
    }

    /// `Lingering`: read and discard until the client closes or `until` passes.
    fn linger(&mut self, until: Instant, mut discarded: usize, cx: &mut Cx<'_>) -> Next {
        let mut scratch = [0u8; 4096];
        loop {
            if cx.now() >= until || discarded > LINGER_LIMIT {
                return Next::Continue; // state is Done
            }
            match self.stream.read(&mut scratch) {
                Ok(Step::Ready(0)) | Err(_) => return Next::Continue,
                Ok(Step::Ready(n)) => discarded += n,
                Ok(Step::WouldBlock) => {
                    cx.wait_readable(self.stream.as_raw_fd());
                    cx.wait_until(until);
                    self.state = State::Lingering { until, discarded };
                    return Next::Block;
                }
            }
        }
    }

    /// Queues a short error response that closes the connection; nothing after it is parsed.
    fn error_response(&mut self, status: u16, reason: &str) {
        if matches!(self.state, State::ReadingHead) {
            // No handler was made for this request: tell the app (the access log logs it).
            let since = self
                .head_deadline
                .filter(|_| self.head_started)
                .and_then(|d| d.checked_sub(self.config.head_timeout));
            crate::service::rejected::report(
                &*self.app,
                &self.peer,
                (status, reason),
                self.input.data(),
                since,
                self.req.now,
            );
        }
        response::write_error_response(self.output.vec(), status, reason);
        self.req.keep_alive = false;
        self.req.response = ResponseState::Finished;
        self.stats.response(status);
        self.state = State::Closing;
    }

    /// Writes pending output; tracks the write-stall deadline.
    fn flush(&mut self, cx: &mut Cx<'_>) -> std::io::Result<()> {
        if self.output.is_empty() {
            self.write_deadline = None;
            return Ok(());
        }
        let before = self.output.len();
        let step = self.output.flush_to(&self.stream)?;
        self.stats.bytes_written(before - self.output.len());
        if step.is_ready() || self.output.len() < before {
            self.write_deadline = None;
        }
        if !self.output.is_empty() && self.write_deadline.is_none() {
            self.write_deadline = Some(cx.now() + self.config.write_timeout);
        }
        Ok(())
    }

    /// Flushes; if output stays above the high-water mark, waits for the socket to drain.
    fn flush_or_block(&mut self, cx: &mut Cx<'_>) -> Next {
        if self.flush(cx).is_err() {
            self.state = State::Done;
            return Next::Continue;
        }
        if self.output.len() < self.config.output_high_water {
            return Next::Continue;
        }
        if self.write_timed_out(cx) {
            self.state = State::Done;
            return Next::Continue;
        }
        self.wait_output(cx);
        Next::Block
    }

    /// If output is pending, asks to be woken when the socket takes more, or at the stall deadline.
    fn wait_output(&mut self, cx: &mut Cx<'_>) {
        if !self.output.is_empty() {
            cx.wait_writable(self.stream.as_raw_fd());
            if let Some(deadline) = self.write_deadline {
                cx.wait_until(deadline);
            }
        }
    }

    /// True if pending output has waited past the write timeout.
    fn write_timed_out(&mut self, cx: &mut Cx<'_>) -> bool {
        let timed_out =
            !self.output.is_empty() && self.write_deadline.is_some_and(|d| cx.now() >= d);
        if timed_out {
            self.stats.timeout();
        }
        timed_out
    }
}

impl Coroutine for Connection {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        self.req.now = cx.now();
        self.input.forget_drained();
        if self.check_shutdown(cx) {
            return Step::Ready(());
        }
        for _ in 0..STEP_BUDGET {
            if matches!(self.state, State::Done) {
                return Step::Ready(());
            }
            if let Next::Block = self.step(cx) {
                if self.shutdown.is_some() {
                    // The shutdown watcher's wake reaches a connection in any state.
                    cx.wait_wake();
                }
                return Step::WouldBlock;
            }
        }
        cx.clear_waits();
        cx.yield_now();
        Step::WouldBlock
    }

    fn kind(&self) -> &'static str {
        "connection"
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some((shutdown, Some(slot))) = &self.shutdown {
            shutdown.registry.remove(*slot);
        }
        self.stats.connection_closed();
    }
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
