//! [`Exchange`]: what a handler holds on each resume — the request body as events and the response.
//!
//! The exchange does no I/O of its own, but it keeps the step protocol's rule like any
//! coroutine: when it answers `WouldBlock` it has registered in `cx` what wakes the handler. A
//! body read that finds no complete event in the buffer registers the client's socket as
//! readable (with the body timeout's deadline); a write that finds the output above its
//! high-water mark registers it as writable (with the write-stall deadline). The connection sees
//! those waits in `cx` when the handler returns, reads or flushes between two resumes of the
//! handler, and resumes it at once if that was enough — so the handler's view of the buffers
//! never changes under it, and the trace shows what every handler waits for.

use std::fs::File;
use std::mem;
use std::os::fd::RawFd;
use std::time::Instant;

use executor::{Cx, Step};

use crate::buffer::{ReadBuffer, WriteBuffer};
use crate::config::Config;
use crate::conn::request::{Body, Expect, FileBody, Framing, Persistence, Request, Response};
use crate::detect::syntax::list_elements;
use crate::detect::{BodyEvent, Trailers, Version, parse_content_length};
use crate::response;

use super::environ::{Environ, Peer};
use super::error::{InputError, OutputError, UpgradeError};
use super::upgrade::Tunnel;

/// The interim response that tells a client waiting with `Expect: 100-continue` to send its
/// body (RFC 9110 §15.2.1).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A handler's view of its request and response during one resume.
pub struct Exchange<'a> {
    /// The client's socket, for the waits the exchange registers.
    pub(crate) fd: RawFd,
    pub(crate) input: &'a ReadBuffer,
    pub(crate) output: &'a mut WriteBuffer,
    pub(crate) request: &'a mut Request,
    pub(crate) peer: &'a Peer,
    pub(crate) config: &'a Config,
    /// The worker is shutting down: the response says `Connection: close`.
    pub(crate) shutting_down: bool,
    /// The executor's clock at this resume (for the cached `Date`).
    pub(crate) now: Instant,
}

