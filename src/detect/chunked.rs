//! The chunked transfer coding (RFC 9112 §7.1): [`ChunkedDecoder`], its states
//! ([`ChunkedState`], after hyper's `decode.rs`), and the [`Trailers`] it delivers at the end.
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-name = token
//! chunk-ext-val  = token / quoted-string
//! ```
//!
//! The size line is taken one byte at a time into the decoder's state, so it may arrive split
//! anywhere and is consumed as it arrives. Chunk data is handed out as slices of the caller's
//! buffer, never copied. The trailer section is the exception: it is delivered as a slice, so it is
//! not consumed until its final empty line has arrived (the scan for it resumes where it stopped);
//! [`Limits::max_trailers`] bounds how much the caller must hold meanwhile.
//!
//! Strictness: the size is hex digits only (no sign, no `0x`, no whitespace inside), at most
//! `u64::MAX`; extensions follow the grammar above exactly (RFC 9112 §7.1.1), so whitespace is
//! allowed only around `;` and `=` (`5 \r\n` and `5;a \r\n` are refused), a name is a non-empty
//! token and a value a non-empty token or a quoted string; extensions are otherwise ignored, but
//! bounded by [`Limits::max_chunk_line`]; a bare LF anywhere in the size line is refused (a known
//! smuggling vector); every line ends in CRLF, and chunk data must be followed by CRLF. The sizes
//! add up to at most [`Limits::max_request_body`], checked when each size is complete, before any
//! of that chunk's data is handed out.

use executor::Step;

use super::Limits;
use super::error::ChunkedError;
use super::event::{BodyEvent, Trailers};
use super::length::take;
use super::syntax::{hex_value, is_tchar, split_field_line};

/// Where a chunked decoder is. The size-line states carry the size so far and the line's length
/// so far (for [`Limits::max_chunk_line`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedState {
    /// Expecting the first hex digit of a chunk size.
    Start,
    /// Inside the hex digits of a chunk size.
    Size {
        /// The size so far.
        size: u64,
        /// Bytes of the size line so far.
        line: usize,
    },
    /// In whitespace after the size (the `BWS` of a chunk extension); only more of it or `;` may
    /// follow.
    SizeLws {
        /// The chunk size.
        size: u64,
        /// Bytes of the size line so far.
        line: usize,
    },
    /// Inside chunk extensions, which are checked and then ignored.
    Extension {
        /// The chunk size.
        size: u64,
        /// Bytes of the size line so far.
        line: usize,
        /// Where in an extension.
        part: ExtensionPart,
    },
    /// After the CR that ends the size line; expecting LF.
    SizeLf {
        /// The chunk size.
        size: u64,
    },
    /// Inside chunk data.
    Body {
        /// Data bytes of this chunk not yet handed out (never 0).
        remaining: u64,
    },
    /// After chunk data; expecting CR.
    BodyCr,
    /// After chunk data and CR; expecting LF.
    BodyLf,
    /// After the last chunk's size line, in the trailer section, which is not consumed until
    /// complete. Offsets are from the start of the section, which is the start of the caller's
    /// buffer on every call after the one that entered this state.
    Trailers {
        /// Where the current trailer line begins.
        line: usize,
        /// Everything before this offset has been looked at.
        scanned: usize,
    },
    /// `End` has been handed out.
    End,
}

/// Where a size line is inside its chunk extensions (RFC 9112 §7.1.1):
/// `*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionPart {
    /// After `;`, in whitespace; a name must follow.
    BeforeName,
    /// Inside a name (a token); it may end the line.
    Name,
    /// In whitespace after a name; only `=` or `;` may follow.
    AfterName,
    /// After `=`, in whitespace; a value must follow.
    BeforeValue,
    /// Inside a token value; it may end the line.
    Token,
    /// Inside a quoted-string value (RFC 9110 §5.6.4).
    Quoted,
    /// After a backslash inside a quoted string; any visible byte, SP or HTAB follows.
    QuotedPair,
    /// Just after a quoted string's closing quote; it may end the line.
    AfterQuoted,
    /// In whitespace after a value; only `;` may follow.
    AfterValue,
}

