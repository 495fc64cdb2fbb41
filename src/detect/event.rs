//! What the body decoders hand out: [`BodyEvent`]s, and the [`Trailers`] of a chunked body.

use super::syntax::split_field_line;

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

/// The trailer fields of a chunked body (RFC 9112 §7.1.2), already validated: a view of the
/// field lines in the caller's buffer, iterated as `(name, value)` pairs with values trimmed.
///
/// Framing fields (`Content-Length`, `Transfer-Encoding`, `Host`...) may appear here; they are
/// delivered as sent and never used for framing (RFC 9110 §6.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trailers<'b> {
    /// The field lines, each with its CRLF.
    fields: &'b [u8],
}

impl<'b> Trailers<'b> {
    /// The trailers whose field lines (each with its CRLF) the chunked decoder has validated.
    pub(crate) fn validated(fields: &'b [u8]) -> Trailers<'b> {
        Trailers { fields }
    }

    /// No trailer fields.
    pub fn empty() -> Trailers<'static> {
        Trailers { fields: b"" }
    }

    /// True if there are no trailer fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The raw field lines, each ending in CRLF.
    pub fn as_bytes(&self) -> &'b [u8] {
        self.fields
    }

    /// The fields in order, as `(name, value)`.
    pub fn iter(&self) -> TrailerFields<'b> {
        TrailerFields { rest: self.fields }
    }

    /// The value of the first field called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'b [u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl<'b> IntoIterator for Trailers<'b> {
    type Item = (&'b str, &'b [u8]);
    type IntoIter = TrailerFields<'b>;
    fn into_iter(self) -> TrailerFields<'b> {
        self.iter()
    }
}

/// Iterator over [`Trailers`].
#[derive(Debug, Clone)]
pub struct TrailerFields<'b> {
    rest: &'b [u8],
}

impl<'b> Iterator for TrailerFields<'b> {
    type Item = (&'b str, &'b [u8]);

    fn next(&mut self) -> Option<(&'b str, &'b [u8])> {
        while !self.rest.is_empty() {
            let lf = memchr::memchr(b'\n', self.rest).unwrap_or(self.rest.len() - 1);
            let line = &self.rest[..lf];
            self.rest = &self.rest[lf + 1..];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            // Validated when the decoder saw it; a line that fails here cannot occur.
            if let Some((name, value)) = split_field_line(line) {
                return Some((std::str::from_utf8(name).unwrap_or_default(), value));
            }
        }
        None
    }
}
