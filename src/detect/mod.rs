//! Message boundaries: where a request head ends, what it says, and where its body ends.
//!
//! Everything here is pure: no I/O, no clock, no allocation per request. The connection reads into
//! its buffer and asks a detector what the bytes so far amount to; the detector answers
//! [`Step::Ready`] with an event, [`Step::WouldBlock`] ("need more bytes", not an error), or a typed
//! error that knows its response status. That makes every detector testable at every split point
//! of its input, and fuzzable.
//!
//! # The API the connection uses
//!
//! ```
//! use asycamore::detect::{BodyDecoder, BodyEvent, BodyFraming, HeadDetector, Limits, RequestHead};
//! use asycamore::executor::Step;
//!
//! let limits = Limits::default();
//! let mut detector = HeadDetector::new(limits);
//! let mut head = RequestHead::new(); // reused for every request of the connection
//!
//! let buf = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
//!             5\r\nhello\r\n0\r\nDigest: x\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
//! let Ok((n, Step::Ready(()))) = detector.detect(buf, &mut head) else { panic!() };
//! assert_eq!(head.method(buf), "POST");
//! assert_eq!(head.framing(), BodyFraming::Chunked);
//! assert!(head.keep_alive());
//!
//! let mut body = BodyDecoder::new(head.framing(), &limits);
//! let mut at = n;
//! let mut received = Vec::new();
//! loop {
//!     let (used, step) = body.decode(&buf[at..]).expect("well-formed body");
//!     at += used;
//!     match step {
//!         Step::Ready(BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data)) => {
//!             received.extend_from_slice(data)
//!         }
//!         Step::Ready(BodyEvent::End { trailers }) => {
//!             assert_eq!(trailers.get("digest"), Some(&b"x"[..]));
//!             break;
//!         }
//!         Step::WouldBlock => unreachable!("read more, then call again"),
//!     }
//! }
//! assert_eq!(received, b"hello");
//! // The next pipelined request starts at `at`.
//! assert_eq!(detector.detect(&buf[at..], &mut head), Ok((27, Step::Ready(()))));
//! ```
//!
//! - [`HeadDetector::detect`]`(buf, &mut head)` → `(n, Ready(()))`: `buf[..n]` is one complete
//!   head, parsed into `head` ([`RequestHead`]: method, target and its [`TargetForm`], version,
//!   fields, [`BodyFraming`], keep-alive, `Expect: 100-continue`, `Host`), all as offsets into
//!   `buf`.
//! - [`BodyDecoder::new`]`(framing, &limits)` then [`BodyDecoder::decode`]`(buf)` →
//!   `(consumed, step)`, one [`BodyEvent`] at a time: `ChunkStart { size, data }`, `Data`, and
//!   `End { trailers }`. A `Content-Length` body is one `ChunkStart` of its full size.
//! - Errors: [`HeadError`], [`BodyError`] (wrapping [`ChunkedError`]), and [`Error`] for either;
//!   each has `status()` and `reason()`. After any error the connection must close.
//!
//! # One shape
//!
//! Every detector here (and the WebSocket decoders of [`crate::ws`]) answers
//! `Result<(consumed, Step<event>), error>`: *consume as you go*. `consumed` is how far the
//! caller moves its cursor in `buf` before the next call; the event may borrow from the bytes
//! before the cursor, so moving past them is not a license to free them while the event is in
//! use (a head stays in the buffer while its request lives). Consuming as it goes lets a decoder
//! absorb what it has understood into its state — a chunk-size line, a frame header — and hand
//! out data without holding it, so a chunk or a frame of any size passes in pieces. The head
//! detector is the one that consumes nothing until `Ready` (a head is parsed whole, and the
//! request's view borrows all of it), which the same shape says with `(0, WouldBlock)`.
//!
//! # Limits
//!
//! [`Limits`] holds every bound, each enforced as soon as it is exceeded, not when the thing it
//! bounds is complete: a megabyte request line with no CRLF fails with 414 once
//! [`Limits::max_request_line`] bytes have arrived, and a body larger than
//! [`Limits::max_request_body`] fails with 413 before its first byte is handed out.
//!
//! [`Step::Ready`]: crate::executor::Step::Ready
//! [`Step::WouldBlock`]: crate::executor::Step::WouldBlock

