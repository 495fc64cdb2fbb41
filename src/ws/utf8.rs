//! Incremental UTF-8 validation ([`Utf8Validator`]) for text messages and close reasons, which
//! must be valid UTF-8 (RFC 6455 §5.6, §5.5.1, §8.1) and arrive in pieces: split across reads,
//! across the fragments of a message, anywhere inside a code point.
//!
//! The validator is a small state machine over the well-formed byte sequences of Unicode §3.9
//! (Table 3-7), the same as RFC 3629 §4's `UTF8-char` grammar:
//!
//! ```text
//! UTF8-1 = %x00-7F
//! UTF8-2 = %xC2-DF UTF8-tail
//! UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
//!          %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
//! UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
//!          %xF4 %x80-8F 2( UTF8-tail )
//! UTF8-tail = %x80-BF
//! ```
//!
//! The narrowed second-byte ranges are what exclude overlong forms (`C0`, `C1`, `E0 80..9F`,
//! `F0 80..8F`), the UTF-16 surrogates U+D800..DFFF (`ED A0..BF`) and code points above
//! U+10FFFF (`F4 90..`, `F5..FF`). A byte is refused as soon as no valid text can begin with the
//! bytes so far — which is what RFC 6455 §8.1 asks of an endpoint ("fail fast"), and what
//! Autobahn's cases 6.4.x check — while an unfinished code point at the end of a piece is only a
//! state, checked at the end of the message by [`Utf8Validator::finish`].
//!
//! ```
//! use asycamore::ws::Utf8Validator;
//!
//! let mut v = Utf8Validator::new();
//! v.feed("h\u{e9}".as_bytes()[..2].iter().copied()).unwrap(); // "h" and half of "é"
//! assert!(!v.is_boundary());
//! v.feed([0xA9]).unwrap(); // the other half
//! assert!(v.finish().is_ok());
//! assert_eq!(v.feed([0xED, 0xA0]).unwrap_err().offset, 1); // a surrogate: refused at its 2nd byte
//! ```

/// Where a validator is inside the text. A state never holds a byte range that no code point
/// could continue with, so "invalid" is not a state but the error [`Utf8Validator::feed`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Utf8State {
    /// Between code points (also the start): any text may follow.
    #[default]
    Boundary,
    /// Inside a multi-byte code point.
    Inside {
        /// Continuation bytes still to come (1 to 3).
        need: u8,
        /// Lowest value the next byte may have.
        lo: u8,
        /// Highest value the next byte may have.
        hi: u8,
    },
}

/// The bytes fed so far are not the beginning of any valid UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Utf8Error {
    /// Offset, in the piece given to [`Utf8Validator::feed`], of the byte that made it certain;
    /// for [`Utf8Validator::finish`], 0.
    pub offset: usize,
}

impl std::fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid UTF-8 at offset {}", self.offset)
    }
}

impl std::error::Error for Utf8Error {}

/// Validates UTF-8 text fed in pieces split anywhere; see the module doc. `Copy`, so a message's
/// validator can be kept in a decoder's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Utf8Validator {
    state: Utf8State,
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// The current state.
    pub fn state(&self) -> Utf8State {
        self.state
    }

    /// True between code points: the text so far is complete, valid UTF-8.
    pub fn is_boundary(&self) -> bool {
        self.state == Utf8State::Boundary
    }

    /// Validates the next piece of the text. Takes an iterator so that masked payload bytes can
    /// be checked as they are unmasked, without a copy.
    ///
    /// # Errors
    /// [`Utf8Error`] at the first byte after which the text can no longer be valid; the state is
    /// then the one before that byte, and the text must be refused.
    pub fn feed(&mut self, bytes: impl IntoIterator<Item = u8>) -> Result<(), Utf8Error> {
        let mut state = self.state;
        for (offset, b) in bytes.into_iter().enumerate() {
            state = match next(state, b) {
                Some(s) => s,
                None => {
                    self.state = state;
                    return Err(Utf8Error { offset });
                }
            };
        }
        self.state = state;
        Ok(())
    }

    /// Validates a piece given as a slice, skipping runs of ASCII quickly.
    ///
    /// # Errors
    /// As [`Utf8Validator::feed`].
    pub fn feed_slice(&mut self, bytes: &[u8]) -> Result<(), Utf8Error> {
        let mut at = 0;
        while at < bytes.len() {
            if self.state == Utf8State::Boundary {
                at += bytes[at..].iter().take_while(|b| b.is_ascii()).count();
                if at == bytes.len() {
                    break;
                }
            }
            self.state = next(self.state, bytes[at]).ok_or(Utf8Error { offset: at })?;
            at += 1;
        }
        Ok(())
    }

    /// Checks that the text ends here, not inside a code point.
    ///
    /// # Errors
    /// [`Utf8Error`] (offset 0) if the last code point is unfinished.
    pub fn finish(&self) -> Result<(), Utf8Error> {
        if self.is_boundary() {
            Ok(())
        } else {
            Err(Utf8Error { offset: 0 })
        }
    }
}

