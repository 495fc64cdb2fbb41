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
//!  Start ─▶ Connecting ─▶ Exchanging ───────────────────────────────────────▶ done
//!           (upstream      up:   head, then body pieces ─▶ upstream
//!            writable)     down: upstream ─▶ head (httparse) ─▶ body pieces ─▶ client
//! ```
//!
//! Once connected, the two directions run side by side in one handler, each a small state
//! machine of its own (`Up` and `Down`): every resume, each goes as far as it can, then the
//! handler waits for whatever either is blocked on — the upstream writable, the upstream readable,
//! the next piece of the client's body, room in the client's output. Doing them one after the
//! other would deadlock with an upstream that answers while it reads (an echo: its output fills,
//! it stops reading, and a proxy still sending the body waits for ever). Each side holds at most
//! one piece, so each side's slowness holds the other back: backpressure both ways.
//!
//! The request goes up as `METHOD target HTTP/1.1` with the mount prefix removed from the target
//! (`PATH_INFO` and the query, as the client spelled them), its headers minus the hop-by-hop ones
//! (RFC 9110 §7.6.1), `X-Forwarded-For` extended with the client's address, and
//! `Connection: close` (one upstream connection per request). A `Content-Length` body is
//! forwarded with its length; a chunked one is re-chunked piece by piece (its trailers follow).
//! The response's body is decoded with the server's own [`BodyDecoder`] and handed to the
//! exchange, which frames it again for the client; the upstream's trailer fields follow it
//! (when the client's framing is chunked; an HTTP/1.0 client gets none).
//!
//! Errors: no upstream configured → `503`; the upstream refuses or breaks the protocol → `502`;
//! the upstream is silent for the timeout (connecting, or at any point of the exchange) → `504`,
//! or a cut-short response if it had already begun.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use asycamore_executor::net::{Connect, TcpStream};
use asycamore_executor::{Cx, Step};

use crate::detect::{BodyDecoder, BodyEvent, BodyFraming, Limits};
use crate::response::write_hex;
use crate::service::{App, Environ, Exchange, Handler};

/// How long the upstream may stay silent (while connecting, taking the request or answering)
/// before the proxy gives up with a `504`.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Largest upstream response head accepted; larger is a `502`.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Most header fields in an upstream response head.
const MAX_RESPONSE_HEADERS: usize = 100;

/// Bytes read from the upstream at a time.
const PIECE: usize = 64 * 1024;

/// Hop-by-hop fields (RFC 9110 §7.6.1), never forwarded; nor are the ones a `Connection` field
/// names. Framing fields are the proxy's own business on each side.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// The `proxy` application.
#[derive(Debug, Clone, Copy)]
pub struct Proxy {
    upstream: Option<SocketAddr>,
    timeout: Duration,
}

impl Proxy {
    /// Forwards to `upstream`, or answers `503` if there is none; gives up after `timeout` of
    /// upstream silence.
    pub fn new(upstream: Option<SocketAddr>, timeout: Duration) -> Proxy {
        Proxy { upstream, timeout }
    }
}

/// The handler of one proxied request.
#[derive(Debug)]
pub struct ProxyHandler {
    timeout: Duration,
    /// While waiting on the upstream: when to give up. Cleared whenever anything moves, so it
    /// measures silence, not the length of the whole exchange.
    deadline: Option<Instant>,
    state: State,
}

/// How the request body goes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upload {
    /// No body, or a `Content-Length` one: bytes as they are.
    Plain,
    /// Re-chunked piece by piece.
    Chunked,
}

/// How the upstream's response body ends.
#[derive(Debug)]
enum Relay {
    /// No body (HEAD, 204, 304).
    Empty,
    /// `Content-Length` or chunked, decoded by the server's own decoder.
    Framed(BodyDecoder),
    /// At the upstream's close (RFC 9112 §6.3 rule 8).
    UntilClose,
}