impl<'a> Exchange<'a> {
    /// The request's environ (CGI / PEP 3333 keys).
    pub fn environ(&self) -> Environ<'_> {
        Environ::new(
            &self.input.data()[..self.request.head_len],
            &self.request.head,
            self.peer,
        )
        .with_script_len(self.request.script_len)
    }

    /// The server's settings (limits, timeouts).
    pub fn config(&self) -> &Config {
        self.config
    }

    /// Takes the next body event: `ChunkStart` (declared size and the first bytes at hand),
    /// `Data`, then `End` with the trailer fields. A `Content-Length` body comes as one chunk; a
    /// request without a body gives `End` at once. After `End`, every call gives `End` again.
    ///
    /// A client that sent `Expect: 100-continue` is told to send its body (`100 Continue`) by the
    /// first call, unless a final response has already started.
    ///
    /// `WouldBlock` means no complete event is buffered: return `WouldBlock` from the handler.
    /// The exchange has registered the client's socket (readable) and the body timeout in `cx`;
    /// the handler is resumed when bytes arrive.
    ///
    /// # Errors
    /// [`InputError`] for a malformed body, a client that left, or the body timeout; the same
    /// error again on every later call.
    pub fn read_body(&mut self, cx: &mut Cx<'_>) -> Result<Step<BodyEvent<'_>>, InputError> {
        let request = &mut *self.request;
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
            deadline,
            declared,
        } = &mut request.body
        else {
            return match request.body {
                Body::Failed(e) => Err(e),
                _ => Ok(Step::Ready(BodyEvent::End {
                    trailers: Trailers::empty(),
                })),
            };
        };
        if request.expect == Expect::Owed && !request.response.started() {
            self.output.vec().extend_from_slice(CONTINUE);
            request.expect = Expect::Sent;
            cx.note(|| "100 Continue: the body is wanted".into());
        }
        *at += mem::take(handed);
        let input: &'a ReadBuffer = self.input;
        match decoder.decode(input.data_from(*at)) {
            Err(e) => {
                let e = InputError::Malformed(e);
                request.body = Body::Failed(e);
                Err(e)
            }
            Ok((consumed, Step::Ready(event))) => {
                cx.note(|| match &event {
                    BodyEvent::ChunkStart { size, data } => {
                        format!("body: chunk of {size} bytes, {} at hand", data.len())
                    }
                    BodyEvent::Data(data) => format!("body: {} more bytes", data.len()),
                    BodyEvent::End { trailers } => {
                        format!("body: end, {} trailer fields", trailers.iter().count())
                    }
                });
                if let BodyEvent::ChunkStart { size, .. } = event {
                    *declared = declared.saturating_add(size);
                    if *declared > request.body_limit {
                        // More than this route takes: refused before any of it is handed out.
                        request.body = Body::Failed(InputError::TooLarge);
                        return Err(InputError::TooLarge);
                    }
                }
                if let BodyEvent::End { .. } = event {
                    let end = *at + consumed;
                    request.body = Body::Drained { end };
                } else {
                    *handed = consumed;
                    *deadline = None;
                }
                Ok(Step::Ready(event))
            }
            Ok((consumed, Step::WouldBlock)) => {
                *at += consumed;
                let now = cx.now();
                let until = *deadline.get_or_insert(now + self.config.body_timeout);
                let failed = if input.is_closed() {
                    Some(InputError::Incomplete)
                } else if now >= until {
                    Some(InputError::Timeout)
                } else {
                    None
                };
                if let Some(e) = failed {
                    request.body = Body::Failed(e);
                    return Err(e);
                }
                cx.wait_readable(self.fd);
                cx.wait_until(until);
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
            return Err(self.refuse_body(InputError::TooLarge));
        }
        loop {
            match self.read_body(cx)? {
                Step::WouldBlock => return Ok(Step::WouldBlock),
                Step::Ready(BodyEvent::End { .. }) => return Ok(Step::Ready(())),
                Step::Ready(BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data)) => {
                    if into.len() + data.len() > limit {
                        return Err(self.refuse_body(InputError::TooLarge));
                    }
                    into.extend_from_slice(data);
                }
            }
        }
    }

    /// Refuses a request body larger than `max` bytes for this route, below the server's own
    /// limit (`--max-request-body`, enforced by the body decoder for every application). A
    /// declared `Content-Length` over it fails at once; a chunked body as soon as its chunk
    /// sizes add up past it, before those bytes are handed out. The body reads then fail with
    /// [`InputError::TooLarge`] (a 413; the connection closes after the response).
    pub fn limit_body(&mut self, max: u64) {
        self.request.body_limit = max;
        if let Some(n) = self.environ().content_length()
            && n > max
            && !self.request.body.is_drained()
        {
            self.refuse_body(InputError::TooLarge);
        }
    }

    /// Gives up on the body with `e` (it is not read further; the connection closes after the
    /// response).
    fn refuse_body(&mut self, e: InputError) -> InputError {
        self.request.body = Body::Failed(e);
        e
    }

    /// Starts the response: writes the status line and `headers` into the output, adding `Date`,
    /// the framing (`Content-Length` as declared, else `Transfer-Encoding: chunked` for HTTP/1.1,
    /// else the end of the connection for HTTP/1.0), and `Connection` as the keep-alive rules say.
    /// A `Connection: close` among `headers` closes the connection after this response.
    ///
    /// A streamed 2xx response to a client that is still waiting for `100 Continue` is preceded
    /// by one: its content is yet to be written and the request is being acted upon, body
    /// included (RFC 9110 §15.2.1), so a handler that streams its answer while it reads the body
    /// (`echo`) never leaves the client waiting. Any other status, and a whole response given at
    /// once with [`Exchange::respond`], is final without the body: no `100`, and the connection
    /// closes after it, as the client may or may not send the body now (RFC 9110 §10.1.1).
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
        if self.request.response.started() {
            return Err(OutputError::AlreadyStarted);
        }
        if !(200..=999).contains(&status) {
            return Err(OutputError::InvalidHeader);
        }
        let out = self.output.vec();
        let mark = out.len();
        let expect = self.request.expect;
        if expect == Expect::Owed && body_len.is_none() && (200..300).contains(&status) {
            out.extend_from_slice(CONTINUE);
            self.request.expect = Expect::Sent;
        }
        let head = Head {
            status,
            headers,
            body_len,
            now: self.now,
            shutting_down: self.shutting_down,
        };
        let result = write_head(out, self.request, &head);
        if result.is_err() {
            out.truncate(mark);
            self.request.expect = expect;
            self.request.response = Response::NotStarted;
        }
        result
    }

    /// Writes body bytes; returns how many were taken (all of them, unless `data` is longer
    /// than the room up to twice the high-water mark), or `WouldBlock` when the output is at or
    /// above its high-water mark. Then return
    /// `WouldBlock` from the handler: the exchange has registered the client's socket (writable)
    /// and the write-stall deadline in `cx`, and the handler is resumed when the peer has taken
    /// enough.
    ///
    /// # Errors
    /// [`OutputError::NotStarted`] before `start_response`, [`OutputError::TooLong`] past the
    /// declared length, [`OutputError::Finished`].
    pub fn write(&mut self, data: &[u8], cx: &mut Cx<'_>) -> Result<Step<usize>, OutputError> {
        let high_water = self.config.output_high_water;
        if self.output.len() >= high_water && !data.is_empty() {
            cx.wait_writable(self.fd);
            if let Some(deadline) = self.output.stall_deadline() {
                cx.wait_until(deadline);
            }
            return Ok(Step::WouldBlock);
        }
        // Below the mark a write up to the mark's size is taken whole (the output then holds
        // at most twice the mark): cut at the mark, a 64 KiB body behind its head would leave
        // in two sends, the second one a runt of the head's size, and cost the handler a resume.
        let n = data.len().min(
            high_water
                .saturating_mul(2)
                .saturating_sub(self.output.len()),
        );
        self.put(&data[..n])?;
        Ok(Step::Ready(n))
    }

    /// Writes all of `data`, over as many resumes as the client needs: `sent` counts the bytes
    /// taken so far — keep it in the handler's state, from 0 — and `Ready` means all are. On
    /// `WouldBlock` return `WouldBlock` from the handler (the wait is registered, as for
    /// [`Exchange::write`]) and call again with the same `data` and `sent` when resumed. Unlike
    /// ignoring what `write` returns, nothing is dropped.
    ///
    /// ```
    /// use asycamore::executor::{Cx, Step};
    /// use asycamore::service::{Exchange, Handler};
    ///
    /// /// Streams 1 MiB of `x`, however slowly the client reads.
    /// struct Megabyte {
    ///     body: Vec<u8>,
    ///     sent: usize,
    /// }
    ///
    /// impl Handler for Megabyte {
    ///     fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
    ///         if self.sent == 0 && ex.start_response(200, &[("Content-Type", "text/plain")]).is_err() {
    ///             return Step::Ready(());
    ///         }
    ///         match ex.write_all(&self.body, &mut self.sent, cx) {
    ///             Ok(Step::WouldBlock) => Step::WouldBlock,
    ///             Ok(Step::Ready(())) | Err(_) => Step::Ready(()),
    ///         }
    ///     }
    /// }
    /// # let _ = Megabyte { body: vec![b'x'; 1 << 20], sent: 0 };
    /// ```
    ///
    /// # Errors
    /// As [`Exchange::write`].
    pub fn write_all(
        &mut self,
        data: &[u8],
        sent: &mut usize,
        cx: &mut Cx<'_>,
    ) -> Result<Step<()>, OutputError> {
        while *sent < data.len() {
            match self.write(&data[*sent..], cx)? {
                Step::Ready(n) => *sent += n,
                Step::WouldBlock => return Ok(Step::WouldBlock),
            }
        }
        Ok(Step::Ready(()))
    }

    /// Appends body bytes whatever the output's size (for bodies the handler holds anyway).
    fn put(&mut self, data: &[u8]) -> Result<(), OutputError> {
        let request = &mut *self.request;
        let mut framing = match request.response {
            Response::NotStarted => return Err(OutputError::NotStarted),
            Response::Complete(_) => return Err(OutputError::Finished),
            Response::HeadSent(f) | Response::Streaming(f) => f,
        };
        let out = self.output.vec();
        match &mut framing {
            Framing::NoBody => {}
            Framing::Length { remaining } => {
                if data.len() as u64 > *remaining {
                    return Err(OutputError::TooLong);
                }
                *remaining -= data.len() as u64;
                if !request.is_head {
                    out.extend_from_slice(data);
                }
            }
            Framing::Chunked => {
                if !data.is_empty() && !request.is_head {
                    response::write_chunk(out, data);
                }
            }
            Framing::CloseDelimited => out.extend_from_slice(data),
        }
        if !data.is_empty() {
            request.response = Response::Streaming(framing);
        } else if let Response::HeadSent(f) = &mut request.response {
            *f = framing;
        }
        request.body_bytes_sent += data.len() as u64;
        Ok(())
    }

    /// Ends a chunked response with trailer fields (RFC 9112 §7.1.2) after its last chunk: the
    /// response is then complete. Only a response framed with chunks can carry them (HTTP/1.1,
    /// no declared `Content-Length`); fields that framing, routing or the response's own
    /// metadata depend on may not be trailers (RFC 9110 §6.5.1).
    ///
    /// # Errors
    /// [`OutputError::NoTrailers`] for a response that cannot carry them, or a forbidden field
    /// (nothing is written then); [`OutputError::InvalidHeader`] for a field that is not a valid
    /// header; [`OutputError::NotStarted`], [`OutputError::Finished`].
    pub fn end_with_trailers(&mut self, fields: &[(&str, &[u8])]) -> Result<(), OutputError> {
        let framing = match self.request.response {
            Response::NotStarted => return Err(OutputError::NotStarted),
            Response::Complete(_) => return Err(OutputError::Finished),
            Response::HeadSent(f) | Response::Streaming(f) => f,
        };
        if framing != Framing::Chunked || fields.iter().any(|(name, _)| is_forbidden_trailer(name))
        {
            return Err(OutputError::NoTrailers);
        }
        if !self.request.is_head {
            response::write_last_chunk_with_trailers(self.output.vec(), fields)
                .map_err(|_| OutputError::InvalidHeader)?;
        }
        self.request.response = Response::Complete(framing);
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
            self.request.close_requested = true;
        }
    }

    /// Gives `len` bytes of `file`, from `offset`, as the rest of the body: the connection sends
    /// them once this handler returns `Ready(())`, with `sendfile(2)` — from the page cache to
    /// the socket, never through the process — where the stream allows, and by copying where
    /// it does not. For a response started with a `Content-Length` of which `len` bytes are
    /// still owed (a whole file, or a range of it); to `HEAD` nothing is sent. A file that
    /// shrinks meanwhile ends the body short, and the connection then closes (the client sees a
    /// cut response, never a wrong one).
    ///
    /// # Errors
    /// [`OutputError::NotStarted`] before `start_response`, [`OutputError::NotSized`] for a
    /// response without a length or whose remaining length is not `len`.
    pub fn send_file(&mut self, file: File, offset: u64, len: u64) -> Result<(), OutputError> {
        let request = &mut *self.request;
        let (Response::HeadSent(Framing::Length { remaining })
        | Response::Streaming(Framing::Length { remaining })) = request.response
        else {
            return Err(match request.response {
                Response::NotStarted => OutputError::NotStarted,
                _ => OutputError::NotSized,
            });
        };
        if remaining != len {
            return Err(OutputError::NotSized);
        }
        if request.is_head {
            request.response = Response::Streaming(Framing::Length { remaining: 0 });
            return Ok(());
        }
        // Counted now, for the access log, which logs when the handler is done: a file that
        // shrinks meanwhile is logged at the length it had.
        request.body_bytes_sent += len;
        request.file_body = Some(FileBody {
            file,
            offset,
            remaining: len,
        });
        Ok(())
    }

    /// Answers `101 Switching Protocols` to `protocol` (as the client named it in `Upgrade`,
    /// e.g. `websocket`) with `headers`, and hands the connection to `tunnel`: once this handler
    /// returns `Ready(())`, the connection runs the tunnel on the raw byte stream instead of
    /// reading another request (RFC 9110 §7.8, §15.2.2). Bytes the client sent after the head
    /// are the tunnel's first input. The `101` is a response like any other to the access log
    /// and `/metrics` (which also count the upgraded connection).
    ///
    /// # Errors
    /// An [`UpgradeError`] when the request cannot be upgraded to `protocol` — it is HTTP/1.0,
    /// has a body, or did not offer `protocol` in `Upgrade` with `upgrade` in `Connection`, or
    /// the server is shutting down — or when a response was started or a header is invalid. Nothing is written then: answer the
    /// request some other way (the error's [`status`](UpgradeError::status), with
    /// `Upgrade: protocol` for a 426).
    pub fn switch_protocols(
        &mut self,
        protocol: &str,
        headers: &[(&str, &str)],
        tunnel: Box<dyn Tunnel>,
    ) -> Result<(), UpgradeError> {
        if self.request.response.started() {
            return Err(UpgradeError::AlreadyStarted);
        }
        let buf = self.input.data();
        let head = &self.request.head;
        if head.version() == Version::Http10 {
            return Err(UpgradeError::Http10);
        }
        if !self.request.body.is_drained() || self.request.body_bytes_sent > 0 {
            return Err(UpgradeError::HasBody);
        }
        let listed = |name: &str, wanted: &[u8]| {
            head.headers(buf)
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .flat_map(|(_, v)| list_elements(v))
                .any(|e| e.eq_ignore_ascii_case(wanted))
        };
        if !listed("connection", b"upgrade") || !listed("upgrade", protocol.as_bytes()) {
            return Err(UpgradeError::NotOffered);
        }
        if self.shutting_down {
            return Err(UpgradeError::ShuttingDown);
        }
        if head.sent_expect_continue() && self.request.expect != Expect::Sent {
            // RFC 9110 §7.8: with both Upgrade and `Expect: 100-continue`, the 100 comes first.
            self.output.vec().extend_from_slice(CONTINUE);
            self.request.expect = Expect::Sent;
        }
        let mut all = vec![("Connection", "Upgrade"), ("Upgrade", protocol)];
        all.extend_from_slice(headers);
        self.write_switch(101, &all, tunnel)
    }

    /// Answers a `CONNECT` with `200` and hands the connection to `tunnel`, which then relays
    /// the raw bytes (RFC 9110 §9.3.6: after a 2xx to CONNECT the connection is a tunnel, and the
    /// response has no `Content-Length` or `Transfer-Encoding`). As
    /// [`Exchange::switch_protocols`], the tunnel runs once this handler returns `Ready(())`,
    /// with any bytes the client sent after the head as its first input.
    ///
    /// # Errors
    /// [`UpgradeError::NotOffered`] for a request that is not a CONNECT,
    /// [`UpgradeError::HasBody`], [`UpgradeError::ShuttingDown`], [`UpgradeError::AlreadyStarted`],
    /// [`UpgradeError::InvalidHeader`]; nothing is written then.
    pub fn accept_connect(
        &mut self,
        headers: &[(&str, &str)],
        tunnel: Box<dyn Tunnel>,
    ) -> Result<(), UpgradeError> {
        if self.request.response.started() {
            return Err(UpgradeError::AlreadyStarted);
        }
        if self.request.head.method_bytes(self.input.data()) != b"CONNECT" {
            return Err(UpgradeError::NotOffered);
        }
        if !self.request.body.is_drained() {
            return Err(UpgradeError::HasBody);
        }
        if self.shutting_down {
            return Err(UpgradeError::ShuttingDown);
        }
        self.write_switch(200, headers, tunnel)
    }

    /// Writes the head that ends HTTP on this connection (`status`, then `headers`, with no
    /// framing fields) and keeps `tunnel` for the connection.
    fn write_switch(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        tunnel: Box<dyn Tunnel>,
    ) -> Result<(), UpgradeError> {
        let out = self.output.vec();
        let mark = out.len();
        response::write_status_line(out, status);
        for &(name, value) in headers {
            let framing = name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding");
            if framing || response::write_header(out, name, value.as_bytes()).is_err() {
                out.truncate(mark);
                return Err(UpgradeError::InvalidHeader);
            }
        }
        out.extend_from_slice(b"\r\n");
        self.request.status = status;
        self.request.response = Response::Complete(Framing::NoBody);
        self.request.upgrade = Some(tunnel);
        Ok(())
    }

    /// The status sent, or 0 before the response starts.
    pub fn status(&self) -> u16 {
        self.request.status
    }

    /// Body bytes written so far (before framing).
    pub fn body_bytes_sent(&self) -> u64 {
        self.request.body_bytes_sent
    }

    /// True once `start_response` (or `respond`) has written the head.
    pub fn response_started(&self) -> bool {
        self.request.response.started()
    }

    /// Asks the server to close the connection after this response.
    pub fn close_after(&mut self) {
        self.request.close_requested = true;
    }

    /// Answers with `status` and a one-line text body if no response has started; otherwise
    /// marks the connection to close (the client sees a truncated response, not a wrong one).
    ///
    /// An answer that did start keeps the connection open when the request allows it, exactly as
    /// any other response: its body was read to the end (or there was none), or is small enough
    /// for the server to discard. A body that failed (malformed, cut short, too large) closes it.
    pub fn fail(&mut self, status: u16, reason: &str) {
        if self.request.response.started() {
            self.request.close_requested = true;
            return;
        }
        let body = format!("{reason}\n");
        self.respond(
            status,
            &[("Content-Type", "text/plain; charset=utf-8")],
            body.as_bytes(),
        );
    }
}