mod body;
mod chunked;
mod error;
mod event;
mod framing;
mod head;
pub(crate) mod length;
mod response;
mod span;
pub(crate) mod syntax;
mod uri;
mod version;

pub use body::BodyDecoder;
pub use chunked::{ChunkedDecoder, ChunkedState, ExtensionPart};
pub use error::{BodyError, ChunkedError, Error, HeadError};
pub use event::{BodyEvent, TrailerFields, Trailers};
pub use framing::BodyFraming;
pub use head::{HeadDetector, RequestHead};
pub use length::{LengthDecoder, parse_content_length};
pub use response::{
    MAX_RESPONSE_FIELDS, MAX_RESPONSE_HEAD, ResponseError, ResponseFraming, ResponseHead,
    ResponseHeadDetector,
};
pub use uri::TargetForm;
pub use version::Version;

/// Default [`Limits::max_request_line`]: 8 KiB, in bytes. Long enough for any sane URL with
/// its query string (RFC 9112 §3 recommends supporting at least 8000 octets).
pub const MAX_REQUEST_LINE: usize = 8 * 1024;

/// Default [`Limits::max_head`]: 64 KiB, in bytes, request line and fields together (hyper uses
/// 100 KiB for its whole read buffer, nginx 4 × 8 KiB).
pub const MAX_HEAD: usize = 64 * 1024;

/// Default [`Limits::max_headers`]: 100 field lines (hyper and httparse users commonly allow 100).
pub const MAX_HEADERS: usize = 100;

/// Default [`Limits::max_chunk_line`]: 4 KiB, in bytes, for one chunk-size line with its
/// extensions. A size needs at most 16 hex digits; the rest is room for extensions, which we
/// ignore.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Default [`Limits::max_trailers`]: 16 KiB, in bytes, for the trailer section with its final
/// empty line.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// Default [`Limits::max_request_body`]: 4 GiB, in bytes of body content (chunk data, not the
/// chunked framing around it). Far above what the demo apps collect in memory
/// ([`MAX_BODY`](crate::config::MAX_BODY)), which stream larger bodies; it bounds what one request
/// may make the server read, as nginx's `client_max_body_size` does.
pub const MAX_REQUEST_BODY: u64 = 4 * 1024 * 1024 * 1024;

/// Every bound the detectors enforce. Change the fields you need and keep the rest:
///
/// ```
/// let limits = asycamore::detect::Limits { max_headers: 50, ..Default::default() };
/// # assert_eq!(limits.max_head, asycamore::detect::MAX_HEAD);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line in bytes, without its CRLF; longer is a 414 ([`MAX_REQUEST_LINE`]).
    pub max_request_line: usize,
    /// Largest head in bytes, from the first byte (leading empty lines included) to the end of the
    /// final empty line; larger is a 431 ([`MAX_HEAD`]).
    pub max_head: usize,
    /// Most header field lines in one head; more is a 431 ([`MAX_HEADERS`]).
    pub max_headers: usize,
    /// Longest chunk-size line in bytes, size and extensions without the CRLF; longer is a 400
    /// ([`MAX_CHUNK_LINE`]).
    pub max_chunk_line: usize,
    /// Largest trailer section in bytes, final empty line included; larger is a 431
    /// ([`MAX_TRAILERS`]).
    pub max_trailers: usize,
    /// Largest request body in bytes; `0` means unlimited ([`MAX_REQUEST_BODY`]). Larger is a 413
    /// (RFC 9110 §15.5.14), refused before any of it is handed out: a `Content-Length` above it
    /// when the head is parsed ([`HeadError::ContentLengthTooLarge`]), a chunked body as soon as
    /// the size line of the chunk that would pass it ends ([`ChunkedError::BodyTooLarge`]).
    pub max_request_body: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_line: MAX_REQUEST_LINE,
            max_head: MAX_HEAD,
            max_headers: MAX_HEADERS,
            max_chunk_line: MAX_CHUNK_LINE,
            max_trailers: MAX_TRAILERS,
            max_request_body: MAX_REQUEST_BODY,
        }
    }
}
