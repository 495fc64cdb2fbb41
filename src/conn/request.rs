//! One request's progress, owned by its connection: where the body stands ([`Body`]), where the
//! response stands ([`Response`]), whether `100 Continue` is owed ([`Expect`]), and — decided in
//! one place, [`Request::persistence`] — whether the connection stays open after it.
//!
//! The connection makes a [`Request`] when a head is parsed and moves it through these states
//! itself (reading and writing the socket); the handler moves it through the [`Exchange`]
//! (`read_body`, `start_response`, `write`), which borrows it for one resume at a time.
//!
//! ```text
//!  Body:      Unread ──first read──▶ Reading ──End──▶ Drained
//!                 └──────────────────────┴──error──▶ Failed
//!  Response:  NotStarted ──start──▶ HeadSent ──bytes──▶ Streaming ──handler done──▶ Complete
//!  Expect:    None | Owed ──100 queued──▶ Sent
//! ```
//!
//! A connection holds its request in a [`RequestSlot`] only while it has one: between requests
//! the slot gives the [`Request`] (head detector and parsed head with its field table included)
//! back to the worker thread's spares, so an idle keep-alive connection holds none of it.
//!
//! [`Exchange`]: crate::service::Exchange

use std::cell::RefCell;
use std::time::Instant;

use crate::config::Config;
use crate::detect::{BodyDecoder, BodyFraming, HeadDetector, Limits, RequestHead};
use crate::service::error::InputError;
use crate::service::upgrade::Tunnel;

/// The state of one request, from its parsed head to the end of its response.
pub(crate) struct Request {
    /// Finds the end of the next head in the read buffer (its limits are set before each look,
    /// as a spare request may come from another server on the thread).
    pub detector: HeadDetector,
    /// The parsed head, as offsets into the first `head_len` bytes of the read buffer (reused
    /// from one request to the next, keeping its allocation).
    pub head: RequestHead,
    /// Length of the head at the front of the read buffer.
    pub head_len: usize,
    /// The method is `HEAD`: the response has a head only (RFC 9110 §9.3.2).
    pub is_head: bool,
    /// Bytes of the decoded path mounted as `SCRIPT_NAME`.
    pub script_len: usize,
    /// Where the request body stands.
    pub body: Body,
    /// Where the response stands.
    pub response: Response,
    /// `Expect: 100-continue`.
    pub expect: Expect,
    /// The application asked to close after this response (`close_after`, a `Connection: close`
    /// header, or a response it could not finish): a fact the persistence decision reads.
    pub close_requested: bool,
    /// What the response head told the client, once written: a head that said
    /// `Connection: close` is a promise the connection keeps, whatever happens after.
    pub announced: Option<Persistence>,
    /// Status code sent (0 before the response starts).
    pub status: u16,
    /// Body bytes the handler wrote (before framing).
    pub body_bytes_sent: u64,
    /// The executor's clock when the head was parsed (for the request's duration).
    pub started: Instant,
    /// The most body the application takes (`Exchange::limit_body`); the server's own limit is
    /// the body decoder's.
    pub body_limit: u64,
    /// The tunnel a `101 Switching Protocols` handed over: once the handler is done, the
    /// connection runs it instead of reading another request.
    pub upgrade: Option<Box<dyn Tunnel>>,
    /// A file the handler gave as the rest of the body (`Exchange::send_file`): the connection
    /// sends it after the handler is done, with `sendfile(2)` where the stream can.
    pub file_body: Option<FileBody>,
    /// Where `--profile` adds up this request's costs by handler kind
    /// ([`ServerStats::profile_request`](crate::stats::ServerStats::profile_request)); 0: nowhere.
    pub profile_slot: u8,
}

/// The part of a file that is the rest of a response body.
#[derive(Debug)]
pub(crate) struct FileBody {
    /// The open file.
    pub file: std::fs::File,
    /// The next byte of it to send.
    pub offset: u64,
    /// Bytes still to send.
    pub remaining: u64,
}

/// Where the request body stands. Offsets are into the read buffer's data, whose first
/// `head_len` bytes stay the head while the body streams through the rest.
#[derive(Debug, Default)]
pub(crate) enum Body {
    /// There is a body and nothing of it has been asked for yet.
    Unread(BodyDecoder),
    /// The handler (or the connection, draining) is reading it: the decoder, where its unread
    /// bytes start, the bytes the last event handed out (dropped at the next read), and while
    /// waiting for bytes, when to give up.
    Reading {
        /// The decoder, mid-body.
        decoder: BodyDecoder,
        /// Offset of the first byte not yet decoded.
        at: usize,
        /// Bytes the last event handed out, consumed at the next read.
        handed: usize,
        /// While waiting for bytes: the body timeout's deadline.
        deadline: Option<Instant>,
        /// Body bytes declared so far (chunk sizes), held to the route's limit.
        declared: u64,
    },
    /// No body, or its end has been read: the next request begins at `end`.
    Drained {
        /// Offset of the first byte after the body.
        end: usize,
    },
    /// The body cannot be read (malformed, cut short, timed out, too large): the connection
    /// closes after the response.
    Failed(InputError),
    /// Before the first request.
    #[default]
    Idle,
}