/// Where one proxied request is.
#[derive(Debug)]
enum State {
    /// No upstream configured.
    NoUpstream,
    /// Not started: the upstream's address.
    Start(SocketAddr),
    /// Connecting; `out` holds the request head.
    Connecting {
        /// The connect in progress.
        connect: Connect,
        /// The request head, ready to go.
        out: Vec<u8>,
        /// How the body goes up.
        upload: Upload,
    },
    /// Connected: the request goes up and the response comes down at the same time.
    Exchanging {
        /// The upstream connection.
        upstream: TcpStream,
        /// The request's side.
        up: Up,
        /// The response's side.
        down: Down,
    },
    /// Finished.
    Done,
}

/// The request's way up: `out[sent..]` is owed to the upstream, then the next body piece.
#[derive(Debug)]
struct Up {
    /// Bytes for the upstream (the head, then one framed body piece at a time).
    out: Vec<u8>,
    /// How many of `out` are sent.
    sent: usize,
    /// How the body goes up.
    upload: Upload,
    /// True once the body's end is in `out`.
    body_done: bool,
    /// True if the upstream stopped taking the request (it may have answered early).
    refused: bool,
}

impl Up {
    fn finished(&self) -> bool {
        self.refused || (self.body_done && self.sent == self.out.len())
    }
}

/// The response's way down.
#[derive(Debug)]
enum Down {
    /// Reading the response head into `buf`.
    Head {
        /// Bytes of the response read so far.
        buf: Vec<u8>,
    },
    /// Relaying the body: `held[sent..]` is owed to the client; `buf` holds upstream bytes not
    /// yet decoded.
    Body {
        /// Upstream bytes not yet decoded.
        buf: Vec<u8>,
        /// How the body ends.
        relay: Relay,
        /// Decoded body bytes for the client.
        held: Vec<u8>,
        /// How many of `held` are written.
        sent: usize,
        /// True once the body's end has been seen.
        ended: bool,
        /// The upstream's trailer fields, relayed after the body.
        trailers: Vec<(String, Vec<u8>)>,
    },
}

/// What one side waits for after it has gone as far as it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Nothing: this side is finished.
    Nothing,
    /// The upstream socket (writable for the request, readable for the response).
    Upstream,
    /// The client (the exchange has registered what): the next body piece, or output room.
    Client,
}

impl App for Proxy {
    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(ProxyHandler {
            timeout: self.timeout,
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
            match std::mem::replace(&mut self.state, State::Done) {
                State::NoUpstream => {
                    ex.fail(
                        503,
                        "no upstream configured: start asycamore with --upstream HOST:PORT",
                    );
                    return Step::Ready(());
                }
                State::Start(addr) => {
                    let (out, upload) = request_head(&ex.environ());
                    self.state = State::Connecting {
                        connect: TcpStream::connect(addr),
                        out,
                        upload,
                    };
                }
                State::Connecting {
                    mut connect,
                    out,
                    upload,
                } => {
                    let deadline = *self.deadline.get_or_insert(cx.now() + self.timeout);
                    if cx.now() >= deadline {
                        return self.give_up(ex, 504, "the upstream did not accept the connection");
                    }
                    match connect.poll(cx) {
                        Ok(Step::Ready(upstream)) => {
                            self.deadline = None;
                            let up = Up {
                                out,
                                sent: 0,
                                upload,
                                body_done: false,
                                refused: false,
                            };
                            let down = Down::Head {
                                buf: Vec::with_capacity(4096),
                            };
                            self.state = State::Exchanging { upstream, up, down };
                        }
                        Err(e) => {
                            let reason = format!("cannot connect to the upstream: {e}");
                            return self.give_up(ex, 502, &reason);
                        }
                        Ok(Step::WouldBlock) => {
                            // `connect` waits for the socket to become writable; add the deadline.
                            cx.wait_until(deadline);
                            self.state = State::Connecting {
                                connect,
                                out,
                                upload,
                            };
                            return Step::WouldBlock;
                        }
                    }
                }
                State::Exchanging {
                    upstream,
                    mut up,
                    mut down,
                } => {
                    // Each side goes as far as it can. Neither can unblock the other (they wait
                    // on different things), so one pass of each is enough before waiting.
                    let up_wait = match self.send_request(&upstream, &mut up, ex, cx) {
                        Ok(wait) => wait,
                        Err(done) => return done,
                    };
                    let down_wait = match self.relay_response(&upstream, &up, &mut down, ex, cx) {
                        Ok(wait) => wait,
                        Err(done) => return done,
                    };
                    let fd = upstream.as_raw_fd();
                    if up_wait == Wait::Upstream {
                        cx.wait_writable(fd);
                    }
                    if down_wait == Wait::Upstream {
                        cx.wait_readable(fd);
                    }
                    // The upstream's silence counts only while nothing else holds things up: not
                    // while the client is still sending the body the upstream waits for.
                    let on_upstream = up_wait == Wait::Upstream
                        || (up_wait == Wait::Nothing && down_wait == Wait::Upstream);
                    if on_upstream {
                        let deadline = *self.deadline.get_or_insert(cx.now() + self.timeout);
                        if cx.now() >= deadline {
                            return self.give_up(ex, 504, "the upstream did not answer");
                        }
                        cx.wait_until(deadline);
                    } else {
                        self.deadline = None;
                    }
                    self.state = State::Exchanging { upstream, up, down };
                    return Step::WouldBlock;
                }
                State::Done => return Step::Ready(()),
            }
        }
    }

