//! The end and the meaning of a response head, for a server that talks to another server (the
//! demo proxy): [`ResponseHeadDetector`], resumable, strict and borrowing like the request-head
//! detector, and the framing of the body that follows (RFC 9112 §6.3, [`ResponseFraming`]).
//!
//! It answers in the detectors' one shape: `(0, WouldBlock)` until the whole head is there (the
//! scan for its end resumes where it stopped, so a head arriving byte by byte is scanned once),
//! then `(n, Ready(()))` with the head parsed into a [`ResponseHead`] of offsets into `buf[..n]`.
//!
//! The load tool in `bench/` reads responses with a parser of its own on purpose: it checks the
//! server from outside, so it shares none of the server's code.

use executor::Step;

use super::length::parse_content_length;
use super::span::Span;
use super::syntax::{eq_lowercase, list_elements};

/// Most fields in a response head the detector accepts.
pub const MAX_RESPONSE_FIELDS: usize = 100;

/// Largest response head, in bytes.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Why a response head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseError {
    /// Not a response head httparse accepts (a bad status line or field line).
    Malformed,
    /// Larger than [`MAX_RESPONSE_HEAD`], or more than [`MAX_RESPONSE_FIELDS`] fields.
    TooLarge,
    /// A `Content-Length` that is not digits, or several that disagree (RFC 9112 §6.3 rule 5).
    BadLength,
    /// A field value that is not text (a proxy passes fields on as `&str`).
    NotText,
}

impl ResponseError {
    /// A short, fixed description.
    pub fn reason(self) -> &'static str {
        match self {
            ResponseError::Malformed => "malformed response head",
            ResponseError::TooLarge => "response head too large",
            ResponseError::BadLength => "invalid or conflicting Content-Length in a response",
            ResponseError::NotText => "response field value that is not text",
        }
    }
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ResponseError {}

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseFraming {
    /// No body: a response to HEAD, a 1xx, 204 or 304 (rules 1–2).
    None,
    /// Chunked (rule 4, `chunked` last).
    Chunked,
    /// Exactly this many bytes (rule 6).
    Length(u64),
    /// Until the server closes (rules 4 and 8: another coding last, or no length at all).
    UntilClose,
}

/// A parsed response head: offsets into the buffer it was parsed from, reused from one response
/// to the next (the field list keeps its allocation).
#[derive(Debug, Clone, Default)]
pub struct ResponseHead {
    status: u16,
    http10: bool,
    fields: Vec<(Span, Span)>,
    framing: Option<ResponseFraming>,
    close: bool,
    len: usize,
}

impl ResponseHead {
    /// An empty head, to be filled by [`ResponseHeadDetector::detect`].
    pub fn new() -> ResponseHead {
        ResponseHead::default()
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// True for an interim (1xx) response, which another head follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// How the body is delimited.
    pub fn framing(&self) -> ResponseFraming {
        self.framing.unwrap_or(ResponseFraming::UntilClose)
    }

    /// True if the server will close the connection after this response: it said `close`, or
    /// it is HTTP/1.0 without `keep-alive`, or the body runs to the close.
    pub fn closes(&self) -> bool {
        self.close || self.framing() == ResponseFraming::UntilClose
    }

    /// The head's length in bytes: the `n` of the `(n, Ready(()))` that filled it.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing has been parsed into this head yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The fields in order as `(name, value)`, the value trimmed; both are text (checked).
    pub fn headers<'s, 'b>(&'s self, buf: &'b [u8]) -> impl Iterator<Item = (&'b str, &'b str)> + 's
    where
        'b: 's,
    {
        self.fields.iter().map(move |&(name, value)| {
            (
                std::str::from_utf8(name.of(buf)).unwrap_or_default(),
                std::str::from_utf8(value.of(buf)).unwrap_or_default(),
            )
        })
    }
}

/// Finds and parses response heads, one after another on a connection.
#[derive(Debug, Default)]
pub struct ResponseHeadDetector {
    /// Bytes of the current head already scanned for its end.
    scanned: usize,
}

impl ResponseHeadDetector {
    /// A detector at the start of a head.
    pub fn new() -> ResponseHeadDetector {
        ResponseHeadDetector::default()
    }

