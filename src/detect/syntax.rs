//! Byte classes and list helpers from RFC 9110 §5.6, shared by the head parser, the trailer parser
//! and the response encoder.
//!
//! One 256-entry table of class bits, built at compile time, answers every "is this byte a ..."
//! question: one indexed load and a mask per byte, no branches on character ranges in the hot
//! loops.

/// Bit flags of the byte classes in [`CLASS`]; a byte may be in several.
mod class {
    /// `tchar` (RFC 9110 §5.6.2): the characters of a token (method, field name, coding name).
    pub(super) const TCHAR: u8 = 1 << 0;
    /// A byte allowed inside a field value (RFC 9110 §5.5).
    pub(super) const FIELD: u8 = 1 << 1;
    /// A byte allowed anywhere in a request-target (see [`super::target_byte`]).
    pub(super) const TARGET: u8 = 1 << 2;
    /// `unreserved / sub-delims` (RFC 3986 §2.2, §2.3): a `reg-name` byte other than `%`.
    pub(super) const REG_NAME: u8 = 1 << 3;
    /// `ALPHA / DIGIT / "+" / "-" / "."`: a URI scheme byte after the first (RFC 3986 §3.1).
    pub(super) const SCHEME: u8 = 1 << 4;
    /// `HEXDIG` (RFC 5234 appendix B.1, either case).
    pub(super) const HEXDIG: u8 = 1 << 5;
}

/// `tchar` of RFC 9110 §5.6.2.
const fn tchar(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~')
}

/// A byte allowed inside a field value (RFC 9110 §5.5): HTAB, SP, VCHAR and obs-text. CR, LF, NUL,
/// the other controls and DEL are not.
const fn field_byte(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=0x7e | 0x80..=0xff)
}

/// A byte allowed in a request-target: VCHAR (0x21..=0x7E). RFC 3986 §2 allows only ASCII, so raw
/// UTF-8 and other bytes above 0x7F are refused (RFC 9112 §3.2 makes the target a URI, and a
/// recipient cannot know how to decode them); SP, controls and DEL are refused because they would
/// change where the request line splits. Within VCHAR we are as lenient as httparse and nginx:
/// `"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}` are not URI characters but real clients send
/// them unencoded in queries.
const fn target_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e)
}

/// `unreserved / sub-delims` of RFC 3986 §2.2 and §2.3.
const fn reg_name_byte(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~'
        | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

/// A scheme byte after the first (RFC 3986 §3.1).
const fn scheme_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'+' | b'-' | b'.')
}

/// The classes of one byte, as [`class`] bits.
const fn classes(b: u8) -> u8 {
    let mut c = 0;
    if tchar(b) {
        c |= class::TCHAR;
    }
    if field_byte(b) {
        c |= class::FIELD;
    }
    if target_byte(b) {
        c |= class::TARGET;
    }
    if reg_name_byte(b) {
        c |= class::REG_NAME;
    }
    if scheme_byte(b) {
        c |= class::SCHEME;
    }
    if b.is_ascii_hexdigit() {
        c |= class::HEXDIG;
    }
    c
}

/// Every byte's classes, built at compile time: one indexed load and a mask per byte.
static CLASS: [u8; 256] = {
    let mut t = [0; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = classes(i as u8);
        i += 1;
    }
    t
};

/// True if `b` is in every class of `mask`.
#[inline(always)]
fn is(b: u8, mask: u8) -> bool {
    CLASS[b as usize] & mask == mask
}

/// True if `b` is a `tchar` (RFC 9110 §5.6.2).
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    is(b, class::TCHAR)
}

/// True if `b` is `unreserved / sub-delims` (RFC 3986 §2.2, §2.3).
#[inline]
pub(crate) fn is_reg_name_byte(b: u8) -> bool {
    is(b, class::REG_NAME)
}

/// True if every byte of `s` is `unreserved / sub-delims` (a `reg-name` without `%`).
///
/// One AND a byte into an accumulator and one test at the end, instead of a test and a branch
/// per byte: a host name is checked in about two instructions a byte.
#[inline]
pub(crate) fn all_reg_name_bytes(s: &[u8]) -> bool {
    s.iter().fold(u8::MAX, |all, &b| all & CLASS[b as usize]) & class::REG_NAME != 0
}

/// True if `b` is a URI scheme byte other than the first (RFC 3986 §3.1).
#[inline]
pub(crate) fn is_scheme_byte(b: u8) -> bool {
    is(b, class::SCHEME)
}