/// Decodes a chunked body into [`BodyEvent`]s; see [`BodyDecoder`](super::BodyDecoder) for the
/// calling convention. Allocates nothing.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkedState,
    /// The sizes of the chunks begun so far, added up (the body's length so far, as declared).
    declared: u64,
    max_chunk_line: usize,
    max_trailers: usize,
    /// [`Limits::max_request_body`]; 0 is unlimited.
    max_body: u64,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new(limits: &Limits) -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkedState::Start,
            declared: 0,
            max_chunk_line: limits.max_chunk_line,
            max_trailers: limits.max_trailers,
            max_body: limits.max_request_body,
        }
    }

    /// The current state.
    pub fn state(&self) -> ChunkedState {
        self.state
    }

    /// True once `End` has been handed out.
    pub fn is_done(&self) -> bool {
        self.state == ChunkedState::End
    }

    /// Decodes from the start of `buf`: see [`BodyDecoder::decode`](super::BodyDecoder::decode).
    ///
    /// # Errors
    /// A [`ChunkedError`] at the first byte that breaks the framing.
    pub fn decode<'b>(
        &mut self,
        buf: &'b [u8],
    ) -> Result<(usize, Step<BodyEvent<'b>>), ChunkedError> {
        let mut pos = 0;
        loop {
            match self.state {
                ChunkedState::Body { remaining } => {
                    let data = take(&buf[pos..], remaining);
                    if data.is_empty() {
                        return Ok((pos, Step::WouldBlock));
                    }
                    self.state = after_data(remaining, data.len());
                    return Ok((pos + data.len(), Step::Ready(BodyEvent::Data(data))));
                }
                ChunkedState::Trailers { line, scanned } => {
                    return match self.trailers(&buf[pos..], line, scanned)? {
                        Step::Ready(n) => {
                            self.state = ChunkedState::End;
                            let trailers = Trailers::validated(&buf[pos..pos + n - 2]);
                            Ok((pos + n, Step::Ready(BodyEvent::End { trailers })))
                        }
                        Step::WouldBlock => Ok((pos, Step::WouldBlock)),
                    };
                }
                ChunkedState::End => {
                    return Ok((
                        pos,
                        Step::Ready(BodyEvent::End {
                            trailers: Trailers::empty(),
                        }),
                    ));
                }
                _ => {
                    let Some(&b) = buf.get(pos) else {
                        return Ok((pos, Step::WouldBlock));
                    };
                    pos += 1;
                    self.state = self.framing_byte(b)?;
                    if let ChunkedState::Body { remaining: size } = self.state {
                        // The size line just ended: the chunk starts, with whatever data is here.
                        // `framing_byte` admitted the size, so with a limit this cannot overflow;
                        // without one the total is never looked at.
                        self.declared = self.declared.saturating_add(size);
                        let data = take(&buf[pos..], size);
                        self.state = after_data(size, data.len());
                        return Ok((
                            pos + data.len(),
                            Step::Ready(BodyEvent::ChunkStart { size, data }),
                        ));
                    }
                }
            }
        }
    }

    /// One byte of a size line or of the CRLF after chunk data: the next state.
    #[inline]
    fn framing_byte(&self, b: u8) -> Result<ChunkedState, ChunkedError> {
        use ChunkedState::*;
        let next = match (self.state, b) {
            (Start, _) => Size {
                size: u64::from(hex_value(b).ok_or(ChunkedError::InvalidSize)?),
                line: 1,
            },
            (Size { size, line }, _) if hex_value(b).is_some() => {
                let digit = u64::from(hex_value(b).unwrap_or(0));
                let size = size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(ChunkedError::SizeOverflow)?;
                Size {
                    size,
                    line: line + 1,
                }
            }
            // A bare LF anywhere in the size line, before anything else is said about it.
            (Size { .. } | SizeLws { .. } | Extension { .. }, b'\n') => {
                return Err(ChunkedError::InvalidLineEnding);
            }
            // The size is complete once a byte that may follow it arrives: count it now.
            (Size { size, line }, b' ' | b'\t' | b';' | b'\r') => {
                self.admit(size)?;
                match b {
                    b'\r' => SizeLf { size },
                    b';' => Extension {
                        size,
                        line: line + 1,
                        part: ExtensionPart::BeforeName,
                    },
                    _ => SizeLws {
                        size,
                        line: line + 1,
                    },
                }
            }
            (Size { .. }, _) => return Err(ChunkedError::InvalidSize),
            // RFC 9112 §7.1.1: whitespace after the size is the BWS before an extension's `;`.
            (SizeLws { size, line }, b' ' | b'\t') => SizeLws {
                size,
                line: line + 1,
            },
            (SizeLws { size, line }, b';') => Extension {
                size,
                line: line + 1,
                part: ExtensionPart::BeforeName,
            },
            // `5 5`: whitespace inside the size.
            (SizeLws { .. }, _) if hex_value(b).is_some() => return Err(ChunkedError::InvalidSize),
            (SizeLws { .. }, _) => return Err(ChunkedError::InvalidExtension),
            (Extension { size, line, part }, _) => match extension_byte(part, b)? {
                Some(part) => Extension {
                    size,
                    line: line + 1,
                    part,
                },
                None => SizeLf { size },
            },
            (SizeLf { size: 0 }, b'\n') => Trailers {
                line: 0,
                scanned: 0,
            },
            (SizeLf { size }, b'\n') => Body { remaining: size },
            (SizeLf { .. }, _) => return Err(ChunkedError::InvalidLineEnding),
            (BodyCr, b'\r') => BodyLf,
            (BodyLf, b'\n') => Start,
            (BodyCr | BodyLf, _) => return Err(ChunkedError::MissingCrlf),
            (Body { .. } | Trailers { .. } | End, _) => self.state,
        };
        if let Size { line, .. } | SizeLws { line, .. } | Extension { line, .. } = next
            && line > self.max_chunk_line
        {
            return Err(ChunkedError::LineTooLong);
        }
        Ok(next)
    }

    /// Checks that a chunk of `size` bytes keeps the body within [`Limits::max_request_body`].
    #[inline]
    fn admit(&self, size: u64) -> Result<(), ChunkedError> {
        let within = self.max_body == 0
            || self
                .declared
                .checked_add(size)
                .is_some_and(|total| total <= self.max_body);
        if within {
            Ok(())
        } else {
            Err(ChunkedError::BodyTooLarge)
        }
    }

    /// Scans the trailer section at the start of `section`, resuming at `scanned` in the line that
    /// began at `line`. `Ready(n)`: `section[..n]` is the whole section with its final CRLF.
    fn trailers(
        &mut self,
        section: &[u8],
        mut line: usize,
        scanned: usize,
    ) -> Result<Step<usize>, ChunkedError> {
        let mut from = scanned.min(section.len());
        while let Some(lf) = memchr::memchr(b'\n', &section[from..]).map(|i| from + i) {
            // The bytes before the LF first: without it they would already have been too many.
            if lf > self.max_trailers {
                return Err(ChunkedError::TrailersTooLarge);
            }
            if lf == line || section[lf - 1] != b'\r' {
                return Err(ChunkedError::InvalidLineEnding);
            }
            let n = lf + 1;
            if n > self.max_trailers {
                return Err(ChunkedError::TrailersTooLarge);
            }
            if lf - 1 == line {
                return Ok(Step::Ready(n));
            }
            // RFC 9112 §7.1.2: trailer fields have the syntax of header fields; we deliver them
            // (framing fields among them are not used for framing, RFC 9110 §6.5.1).
            if split_field_line(&section[line..lf - 1]).is_none() {
                return Err(ChunkedError::InvalidTrailer);
            }
            line = n;
            from = n;
        }
        if section.len() > self.max_trailers {
            return Err(ChunkedError::TrailersTooLarge);
        }
        self.state = ChunkedState::Trailers {
            line,
            scanned: section.len(),
        };
        Ok(Step::WouldBlock)
    }
}

