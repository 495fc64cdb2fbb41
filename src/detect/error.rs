//! Why the detectors refuse a message: [`HeadError`] for a head, [`ChunkedError`] (inside
//! [`BodyError`]) for a body, and [`Error`] for either. Every variant knows its response status
//! and a short reason; after any of them the connection must close, since where the next request
//! begins is no longer known.

/// Why a request head was refused. Every variant maps to a status ([`HeadError::status`]) and a
/// short reason ([`HeadError::reason`]); after any of them the connection must close, since where
/// the next request begins is no longer known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeadError {
    /// A line ended in LF without CR (400; see the module docs).
    BareLf,
    /// The request line is longer than [`Limits::max_request_line`](super::Limits::max_request_line) (414).
    RequestLineTooLong,
    /// The head is longer than [`Limits::max_head`](super::Limits::max_head) (431).
    HeadTooLarge,
    /// More field lines than [`Limits::max_headers`](super::Limits::max_headers) (431).
    TooManyHeaders,
    /// The request line is not `method SP target SP version` (400).
    MalformedRequestLine,
    /// The method is not a token (400).
    InvalidMethod,
    /// The request target is empty or has a byte no form allows: SP, a control, DEL, or a byte
    /// above 0x7F such as raw UTF-8 (400, RFC 9112 §3.2: the target is a URI, which is ASCII).
    InvalidTarget,
    /// The request target is in none of the four forms of RFC 9112 §3.2, e.g. `foo`, which lacks
    /// the `/` that begins an origin-form (400).
    UnrecognizedTarget,
    /// The asterisk-form `*` with a method other than OPTIONS (400, RFC 9112 §3.2.4).
    AsteriskFormWithoutOptions,
    /// The authority-form `host:port` with a method other than CONNECT (400, RFC 9112 §3.2.3).
    AuthorityFormWithoutConnect,
    /// CONNECT with a target that is not in authority-form (400, RFC 9112 §3.2.3, RFC 9110
    /// §9.3.6).
    ConnectWithoutAuthorityForm,
    /// The version is not `HTTP/DIGIT.DIGIT` (400).
    MalformedVersion,
    /// A well-formed version other than 1.x, or an HTTP/0.9 request line without one (505).
    VersionNotSupported,
    /// A field name is not a token, or has whitespace before the colon, or a line is folded (400).
    InvalidHeaderName,
    /// A field value has a forbidden byte such as NUL or a control (400).
    InvalidHeaderValue,
    /// An HTTP/1.1 request without `Host` (400, RFC 9112 §3.2).
    MissingHost,
    /// More than one `Host` field (400, RFC 9112 §3.2).
    MultipleHost,
    /// A `Host` value that is not `uri-host [ ":" port ]` (400, RFC 9112 §3.2, RFC 9110 §7.2).
    InvalidHost,
    /// `Content-Length` is not `1*DIGIT` or overflows 64 bits (400).
    InvalidContentLength,
    /// Several `Content-Length` values that differ (400, RFC 9112 §6.3 rule 5).
    ConflictingContentLength,
    /// A `Content-Length` above [`Limits::max_request_body`](super::Limits::max_request_body) (413, RFC 9110 §15.5.14), refused
    /// before any of the body is read.
    ContentLengthTooLarge,
    /// `Transfer-Encoding` and `Content-Length` together (400, RFC 9112 §6.1).
    TransferEncodingWithContentLength,
    /// `Transfer-Encoding` in an HTTP/1.0 request (400, RFC 9112 §6.1).
    TransferEncodingInHttp10,
    /// A `Transfer-Encoding` field that names no coding (400).
    EmptyTransferEncoding,
    /// A transfer coding after `chunked`: the body length cannot be determined (400, RFC 9112
    /// §6.3 rule 4, which also requires closing the connection).
    ChunkedNotLast,
    /// `chunked` applied more than once, which RFC 9112 §6.1 forbids a sender to do (400).
    ChunkedTwice,
    /// A transfer coding other than `chunked`, with `chunked` last or absent (501, RFC 9112
    /// §6.1: "a server that receives a request message with a transfer coding it does not
    /// understand SHOULD respond with 501").
    UnsupportedTransferCoding,
}

impl HeadError {
    /// The response status for this error.
    pub fn status(self) -> u16 {
        match self {
            HeadError::RequestLineTooLong => 414,
            HeadError::HeadTooLarge | HeadError::TooManyHeaders => 431,
            HeadError::VersionNotSupported => 505,
            HeadError::ContentLengthTooLarge => 413,
            HeadError::UnsupportedTransferCoding => 501,
            _ => 400,
        }
    }