impl Body {
    /// True once the body's end has been read (or there was none).
    pub fn is_drained(&self) -> bool {
        matches!(self, Body::Drained { .. })
    }

    /// Pushes back the body timeout: a byte has arrived.
    pub fn bytes_arrived(&mut self) {
        if let Body::Reading { deadline, .. } = self {
            *deadline = None;
        }
    }
}

/// How the body of the response is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// A declared `Content-Length`; `remaining` bytes are still owed.
    Length {
        /// Bytes still owed.
        remaining: u64,
    },
    /// Chunked transfer coding (HTTP/1.1 without a length).
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0 without a length, RFC 9112 §6.3).
    CloseDelimited,
    /// No content (HEAD, 204, 304): body writes are counted and dropped.
    NoBody,
}

/// Where the response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Response {
    /// Nothing written for this request yet.
    #[default]
    NotStarted,
    /// The head is in the output; no body byte yet.
    HeadSent(Framing),
    /// Body bytes are going out.
    Streaming(Framing),
    /// The response is complete (a `Length` framing with bytes remaining ended short: only a
    /// close tells the client then).
    Complete(Framing),
}

impl Response {
    /// True once the head has been written.
    pub fn started(self) -> bool {
        self != Response::NotStarted
    }

    /// The framing, once the head is written.
    pub fn framing(self) -> Option<Framing> {
        match self {
            Response::HeadSent(f) | Response::Streaming(f) | Response::Complete(f) => Some(f),
            Response::NotStarted => None,
        }
    }
}

/// Where `Expect: 100-continue` stands (RFC 9110 §10.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Expect {
    /// Not asked for (or HTTP/1.0, which has no 1xx, or no body).
    #[default]
    None,
    /// The client may be holding its body back until it sees `100 Continue`; not sent yet.
    Owed,
    /// `100 Continue` has been queued.
    Sent,
}

/// Whether the connection stays open after the current response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persistence {
    /// Read the next request after this one.
    KeepAlive,
    /// Close once this response is out.
    Close(CloseReason),
}

/// Why a connection closes after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// HTTP/1.0 without `keep-alive`, or `Connection: close` (RFC 9112 §9.3).
    ClientAsked,
    /// The server is shutting down.
    ShuttingDown,
    /// The application asked.
    AppAsked,
    /// The request body could not be read: where the next request begins is unknown.
    BodyFailed,
    /// The client may still send a body it was never told to send, or may not: only a close
    /// keeps the next request's framing certain (RFC 9110 §10.1.1).
    BodyWithheld,
    /// An HTTP/1.0 response without a length ends with the connection (RFC 9112 §6.3).
    CloseDelimited,
    /// The response ended before its declared length.
    ShortResponse,
}

/// Spare requests each worker thread keeps for its connections' next heads: enough for every
/// connection a busy worker has mid-request at once; beyond it a released request is freed.
pub(crate) const SPARE_REQUESTS: usize = 64;

thread_local! {
    /// This worker's spare requests ([`RequestSlot::release`]), boxed as the slots hold them:
    /// a request moves between a slot and the spares as a pointer, never copied.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<Request>>> = const { RefCell::new(Vec::new()) };
}

/// Where a connection keeps its current request: a [`Request`] from the first byte of a head to
/// the end of its response, nothing while the connection is idle between requests.
///
/// An idle keep-alive connection is the common case for a server with many clients, and a
/// request (detector, head, field table: about 600 bytes) is most of what a connection would
/// cost; like nginx, which frees a keep-alive connection's request and keeps only the
/// connection, the slot hands it back to the worker thread's spares, from which the next head
/// on any of the worker's connections takes it without allocating.
#[derive(Default)]
pub(crate) struct RequestSlot(Option<Box<Request>>);

impl RequestSlot {
    /// The request, taken from the worker's spares (or made) if the slot holds none. Inline:
    /// the connection asks for its request a dozen times per request, and only the first of
    /// them (after an idle wait) goes to the spares.
    #[inline]
    pub fn get(&mut self) -> &mut Request {
        self.0.get_or_insert_with(spare_request)
    }

    /// The request, if the slot holds one.
    pub fn held(&self) -> Option<&Request> {
        self.0.as_deref()
    }

    /// The request to change, if the slot holds one (without taking a spare when it does not).
    pub fn held_mut(&mut self) -> Option<&mut Request> {
        self.0.as_deref_mut()
    }

