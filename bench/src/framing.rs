//! Response framing for the clients: where one HTTP/1.1 response ends, checked strictly.
//!
//! [`ResponseDetector`] is a pure detector in the style of the server's `detect` module: it consumes
//! bytes from the front of a buffer and answers [`Step::Ready`] with a finished [`Response`],
//! [`Step::WouldBlock`] when it needs more bytes (having consumed what it could keep), or a typed
//! [`FramingError`]. It does no I/O, so every split point can be tested.
//!
//! The head is found with one memmem scan that resumes three bytes before where the last one stopped,
//! then parsed with httparse; the body length follows RFC 9112 §6.3: no body for 1xx, 204 and 304;
//! chunked when `Transfer-Encoding` ends in `chunked`; otherwise `Content-Length` (digits only,
//! duplicates must agree); otherwise the body runs until the connection closes.
//!
//! **Kept apart from the server's own response-head detector on purpose.** The bench tools check
//! the server (and its peers) from outside: if they framed responses with `asycamore::detect`, a
//! framing bug there would agree with itself and pass unseen. So this parser is written separately,
//! on httparse, and the two disagreeing is a finding.

use asycamore::executor::Step;
use memchr::memmem;

/// Largest response head accepted, in bytes; a longer one is malformed (no server we test sends
/// more than a few hundred bytes).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields parsed in one response head.
pub const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (size, extensions and CRLF), in bytes.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section after the last chunk, in bytes.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// Why a response is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// The status line or a header line does not parse (httparse's verdict).
    Head,
    /// The head is longer than [`MAX_HEAD`].
    HeadTooLong,
    /// `Content-Length` is not all digits, overflows, or disagrees with another one.
    ContentLength,
    /// `Transfer-Encoding` is present but does not end with `chunked`.
    TransferEncoding,
    /// A chunk-size line is not hex digits (with optional extensions) ending in CRLF, or overflows.
    ChunkSize,
    /// The CRLF after a chunk's data is missing.
    ChunkData,
    /// The trailer section is malformed or longer than [`MAX_TRAILERS`].
    Trailers,
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FramingError::Head => "unparsable status line or header",
            FramingError::HeadTooLong => "response head too long",
            FramingError::ContentLength => "bad Content-Length",
            FramingError::TransferEncoding => "Transfer-Encoding without final chunked",
            FramingError::ChunkSize => "bad chunk-size line",
            FramingError::ChunkData => "missing CRLF after chunk data",
            FramingError::Trailers => "bad trailer section",
        })
    }
}

impl std::error::Error for FramingError {}

/// One complete response, as much as the clients need of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Body bytes (after removing chunked framing).
    pub body_len: u64,
    /// True if the server will close the connection after this response (`Connection: close`, or
    /// HTTP/1.0 without keep-alive, or a body delimited by the close).
    pub close: bool,
}

/// How the body of the current response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// `remaining` more bytes follow.
    Length(u64),
    /// Chunked; the decoder is in this state.
    Chunked(Chunk),
    /// Everything until the connection closes.
    UntilClose,
}

/// Where the chunked decoder is (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex chunk size; `digits` so far and the value.
    Size { digits: u32, size: u64 },
    /// Skipping a chunk extension up to CR, `len` bytes of the line so far.
    Extension { size: u64, len: usize },
    /// Expecting the LF that ends the chunk-size line.
    SizeLf { size: u64 },
    /// Reading `remaining` bytes of chunk data.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// After the last chunk: at the start of a trailer line (or the final CRLF); `len` trailer
    /// bytes so far.
    TrailerStart { len: usize },
    /// Inside a trailer line.
    TrailerLine { len: usize },
    /// Expecting the LF ending a trailer line.
    TrailerLf { len: usize },
    /// Expecting the LF of the final empty line.
    EndLf,
}