    /// Looks for a complete response head at the start of `buf` (which must begin at the same
    /// byte on every call for one head, and grow). `request_was_head` says whether the request
    /// was HEAD, whose response has no body (RFC 9112 §6.3 rule 1).
    ///
    /// # Errors
    /// A [`ResponseError`] once the bytes are enough to know the head is bad or too large.
    pub fn detect(
        &mut self,
        buf: &[u8],
        head: &mut ResponseHead,
        request_was_head: bool,
    ) -> Result<(usize, Step<()>), ResponseError> {
        let from = self.scanned.saturating_sub(3).min(buf.len());
        let Some(end) = memchr::memmem::find(&buf[from..], b"\r\n\r\n").map(|i| from + i + 4)
        else {
            if buf.len() > MAX_RESPONSE_HEAD {
                return Err(ResponseError::TooLarge);
            }
            self.scanned = buf.len();
            return Ok((0, Step::WouldBlock));
        };
        self.scanned = 0;
        if end > MAX_RESPONSE_HEAD {
            return Err(ResponseError::TooLarge);
        }
        parse(&buf[..end], head, request_was_head)?;
        Ok((end, Step::Ready(())))
    }
}

/// Parses the complete head `buf` into `head`.
fn parse(buf: &[u8], head: &mut ResponseHead, request_was_head: bool) -> Result<(), ResponseError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_RESPONSE_FIELDS];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n == buf.len() => {}
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooLarge),
        _ => return Err(ResponseError::Malformed),
    }
    let status = response.code.unwrap_or(0);
    let http10 = response.version == Some(0);
    head.fields.clear();
    let (mut length, mut chunked, mut coded, mut close, mut keep_alive) =
        (None, false, false, false, false);
    let span = |s: &[u8]| Span::within(buf, s);
    for field in response.headers.iter() {
        let (name, value) = (field.name.as_bytes(), field.value.trim_ascii());
        if std::str::from_utf8(value).is_err() {
            return Err(ResponseError::NotText);
        }
        if eq_lowercase(name, b"content-length") {
            let n = parse_content_length(value).ok_or(ResponseError::BadLength)?;
            if length.is_some_and(|m| m != n) {
                return Err(ResponseError::BadLength);
            }
            length = Some(n);
        } else if eq_lowercase(name, b"transfer-encoding") {
            for coding in list_elements(value) {
                // Only the last coding decides (RFC 9112 §6.3 rule 4).
                chunked = coding.eq_ignore_ascii_case(b"chunked");
                coded = true;
            }
        } else if eq_lowercase(name, b"connection") {
            for option in list_elements(value) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        head.fields.push((span(name), span(value)));
    }
    let no_body =
        request_was_head || (100..200).contains(&status) || status == 204 || status == 304;
    head.framing = Some(if no_body {
        ResponseFraming::None
    } else if coded {
        if chunked {
            ResponseFraming::Chunked
        } else {
            ResponseFraming::UntilClose
        }
    } else if let Some(n) = length {
        ResponseFraming::Length(n)
    } else {
        ResponseFraming::UntilClose
    });
    head.status = status;
    head.http10 = http10;
    head.close = close || (http10 && !keep_alive);
    head.len = buf.len();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(buf: &[u8], was_head: bool) -> Result<(usize, ResponseHead), ResponseError> {
        let mut head = ResponseHead::new();
        let mut d = ResponseHeadDetector::new();
        for end in 0..buf.len() {
            if let (n, Step::Ready(())) = d.detect(&buf[..end], &mut head, was_head)? {
                return Ok((n, head));
            }
        }
        match d.detect(buf, &mut head, was_head)? {
            (n, Step::Ready(())) => Ok((n, head)),
            (_, Step::WouldBlock) => panic!("incomplete: {buf:?}"),
        }
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3_at_every_split() {
        let cases: [(&[u8], bool, ResponseFraming, bool); 7] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                false,
                ResponseFraming::Length(5),
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
                false,
                ResponseFraming::Chunked,
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                false,
                ResponseFraming::UntilClose,
                true,
            ),
            (
                b"HTTP/1.0 200 OK\r\n\r\n",
                false,
                ResponseFraming::UntilClose,
                true,
            ),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                false,
                ResponseFraming::Length(0),
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
                true,
                ResponseFraming::None,
                true,
            ),
            (
                b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                false,
                ResponseFraming::None,
                false,
            ),
        ];
        for (buf, was_head, framing, closes) in cases {
            let (n, head) = parse_all(buf, was_head).unwrap();
            assert_eq!(n, buf.len());
            assert_eq!(
                head.framing(),
                framing,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
            assert_eq!(head.closes(), closes, "{:?}", String::from_utf8_lossy(buf));
        }
        let (_, head) = parse_all(
            b"HTTP/1.1 404 Not Found\r\nX-A:  1 \r\nY: two\r\n\r\nbody",
            false,
        )
        .unwrap();
        let buf = b"HTTP/1.1 404 Not Found\r\nX-A:  1 \r\nY: two\r\n\r\nbody";
        assert_eq!(head.status(), 404);
        assert_eq!(
            head.headers(buf).collect::<Vec<_>>(),
            [("X-A", "1"), ("Y", "two")]
        );
    }

    #[test]
    fn bad_heads_are_refused() {
        for (buf, e) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"[..],
                ResponseError::BadLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                ResponseError::BadLength,
            ),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", ResponseError::Malformed),
            (
                b"HTTP/1.1 200 OK\r\nX: \xff\r\n\r\n",
                ResponseError::NotText,
            ),
        ] {
            assert_eq!(
                parse_all(buf, false).unwrap_err(),
                e,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
        let mut d = ResponseHeadDetector::new();
        let big = vec![b'a'; MAX_RESPONSE_HEAD + 1];
        assert_eq!(
            d.detect(&big, &mut ResponseHead::new(), false),
            Err(ResponseError::TooLarge)
        );
    }
}