    fn kind(&self) -> &'static str {
        "proxy"
    }
}

impl ProxyHandler {
    /// Answers `status` if the response has not started, else cuts the response short.
    fn give_up(&self, ex: &mut Exchange<'_>, status: u16, reason: &str) -> Step<()> {
        if status == 504 {
            let reason = format!("{reason} within {} s", self.timeout.as_secs_f64());
            ex.fail(status, &reason);
        } else {
            ex.fail(status, reason);
        }
        Step::Ready(())
    }

    /// The request's side: write what `up` holds to the upstream, then take the next body piece
    /// from the client, until one of them would block. `Err` ends the handler.
    fn send_request(
        &mut self,
        upstream: &TcpStream,
        up: &mut Up,
        ex: &mut Exchange<'_>,
        cx: &mut Cx<'_>,
    ) -> Result<Wait, Step<()>> {
        loop {
            if up.finished() {
                return Ok(Wait::Nothing);
            }
            while up.sent < up.out.len() {
                match upstream.write(&up.out[up.sent..]) {
                    Ok(Step::Ready(n)) => {
                        up.sent += n;
                        self.deadline = None;
                    }
                    Ok(Step::WouldBlock) => return Ok(Wait::Upstream),
                    // The upstream stopped reading: it may have answered early (a 413, say),
                    // and what it said is the answer.
                    Err(_) => {
                        up.refused = true;
                        return Ok(Wait::Nothing);
                    }
                }
            }
            if up.body_done {
                return Ok(Wait::Nothing);
            }
            up.out.clear();
            up.sent = 0;
            match ex.read_body(cx) {
                Ok(Step::WouldBlock) => return Ok(Wait::Client),
                Ok(Step::Ready(BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data))) => {
                    if up.upload == Upload::Chunked && !data.is_empty() {
                        write_hex(&mut up.out, data.len() as u64);
                        up.out.extend_from_slice(b"\r\n");
                        up.out.extend_from_slice(data);
                        up.out.extend_from_slice(b"\r\n");
                    } else {
                        up.out.extend_from_slice(data);
                    }
                }
                Ok(Step::Ready(BodyEvent::End { trailers })) => {
                    if up.upload == Upload::Chunked {
                        up.out.extend_from_slice(b"0\r\n");
                        up.out.extend_from_slice(trailers.as_bytes());
                        up.out.extend_from_slice(b"\r\n");
                    }
                    up.body_done = true;
                }
                Err(e) => return Err(self.give_up(ex, e.status(), &e.to_string())),
            }
        }
    }

    /// The response's side: read the head, start the response, then relay the body piece by
    /// piece, until the upstream or the client would block. `Err` ends the handler (with the
    /// response complete, or failed).
    fn relay_response(
        &mut self,
        upstream: &TcpStream,
        up: &Up,
        down: &mut Down,
        ex: &mut Exchange<'_>,
        cx: &mut Cx<'_>,
    ) -> Result<Wait, Step<()>> {
        loop {
            match down {
                Down::Head { buf } => {
                    match parse_response_head(buf, ex.environ().request_method() == "HEAD") {
                        Err(reason) => return Err(self.give_up(ex, 502, reason)),
                        Ok(Some(head)) if (100..200).contains(&head.status) => {
                            // An interim response (103 Early Hints, say): skip it.
                            buf.drain(..head.len);
                            continue;
                        }
                        Ok(Some(head)) => {
                            let headers: Vec<(&str, &str)> = head
                                .headers
                                .iter()
                                .map(|(n, v)| (n.as_str(), v.as_str()))
                                .collect();
                            if let Err(e) = ex.start_response(head.status, &headers) {
                                let reason = format!("unusable upstream response: {e}");
                                return Err(self.give_up(ex, 502, &reason));
                            }
                            buf.drain(..head.len);
                            *down = Down::Body {
                                buf: std::mem::take(buf),
                                relay: head.relay,
                                held: Vec::new(),
                                sent: 0,
                                ended: false,
                                trailers: Vec::new(),
                            };
                            continue;
                        }
                        Ok(None) if buf.len() > MAX_RESPONSE_HEAD => {
                            let reason = "the upstream's response head is too large";
                            return Err(self.give_up(ex, 502, reason));
                        }
                        Ok(None) => {}
                    }
                    match upstream.read_to_spare(buf) {
                        Ok(Step::Ready(0)) => {
                            let reason = "the upstream closed without answering";
                            return Err(self.give_up(ex, 502, reason));
                        }
                        Ok(Step::Ready(_)) => self.deadline = None,
                        Ok(Step::WouldBlock) => return Ok(Wait::Upstream),
                        Err(e) if up.refused => {
                            let reason = format!("the upstream refused the request: {e}");
                            return Err(self.give_up(ex, 502, &reason));
                        }
                        Err(e) => {
                            let reason = format!("the upstream failed: {e}");
                            return Err(self.give_up(ex, 502, &reason));
                        }
                    }
                }
                Down::Body {
                    buf,
                    relay,
                    held,
                    sent,
                    ended,
                    trailers,
                } => {
                    // First hand the client what we hold...
                    while *sent < held.len() {
                        match ex.write(&held[*sent..], cx) {
                            Ok(Step::Ready(n)) => *sent += n,
                            Ok(Step::WouldBlock) => return Ok(Wait::Client),
                            Err(_) => return Err(cut_short(ex)),
                        }
                    }
                    held.clear();
                    *sent = 0;
                    if *ended {
                        if !trailers.is_empty() {
                            let fields: Vec<(&str, &[u8])> = trailers
                                .iter()
                                .map(|(n, v)| (n.as_str(), v.as_slice()))
                                .collect();
                            // Dropped where the client's framing cannot carry them (HTTP/1.0).
                            let _ = ex.end_with_trailers(&fields);
                        }
                        return Err(Step::Ready(()));
                    }
                    // ...then decode the next piece from what the upstream sent...
                    let mut consumed = 0;
                    match relay {
                        Relay::Empty => *ended = true,
                        Relay::UntilClose => std::mem::swap(held, buf),
                        Relay::Framed(decoder) => match decoder.decode(buf) {
                            Ok((
                                n,
                                Step::Ready(
                                    BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data),
                                ),
                            )) => {
                                held.extend_from_slice(data);
                                consumed = n;
                            }
                            Ok((n, Step::Ready(BodyEvent::End { trailers: fields }))) => {
                                trailers.extend(
                                    fields
                                        .iter()
                                        .map(|(name, value)| (name.to_owned(), value.to_vec())),
                                );
                                consumed = n;
                                *ended = true;
                            }
                            Ok((n, Step::WouldBlock)) => consumed = n,
                            // Broken framing from the upstream: the client gets a cut-short body.
                            Err(_) => return Err(cut_short(ex)),
                        },
                    }
                    buf.drain(..consumed);
                    if *ended || !held.is_empty() {
                        continue;
                    }
                    // ...and when it is all decoded, read more.
                    if buf.capacity() - buf.len() < 4096 {
                        buf.reserve(PIECE);
                    }
                    match upstream.read_to_spare(buf) {
                        Ok(Step::Ready(0)) if matches!(relay, Relay::UntilClose) => *ended = true,
                        // Closed before the declared end.
                        Ok(Step::Ready(0)) | Err(_) => return Err(cut_short(ex)),
                        Ok(Step::Ready(_)) => self.deadline = None,
                        Ok(Step::WouldBlock) => return Ok(Wait::Upstream),
                    }
                }
            }
        }
    }
}

