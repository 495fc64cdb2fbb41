//! The errors of the service model: why a body read failed ([`InputError`]) and why a response
//! could not be started or written ([`OutputError`]). Each input error knows the status a
//! handler should answer with.

use std::fmt;

use crate::detect::BodyError;

/// Why a body read failed. After any of these the connection closes once the response is out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// The body is malformed (bad chunk size, missing CRLF, over-long line...): a 400.
    Malformed(BodyError),
    /// The client closed the connection before the body ended.
    Incomplete,
    /// No body byte arrived within the body timeout: a 408.
    Timeout,
    /// The body is larger than the limit given to [`Exchange::read_to_end`](super::Exchange::read_to_end): a 413.
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
    /// [`Exchange::send_file`](super::Exchange::send_file) on a response without a
    /// `Content-Length` that the file's part matches.
    NotSized,
    /// Trailer fields on a response that cannot carry them: one with a `Content-Length`, or
    /// to HTTP/1.0 (no chunked coding), or a field that must not be a trailer (RFC 9110 §6.5.1).
    NoTrailers,
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
            OutputError::NotSized => "a file body needs a Content-Length equal to its length",
            OutputError::NoTrailers => "this response cannot carry these trailer fields",
        })
    }
}

impl std::error::Error for OutputError {}

/// Why [`Exchange::switch_protocols`](super::Exchange::switch_protocols) refused to switch
/// (nothing was written then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeError {
    /// The request did not offer the protocol: no `Upgrade` field naming it, or no `upgrade`
    /// option in `Connection` (RFC 9110 §7.8: the server may only switch to a protocol the client
    /// listed, and `Upgrade` is hop-by-hop, so `Connection` must name it).
    NotOffered,
    /// An HTTP/1.0 request: a server must ignore its `Upgrade` (RFC 9110 §7.8).
    Http10,
    /// The request has a body: the upgraded stream would begin after it, which this server does
    /// not wait for; the client should upgrade with a request that has none.
    HasBody,
    /// The server is shutting down: no new stream is started that the grace period would cut.
    ShuttingDown,
    /// A response was already started.
    AlreadyStarted,
    /// A header the application gave would split the response.
    InvalidHeader,
}

impl UpgradeError {
    /// The status to answer with instead: 426 with an `Upgrade` field for a client that did not
    /// ask properly (RFC 9110 §15.5.22), 400 for one with a body, 503 during a shutdown, 500 for
    /// the application's own mistakes.
    pub fn status(self) -> u16 {
        match self {
            UpgradeError::NotOffered | UpgradeError::Http10 => 426,
            UpgradeError::HasBody => 400,
            // RFC 9110 §15.6.4: unavailable for now.
            UpgradeError::ShuttingDown => 503,
            UpgradeError::AlreadyStarted | UpgradeError::InvalidHeader => 500,
        }
    }
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeError::NotOffered => "the request does not offer this protocol upgrade",
            UpgradeError::Http10 => "HTTP/1.0 requests cannot be upgraded",
            UpgradeError::HasBody => "a request with a body cannot be upgraded",
            UpgradeError::ShuttingDown => "the server is shutting down",
            UpgradeError::AlreadyStarted => "the response was already started",
            UpgradeError::InvalidHeader => "invalid header",
        })
    }
}

impl std::error::Error for UpgradeError {}
