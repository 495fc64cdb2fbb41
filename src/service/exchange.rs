//! [`Exchange`]: what a handler holds on each resume — the request body as events and the response.
//!
//! The exchange does no I/O of its own. A body read that finds no complete event in the buffer
//! asks the connection for more bytes (it registers the socket as readable and says
//! `WouldBlock`); a write that finds the output above its high-water mark asks the connection to
//! drain it (and says `WouldBlock`). The connection does the reading and writing between two
//! resumes of the handler, so the handler's view of the buffers never changes under it.

use std::fmt;
use std::os::fd::AsRawFd;
use std::time::Instant;

use asycamore_executor::net::TcpStream;
use asycamore_executor::{Cx, Step};

use crate::buffer::{ReadBuffer, WriteBuffer};
use crate::config::Config;
use crate::detect::{
    BodyDecoder, BodyError, BodyEvent, BodyFraming, Limits, RequestHead, Trailers, Version,
};
use crate::response;

use super::environ::{Environ, Peer};

/// How the response body of the current request is being framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseState {
    /// `start_response` has not been called yet.
    NotStarted,
    /// The head is written; body bytes are counted against a declared `Content-Length`.
    Length {
        /// Bytes still owed.
        remaining: u64,
    },
    /// The head is written; body bytes go out as chunks (HTTP/1.1 without a length).
    Chunked,
    /// The head is written; the body ends when the connection closes (HTTP/1.0 without a length).
    CloseDelimited,
    /// The head is written and the response has no body (HEAD, 1xx, 204, 304): writes are dropped.
    NoBody,
    /// The body is complete.
    Finished,
}

/// Where `Expect: 100-continue` stands for the current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Continue {
    /// The client did not ask for it (or it is HTTP/1.0, which has no 1xx).
    NotExpected,
    /// The client waits for `100 Continue` before sending the body; not sent yet.
    Expected,
    /// `100 Continue` has been queued.
    Sent,
}

/// The state of one request between two resumes of its handler; owned by the connection.
#[derive(Debug)]
pub(crate) struct RequestState {
    /// The parsed head, indexing into `input.data()[..head_len]`.
    pub head: RequestHead,
    /// Length of the head at the front of the read buffer.
    pub head_len: usize,
    /// Offset in the read buffer's data where the unconsumed body starts.
    pub body_at: usize,
    /// Body bytes handed to the handler by the last event; consumed at the next read.
    pub pending_consume: usize,
    /// The request body's decoder.
    pub decoder: BodyDecoder,
    /// True once the body's end event has been delivered (or there was no body).
    pub body_done: bool,
    /// True once the connection read end-of-stream from the client.
    pub input_closed: bool,
    /// When the handler waits for body bytes: the moment it gives up.
    pub body_deadline: Option<Instant>,
    /// The handler's last body read found no complete event.
    pub wants_input: bool,
    /// The handler's last write found the output full.
    pub wants_room: bool,
    /// Expect: 100-continue.
    pub expect: Continue,
    /// The response's framing.
    pub response: ResponseState,
    /// False once anything says the connection must close after this response.
    pub keep_alive: bool,
    /// The request was HEAD.
    pub is_head: bool,
    /// Bytes of the decoded path mounted as `SCRIPT_NAME`.
    pub script_len: usize,
    /// Status code sent (0 before the response starts).
    pub status: u16,
    /// Body bytes the handler wrote.
    pub body_bytes_sent: u64,
    /// The server is shutting down: the response says `Connection: close`.
    pub closing: bool,
    /// The executor's clock at the connection's current resume (for the cached `Date`).
    pub now: Instant,
    /// The executor's clock when this request's head was parsed (for the duration histogram).
    pub started: Instant,
}

impl RequestState {
    /// A state for a connection with these limits, before its first request.
    pub fn new() -> RequestState {
        RequestState {
            head: RequestHead::default(),
            head_len: 0,
            body_at: 0,
            pending_consume: 0,
            decoder: BodyDecoder::new(BodyFraming::None, &Limits::default()),
            body_done: true,
            input_closed: false,
            body_deadline: None,
            wants_input: false,
            wants_room: false,
            expect: Continue::NotExpected,
            response: ResponseState::NotStarted,
            keep_alive: true,
            is_head: false,
            script_len: 0,
            status: 0,
            body_bytes_sent: 0,
            closing: false,
            now: Instant::now(),
            started: Instant::now(),
        }
    }