/// True if `b` is a `HEXDIG`, either case.
#[inline]
pub(crate) fn is_hexdig(b: u8) -> bool {
    is(b, class::HEXDIG)
}

/// The value of a hex digit (`HEXDIG`, either case), for chunk sizes and percent-encoding.
#[inline]
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// True if `s` is a non-empty token (RFC 9110 §5.6.2).
#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// True if every byte of `s` may appear in a field value (RFC 9110 §5.5).
#[inline]
pub(crate) fn is_field_value(s: &[u8]) -> bool {
    s.iter().all(|&b| is(b, class::FIELD))
}

/// True if `s` is a non-empty request-target made of allowed bytes (see [`target_byte`]).
#[inline]
pub(crate) fn is_target(s: &[u8]) -> bool {
    !s.is_empty() && visible_prefix_len(s) == s.len()
}

/// How many bytes at the start of `s` are visible ASCII (`0x21..=0x7e`, the bytes of a
/// request-target, see [`target_byte`]): where the target ends in a request line, at its SP.
#[inline]
pub(crate) fn visible_prefix_len(s: &[u8]) -> usize {
    // A range test stands in for the table: eight bytes at a time as one little-endian word,
    // then the tail a byte at a time.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let (words, tail) = s.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let x = u64::from_le_bytes(*word);
        // A byte below 0x21 borrows into its high bit; one above 0x7e carries into it (0x7f
        // + 1) or has it set already (0x80..=0xff). A borrow or carry moves only to the next
        // byte up, and only out of a byte that is out of range itself, so the lowest high bit
        // set marks the first byte out of range exactly.
        let below = x.wrapping_sub(ONES * 0x21) & !x;
        let above = x.wrapping_add(ONES) | x;
        let bad = (below | above) & HIGH;
        if bad != 0 {
            return i * 8 + (bad.trailing_zeros() / 8) as usize;
        }
    }
    let visible = tail
        .iter()
        .position(|&b| b.wrapping_sub(0x21) >= 0x5e)
        .unwrap_or(tail.len());
    words.len() * 8 + visible
}

/// Compares a token or field value with `lower`, a lowercase name made of `a-z`, `0-9` and `-`,
/// ignoring ASCII case.
///
/// Faster than `eq_ignore_ascii_case` because it only sets bit 0x20 of each input byte: that maps
/// `A-Z` onto `a-z`, and the only other bytes it could map onto `a-z`, `0-9` or `-` are controls
/// (0x0D, 0x10..=0x19), which no token or validated field value contains.
#[inline]
pub(crate) fn eq_lowercase(s: &[u8], lower: &[u8]) -> bool {
    if s.len() != lower.len() {
        return false;
    }
    // Eight bytes at a time, then the tail: the same OR on every byte, fewer compares.
    let (mut s, mut lower) = (s, lower);
    while let (Some((a, s_rest)), Some((b, lower_rest))) =
        (s.split_first_chunk::<8>(), lower.split_first_chunk::<8>())
    {
        if u64::from_ne_bytes(*a) | 0x2020_2020_2020_2020 != u64::from_ne_bytes(*b) {
            return false;
        }
        (s, lower) = (s_rest, lower_rest);
    }
    s.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b)
}