/// The state after handing out `taken` of `remaining` data bytes.
#[inline]
fn after_data(remaining: u64, taken: usize) -> ChunkedState {
    match remaining - taken as u64 {
        0 => ChunkedState::BodyCr,
        remaining => ChunkedState::Body { remaining },
    }
}

/// One byte of a chunk extension (RFC 9112 §7.1.1), in `part` of it: the next part, or `None` if
/// the byte is the CR that ends the size line. A bare LF has been refused already.
#[inline]
fn extension_byte(part: ExtensionPart, b: u8) -> Result<Option<ExtensionPart>, ChunkedError> {
    use ExtensionPart::*;
    let next = match (part, b) {
        (Name | Token | AfterQuoted, b'\r') => return Ok(None),
        (BeforeName | AfterName | BeforeValue | AfterValue, b' ' | b'\t') => part,
        (Name, b' ' | b'\t') => AfterName,
        (Token | AfterQuoted, b' ' | b'\t') => AfterValue,
        (Name | AfterName | Token | AfterQuoted | AfterValue, b';') => BeforeName,
        (Name | AfterName, b'=') => BeforeValue,
        (BeforeName | Name, _) if is_tchar(b) => Name,
        (BeforeValue | Token, _) if is_tchar(b) => Token,
        (BeforeValue, b'"') => Quoted,
        // RFC 9110 §5.6.4: qdtext is HTAB, SP, VCHAR except `"` and `\`, and obs-text.
        (Quoted, b'"') => AfterQuoted,
        (Quoted, b'\\') => QuotedPair,
        (Quoted | QuotedPair, b'\t' | b' '..=0x7e | 0x80..=0xff) => Quoted,
        _ => return Err(ChunkedError::InvalidExtension),
    };
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> ChunkedDecoder {
        ChunkedDecoder::new(&Limits::default())
    }

    #[test]
    fn one_chunk_then_trailers() {
        let mut d = decoder();
        let buf = b"4;a=b\r\nwiki\r\n0\r\nX-Sum: 1 \r\n\r\nNEXT";
        let (n, step) = d.decode(buf).unwrap();
        assert_eq!(
            step,
            Step::Ready(BodyEvent::ChunkStart {
                size: 4,
                data: b"wiki"
            })
        );
        let (m, step) = d.decode(&buf[n..]).unwrap();
        let Step::Ready(BodyEvent::End { trailers }) = step else {
            panic!("{step:?}")
        };
        assert_eq!(trailers.iter().collect::<Vec<_>>(), [("X-Sum", &b"1"[..])]);
        assert_eq!(trailers.get("x-sum"), Some(&b"1"[..]));
        assert_eq!(&buf[n + m..], b"NEXT");
        assert!(d.is_done());
    }

    #[test]
    fn body_limit_total_cannot_overflow() {
        // With the largest limit, a total past u64::MAX is refused, not wrapped.
        let limits = Limits {
            max_request_body: u64::MAX,
            ..Limits::default()
        };
        let mut d = ChunkedDecoder::new(&limits);
        d.declared = u64::MAX - 1;
        assert_eq!(d.admit(1), Ok(()));
        assert_eq!(d.admit(2), Err(ChunkedError::BodyTooLarge));
        assert_eq!(d.admit(u64::MAX), Err(ChunkedError::BodyTooLarge));
        // Unlimited: never refused.
        let mut d = ChunkedDecoder::new(&Limits {
            max_request_body: 0,
            ..Limits::default()
        });
        d.declared = u64::MAX;
        assert_eq!(d.admit(u64::MAX), Ok(()));
    }

    #[test]
    fn every_extension_part_is_reachable() {
        use ExtensionPart::*;
        let line = b"5 ; a = \"b\\\"\" ; c=d \t;e\r";
        let mut d = decoder();
        let mut seen = Vec::new();
        for &b in line {
            d.state = d.framing_byte(b).unwrap();
            if let ChunkedState::Extension { part, .. } = d.state
                && seen.last() != Some(&part)
            {
                seen.push(part);
            }
        }
        assert_eq!(d.state, ChunkedState::SizeLf { size: 5 });
        assert_eq!(
            seen,
            [
                BeforeName,
                Name,
                AfterName,
                BeforeValue,
                Quoted,
                QuotedPair,
                Quoted,
                AfterQuoted,
                AfterValue,
                BeforeName,
                Name,
                BeforeValue,
                Token,
                AfterValue,
                BeforeName,
                Name
            ]
        );
    }

    #[test]
    fn trailers_wait_without_consuming() {
        let mut d = decoder();
        let (n, step) = d.decode(b"0\r\nA: b\r").unwrap();
        assert_eq!((n, step), (3, Step::WouldBlock));
        assert_eq!(d.decode(b"A: b\r").unwrap(), (0, Step::WouldBlock));
        let (n, step) = d.decode(b"A: b\r\n\r\n").unwrap();
        assert_eq!(n, 8);
        assert!(
            matches!(step, Step::Ready(BodyEvent::End { trailers }) if trailers.as_bytes() == b"A: b\r\n")
        );
    }
}
