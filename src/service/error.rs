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
            OutputError::NoTrailers => "this response cannot carry these trailer fields",
        })
    }
}

impl std::error::Error for OutputError {}
