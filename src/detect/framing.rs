//! Request-body framing (RFC 9112 §6.1–6.3) and the other facts the server needs from the field
//! section: `Host`, `Connection` options and `Expect: 100-continue`.
//!
//! [`FieldFacts`] is fed every field of a head, in order, while the head parser walks them once; it
//! reports a conflict as soon as the field that causes it is seen, and [`FieldFacts::finish`] then
//! decides the [`BodyFraming`].

use super::error::HeadError;
use super::length::parse_content_length;
use super::span::Span;
use super::syntax::{eq_lowercase, list_elements, trim_ows};
use super::uri::is_host;
use super::version::Version;

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BodyFraming {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` (RFC 9112 §6.3 rule 7).
    #[default]
    None,
    /// Exactly this many bytes follow the head (`Content-Length`, RFC 9112 §6.3 rule 6).
    Length(u64),
    /// The chunked transfer coding (RFC 9112 §7.1) delimits the body.
    Chunked,
}

/// What the fields of one head have said so far; reset for every head.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FieldFacts {
    /// The agreed value of every `Content-Length` seen, if any.
    pub(crate) content_length: Option<u64>,
    /// True once any `Transfer-Encoding` field was seen.
    pub(crate) transfer_encoding: bool,
    /// True once `chunked` was seen; as any coding after it is refused at once, it is then the
    /// last coding so far.
    pub(crate) chunked: bool,
    /// True once a coding other than `chunked` was seen (before any `chunked`).
    pub(crate) unknown_coding: bool,
    /// Where the (only) `Host` value lies.
    pub(crate) host: Option<Span>,
    /// `Connection: close` was seen.
    pub(crate) close: bool,
    /// `Connection: keep-alive` was seen.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` was seen.
    pub(crate) expect_continue: bool,
}

impl FieldFacts {
    /// Takes note of one field. `value_span` locates `value` in the read buffer.
    ///
    /// # Errors
    /// A second or invalid `Host`, a malformed or conflicting `Content-Length`, or a
    /// `Transfer-Encoding` coding list with `chunked` twice or not last.
    #[inline]
    pub(crate) fn add(
        &mut self,
        name: &[u8],
        value: &[u8],
        value_span: Span,
    ) -> Result<(), HeadError> {
        // Dispatch on length first: most fields are none of these, and the length test is one compare.
        match name.len() {
            4 if eq_lowercase(name, b"host") => {
                // RFC 9112 §3.2: more than one Host field line is a 400.
                if self.host.is_some() {
                    return Err(HeadError::MultipleHost);
                }
                // RFC 9112 §3.2: so is a Host with an invalid value.
                if !is_host(value) {
                    return Err(HeadError::InvalidHost);
                }
                self.host = Some(value_span);
            }
            6 if eq_lowercase(name, b"expect") => {
                // RFC 9110 §10.1.1: Expect is a list; 100-continue is the only expectation defined.
                self.expect_continue |=
                    list_elements(value).any(|e| eq_lowercase(e, b"100-continue"));
            }
            10 if eq_lowercase(name, b"connection") => {
                // RFC 9110 §7.6.1: a list of case-insensitive connection options.
                // Most clients send one option; skip the list machinery for them.
                if eq_lowercase(value, b"keep-alive") {
                    self.keep_alive = true;
                    return Ok(());
                }
                for option in list_elements(value) {
                    if eq_lowercase(option, b"close") {
                        self.close = true;
                    } else if eq_lowercase(option, b"keep-alive") {
                        self.keep_alive = true;
                    }
                }
            }
            14 if eq_lowercase(name, b"content-length") => self.add_content_length(value)?,
            17 if eq_lowercase(name, b"transfer-encoding") => self.add_transfer_encoding(value)?,
            _ => {}
        }
        Ok(())
    }