    /// Where `--profile` adds up the current request's costs (0: nowhere, as for no request).
    pub fn profile_slot(&self) -> u8 {
        self.0.as_ref().map_or(0, |request| request.profile_slot)
    }

    /// Gives the request back to the worker's spares (or frees it, past [`SPARE_REQUESTS`]):
    /// the connection is between requests, with nothing of one left to keep. What it owned that
    /// belongs to no next request (a tunnel, a file, a body decoder) is dropped here; the field
    /// table's allocation stays for the next head.
    pub fn release(&mut self) {
        let Some(mut request) = self.0.take() else {
            return;
        };
        request.detector.reset();
        // Nothing of the next request's costs belongs to this one's kind (`--profile`).
        request.profile_slot = 0;
        request.body = Body::Idle;
        request.upgrade = None;
        request.file_body = None;
        // `try_with`: a connection dropped while the thread exits finds the spares gone, and its
        // request is simply freed.
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_REQUESTS {
                spare.push(request);
            }
        });
    }
}

/// A request from this worker's spares, or a new one.
#[inline(never)]
fn spare_request() -> Box<Request> {
    SPARE
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_else(|| Box::new(Request::new(Instant::now())))
}

impl Drop for RequestSlot {
    /// A closing connection's request goes to the spares too: the next connection's first head
    /// takes it (a server answering one request per connection allocates none).
    fn drop(&mut self) {
        self.release();
    }
}

impl Request {
    /// The state before a connection's first request (`now` stands in for its start).
    pub fn new(now: Instant) -> Request {
        Request {
            detector: HeadDetector::new(Limits::default()),
            head: RequestHead::default(),
            head_len: 0,
            is_head: false,
            script_len: 0,
            body: Body::Idle,
            response: Response::NotStarted,
            expect: Expect::None,
            close_requested: false,
            announced: None,
            status: 0,
            body_bytes_sent: 0,
            started: now,
            body_limit: u64::MAX,
            upgrade: None,
            file_body: None,
            profile_slot: 0,
        }
    }

    /// Resets for a request whose head (`head_len` bytes, already parsed into `self.head`) is at
    /// the front of the read buffer; `is_head` if its method is `HEAD`.
    pub fn begin(&mut self, head_len: usize, config: &Config, is_head: bool, now: Instant) {
        let framing = self.head.framing();
        self.head_len = head_len;
        self.is_head = is_head;
        self.script_len = 0;
        self.body = match framing {
            BodyFraming::None | BodyFraming::Length(0) => Body::Drained { end: head_len },
            framing => Body::Unread(BodyDecoder::new(framing, &config.limits)),
        };
        self.response = Response::NotStarted;
        self.expect = if self.head.expects_continue() && !self.body.is_drained() {
            Expect::Owed
        } else {
            Expect::None
        };
        self.close_requested = false;
        self.announced = None;
        self.status = 0;
        self.body_bytes_sent = 0;
        self.started = now;
        self.body_limit = u64::MAX;
        self.upgrade = None;
        self.file_body = None;
        self.profile_slot = 0;
    }

    /// The one place that decides whether the connection stays open after this response (hyper's
    /// `try_keep_alive`, as one function): asked when the response head is written (to say
    /// `Connection: close`) and again when the response is complete (to choose the next state),
    /// from what is known by then.
    pub fn persistence(&self, shutting_down: bool) -> Persistence {
        if let Some(close @ Persistence::Close(_)) = self.announced {
            return close;
        }
        let reason = if !self.head.keep_alive() {
            CloseReason::ClientAsked
        } else if shutting_down {
            CloseReason::ShuttingDown
        } else if self.close_requested {
            CloseReason::AppAsked
        } else if matches!(self.body, Body::Failed(_)) {
            CloseReason::BodyFailed
        } else if self.expect == Expect::Owed && !self.body.is_drained() {
            CloseReason::BodyWithheld
        } else if self.response.framing() == Some(Framing::CloseDelimited) {
            CloseReason::CloseDelimited
        } else if self.ended_short() {
            CloseReason::ShortResponse
        } else {
            return Persistence::KeepAlive;
        };
        Persistence::Close(reason)
    }

    /// `n` bytes of a file body went out (or into the output): the length still owed drops.
    pub fn file_sent(&mut self, n: u64) {
        if let Response::HeadSent(Framing::Length { remaining })
        | Response::Streaming(Framing::Length { remaining }) = self.response
        {
            self.response = Response::Streaming(Framing::Length {
                remaining: remaining.saturating_sub(n),
            });
        }
    }

    /// True if the response is complete with fewer body bytes than it declared (a response to
    /// HEAD declares a length it never sends).
    pub fn ended_short(&self) -> bool {
        matches!(self.response, Response::Complete(Framing::Length { remaining }) if remaining > 0)
            && !self.is_head
    }
}