    /// Resets for a request whose head (`head_len` bytes, already parsed into `self.head`) is at the
    /// front of the read buffer.
    pub fn begin(&mut self, head_len: usize, config: &Config, head_bytes: &[u8]) {
        let framing = self.head.framing();
        self.head_len = head_len;
        self.body_at = head_len;
        self.pending_consume = 0;
        self.decoder = BodyDecoder::new(framing, &config.limits);
        self.body_done = self.decoder.is_done();
        self.body_deadline = None;
        self.wants_input = false;
        self.wants_room = false;
        self.expect = if self.head.expects_continue()
            && self.head.version() == Version::Http11
            && !self.body_done
        {
            Continue::Expected
        } else {
            Continue::NotExpected
        };
        self.response = ResponseState::NotStarted;
        self.keep_alive = self.head.keep_alive() && !self.closing;
        self.is_head = self.head.method_bytes(head_bytes) == b"HEAD";
        self.script_len = 0;
        self.status = 0;
        self.body_bytes_sent = 0;
        self.started = self.now;
    }

    /// True once the response head has been written.
    pub fn response_started(&self) -> bool {
        self.response != ResponseState::NotStarted
    }
}

/// Why a body read failed. After any of these the connection closes once the response is out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// The body is malformed (bad chunk size, missing CRLF, over-long line...): a 400.
    Malformed(BodyError),
    /// The client closed the connection before the body ended.
    Incomplete,
    /// No body byte arrived within the body timeout: a 408.
    Timeout,
    /// The body is larger than the limit given to [`Exchange::read_to_end`]: a 413.
    TooLarge,
}

impl InputError {
    /// The status a handler should answer with (if it still can).
    pub fn status(self) -> u16 {
        match self {
            InputError::Malformed(e) => e.status(),
            InputError::Incomplete => 400,
            InputError::Timeout => 408,
            InputError::TooLarge => 413,
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Malformed(e) => write!(f, "malformed body: {}", e.reason()),
            InputError::Incomplete => f.write_str("the client closed the connection mid-body"),
            InputError::Timeout => f.write_str("the request body timed out"),
            InputError::TooLarge => f.write_str("the request body is too large"),
        }
    }
}

impl std::error::Error for InputError {}

/// Why a response could not be started or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputError {
    /// `start_response` was called twice.
    AlreadyStarted,
    /// A body write came before `start_response`.
    NotStarted,
    /// A header name or value would split the response (CR, LF, NUL, or a name that is not a
    /// token), or the status is outside 200..=999 (1xx are the server's own).
    InvalidHeader,
    /// The handler set `Transfer-Encoding`: framing is the server's job.
    FramingHeader,
    /// More body bytes than the declared `Content-Length`.
    TooLong,
    /// The response is already complete.
    Finished,
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputError::AlreadyStarted => "the response was already started",
            OutputError::NotStarted => "body written before start_response",
            OutputError::InvalidHeader => "invalid status or header",
            OutputError::FramingHeader => "Transfer-Encoding is set by the server, not the app",
            OutputError::TooLong => "more body than the declared Content-Length",
            OutputError::Finished => "the response is already complete",
        })
    }
}

impl std::error::Error for OutputError {}

/// A handler's view of its request and response during one resume.
pub struct Exchange<'a> {
    pub(crate) stream: &'a TcpStream,
    pub(crate) input: &'a ReadBuffer,
    pub(crate) output: &'a mut WriteBuffer,
    pub(crate) req: &'a mut RequestState,
    pub(crate) peer: &'a Peer,
    pub(crate) config: &'a Config,
}