/// Removes optional whitespace (SP and HTAB, RFC 9110 §5.6.3) from both ends.
#[inline]
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The non-empty elements of a comma-separated list (RFC 9110 §5.6.1), each trimmed of OWS.
/// Empty elements are skipped, as the RFC requires of recipients.
#[inline]
pub(crate) fn list_elements(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Parses a field line `name ":" OWS value OWS` (RFC 9112 §5) without its CRLF, checking that the
/// name is a token (no whitespace before the colon, RFC 9112 §5.1) and that the value has no
/// forbidden bytes. Returns the name and the trimmed value.
pub(crate) fn split_field_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr::memchr(b':', line)?;
    let (name, rest) = line.split_at(colon);
    let value = trim_ows(&rest[1..]);
    (is_token(name) && is_field_value(value)).then_some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token(b"GET"));
        assert!(is_token(b"X-Custom_1~"));
        for bad in [
            &b""[..],
            b"a b",
            b"a:b",
            b"a\0",
            b"\xc3\xa9",
            b"a(b)",
            b"a\"b",
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_visible_prefix_ends_at_the_first_byte_out_of_range() {
        for len in [1usize, 7, 8, 9, 16, 17, 31] {
            for at in 0..len {
                for b in (0..=0x20u8).chain(0x7f..=0xff) {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    // A second bad byte after the first must not move the answer.
                    if at + 1 < len {
                        s[at + 1] = 0xff;
                    }
                    assert_eq!(visible_prefix_len(&s), at, "byte {b:#04x} at {at} of {len}");
                }
            }
            assert_eq!(visible_prefix_len(&vec![b'~'; len]), len);
        }
        assert_eq!(visible_prefix_len(b""), 0);
    }

    #[test]
    fn targets_are_checked_alike_in_words_and_tails() {
        for len in [7usize, 8, 9, 16, 17, 31] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut target = vec![b'a'; len];
                    target[at] = b;
                    assert_eq!(
                        is_target(&target),
                        (0x21..=0x7e).contains(&b),
                        "byte {b:#04x} at {at} of {len}"
                    );
                }
            }
        }
        assert!(!is_target(b""));
        // Neighbours that could carry or borrow into each other: every pair of edge bytes, at
        // every place in a word and across a word boundary.
        let edges = [
            0x00u8, 0x1f, 0x20, 0x21, 0x22, 0x7d, 0x7e, 0x7f, 0x80, 0xfe, 0xff,
        ];
        for &x in &edges {
            for &y in &edges {
                for at in 0..15 {
                    let mut target = vec![b'a'; 16];
                    target[at] = x;
                    target[at + 1] = y;
                    let ok = [x, y].iter().all(|b| (0x21..=0x7e).contains(b));
                    assert_eq!(is_target(&target), ok, "{x:#04x} {y:#04x} at {at}");
                }
            }
        }
    }

    #[test]
    fn class_table_matches_its_predicates() {
        for b in 0..=255u8 {
            assert_eq!(is_tchar(b), tchar(b), "{b}");
            assert_eq!(is_field_value(&[b]), field_byte(b), "{b}");
            assert_eq!(is_target(&[b]), (0x21..=0x7e).contains(&b), "{b}");
            assert_eq!(is_hexdig(b), b.is_ascii_hexdigit(), "{b}");
            assert_eq!(
                is_reg_name_byte(b),
                b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b),
                "{b}"
            );
            assert_eq!(
                is_scheme_byte(b),
                b.is_ascii_alphanumeric() || b"+-.".contains(&b),
                "{b}"
            );
        }
    }

    #[test]
    fn targets() {
        assert!(is_target(b"/a?b=c&d=%20#f"));
        assert!(is_target(b"http://h/{x}|\"y\""));
        for bad in [
            &b""[..],
            b"/a b",
            b"/\t",
            b"/\x7f",
            b"/\x00",
            b"/caf\xc3\xa9",
            b"/\x80",
        ] {
            assert!(!is_target(bad), "{bad:?}");
        }
    }

    #[test]
    fn field_values() {
        assert!(is_field_value(b"text/html; q=0.9\t, caf\xc3\xa9"));
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"\x7f", b"\x01"] {
            assert!(!is_field_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn lowercase_comparison() {
        assert!(eq_lowercase(b"Content-Length", b"content-length"));
        assert!(eq_lowercase(b"100-CONTINUE", b"100-continue"));
        assert!(!eq_lowercase(b"Content-Lengt", b"content-length"));
        assert!(!eq_lowercase(b"Content-Lengtx", b"content-length"));
        assert!(!eq_lowercase(b"Xontent-Length", b"content-length"));
        assert!(eq_lowercase(b"TRANSFER-ENCODING", b"transfer-encoding"));
        for b in 0..=255u8 {
            let ours = eq_lowercase(&[b], b"k");
            assert_eq!(ours, b.eq_ignore_ascii_case(&b'k'), "{b}");
        }
    }

    #[test]
    fn lists() {
        let v: Vec<&[u8]> = list_elements(b" close ,, keep-alive,\t").collect();
        assert_eq!(v, [&b"close"[..], b"keep-alive"]);
        assert_eq!(list_elements(b" , ").count(), 0);
    }

    #[test]
    fn field_lines() {
        assert_eq!(split_field_line(b"A: b c "), Some((&b"A"[..], &b"b c"[..])));
        assert_eq!(split_field_line(b"A:"), Some((&b"A"[..], &b""[..])));
        assert_eq!(split_field_line(b"A : b"), None);
        assert_eq!(split_field_line(b" A: b"), None);
        assert_eq!(split_field_line(b"A b"), None);
        assert_eq!(split_field_line(b"A: b\0"), None);
    }
}
