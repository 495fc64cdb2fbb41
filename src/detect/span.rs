//! [`Span`]: where a part of a head lies in the buffer it was parsed from, so a parsed head can
//! be kept next to that buffer without borrowing it.

use std::ops::Range;

/// A byte range of the buffer a head was parsed from; `Copy`, unlike [`Range`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    /// First byte.
    pub(crate) start: usize,
    /// One past the last byte.
    pub(crate) end: usize,
}

impl Span {
    /// Where `part`, a subslice of `buf` (as httparse hands them out), lies in `buf`: its address
    /// minus the buffer's.
    #[inline]
    pub(crate) fn within(buf: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        Span {
            start,
            end: start + part.len(),
        }
    }

    /// The bytes of `buf` this span covers, or nothing if `buf` is too short (a caller passed the
    /// wrong buffer: a wrong answer, but never a panic).
    #[inline]
    pub(crate) fn of(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or_default()
    }

    /// As a `Range`.
    pub(crate) fn range(self) -> Range<usize> {
        self.start..self.end
    }
}