impl<'a> Exchange<'a> {
    /// The request's environ (CGI / PEP 3333 keys).
    pub fn environ(&self) -> Environ<'_> {
        Environ::new(
            &self.input.data()[..self.req.head_len],
            &self.req.head,
            self.peer,
        )
        .with_script_len(self.req.script_len)
    }

    /// The server's settings (limits, timeouts).
    pub fn config(&self) -> &Config {
        self.config
    }

    /// Takes the next body event: `ChunkStart` (declared size and the first bytes at hand),
    /// `Data`, then `End` with the trailer fields. A `Content-Length` body comes as one chunk; a
    /// request without a body gives `End` at once. After `End`, every call gives `End` again.
    ///
    /// `WouldBlock` means no complete event is buffered: return `WouldBlock` from the handler
    /// (the exchange has registered the socket in `cx`); the handler is resumed when bytes arrive.
    ///
    /// # Errors
    /// [`InputError`] for a malformed body, a client that left, or the body timeout.
    pub fn read_body(&mut self, cx: &mut Cx<'_>) -> Result<Step<BodyEvent<'_>>, InputError> {
        self.req.body_at += std::mem::take(&mut self.req.pending_consume);
        self.req.wants_input = false;
        if self.req.body_done {
            return Ok(Step::Ready(BodyEvent::End {
                trailers: Trailers::empty(),
            }));
        }
        if self.req.expect == Continue::Expected {
            if !self.req.response_started() {
                self.output
                    .vec()
                    .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            self.req.expect = Continue::Sent;
        }
        let req = &mut *self.req;
        let data = self.input.data_from(req.body_at);
        match req.decoder.decode(data) {
            Err(e) => {
                req.keep_alive = false;
                Err(InputError::Malformed(e))
            }
            Ok((consumed, Step::Ready(event))) => {
                req.pending_consume = consumed;
                req.body_deadline = None;
                if matches!(event, BodyEvent::End { .. }) {
                    req.body_done = true;
                }
                Ok(Step::Ready(event))
            }
            Ok((consumed, Step::WouldBlock)) => {
                req.body_at += consumed;
                if req.input_closed {
                    req.keep_alive = false;
                    return Err(InputError::Incomplete);
                }
                let deadline = *req
                    .body_deadline
                    .get_or_insert_with(|| cx.now() + self.config.body_timeout);
                if cx.now() >= deadline {
                    req.keep_alive = false;
                    return Err(InputError::Timeout);
                }
                req.wants_input = true;
                cx.wait_readable(self.stream.as_raw_fd());
                cx.wait_until(deadline);
                Ok(Step::WouldBlock)
            }
        }
    }

    /// Collects the whole body into `into`, up to `limit` bytes. Returns `Ready(())` at the end of
    /// the body, `WouldBlock` as [`Exchange::read_body`] does. Call it again on every resume until
    /// it is ready; `into` keeps what has arrived.
    ///
    /// # Errors
    /// [`InputError::TooLarge`] once more than `limit` bytes arrived (a declared length over the
    /// limit fails at once), and the errors of `read_body`.
    pub fn read_to_end(
        &mut self,
        cx: &mut Cx<'_>,
        into: &mut Vec<u8>,
        limit: usize,
    ) -> Result<Step<()>, InputError> {
        if let Some(n) = self.environ().content_length()
            && n > limit as u64
        {
            self.req.keep_alive = false;
            return Err(InputError::TooLarge);
        }
        loop {
            match self.read_body(cx)? {
                Step::WouldBlock => return Ok(Step::WouldBlock),
                Step::Ready(BodyEvent::End { .. }) => return Ok(Step::Ready(())),
                Step::Ready(BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data)) => {
                    if into.len() + data.len() > limit {
                        self.req.keep_alive = false;
                        return Err(InputError::TooLarge);
                    }
                    into.extend_from_slice(data);
                }
            }
        }
    }

    /// Starts the response: writes the status line and `headers` into the output, adding `Date`,
    /// the framing (`Content-Length` as declared, else `Transfer-Encoding: chunked` for HTTP/1.1,
    /// else the end of the connection for HTTP/1.0), and `Connection` as the keep-alive rules say.
    /// A `Connection: close` among `headers` closes the connection after this response.
    ///
    /// # Errors
    /// [`OutputError::AlreadyStarted`], [`OutputError::InvalidHeader`] (nothing is written then),
    /// [`OutputError::FramingHeader`] for a `Transfer-Encoding` header.
    pub fn start_response(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
    ) -> Result<(), OutputError> {
        self.start(status, headers, None)
    }

    fn start(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        body_len: Option<u64>,
    ) -> Result<(), OutputError> {
        if self.req.response_started() {
            return Err(OutputError::AlreadyStarted);
        }
        if !(200..=999).contains(&status) {
            return Err(OutputError::InvalidHeader);
        }
        let out = self.output.vec();
        let mark = out.len();
        let result = write_head(out, self.req, status, headers, body_len);
        if result.is_err() {
            out.truncate(mark);
        }
        result
    }

    /// Writes body bytes; returns how many were taken (all of them unless the output is nearly
    /// full), or `WouldBlock` when the output is above its high-water mark — return `WouldBlock`
    /// from the handler, and it is resumed when the peer has taken enough.
    ///
    /// # Errors
    /// [`OutputError::NotStarted`] before `start_response`, [`OutputError::TooLong`] past the
    /// declared length, [`OutputError::Finished`].
    pub fn write(&mut self, data: &[u8]) -> Result<Step<usize>, OutputError> {
        let high_water = self.config.output_high_water;
        if self.output.len() >= high_water && !data.is_empty() {
            self.req.wants_room = true;
            return Ok(Step::WouldBlock);
        }
        let n = data.len().min(high_water - self.output.len());
        self.put(&data[..n])?;
        Ok(Step::Ready(n))
    }

    /// Appends body bytes whatever the output's size (for bodies the handler holds anyway).
    fn put(&mut self, data: &[u8]) -> Result<(), OutputError> {
        let out = self.output.vec();
        match &mut self.req.response {
            ResponseState::NotStarted => return Err(OutputError::NotStarted),
            ResponseState::Finished => return Err(OutputError::Finished),
            ResponseState::NoBody => {}
            ResponseState::Length { remaining } => {
                if data.len() as u64 > *remaining {
                    return Err(OutputError::TooLong);
                }
                *remaining -= data.len() as u64;
                if !self.req.is_head {
                    out.extend_from_slice(data);
                }
            }
            ResponseState::Chunked => {
                if !data.is_empty() && !self.req.is_head {
                    response::write_chunk(out, data);
                }
            }
            ResponseState::CloseDelimited => out.extend_from_slice(data),
        }
        self.req.body_bytes_sent += data.len() as u64;
        Ok(())
    }

    /// The whole response at once: status, headers, `Content-Length` from `body`, and the body.
    /// A failure (a second response, a bad header) is logged and turns into a 500, or a closed
    /// connection if the response had already started.
    pub fn respond(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let result = self
            .start(status, headers, Some(body.len() as u64))
            .and_then(|()| self.put(body));
        if let Err(e) = result {
            eprintln!("asycamore: handler response failed: {e}");
            self.req.keep_alive = false;
        }
    }

    /// The status sent, or 0 before the response starts.
    pub fn status(&self) -> u16 {
        self.req.status
    }

    /// Body bytes written so far (before framing).
    pub fn body_bytes_sent(&self) -> u64 {
        self.req.body_bytes_sent
    }

    /// True once `start_response` (or `respond`) has written the head.
    pub fn response_started(&self) -> bool {
        self.req.response_started()
    }

    /// Asks the server to close the connection after this response.
    pub fn close_after(&mut self) {
        self.req.keep_alive = false;
    }

    /// Answers with `status` and a one-line text body if no response has started; otherwise
    /// marks the connection to close (the client sees a truncated response, not a wrong one).
    pub fn fail(&mut self, status: u16, reason: &str) {
        self.req.keep_alive = false;
        if !self.req.response_started() {
            let body = format!("{reason}\n");
            self.respond(
                status,
                &[("Content-Type", "text/plain; charset=utf-8")],
                body.as_bytes(),
            );
        }
    }
}

