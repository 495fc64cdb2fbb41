//! The response side: status lines and headers written straight into a connection's output
//! buffer, the cached `Date`, and chunked or `Content-Length` framing.
//!
//! Nothing here allocates per response: numbers are formatted on the stack and appended, and the
//! `Date` value is formatted once a second per thread.

pub(crate) mod date;

pub use date::{DATE_LEN, with_date, with_date_at};

/// Why a header cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderError {
    /// The name is empty or has a byte that is not a token character (RFC 9110 §5.1).
    InvalidName,
    /// The value has CR, LF, NUL or another control byte besides tab (RFC 9110 §5.5): writing it
    /// would let the value split the response.
    InvalidValue,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeaderError::InvalidName => "header name is not a token",
            HeaderError::InvalidValue => "header value has a control character",
        })
    }
}

impl std::error::Error for HeaderError {}

/// True for the token characters of RFC 9110 §5.6.2 (the detectors' table: one place says what
/// a token is, for requests and responses alike).
pub fn is_token_byte(b: u8) -> bool {
    crate::detect::syntax::is_tchar(b)
}

/// Checks that `name: value` can be written without changing the message's structure.
///
/// # Errors
/// [`HeaderError`] for a name that is not a token or a value with control characters.
pub fn check_header(name: &str, value: &[u8]) -> Result<(), HeaderError> {
    // Both loops look at every byte without an early exit: short, branch-free loops are cheaper
    // than stopping early for the valid headers that are nearly all of them (and the value loop
    // vectorizes).
    let name_ok = name
        .bytes()
        .fold(!name.is_empty(), |ok, b| ok & is_token_byte(b));
    if !name_ok {
        return Err(HeaderError::InvalidName);
    }
    let value_bad = value.iter().fold(false, |bad, &b| {
        bad | ((b < 0x20) & (b != b'\t')) | (b == 0x7f)
    });
    if value_bad {
        return Err(HeaderError::InvalidValue);
    }
    Ok(())
}

