//! [`Rejected`]: a request the connection answered itself, before any handler was made for it —
//! a head it refused (400, 414, 431, 501, 505), a head that timed out (408), or an application
//! whose [`App::handler`] panicked (500).
//!
//! Such a request never reaches a handler, so middleware that wraps handlers (the access log)
//! would not see it; the connection tells the application through
//! [`App::rejected`] instead.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::App;
use super::environ::Peer;

/// Longest request line passed on with a rejection, in bytes (the default
/// [`Limits::max_request_line`](crate::detect::Limits)): a longer one, or one that never ended,
/// is reported as absent, so a hostile client cannot make every log line a long one.
pub const MAX_REPORTED_REQUEST_LINE: usize = 8 * 1024;

/// What the connection knows about a request it answered itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected<'a> {
    /// The client's address (`None` over a Unix-domain socket).
    pub remote: Option<SocketAddr>,
    /// The address the client connected to (`None` over a Unix-domain socket).
    pub local: Option<SocketAddr>,
    /// The status of the error response.
    pub status: u16,
    /// Why, as written in the error response's body.
    pub reason: &'a str,
    /// The request line, without its line ending, if a whole one had arrived (and was no longer
    /// than [`MAX_REPORTED_REQUEST_LINE`]).
    pub request_line: Option<&'a [u8]>,
    /// Bytes of the error response's body.
    pub body_bytes: u64,
    /// From the head's first byte to the rejection (zero when the whole head was already in the
    /// buffer, as for a pipelined request).
    pub duration: Duration,
}

/// The first line of `input`: what a client sent as its request line, if a whole line is there.
/// Empty lines before it are skipped, as a server ignores them (RFC 9112 §2.2).
pub fn request_line(input: &[u8]) -> Option<&[u8]> {
    let start = input.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let rest = &input[start..];
    let window = &rest[..rest.len().min(MAX_REPORTED_REQUEST_LINE + 2)];
    let end = memchr::memchr(b'\n', window)?;
    let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
    (line.len() <= MAX_REPORTED_REQUEST_LINE).then_some(line)
}

/// Tells `app` of a request the connection answered with `status` (body `reason` and a line
/// feed, as [`crate::response::write_error_response`] writes it): `input` is the connection's
/// unconsumed input, starting with the rejected head; `since` is when the head's first byte
/// arrived, if it arrived in an earlier read; `now` is the loop's clock.
pub(crate) fn report(
    app: &dyn App,
    peer: &Peer,
    (status, reason): (u16, &str),
    input: &[u8],
    since: Option<Instant>,
    now: Instant,
) {
    app.rejected(&Rejected {
        remote: peer.remote,
        local: peer.local,
        status,
        reason,
        request_line: request_line(input),
        body_bytes: crate::response::error_body_len(reason),
        duration: since.map_or(Duration::ZERO, |s| now.saturating_duration_since(s)),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_line_is_reported_only_when_it_was_whole() {
        assert_eq!(
            request_line(b"GET / HTTP/1.1\r\nHost: x\r\n"),
            Some(&b"GET / HTTP/1.1"[..])
        );
        assert_eq!(
            request_line(b"\r\nGET /a HTTP/1.0\n"),
            Some(&b"GET /a HTTP/1.0"[..])
        );
        assert_eq!(request_line(b"GET / HTTP/1.1"), None); // still arriving
        assert_eq!(request_line(b""), None);
        let long = [b'a'; MAX_REPORTED_REQUEST_LINE + 1];
        let mut input = long.to_vec();
        input.extend_from_slice(b"\r\n");
        assert_eq!(request_line(&input), None);
        let mut input = long[1..].to_vec();
        input.extend_from_slice(b"\r\n");
        assert_eq!(request_line(&input), Some(&long[1..]));
    }
}