/// Writes a response head for the request in `req` and records its framing there.
fn write_head(
    out: &mut Vec<u8>,
    req: &mut RequestState,
    status: u16,
    headers: &[(&str, &str)],
    body_len: Option<u64>,
) -> Result<(), OutputError> {
    // One reservation for the whole head: the status line, the app's headers and the server's
    // own (Content-Length, Date, Server, Connection) then append without growing the buffer.
    let app_headers: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    out.reserve(app_headers + SERVER_HEAD_RESERVE);
    response::write_status_line(out, status);
    let mut declared: Option<u64> = None;
    let mut has_date = false;
    let mut has_server = false;
    for &(name, value) in headers {
        match ServerHeader::of(name) {
            Some(ServerHeader::TransferEncoding) => return Err(OutputError::FramingHeader),
            Some(ServerHeader::Connection) => {
                // Hop-by-hop: the server writes its own; the app may only ask to close.
                if value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"))
                {
                    req.keep_alive = false;
                }
                continue;
            }
            Some(ServerHeader::ContentLength) => {
                if body_len.is_some() {
                    continue; // `respond` writes the true length below.
                }
                match parse_decimal(value) {
                    Some(n) => declared = Some(n),
                    None => return Err(OutputError::InvalidHeader),
                }
            }
            Some(ServerHeader::Date) => has_date = true,
            Some(ServerHeader::Server) => has_server = true,
            None => {}
        }
        response::write_header(out, name, value.as_bytes())
            .map_err(|_| OutputError::InvalidHeader)?;
    }
    // RFC 9110 §6.4.1: 1xx, 204 and 304 never carry content.
    let no_content = status == 204 || status == 304;
    req.response = if no_content {
        ResponseState::NoBody
    } else if let Some(n) = body_len {
        response::write_content_length(out, n);
        ResponseState::Length { remaining: n }
    } else if let Some(n) = declared {
        ResponseState::Length { remaining: n }
    } else if req.head.version() == Version::Http11 {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        ResponseState::Chunked
    } else {
        // RFC 9112 §6.3: a 1.0 client learns the end of an unsized body from the close.
        req.keep_alive = false;
        ResponseState::CloseDelimited
    };
    if req.expect == Continue::Expected {
        // Answered before the client was told to send its body: it may send it or not, so only a
        // close keeps the next request's framing certain (RFC 9110 §10.1.1).
        req.keep_alive = false;
    }
    if !has_date {
        response::write_date_header_at(out, req.now);
    }
    if !has_server {
        out.extend_from_slice(b"Server: asycamore\r\n");
    }
    if !req.keep_alive || req.closing {
        req.keep_alive = false;
        out.extend_from_slice(b"Connection: close\r\n");
    } else if req.head.version() == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    req.status = status;
    Ok(())
}

