//! Request-body decoding: [`BodyDecoder`] turns the bytes after a head into [`BodyEvent`]s, for a
//! `Content-Length` body ([`LengthDecoder`], here) or a chunked one
//! ([`ChunkedDecoder`]).
//!
//! Both speak the same events, so a handler reads every body the same way: `ChunkStart` with the
//! declared size and the first data in the buffer, `Data` for the rest as it arrives, and `End`.
//! A decoder never hands out a byte past the end of the body: whatever follows is the next
//! pipelined request.

use asycamore_executor::Step;

use super::Limits;
use super::chunked::{ChunkedDecoder, ChunkedError, Trailers};
use super::framing::BodyFraming;

/// One thing a body decoder found, borrowing from the buffer it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEvent<'b> {
    /// A chunk (or the whole `Content-Length` body) begins: its declared size, and the first of its
    /// data that is already in the buffer (possibly empty, never more than `size`).
    ChunkStart {
        /// The declared size in bytes.
        size: u64,
        /// The first data of the chunk.
        data: &'b [u8],
    },
    /// More data of the current chunk (never empty).
    Data(&'b [u8]),
    /// The body is complete; a chunked body's trailer fields come with it (RFC 9112 §7.1.2).
    End {
        /// The trailer section (empty for a `Content-Length` body).
        trailers: Trailers<'b>,
    },
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

/// Where a `Content-Length` body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LengthState {
    /// Nothing handed out yet; the body is this long.
    Start(u64),
    /// `ChunkStart` was handed out; this many bytes are still to come (0: `End` is next).
    Body(u64),
    /// `End` was handed out.
    Done,
}

/// Decodes a body of known length: `ChunkStart { size: n, data }`, `Data`…, `End`. An empty body
/// is `End` at once.
#[derive(Debug, Clone)]
pub struct LengthDecoder {
    state: LengthState,
}

impl LengthDecoder {
    /// A decoder for a body of `len` bytes.
    pub fn new(len: u64) -> LengthDecoder {
        LengthDecoder {
            state: LengthState::Start(len),
        }
    }

    /// Bytes of the body not yet handed out.
    pub fn remaining(&self) -> u64 {
        match self.state {
            LengthState::Start(n) | LengthState::Body(n) => n,
            LengthState::Done => 0,
        }
    }

    /// See [`BodyDecoder::decode`]; a length body cannot be malformed.
    pub fn decode<'b>(&mut self, buf: &'b [u8]) -> (usize, Step<BodyEvent<'b>>) {
        match self.state {
            LengthState::Start(0) | LengthState::Body(0) | LengthState::Done => {
                self.state = LengthState::Done;
                (
                    0,
                    Step::Ready(BodyEvent::End {
                        trailers: Trailers::empty(),
                    }),
                )
            }
            LengthState::Start(size) => {
                let data = take(buf, size);
                self.state = LengthState::Body(size - data.len() as u64);
                (
                    data.len(),
                    Step::Ready(BodyEvent::ChunkStart { size, data }),
                )
            }
            LengthState::Body(remaining) => {
                if buf.is_empty() {
                    return (0, Step::WouldBlock);
                }
                let data = take(buf, remaining);
                self.state = LengthState::Body(remaining - data.len() as u64);
                (data.len(), Step::Ready(BodyEvent::Data(data)))
            }
        }
    }

    /// True once `End` has been handed out.
    pub fn is_done(&self) -> bool {
        self.state == LengthState::Done
    }
}

/// The first `at_most` bytes of `buf` (all of it if shorter).
#[inline]
pub(crate) fn take(buf: &[u8], at_most: u64) -> &[u8] {
    let n = usize::try_from(at_most).map_or(buf.len(), |m| m.min(buf.len()));
    &buf[..n]
}

/// Which decoder a body needs.
#[derive(Debug, Clone)]
enum Decoder {
    /// `Content-Length`, or no body (length 0).
    Length(LengthDecoder),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedDecoder),
}

/// Decodes one request body, whatever its framing; a coroutine over bytes that does no I/O.
///
/// ```
/// use asycamore::detect::{BodyDecoder, BodyEvent, BodyFraming, Limits};
/// use asycamore::executor::Step;
///
/// let mut body = BodyDecoder::new(BodyFraming::Chunked, &Limits::default());
/// let buf = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
/// let (n, step) = body.decode(buf).unwrap();
/// assert_eq!(step, Step::Ready(BodyEvent::ChunkStart { size: 3, data: b"abc" }));
/// let (m, step) = body.decode(&buf[n..]).unwrap();
/// assert!(matches!(step, Step::Ready(BodyEvent::End { .. })));
/// assert_eq!(&buf[n + m..], b"GET / HTTP/1.1\r\n");
/// assert!(body.is_done());
/// ```
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    decoder: Decoder,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing` (from [`RequestHead::framing`](super::RequestHead::framing)).
    pub fn new(framing: BodyFraming, limits: &Limits) -> BodyDecoder {
        let decoder = match framing {
            BodyFraming::None => Decoder::Length(LengthDecoder::new(0)),
            BodyFraming::Length(n) => Decoder::Length(LengthDecoder::new(n)),
            BodyFraming::Chunked => Decoder::Chunked(ChunkedDecoder::new(limits)),
        };
        BodyDecoder { decoder }
    }

    /// Decodes from the start of `buf`, the unconsumed bytes after the head (or after what earlier
    /// calls consumed).
    ///
    /// Returns how many bytes of `buf` were consumed, which the caller must drop from the front of
    /// its buffer before the next call, and the next event, or `WouldBlock` if more bytes are
    /// needed (bytes may have been consumed even then: a chunk-size line is absorbed into the
    /// decoder's state as it arrives). One event per call. After `End`, the remaining bytes belong
    /// to the next request; calling again returns `End` again and consumes nothing.
    ///
    /// # Errors
    /// A [`BodyError`] when the framing is broken; the connection must close.
    pub fn decode<'b>(&mut self, buf: &'b [u8]) -> Result<(usize, Step<BodyEvent<'b>>), BodyError> {
        match &mut self.decoder {
            Decoder::Length(d) => Ok(d.decode(buf)),
            Decoder::Chunked(d) => d.decode(buf).map_err(BodyError::from),
        }
    }

    /// True once `End` has been handed out.
    pub fn is_done(&self) -> bool {
        match &self.decoder {
            Decoder::Length(d) => d.is_done(),
            Decoder::Chunked(d) => d.is_done(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_events() {
        let mut d = LengthDecoder::new(5);
        assert_eq!(
            d.decode(b"ab"),
            (
                2,
                Step::Ready(BodyEvent::ChunkStart {
                    size: 5,
                    data: b"ab"
                })
            )
        );
        assert_eq!(d.decode(b""), (0, Step::WouldBlock));
        assert_eq!(
            d.decode(b"cdeGET"),
            (3, Step::Ready(BodyEvent::Data(b"cde")))
        );
        assert!(!d.is_done());
        assert!(matches!(
            d.decode(b"GET"),
            (0, Step::Ready(BodyEvent::End { .. }))
        ));
        assert!(d.is_done());
    }

    #[test]
    fn empty_length_ends_at_once() {
        let mut d = LengthDecoder::new(0);
        assert!(matches!(
            d.decode(b"x"),
            (0, Step::Ready(BodyEvent::End { .. }))
        ));
        assert!(d.is_done());
    }
}