/// What a response head says, besides the request it answers.
struct Head<'h> {
    status: u16,
    headers: &'h [(&'h str, &'h str)],
    /// The whole body's length, when the response is given at once.
    body_len: Option<u64>,
    now: Instant,
    shutting_down: bool,
}

/// Writes a response head for `request` and records its framing there.
fn write_head(
    out: &mut Vec<u8>,
    request: &mut Request,
    head: &Head<'_>,
) -> Result<(), OutputError> {
    // One reservation for the whole head: the status line, the app's headers and the server's
    // own (Content-Length, Date, Server, Connection) then append without growing the buffer.
    let app_headers: usize = head
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum();
    out.reserve(app_headers + SERVER_HEAD_RESERVE);
    response::write_status_line(out, head.status);
    let mut declared: Option<u64> = None;
    let mut has_date = false;
    let mut has_server = false;
    let mut has_upgrade = false;
    let mut close = false;
    for &(name, value) in head.headers {
        match ServerHeader::of(name) {
            Some(ServerHeader::TransferEncoding) => return Err(OutputError::FramingHeader),
            Some(ServerHeader::Connection) => {
                // Hop-by-hop: the server writes its own; the app may only ask to close.
                close |= value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"));
                continue;
            }
            Some(ServerHeader::ContentLength) => {
                if head.body_len.is_some() {
                    continue; // `respond` writes the true length below.
                }
                match parse_content_length(value.trim_matches([' ', '\t']).as_bytes()) {
                    Some(n) => declared = Some(n),
                    None => return Err(OutputError::InvalidHeader),
                }
            }
            Some(ServerHeader::Date) => has_date = true,
            Some(ServerHeader::Server) => has_server = true,
            Some(ServerHeader::Upgrade) => has_upgrade = true,
            None => {}
        }
        response::write_header(out, name, value.as_bytes())
            .map_err(|_| OutputError::InvalidHeader)?;
    }
    // RFC 9110 §6.4.1: 1xx, 204 and 304 never carry content.
    let framing = if head.status == 204 || head.status == 304 {
        Framing::NoBody
    } else if let Some(n) = head.body_len {
        response::write_content_length(out, n);
        Framing::Length { remaining: n }
    } else if let Some(n) = declared {
        Framing::Length { remaining: n }
    } else if request.head.version() == Version::Http11 {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        Framing::Chunked
    } else {
        // RFC 9112 §6.3: a 1.0 client learns the end of an unsized body from the close.
        Framing::CloseDelimited
    };
    if !has_date {
        response::write_date_header_at(out, head.now);
    }
    if !has_server {
        out.extend_from_slice(b"Server: asycamore\r\n");
    }
    request.close_requested |= close;
    request.response = Response::HeadSent(framing);
    let persistence = request.persistence(head.shutting_down);
    // RFC 9110 §7.8: a response that sends `Upgrade` (a 426 asking for one, say) lists it in
    // `Connection` too, as `Upgrade` is hop-by-hop.
    let upgrade: &[u8] = if has_upgrade { b"upgrade, " } else { b"" };
    match persistence {
        Persistence::Close(_) => {
            out.extend_from_slice(b"Connection: ");
            out.extend_from_slice(upgrade);
            out.extend_from_slice(b"close\r\n");
        }
        Persistence::KeepAlive if request.head.version() == Version::Http10 => {
            out.extend_from_slice(b"Connection: ");
            out.extend_from_slice(upgrade);
            out.extend_from_slice(b"keep-alive\r\n");
        }
        Persistence::KeepAlive if has_upgrade => {
            out.extend_from_slice(b"Connection: upgrade\r\n");
        }
        Persistence::KeepAlive => {}
    }
    request.announced = Some(persistence);
    out.extend_from_slice(b"\r\n");
    request.status = head.status;
    Ok(())
}