    /// RFC 9112 §6.3 rule 5 and RFC 9110 §8.6: `Content-Length` is `1*DIGIT`; a list of identical
    /// values ("5, 5"), in one field or several, is taken as that value; any disagreement is a 400.
    fn add_content_length(&mut self, value: &[u8]) -> Result<(), HeadError> {
        // Empty elements are not skipped here: `Content-Length` is not a list, the comma form is only
        // tolerated for identical duplicates, and "5," is more likely an attack than a client bug.
        for element in value.split(|&b| b == b',') {
            let n =
                parse_content_length(trim_ows(element)).ok_or(HeadError::InvalidContentLength)?;
            match self.content_length {
                Some(seen) if seen != n => return Err(HeadError::ConflictingContentLength),
                _ => self.content_length = Some(n),
            }
        }
        Ok(())
    }

    /// RFC 9112 §6.1 and §7: the codings are applied in order, so `chunked` must be the last one
    /// and may appear once ("a sender MUST NOT apply the chunked transfer coding more than once").
    /// Either mistake leaves the body length unknown, a 400 refused here at the coding that shows
    /// it (RFC 9112 §6.3 rule 4). Several fields form one list (RFC 9110 §5.3).
    ///
    /// We implement no other coding, but an unknown one is not refused here: a `chunked` that
    /// comes later in the list and is not last makes the request a 400 rather than a 501, so only
    /// [`FieldFacts::finish`] can tell.
    fn add_transfer_encoding(&mut self, value: &[u8]) -> Result<(), HeadError> {
        self.transfer_encoding = true;
        for coding in list_elements(value) {
            if eq_lowercase(coding, b"chunked") {
                if self.chunked {
                    return Err(HeadError::ChunkedTwice);
                }
                self.chunked = true;
            } else if self.chunked {
                return Err(HeadError::ChunkedNotLast);
            } else {
                self.unknown_coding = true;
            }
        }
        Ok(())
    }

    /// Decides the framing once every field has been seen. `max_body` is
    /// [`Limits::max_request_body`](super::Limits::max_request_body) (0: unlimited).
    ///
    /// # Errors
    /// A missing `Host` in HTTP/1.1, `Transfer-Encoding` with `Content-Length` or in HTTP/1.0, a
    /// `Transfer-Encoding` that names no coding or one we do not implement, or a `Content-Length`
    /// above `max_body`.
    pub(crate) fn finish(&self, version: Version, max_body: u64) -> Result<BodyFraming, HeadError> {
        // RFC 9112 §3.2: a 1.1 request without Host gets a 400.
        if version == Version::Http11 && self.host.is_none() {
            return Err(HeadError::MissingHost);
        }
        if self.transfer_encoding {
            // RFC 9112 §6.1: Transfer-Encoding in a 1.0 message means the framing is faulty.
            if version == Version::Http10 {
                return Err(HeadError::TransferEncodingInHttp10);
            }
            // RFC 9112 §6.1 and §6.3 rule 3: both framings at once is how requests are smuggled;
            // we reject rather than pick one, and the connection closes.
            if self.content_length.is_some() {
                return Err(HeadError::TransferEncodingWithContentLength);
            }
            // RFC 9112 §6.1: a coding we do not understand is a 501, even before a final
            // `chunked` (we would have to undo it to hand the application its content).
            if self.unknown_coding {
                return Err(HeadError::UnsupportedTransferCoding);
            }
            if !self.chunked {
                return Err(HeadError::EmptyTransferEncoding);
            }
            return Ok(BodyFraming::Chunked);
        }
        Ok(match self.content_length {
            // RFC 9110 §15.5.14: refuse a body too large before reading any of it.
            Some(n) if max_body != 0 && n > max_body => {
                return Err(HeadError::ContentLengthTooLarge);
            }
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"0012"), Some(12));
        assert_eq!(
            parse_content_length(b"18446744073709551615"),
            Some(u64::MAX)
        );
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"+1",
            b"-1",
            b"1 2",
            b" 1",
            b"0x1",
            b"1a",
        ] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }
}