/// Ends a response that has started and cannot be completed: the connection closes after it, so
/// the client sees a truncated body, not a wrong one.
fn cut_short(ex: &mut Exchange<'_>) -> Step<()> {
    ex.close_after();
    Step::Ready(())
}

/// The request head for the upstream, and how its body goes up.
fn request_head(environ: &Environ<'_>) -> (Vec<u8>, Upload) {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(environ.request_method().as_bytes());
    out.push(b' ');
    let rest = raw_path_after(environ.raw_path(), environ.script_len());
    if rest.first() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(rest);
    let target = environ.target();
    if let Some(q) = memchr::memchr(b'?', target) {
        out.extend_from_slice(&target[q..]);
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");

    // Fields the client's `Connection` names are hop-by-hop too.
    let connection_options: Vec<&[u8]> = environ
        .headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    let mut forwarded_for: Option<Vec<u8>> = None;
    let mut has_host = false;
    for (name, value) in environ.headers() {
        let skip = HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || connection_options
                .iter()
                .any(|o| o.eq_ignore_ascii_case(name.as_bytes()))
            || name.eq_ignore_ascii_case("content-length")
            // 100-continue is settled between the client and us (the exchange sends it).
            || name.eq_ignore_ascii_case("expect");
        if skip {
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            let list = forwarded_for.get_or_insert_with(Vec::new);
            if !list.is_empty() {
                list.extend_from_slice(b", ");
            }
            list.extend_from_slice(value);
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        // HTTP/1.0 clients may send none; HTTP/1.1 requires one (RFC 9112 §3.2).
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(environ.server_name().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut list = forwarded_for.unwrap_or_default();
    if !list.is_empty() {
        list.extend_from_slice(b", ");
    }
    list.extend_from_slice(environ.remote().ip().to_string().as_bytes());
    out.extend_from_slice(b"X-Forwarded-For: ");
    out.extend_from_slice(&list);
    out.extend_from_slice(b"\r\n");
    let upload = match environ.head().framing() {
        BodyFraming::Chunked => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            Upload::Chunked
        }
        BodyFraming::Length(n) => {
            out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
            Upload::Plain
        }
        BodyFraming::None => Upload::Plain,
    };
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    (out, upload)
}

/// The part of the raw (percent-encoded) `raw` path after its first `decoded_len` decoded bytes:
/// `PATH_INFO` as the client spelled it. `%XX` counts as one decoded byte, as in
/// [`percent_decode`](crate::service::percent_decode).
pub fn raw_path_after(raw: &[u8], decoded_len: usize) -> &[u8] {
    let mut i = 0;
    for _ in 0..decoded_len {
        if i >= raw.len() {
            break;
        }
        let escape = raw[i] == b'%'
            && i + 2 < raw.len()
            && raw[i + 1].is_ascii_hexdigit()
            && raw[i + 2].is_ascii_hexdigit();
        i += if escape { 3 } else { 1 };
    }
    &raw[i.min(raw.len())..]
}

/// What the proxy needs from the upstream's response head.
#[derive(Debug)]
struct ResponseHead {
    /// Its length in bytes.
    len: usize,
    status: u16,
    /// The end-to-end fields, for the client.
    headers: Vec<(String, String)>,
    relay: Relay,
}

/// Parses a response head at the start of `buf`; `Ok(None)` if it is not complete yet.
fn parse_response_head(
    buf: &[u8],
    request_was_head: bool,
) -> Result<Option<ResponseHead>, &'static str> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("the upstream sent a malformed response head"),
    };
    let status = response.code.unwrap_or(0);
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding: Option<&[u8]> = None;
    let mut connection_options: Vec<&[u8]> = Vec::new();
    for field in response.headers.iter() {
        if field.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(field.value).unwrap_or("").trim();
            let n = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<u64>().ok())
                .flatten()
                .ok_or("the upstream sent a bad Content-Length")?;
            if content_length.is_some_and(|m| m != n) {
                return Err("the upstream sent conflicting Content-Lengths");
            }
            content_length = Some(n);
        } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = Some(field.value);
        } else if field.name.eq_ignore_ascii_case("connection") {
            connection_options.extend(field.value.split(|&b| b == b',').map(<[u8]>::trim_ascii));
        }
    }
    // RFC 9112 §6.3, in its order.
    let relay = if request_was_head || status == 204 || status == 304 || status < 200 {
        Relay::Empty
    } else if let Some(codings) = transfer_encoding {
        let last = codings.rsplit(|&b| b == b',').next().unwrap_or(b"");
        if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            // A response body: the request-body limit is not ours to apply to it.
            let limits = Limits {
                max_request_body: 0,
                ..Limits::default()
            };
            Relay::Framed(BodyDecoder::new(BodyFraming::Chunked, &limits))
        } else {
            Relay::UntilClose
        }
    } else if let Some(n) = content_length {
        Relay::Framed(BodyDecoder::new(BodyFraming::Length(n), &Limits::default()))
    } else {
        Relay::UntilClose
    };
    let keep_length = transfer_encoding.is_none();
    let mut headers = Vec::with_capacity(response.headers.len());
    for field in response.headers.iter() {
        let hop = HOP_BY_HOP
            .iter()
            .any(|h| field.name.eq_ignore_ascii_case(h))
            || connection_options
                .iter()
                .any(|o| o.eq_ignore_ascii_case(field.name.as_bytes()));
        if hop || (!keep_length && field.name.eq_ignore_ascii_case("content-length")) {
            continue;
        }
        let value = std::str::from_utf8(field.value)
            .map_err(|_| "the upstream sent a header value that is not text")?;
        headers.push((field.name.to_owned(), value.to_owned()));
    }
    Ok(Some(ResponseHead {
        len,
        status,
        headers,
        relay,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_path_after_skips_decoded_bytes() {
        assert_eq!(raw_path_after(b"/proxy/a/b", 6), b"/a/b");
        assert_eq!(raw_path_after(b"/%70roxy/a%20b", 6), b"/a%20b");
        assert_eq!(raw_path_after(b"/proxy", 6), b"");
        assert_eq!(raw_path_after(b"/100%", 4), b"%");
        assert_eq!(raw_path_after(b"/x", 0), b"/x");
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let head = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert!(matches!(head.relay, Relay::Framed(_)));
        assert_eq!(head.headers, [("Content-Length".into(), "5".into())]);
        let head = parse_response_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: x\r\nX: 1\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(head.relay, Relay::Framed(_)));
        assert!(head.headers.is_empty(), "{:?}", head.headers);
        let head = parse_response_head(b"HTTP/1.0 200 OK\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert!(matches!(head.relay, Relay::UntilClose));
        let head = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert!(matches!(head.relay, Relay::Empty));
        assert!(
            parse_response_head(b"HTTP/1.1 200 OK\r\n", false)
                .unwrap()
                .is_none()
        );
        assert!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", false).is_err()
        );
        assert!(
            parse_response_head(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                false
            )
            .is_err()
        );
    }
}
