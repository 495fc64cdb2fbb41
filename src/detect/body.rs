//! Request-body decoding: [`BodyDecoder`] turns the bytes after a head into [`BodyEvent`]s, for a
//! `Content-Length` body ([`LengthDecoder`], here) or a chunked one
//! ([`ChunkedDecoder`]).
//!
//! Both speak the same events, so a handler reads every body the same way: `ChunkStart` with the
//! declared size and the first data in the buffer, `Data` for the rest as it arrives, and `End`.
//! A decoder never hands out a byte past the end of the body: whatever follows is the next
//! pipelined request.

use executor::Step;

use super::Limits;
use super::chunked::ChunkedDecoder;
use super::error::BodyError;
use super::event::BodyEvent;
use super::framing::BodyFraming;
use super::length::LengthDecoder;

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