/// The standard reason phrase for `status` (RFC 9110 §15), or `""` for codes without one.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Appends `n` in decimal, formatted on the stack.
pub fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    if n < 100 {
        // Small lengths (short bodies, chunk counts) in one or two stores.
        let n = n as u8;
        if n < 10 {
            out.push(b'0' + n);
        } else {
            out.extend_from_slice(&[b'0' + n / 10, b'0' + n % 10]);
        }
        return;
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `n` in lower-case hexadecimal (a chunk size).
pub fn write_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `HTTP/1.1 <status> <reason>\r\n`. The server always answers as HTTP/1.1, its highest
/// version (RFC 9110 §2.5), whatever minor version the request had.
pub fn write_status_line(out: &mut Vec<u8>, status: u16) {
    if status == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n"); // the common case, in one copy
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    let status = status.min(999);
    out.extend_from_slice(&[
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value\r\n` after checking it cannot split the response.
///
/// # Errors
/// [`HeaderError`] (nothing is appended then).
pub fn write_header(out: &mut Vec<u8>, name: &str, value: &[u8]) -> Result<(), HeaderError> {
    check_header(name, value)?;
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Appends `Content-Length: n\r\n`.
pub fn write_content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    write_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `Date: <IMF-fixdate>\r\n` for `now` (the executor's clock) from this thread's cache.
pub fn write_date_header_at(out: &mut Vec<u8>, now: std::time::Instant) {
    with_date_at(now, |d| {
        out.reserve(DATE_LEN + 8);
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(d);
        out.extend_from_slice(b"\r\n");
    });
}

/// Appends `Date: <IMF-fixdate>\r\n` from this thread's cached value.
pub fn write_date_header(out: &mut Vec<u8>) {
    out.extend_from_slice(b"Date: ");
    with_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk: size line, data, CRLF (RFC 9112 §7.1). `data` must not be empty (an empty
/// chunk would end the body).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    debug_assert!(!data.is_empty());
    write_hex(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk and an empty trailer section.
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// Appends the last chunk with trailer fields (each checked as a header).
///
/// # Errors
/// [`HeaderError`] for a field that cannot be written (nothing is appended then).
pub fn write_last_chunk_with_trailers(
    out: &mut Vec<u8>,
    trailers: &[(&str, &[u8])],
) -> Result<(), HeaderError> {
    for (name, value) in trailers {
        check_header(name, value)?;
    }
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        write_header(out, name, value)?;
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Bytes in the body of [`write_error_response`]'s response for `reason`: the reason and a line
/// feed.
pub fn error_body_len(reason: &str) -> u64 {
    reason.len() as u64 + 1
}

/// Appends a complete short error response that closes the connection: the status, `Date`,
/// a one-line text body with `reason`, and `Connection: close`.
pub fn write_error_response(out: &mut Vec<u8>, status: u16, reason: &str) {
    write_error_head(out, status, reason);
    out.extend_from_slice(reason.as_bytes());
    out.push(b'\n');
}

/// The head of [`write_error_response`]'s response alone: what a `HEAD` request is answered with,
/// since a response to HEAD has no content (RFC 9110 §9.3.2); its `Content-Length` still says
/// what a GET would have had.
pub fn write_error_head(out: &mut Vec<u8>, status: u16, reason: &str) {
    write_status_line(out, status);
    write_date_header(out);
    out.extend_from_slice(b"Server: asycamore\r\nContent-Type: text/plain; charset=utf-8\r\n");
    write_content_length(out, error_body_len(reason));
    out.extend_from_slice(b"Connection: close\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_on_the_stack() {
        for (n, dec, hex) in [
            (0u64, "0", "0"),
            (9, "9", "9"),
            (10, "10", "a"),
            (13, "13", "d"),
            (99, "99", "63"),
            (100, "100", "64"),
            (255, "255", "ff"),
        ] {
            let mut d = Vec::new();
            write_decimal(&mut d, n);
            assert_eq!(d, dec.as_bytes());
            let mut h = Vec::new();
            write_hex(&mut h, n);
            assert_eq!(h, hex.as_bytes());
        }
        let mut d = Vec::new();
        write_decimal(&mut d, u64::MAX);
        assert_eq!(d, u64::MAX.to_string().as_bytes());
        let mut h = Vec::new();
        write_hex(&mut h, u64::MAX);
        assert_eq!(h, b"ffffffffffffffff");
    }

    #[test]
    fn status_lines_use_standard_reasons() {
        let mut out = Vec::new();
        write_status_line(&mut out, 404);
        assert_eq!(out, b"HTTP/1.1 404 Not Found\r\n");
        out.clear();
        write_status_line(&mut out, 299);
        assert_eq!(out, b"HTTP/1.1 299 \r\n");
    }

    #[test]
    fn headers_that_would_split_the_response_are_refused() {
        let mut out = Vec::new();
        assert_eq!(write_header(&mut out, "X-A", b"ok\tvalue"), Ok(()));
        assert_eq!(
            write_header(&mut out, "X-A", b"a\r\nSet-Cookie: x"),
            Err(HeaderError::InvalidValue)
        );
        assert_eq!(
            write_header(&mut out, "X-A", b"a\nb"),
            Err(HeaderError::InvalidValue)
        );
        assert_eq!(
            write_header(&mut out, "X-A", b"a\0b"),
            Err(HeaderError::InvalidValue)
        );
        assert_eq!(
            write_header(&mut out, "X A", b"v"),
            Err(HeaderError::InvalidName)
        );
        assert_eq!(
            write_header(&mut out, "X:A", b"v"),
            Err(HeaderError::InvalidName)
        );
        assert_eq!(
            write_header(&mut out, "", b"v"),
            Err(HeaderError::InvalidName)
        );
        assert_eq!(out, b"X-A: ok\tvalue\r\n");
    }

    #[test]
    fn every_byte_is_judged_in_names_and_values() {
        for b in 0..=255u8 {
            let value_ok = b == b'\t' || (b >= 0x20 && b != 0x7f);
            for at in 0..3 {
                let mut value = *b"abc";
                value[at] = b;
                assert_eq!(
                    check_header("X-A", &value).is_ok(),
                    value_ok,
                    "byte {b:#04x} at {at} in a value"
                );
                let mut name = *b"X-A";
                name[at] = b;
                let name_ok = b.is_ascii() && is_token_byte(b);
                let name = std::str::from_utf8(&name);
                if let Ok(name) = name {
                    assert_eq!(
                        check_header(name, b"v").is_ok(),
                        name_ok,
                        "byte {b:#04x} at {at} in a name"
                    );
                }
            }
        }
    }

    #[test]
    fn chunks_and_the_last_chunk() {
        let mut out = Vec::new();
        write_chunk(&mut out, &[b'x'; 26]);
        write_last_chunk_with_trailers(&mut out, &[("X-Sum", b"1")]).unwrap();
        let mut expected = b"1a\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 26]);
        expected.extend_from_slice(b"\r\n0\r\nX-Sum: 1\r\n\r\n");
        assert_eq!(out, expected);
        assert!(write_last_chunk_with_trailers(&mut out, &[("X", b"\r")]).is_err());
        assert_eq!(out, expected);
    }

    #[test]
    fn error_responses_are_complete_and_close() {
        let mut out = Vec::new();
        write_error_response(&mut out, 400, "bad request");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\nDate: "));
        assert!(text.contains("Content-Length: 12\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\nbad request\n"));
    }
}