/// Where the detector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the end of the head; the next scan starts at `scanned`.
    Head { scanned: usize },
    /// Inside the body of a response whose head said `status` and `close`.
    Body {
        /// Status of the response being read.
        status: u16,
        /// Whether the connection closes after it.
        close: bool,
        /// Body bytes seen so far.
        seen: u64,
        /// How the body ends.
        body: Body,
    },
}

/// Finds response boundaries in a byte stream; see the module docs.
pub struct ResponseDetector {
    state: State,
    finder: memmem::Finder<'static>,
}

impl Default for ResponseDetector {
    fn default() -> Self {
        ResponseDetector::new()
    }
}

impl ResponseDetector {
    /// A detector at the start of a response.
    pub fn new() -> ResponseDetector {
        ResponseDetector {
            state: State::Head { scanned: 0 },
            finder: memmem::Finder::new(b"\r\n\r\n"),
        }
    }

    /// True when no byte of a response has been consumed (between responses).
    pub fn is_idle(&self) -> bool {
        self.state == State::Head { scanned: 0 }
    }

    /// Consumes bytes from the front of `input`, adding how many to `*consumed`. Returns a finished
    /// response, or `WouldBlock` if more bytes are needed (all of `input` that could be kept was
    /// consumed; an incomplete head is left in place and remembered as scanned).
    ///
    /// # Errors
    /// A [`FramingError`] as soon as a bad byte is seen; the stream is unusable after it.
    pub fn advance(
        &mut self,
        input: &[u8],
        consumed: &mut usize,
    ) -> Result<Step<Response>, FramingError> {
        let mut at = 0;
        let result = self.advance_inner(input, &mut at);
        *consumed += at;
        result
    }

    fn advance_inner(
        &mut self,
        input: &[u8],
        at: &mut usize,
    ) -> Result<Step<Response>, FramingError> {
        loop {
            match self.state {
                State::Head { scanned } => {
                    let from = scanned.saturating_sub(3);
                    let Some(end) = self.finder.find(&input[from..]).map(|i| from + i + 4) else {
                        if input.len() > MAX_HEAD {
                            return Err(FramingError::HeadTooLong);
                        }
                        self.state = State::Head {
                            scanned: input.len(),
                        };
                        return Ok(Step::WouldBlock);
                    };
                    if end > MAX_HEAD {
                        return Err(FramingError::HeadTooLong);
                    }
                    let (status, close, body) = parse_head(&input[..end])?;
                    *at = end;
                    self.state = State::Body {
                        status,
                        close,
                        seen: 0,
                        body,
                    };
                }
                State::Body {
                    status,
                    close,
                    ref mut seen,
                    ref mut body,
                } => {
                    let rest = &input[*at..];
                    match body {
                        Body::Length(remaining) => {
                            let take = (*remaining).min(rest.len() as u64);
                            *remaining -= take;
                            *seen += take;
                            *at += take as usize;
                            if *remaining > 0 {
                                return Ok(Step::WouldBlock);
                            }
                        }
                        Body::UntilClose => {
                            *seen += rest.len() as u64;
                            *at += rest.len();
                            return Ok(Step::WouldBlock);
                        }
                        Body::Chunked(chunk) => {
                            let mut used = 0;
                            let done = decode_chunked(chunk, rest, &mut used, seen)?;
                            *at += used;
                            if !done {
                                return Ok(Step::WouldBlock);
                            }
                        }
                    }
                    let response = Response {
                        status,
                        body_len: *seen,
                        close,
                    };
                    self.state = State::Head { scanned: 0 };
                    return Ok(Step::Ready(response));
                }
            }
        }
    }

    /// Tells the detector the peer closed the connection: a body delimited by the close ends
    /// here (`Some`); anything else was cut short (`None`), unless nothing had started.
    pub fn finish(&mut self) -> Option<Response> {
        match std::mem::replace(&mut self.state, State::Head { scanned: 0 }) {
            State::Body {
                status,
                seen,
                body: Body::UntilClose,
                ..
            } => Some(Response {
                status,
                body_len: seen,
                close: true,
            }),
            _ => None,
        }
    }
}