/// Fields that may not be sent as trailers (RFC 9110 §6.5.1): framing, routing, connection
/// management, and what a recipient needs before the content (its type, coding, range), plus
/// the controls a cache or client reads from the head.
const FORBIDDEN_TRAILERS: [&str; 17] = [
    "content-length",
    "transfer-encoding",
    "trailer",
    "host",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "content-type",
    "content-encoding",
    "content-range",
    "cache-control",
    "expires",
    "date",
    "location",
    "retry-after",
    "vary",
];

fn is_forbidden_trailer(name: &str) -> bool {
    FORBIDDEN_TRAILERS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
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
    /// Hop-by-hop (RFC 9110 §7.8): the server's `Connection` must then list `upgrade`.
    Upgrade,
}

impl ServerHeader {
    /// Which server header `name` is, if any. The length is compared first, so an ordinary name
    /// costs one comparison, not five case-insensitive ones.
    fn of(name: &str) -> Option<ServerHeader> {
        let (candidate, header) = match name.len() {
            4 => ("date", ServerHeader::Date),
            6 => ("server", ServerHeader::Server),
            7 => ("upgrade", ServerHeader::Upgrade),
            10 => ("connection", ServerHeader::Connection),
            14 => ("content-length", ServerHeader::ContentLength),
            17 => ("transfer-encoding", ServerHeader::TransferEncoding),
            _ => return None,
        };
        name.eq_ignore_ascii_case(candidate).then_some(header)
    }
}
