//! Lengths: the `Content-Length` digits (one parser for requests, responses and application
//! headers alike) and the decoder of a body of known length.

use executor::Step;

use super::event::{BodyEvent, Trailers};

/// Parses a `Content-Length` value, `1*DIGIT` (RFC 9110 §8.6), into a `u64`: no sign, no
/// whitespace, no empty string, no overflow (`u64::from_str` would accept a leading `+`). The
/// one parser of such digits in the crate: request framing, the response head of an upstream,
/// and the length an application declares all use it.
#[inline]
pub fn parse_content_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

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

    /// See [`BodyDecoder::decode`](super::BodyDecoder::decode); a length body cannot be malformed.
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