/// Parses a complete head; returns the status, whether the connection closes after the response,
/// and how its body is delimited.
fn parse_head(head: &[u8]) -> Result<(u16, bool, Body), FramingError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => return Err(FramingError::Head),
    }
    let status = parsed.code.ok_or(FramingError::Head)?;
    let version = parsed.version.ok_or(FramingError::Head)?;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut has_te = false;
    let mut close = version == 0;
    for header in parsed.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = digits(header.value).ok_or(FramingError::ContentLength)?;
            // RFC 9112 §6.3 item 5: several Content-Length values must all agree.
            if content_length.is_some_and(|v| v != value) {
                return Err(FramingError::ContentLength);
            }
            content_length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_te = true;
            // RFC 9112 §6.3 item 4: chunked must be the final coding.
            let last = header.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    close = false;
                }
            }
        }
    }
    // RFC 9112 §6.3 item 1: 1xx, 204 and 304 have no body whatever the headers say.
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok((status, close, Body::Length(0)));
    }
    let body = if has_te {
        if !chunked {
            // RFC 9112 §6.3 item 4: a response body whose final coding is not chunked is
            // delimited by the close.
            return Err(FramingError::TransferEncoding);
        }
        Body::Chunked(Chunk::Size { digits: 0, size: 0 })
    } else if let Some(n) = content_length {
        Body::Length(n)
    } else {
        close = true;
        Body::UntilClose
    };
    Ok((status, close, body))
}

