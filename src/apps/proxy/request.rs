//! The request as it goes up: its head rewritten for the upstream (the mount prefix removed,
//! hop-by-hop fields dropped, `X-Forwarded-For` extended), and how its body is framed.

use crate::detect::BodyFraming;
use crate::service::Environ;

/// Hop-by-hop fields (RFC 9110 §7.6.1), never forwarded; nor are the ones a `Connection` field
/// names. Framing fields are the proxy's own business on each side.
pub(super) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// How the request body goes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upload {
    /// No body, or a `Content-Length` one: bytes as they are.
    Plain,
    /// Re-chunked piece by piece (its trailers follow).
    Chunked,
}

/// The request head for the upstream, and how its body goes up.
pub(super) fn request_head(environ: &Environ<'_>) -> (Vec<u8>, Upload) {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(environ.request_method().as_bytes());
    out.push(b' ');
    let rest = raw_path_after(environ.raw_path(), environ.script_len());
    if rest.first() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(rest);
    let target = environ.target();
    if let Some(q) = memchr::memchr(b'?', target) {
        out.extend_from_slice(&target[q..]);
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");

    // Fields the client's `Connection` names are hop-by-hop too.
    let connection_options: Vec<&[u8]> = environ
        .headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    let mut forwarded_for: Option<Vec<u8>> = None;
    let mut has_host = false;
    for (name, value) in environ.headers() {
        let skip = HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || connection_options
                .iter()
                .any(|o| o.eq_ignore_ascii_case(name.as_bytes()))
            || name.eq_ignore_ascii_case("content-length")
            // 100-continue is settled between the client and us (the exchange sends it).
            || name.eq_ignore_ascii_case("expect");
        if skip {
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            let list = forwarded_for.get_or_insert_with(Vec::new);
            if !list.is_empty() {
                list.extend_from_slice(b", ");
            }
            list.extend_from_slice(value);
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !has_host {
        // HTTP/1.0 clients may send none; HTTP/1.1 requires one (RFC 9112 §3.2).
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(environ.server_name().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut list = forwarded_for.unwrap_or_default();
    // A client of a Unix-domain socket has no address to add: the list goes on as it came
    // (from the proxy in front, which added the client's).
    if let Some(remote) = environ.remote() {
        if !list.is_empty() {
            list.extend_from_slice(b", ");
        }
        list.extend_from_slice(remote.ip().to_string().as_bytes());
    }
    if !list.is_empty() {
        out.extend_from_slice(b"X-Forwarded-For: ");
        out.extend_from_slice(&list);
        out.extend_from_slice(b"\r\n");
    }
    let upload = match environ.head().framing() {
        BodyFraming::Chunked => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            Upload::Chunked
        }
        BodyFraming::Length(n) => {
            out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
            Upload::Plain
        }
        BodyFraming::None => Upload::Plain,
    };
    // Keep-alive is HTTP/1.1's default: the connection can serve the next request (see
    // `pool`), unless the upstream says otherwise.
    out.extend_from_slice(b"\r\n");
    (out, upload)
}

/// The part of the raw (percent-encoded) `raw` path after its first `decoded_len` decoded bytes:
/// `PATH_INFO` as the client spelled it. `%XX` counts as one decoded byte, as in
/// [`percent_decode`](crate::service::percent_decode).
pub fn raw_path_after(raw: &[u8], decoded_len: usize) -> &[u8] {
    let mut i = 0;
    for _ in 0..decoded_len {
        if i >= raw.len() {
            break;
        }
        let escape = raw[i] == b'%'
            && i + 2 < raw.len()
            && raw[i + 1].is_ascii_hexdigit()
            && raw[i + 2].is_ascii_hexdigit();
        i += if escape { 3 } else { 1 };
    }
    &raw[i.min(raw.len())..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_path_after_skips_decoded_bytes() {
        assert_eq!(raw_path_after(b"/proxy/a/b", 6), b"/a/b");
        assert_eq!(raw_path_after(b"/%70roxy/a%20b", 6), b"/a%20b");
        assert_eq!(raw_path_after(b"/proxy", 6), b"");
        assert_eq!(raw_path_after(b"/100%", 4), b"%");
        assert_eq!(raw_path_after(b"/x", 0), b"/x");
    }
}