/// Room for what the server adds to a head besides the app's headers: the longest status line,
/// `Content-Length` of a `u64`, `Date`, `Server`, `Connection` or `Transfer-Encoding`, and the
/// blank line.
const SERVER_HEAD_RESERVE: usize = 256;

/// The response headers the server writes or polices itself; every other name passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerHeader {
    /// Framing is the server's job: refused from an app.
    TransferEncoding,
    /// Hop-by-hop: only its `close` is honoured.
    Connection,
    /// A declared length the server checks the body against.
    ContentLength,
    /// Written by the server unless the app has its own.
    Date,
    /// Written by the server unless the app has its own.
    Server,
}

impl ServerHeader {
    /// Which server header `name` is, if any. The length is compared first, so an ordinary name
    /// costs one comparison, not five case-insensitive ones.
    fn of(name: &str) -> Option<ServerHeader> {
        let (candidate, header) = match name.len() {
            4 => ("date", ServerHeader::Date),
            6 => ("server", ServerHeader::Server),
            10 => ("connection", ServerHeader::Connection),
            14 => ("content-length", ServerHeader::ContentLength),
            17 => ("transfer-encoding", ServerHeader::TransferEncoding),
            _ => return None,
        };
        name.eq_ignore_ascii_case(candidate).then_some(header)
    }
}

/// A `Content-Length` value: decimal digits only (no sign, no spaces), no overflow.
fn parse_decimal(value: &str) -> Option<u64> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.bytes().try_fold(0u64, |n, b| {
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}