/// A Content-Length value: ASCII digits only (no sign, no spaces), fitting a `u64`.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Advances the chunked decoder over `input`; returns true at the end of the message. `used` says
/// how many bytes were consumed, `seen` counts data bytes.
fn decode_chunked(
    chunk: &mut Chunk,
    input: &[u8],
    used: &mut usize,
    seen: &mut u64,
) -> Result<bool, FramingError> {
    while *used < input.len() {
        let b = input[*used];
        *chunk = match *chunk {
            Chunk::Size { digits, size } => match hex(b) {
                Some(v) => {
                    let size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(v)))
                        .ok_or(FramingError::ChunkSize)?;
                    Chunk::Size {
                        digits: digits + 1,
                        size,
                    }
                }
                None if digits == 0 => return Err(FramingError::ChunkSize),
                None if b == b'\r' => Chunk::SizeLf { size },
                None if b == b';' || b == b' ' || b == b'\t' => Chunk::Extension {
                    size,
                    len: digits as usize + 1,
                },
                None => return Err(FramingError::ChunkSize),
            },
            Chunk::Extension { size, len } => {
                if len >= MAX_CHUNK_LINE || b == b'\n' {
                    return Err(FramingError::ChunkSize);
                }
                if b == b'\r' {
                    Chunk::SizeLf { size }
                } else {
                    Chunk::Extension { size, len: len + 1 }
                }
            }
            Chunk::SizeLf { size } => match (b, size) {
                (b'\n', 0) => Chunk::TrailerStart { len: 0 },
                (b'\n', remaining) => Chunk::Data { remaining },
                _ => return Err(FramingError::ChunkSize),
            },
            Chunk::Data { remaining } => {
                let take = remaining.min((input.len() - *used) as u64);
                *seen += take;
                *used += take as usize;
                *chunk = if take == remaining {
                    Chunk::DataCr
                } else {
                    Chunk::Data {
                        remaining: remaining - take,
                    }
                };
                continue;
            }
            Chunk::DataCr if b == b'\r' => Chunk::DataLf,
            Chunk::DataLf if b == b'\n' => Chunk::Size { digits: 0, size: 0 },
            Chunk::DataCr | Chunk::DataLf => return Err(FramingError::ChunkData),
            Chunk::TrailerStart { len } => match b {
                b'\r' => Chunk::EndLf,
                b'\n' => return Err(FramingError::Trailers),
                _ => Chunk::TrailerLine { len: len + 1 },
            },
            Chunk::TrailerLine { len } => {
                if len >= MAX_TRAILERS || b == b'\n' {
                    return Err(FramingError::Trailers);
                }
                if b == b'\r' {
                    Chunk::TrailerLf { len: len + 1 }
                } else {
                    Chunk::TrailerLine { len: len + 1 }
                }
            }
            Chunk::TrailerLf { len } if b == b'\n' => Chunk::TrailerStart { len: len + 1 },
            Chunk::TrailerLf { .. } => return Err(FramingError::Trailers),
            Chunk::EndLf if b == b'\n' => {
                *used += 1;
                return Ok(true);
            }
            Chunk::EndLf => return Err(FramingError::Trailers),
        };
        *used += 1;
    }
    Ok(false)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at `split` the way a client does (consumed bytes are dropped, the rest
    /// stays); returns the responses and the first error.
    fn feed(input: &[u8], split: usize) -> (Vec<Response>, Option<FramingError>) {
        let mut detector = ResponseDetector::new();
        let mut buffer = Vec::new();
        let mut out = Vec::new();
        for piece in [&input[..split], &input[split..]] {
            buffer.extend_from_slice(piece);
            loop {
                let mut consumed = 0;
                let step = detector.advance(&buffer, &mut consumed);
                buffer.drain(..consumed);
                match step {
                    Ok(Step::Ready(r)) => out.push(r),
                    Ok(Step::WouldBlock) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }

    #[track_caller]
    fn at_every_split(input: &[u8], expected: &[Response], error: Option<FramingError>) {
        for split in 0..=input.len() {
            let (got, err) = feed(input, split);
            assert_eq!(got, expected, "split at {split}");
            assert_eq!(err, error, "split at {split}");
        }
    }

    fn ok(status: u16, body_len: u64) -> Response {
        Response {
            status,
            body_len,
            close: false,
        }
    }

    #[test]
    fn content_length_responses_back_to_back() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!\
HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        at_every_split(input, &[ok(200, 13), ok(404, 0)], None);
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
5;x=y\r\nHello\r\n8\r\n, World!\r\n0\r\nX-Sum: 1\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n";
        at_every_split(input, &[ok(200, 13), ok(204, 0)], None);
    }

    #[test]
    fn broken_chunked_bodies_are_errors() {
        let cases: [(&[u8], FramingError); 5] = [
            (b"zz\r\n", FramingError::ChunkSize),
            (b"5\r\nHelloXX", FramingError::ChunkData),
            (b"5\nHello\r\n", FramingError::ChunkSize),
            (b"ffffffffffffffffff\r\n", FramingError::ChunkSize),
            (b"0\r\nbad\n", FramingError::Trailers),
        ];
        for (body, error) in cases {
            let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            input.extend_from_slice(body);
            at_every_split(&input, &[], Some(error));
        }
    }

    #[test]
    fn bad_heads_and_lengths_are_errors() {
        let cases: [(&[u8], FramingError); 5] = [
            (b"HTTP/1.1 2x0 OK\r\n\r\n", FramingError::Head),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
                FramingError::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                FramingError::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                FramingError::TransferEncoding,
            ),
            (b"garbage\r\n\r\n", FramingError::Head),
        ];
        for (input, error) in cases {
            at_every_split(input, &[], Some(error));
        }
    }

    #[test]
    fn connection_close_and_http10() {
        let (got, err) = feed(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            0,
        );
        assert_eq!(err, None);
        assert!(got[0].close);
        let (got, _) = feed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
        assert!(got[0].close);
        let (got, _) = feed(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            0,
        );
        assert!(!got[0].close);
    }

    #[test]
    fn body_until_close_ends_at_finish() {
        let mut detector = ResponseDetector::new();
        let input = b"HTTP/1.1 200 OK\r\n\r\nabc";
        let mut consumed = 0;
        assert_eq!(detector.advance(input, &mut consumed), Ok(Step::WouldBlock));
        assert_eq!(consumed, input.len());
        assert_eq!(
            detector.finish(),
            Some(Response {
                status: 200,
                body_len: 3,
                close: true
            })
        );
    }
}