/// The whole transition table: the state after `b`, or `None` if no valid text continues so.
#[inline]
fn next(state: Utf8State, b: u8) -> Option<Utf8State> {
    use Utf8State::*;
    let inside = |need, lo, hi| Some(Inside { need, lo, hi });
    match (state, b) {
        (Boundary, 0x00..=0x7F) => Some(Boundary),
        // C0 and C1 could only start overlong forms of ASCII.
        (Boundary, 0xC2..=0xDF) => inside(1, 0x80, 0xBF),
        // E0 80..9F would be overlong (below U+0800).
        (Boundary, 0xE0) => inside(2, 0xA0, 0xBF),
        // ED A0..BF would be a surrogate, U+D800..DFFF.
        (Boundary, 0xED) => inside(2, 0x80, 0x9F),
        (Boundary, 0xE1..=0xEF) => inside(2, 0x80, 0xBF),
        // F0 80..8F would be overlong (below U+10000).
        (Boundary, 0xF0) => inside(3, 0x90, 0xBF),
        (Boundary, 0xF1..=0xF3) => inside(3, 0x80, 0xBF),
        // F4 90.. would be above U+10FFFF, and so would anything from F5.
        (Boundary, 0xF4) => inside(3, 0x80, 0x8F),
        // 80..BF cannot start a code point; C0, C1, F5..FF never appear.
        (Boundary, _) => None,
        (Inside { need, lo, hi }, _) if (lo..=hi).contains(&b) => match need {
            1 => Some(Boundary),
            _ => inside(need - 1, 0x80, 0xBF),
        },
        (Inside { .. }, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where std says the text stops being a prefix of valid UTF-8: the first `i` such that
    /// `bytes[..=i]` has an error that more bytes cannot fix.
    fn std_first_invalid(bytes: &[u8]) -> Option<usize> {
        (0..bytes.len()).find(
            |&i| matches!(std::str::from_utf8(&bytes[..=i]), Err(e) if e.error_len().is_some()),
        )
    }

    #[test]
    fn every_one_and_two_byte_input_agrees_with_std() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let input = [a, b];
                let mut v = Utf8Validator::new();
                let ours = v.feed(input).err().map(|e| e.offset);
                assert_eq!(ours, std_first_invalid(&input), "{input:02x?}");
                if ours.is_none() {
                    assert_eq!(v.finish().is_ok(), std::str::from_utf8(&input).is_ok());
                }
            }
        }
    }

    #[test]
    fn every_three_byte_prefix_of_multibyte_leads_agrees_with_std() {
        for a in 0xC0..=0xFFu8 {
            for b in 0x70..=0xC0u8 {
                for c in 0x70..=0xC0u8 {
                    let input = [a, b, c];
                    let mut v = Utf8Validator::new();
                    let ours = v.feed_slice(&input).err().map(|e| e.offset);
                    assert_eq!(ours, std_first_invalid(&input), "{input:02x?}");
                }
            }
        }
    }
}