    /// A short, fixed description, suitable for a log line or an error response body.
    pub fn reason(self) -> &'static str {
        match self {
            HeadError::BareLf => "line ends in a bare LF",
            HeadError::RequestLineTooLong => "request line too long",
            HeadError::HeadTooLarge => "request head too large",
            HeadError::TooManyHeaders => "too many header fields",
            HeadError::MalformedRequestLine => "malformed request line",
            HeadError::InvalidMethod => "invalid method",
            HeadError::InvalidTarget => "invalid request target",
            HeadError::UnrecognizedTarget => "request target in no known form",
            HeadError::AsteriskFormWithoutOptions => "asterisk-form target without OPTIONS",
            HeadError::AuthorityFormWithoutConnect => "authority-form target without CONNECT",
            HeadError::ConnectWithoutAuthorityForm => "CONNECT without an authority-form target",
            HeadError::MalformedVersion => "malformed HTTP version",
            HeadError::VersionNotSupported => "HTTP version not supported",
            HeadError::InvalidHeaderName => "invalid header field name",
            HeadError::InvalidHeaderValue => "invalid header field value",
            HeadError::MissingHost => "missing Host header",
            HeadError::MultipleHost => "more than one Host header",
            HeadError::InvalidHost => "invalid Host header",
            HeadError::InvalidContentLength => "invalid Content-Length",
            HeadError::ConflictingContentLength => "conflicting Content-Length values",
            HeadError::ContentLengthTooLarge => "request body too large",
            HeadError::TransferEncodingWithContentLength => {
                "both Transfer-Encoding and Content-Length"
            }
            HeadError::TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            HeadError::EmptyTransferEncoding => "Transfer-Encoding names no coding",
            HeadError::ChunkedNotLast => "chunked is not the last transfer coding",
            HeadError::ChunkedTwice => "chunked applied more than once",
            HeadError::UnsupportedTransferCoding => "unsupported transfer coding",
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for HeadError {}

/// Why chunked framing was refused. Every variant maps to a status ([`ChunkedError::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkedError {
    /// The chunk size is not hex digits: empty, signed, `0x`, or with whitespace inside (400).
    InvalidSize,
    /// The chunk size does not fit in 64 bits (400).
    SizeOverflow,
    /// The size line (size and extensions) is longer than [`Limits::max_chunk_line`](super::Limits::max_chunk_line) (400).
    LineTooLong,
    /// A chunk extension does not follow RFC 9112 §7.1.1: an empty name or value, whitespace not
    /// next to `;` or `=` (`5 \r\n`), a byte that is not a token or quoted-string byte, or an
    /// unterminated quoted string (400).
    InvalidExtension,
    /// A line ends in a bare LF, or a CR is not followed by LF (400).
    InvalidLineEnding,
    /// Chunk data is not followed by CRLF (400).
    MissingCrlf,
    /// A trailer field line is not `token ":" value` with allowed bytes (400).
    InvalidTrailer,
    /// The trailer section is larger than [`Limits::max_trailers`](super::Limits::max_trailers) (431).
    TrailersTooLarge,
    /// The chunk sizes add up to more than [`Limits::max_request_body`](super::Limits::max_request_body) (413, RFC 9110
    /// §15.5.14), refused when the size of the chunk that passes it is complete, before any of its
    /// data is handed out.
    BodyTooLarge,
}

impl ChunkedError {
    /// The response status for this error.
    pub fn status(self) -> u16 {
        match self {
            ChunkedError::TrailersTooLarge => 431,
            ChunkedError::BodyTooLarge => 413,
            _ => 400,
        }
    }

    /// A short, fixed description.
    pub fn reason(self) -> &'static str {
        match self {
            ChunkedError::InvalidSize => "invalid chunk size",
            ChunkedError::SizeOverflow => "chunk size too large",
            ChunkedError::LineTooLong => "chunk size line too long",
            ChunkedError::InvalidExtension => "invalid chunk extension",
            ChunkedError::InvalidLineEnding => "invalid line ending in chunked body",
            ChunkedError::MissingCrlf => "chunk data not followed by CRLF",
            ChunkedError::InvalidTrailer => "invalid trailer field",
            ChunkedError::TrailersTooLarge => "trailer section too large",
            ChunkedError::BodyTooLarge => "request body too large",
        }
    }
}

/// Why a body was refused. After any of them the connection must close: where the next request
/// begins is no longer known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyError {
    /// The chunked framing is broken (400); the inner error says how.
    Chunked(ChunkedError),
}

impl BodyError {
    /// The response status for this error (if no response has started yet).
    pub fn status(self) -> u16 {
        match self {
            BodyError::Chunked(e) => e.status(),
        }
    }

    /// A short, fixed description.
    pub fn reason(self) -> &'static str {
        match self {
            BodyError::Chunked(e) => e.reason(),
        }
    }
}

impl From<ChunkedError> for BodyError {
    fn from(e: ChunkedError) -> BodyError {
        BodyError::Chunked(e)
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for BodyError {}
/// Any error from the detectors, for a connection that handles them the same way: answer with
/// [`Error::status`] if nothing has been sent yet, then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The head was refused.
    Head(HeadError),
    /// The body was refused.
    Body(BodyError),
}

impl Error {
    /// The response status for this error.
    pub fn status(self) -> u16 {
        match self {
            Error::Head(e) => e.status(),
            Error::Body(e) => e.status(),
        }
    }

    /// A short, fixed description.
    pub fn reason(self) -> &'static str {
        match self {
            Error::Head(e) => e.reason(),
            Error::Body(e) => e.reason(),
        }
    }
}

impl From<HeadError> for Error {
    fn from(e: HeadError) -> Error {
        Error::Head(e)
    }
}

impl From<BodyError> for Error {
    fn from(e: BodyError) -> Error {
        Error::Body(e)
    }
}

impl From<ChunkedError> for Error {
    fn from(e: ChunkedError) -> Error {
        Error::Body(BodyError::Chunked(e))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for Error {}
