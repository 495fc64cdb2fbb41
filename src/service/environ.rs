//! The request as an application sees it: the CGI / PEP 3333 keys, read from the head in place.
//!
//! Nothing is copied when an [`Environ`] is made: it holds the head's bytes (still in the
//! connection's read buffer) and the parsed head's offsets, and each key is computed when asked
//! for. Only values that must change form (a percent-decoded path, an `HTTP_*` name) allocate,
//! and only when they contain something to change.

use std::borrow::Cow;
use std::net::SocketAddr;

use crate::detect::syntax::hex_value;
use crate::detect::{RequestHead, Version};

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client's address (`REMOTE_ADDR`, `REMOTE_PORT`); `None` over a Unix-domain socket,
    /// whose clients have none.
    pub remote: Option<SocketAddr>,
    /// The address the server accepted on (`SERVER_PORT`, and `SERVER_NAME` without a `Host`);
    /// `None` over a Unix-domain socket.
    pub local: Option<SocketAddr>,
}

/// `SERVER_NAME` for a request without `Host` on a Unix-domain socket: the socket is on this
/// host, and PEP 3333 wants a name.
const UNIX_SERVER_NAME: &str = "localhost";

/// `SERVER_PORT` when neither the socket nor `Host` gives one: HTTP's (RFC 9110 §4.2.1).
const DEFAULT_PORT: u16 = 80;

/// One request's environment, the counterpart of a WSGI `environ` dict.
#[derive(Debug, Clone, Copy)]
pub struct Environ<'a> {
    head_bytes: &'a [u8],
    head: &'a RequestHead,
    peer: &'a Peer,
    /// Bytes of the decoded path that belong to `SCRIPT_NAME` (moved there by a router).
    script_len: usize,
}

impl<'a> Environ<'a> {
    /// An environ over a parsed head; `head_bytes` are the bytes `head` was parsed from.
    pub fn new(head_bytes: &'a [u8], head: &'a RequestHead, peer: &'a Peer) -> Environ<'a> {
        Environ {
            head_bytes,
            head,
            peer,
            script_len: 0,
        }
    }

    /// The same environ with the first `script_len` bytes of the decoded path as `SCRIPT_NAME`.
    pub fn with_script_len(mut self, script_len: usize) -> Environ<'a> {
        self.script_len = script_len;
        self
    }

    /// How many bytes of the decoded path belong to `SCRIPT_NAME`.
    pub fn script_len(&self) -> usize {
        self.script_len
    }

    /// Moves `prefix_len` more bytes from the front of `PATH_INFO` to the end of `SCRIPT_NAME`;
    /// a router calls this when it mounts an application under a prefix.
    pub fn mount(&mut self, prefix_len: usize) {
        self.script_len = (self.script_len + prefix_len).min(self.path().len());
    }

    /// The parsed head, for what the CGI keys do not cover.
    pub fn head(&self) -> &'a RequestHead {
        self.head
    }

    /// `REQUEST_METHOD`.
    pub fn request_method(&self) -> &'a str {
        self.head.method(self.head_bytes)
    }

    /// The request target exactly as sent.
    pub fn target(&self) -> &'a [u8] {
        self.head.target(self.head_bytes)
    }

    /// The raw (still percent-encoded) path of the target, for any of the RFC 9112 §3.2 forms:
    /// origin-form `/p?q`, absolute-form `http://host/p?q` (its path), asterisk-form `*`, and
    /// authority-form `host:port` (an empty path).
    pub fn raw_path(&self) -> &'a [u8] {
        let target = self.target();
        let without_query = match memchr::memchr(b'?', target) {
            Some(q) => &target[..q],
            None => target,
        };
        if without_query.first() == Some(&b'/') || without_query == b"*" {
            return without_query;
        }
        // absolute-form: skip "scheme://authority".
        if let Some(i) = memchr::memmem::find(without_query, b"://") {
            let rest = &without_query[i + 3..];
            return match memchr::memchr(b'/', rest) {
                Some(p) => &rest[p..],
                None => b"/",
            };
        }
        b""
    }

    /// The whole path, percent-decoded (`SCRIPT_NAME` followed by `PATH_INFO`).
    pub fn path(&self) -> Cow<'a, [u8]> {
        percent_decode(self.raw_path())
    }

    /// `SCRIPT_NAME`: the part of the decoded path a router has mounted the application under.
    pub fn script_name(&self) -> Cow<'a, str> {
        match self.path() {
            Cow::Borrowed(p) => String::from_utf8_lossy(&p[..self.script_len.min(p.len())]),
            Cow::Owned(p) => {
                Cow::Owned(String::from_utf8_lossy(&p[..self.script_len.min(p.len())]).into_owned())
            }
        }
    }

    /// `PATH_INFO`: the rest of the decoded path, as bytes (a decoded path need not be UTF-8).
    pub fn path_info_bytes(&self) -> Cow<'a, [u8]> {
        match self.path() {
            Cow::Borrowed(p) => Cow::Borrowed(&p[self.script_len.min(p.len())..]),
            Cow::Owned(p) => Cow::Owned(p[self.script_len.min(p.len())..].to_vec()),
        }
    }

    /// `PATH_INFO`, with bytes that are not UTF-8 replaced by U+FFFD.
    pub fn path_info(&self) -> Cow<'a, str> {
        match self.path_info_bytes() {
            Cow::Borrowed(p) => String::from_utf8_lossy(p),
            Cow::Owned(p) => Cow::Owned(String::from_utf8_lossy(&p).into_owned()),
        }
    }

    /// `QUERY_STRING`: everything after the first `?` of the target, still encoded.
    pub fn query_string(&self) -> &'a str {
        let target = self.target();
        match memchr::memchr(b'?', target) {
            Some(q) => std::str::from_utf8(&target[q + 1..]).unwrap_or(""),
            None => "",
        }
    }

    /// The value of query parameter `name` as sent (first occurrence, not decoded); see
    /// [`Environ::query_value`] for the decoded value.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query_string().split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }

    /// The value of query parameter `name`, decoded as HTML forms encode it (`%XX` escapes,
    /// `+` for a space; the first occurrence), or `None` if it is absent or does not decode
    /// to UTF-8. `?ms=%31%30` gives `"10"`; only a value with an escape or a `+` allocates.
    ///
    /// ```
    /// use asycamore::detect::{HeadDetector, Limits, RequestHead};
    /// use asycamore::service::{Environ, Peer};
    ///
    /// let bytes = b"GET /find?ms=%31%30&q=caf%C3%A9+au+lait&flag HTTP/1.1\r\nHost: x\r\n\r\n";
    /// let mut head = RequestHead::new();
    /// HeadDetector::new(Limits::default()).detect(bytes, &mut head).unwrap();
    /// let peer = Peer { remote: None, local: None };
    /// let env = Environ::new(bytes, &head, &peer);
    /// assert_eq!(env.query_value("ms").as_deref(), Some("10"));
    /// assert_eq!(env.query_value("q").as_deref(), Some("café au lait"));
    /// assert_eq!(env.query_param("q"), Some("caf%C3%A9+au+lait")); // as sent
    /// assert_eq!(env.query_value("flag").as_deref(), Some(""));
    /// assert_eq!(env.query_value("missing"), None);
    /// ```
    pub fn query_value(&self, name: &str) -> Option<Cow<'a, str>> {
        let raw = self.query_param(name)?;
        if !raw.bytes().any(|b| b == b'%' || b == b'+') {
            return Some(Cow::Borrowed(raw));
        }
        let spaced = raw.replace('+', " ");
        let decoded = percent_decode(spaced.as_bytes()).into_owned();
        String::from_utf8(decoded).ok().map(Cow::Owned)
    }

    /// The first header called `name` (case-insensitive), as bytes.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.head.header(self.head_bytes, name)
    }

    /// The first header called `name` as text, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header as (name, value), in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        self.head.headers(self.head_bytes)
    }

    /// `CONTENT_TYPE`.
    pub fn content_type(&self) -> Option<&'a str> {
        self.header_str("content-type")
    }

    /// `CONTENT_LENGTH`, when the body is framed by one.
    pub fn content_length(&self) -> Option<u64> {
        match self.head.framing() {
            crate::detect::BodyFraming::Length(n) => Some(n),
            _ => None,
        }
    }

    /// True if the request body is chunked (its length is not known in advance).
    pub fn is_chunked(&self) -> bool {
        matches!(self.head.framing(), crate::detect::BodyFraming::Chunked)
    }

    /// `SERVER_NAME`: the host the client asked for (the `Host` header without its port), else the
    /// address the connection was accepted on (`localhost` on a Unix-domain socket).
    pub fn server_name(&self) -> Cow<'a, str> {
        if let Some((name, _)) = self.host_parts()
            && !name.is_empty()
        {
            return Cow::Borrowed(name);
        }
        match self.peer.local {
            Some(local) => Cow::Owned(local.ip().to_string()),
            None => Cow::Borrowed(UNIX_SERVER_NAME),
        }
    }

    /// `SERVER_PORT`: the port the connection was accepted on; on a Unix-domain socket, which
    /// has none, the port of `Host`, else 80.
    pub fn server_port(&self) -> u16 {
        match self.peer.local {
            Some(local) => local.port(),
            None => self
                .host_parts()
                .and_then(|(_, port)| port?.parse().ok())
                .unwrap_or(DEFAULT_PORT),
        }
    }

    /// The `Host` header split into its name and its port, if any (`[::1]:8080` gives `[::1]`
    /// and `8080`).
    fn host_parts(&self) -> Option<(&'a str, Option<&'a str>)> {
        let host = self.header_str("host")?;
        Some(if host.starts_with('[') {
            let name = host.split_inclusive(']').next().unwrap_or(host);
            (name, host[name.len()..].strip_prefix(':'))
        } else {
            match host.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            }
        })
    }

    /// `SERVER_PROTOCOL`: the version the request is served as (`HTTP/1.0` or `HTTP/1.1`).
    pub fn server_protocol(&self) -> &'static str {
        match self.head.version() {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }

    /// `REMOTE_ADDR` and `REMOTE_PORT` together; `None` over a Unix-domain socket.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.peer.remote
    }

    /// The address the connection was accepted on; `None` over a Unix-domain socket.
    pub fn local(&self) -> Option<SocketAddr> {
        self.peer.local
    }

    /// `wsgi.url_scheme`: always `http` (TLS is terminated in front of asycamore).
    pub fn url_scheme(&self) -> &'static str {
        "http"
    }

    /// Looks a key up by its CGI / WSGI name, as a WSGI application would in `environ[key]`:
    /// `REQUEST_METHOD`, `SCRIPT_NAME`, `PATH_INFO`, `QUERY_STRING`, `CONTENT_TYPE`,
    /// `CONTENT_LENGTH`, `SERVER_NAME`, `SERVER_PORT`, `SERVER_PROTOCOL`, `REMOTE_ADDR`,
    /// `REMOTE_PORT`, `wsgi.url_scheme`, and `HTTP_*` for any header (several headers of one name
    /// are joined with `, `).
    pub fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        Some(match key {
            "REQUEST_METHOD" => Cow::Borrowed(self.request_method()),
            "SCRIPT_NAME" => self.script_name(),
            "PATH_INFO" => self.path_info(),
            "QUERY_STRING" => Cow::Borrowed(self.query_string()),
            "CONTENT_TYPE" => Cow::Borrowed(self.content_type()?),
            "CONTENT_LENGTH" => Cow::Owned(self.content_length()?.to_string()),
            "SERVER_NAME" => self.server_name(),
            "SERVER_PORT" => Cow::Owned(self.server_port().to_string()),
            "SERVER_PROTOCOL" => Cow::Borrowed(self.server_protocol()),
            // Empty over a Unix-domain socket (CGI, RFC 3875 §4.1.8, has no address to give);
            // REMOTE_PORT is then absent.
            "REMOTE_ADDR" => match self.remote() {
                Some(remote) => Cow::Owned(remote.ip().to_string()),
                None => Cow::Borrowed(""),
            },
            "REMOTE_PORT" => Cow::Owned(self.remote()?.port().to_string()),
            "wsgi.url_scheme" => Cow::Borrowed(self.url_scheme()),
            _ => {
                let wanted = key.strip_prefix("HTTP_")?;
                let mut joined: Option<Cow<'a, str>> = None;
                for (name, value) in self.headers() {
                    if !cgi_name_matches(name, wanted) {
                        continue;
                    }
                    let value = String::from_utf8_lossy(value);
                    joined = Some(match joined {
                        None => value,
                        Some(prev) => Cow::Owned(format!("{prev}, {value}")),
                    });
                }
                return joined;
            }
        })
    }
}

/// True if header `name` is spelled `wanted` in CGI form (upper case, `-` as `_`).
fn cgi_name_matches(name: &str, wanted: &str) -> bool {
    name.len() == wanted.len()
        && name.bytes().zip(wanted.bytes()).all(|(n, w)| {
            let n = if n == b'-' {
                b'_'
            } else {
                n.to_ascii_uppercase()
            };
            n == w
        })
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is. Borrows when there
/// is nothing to decode.
///
/// ```
/// use asycamore::service::percent_decode;
///
/// assert_eq!(&*percent_decode(b"a%20b"), b"a b");
/// assert_eq!(&*percent_decode(b"100%"), b"100%"); // not an escape: kept
/// ```
pub fn percent_decode(raw: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr::memchr(b'%', raw) else {
        return Cow::Borrowed(raw);
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while i < raw.len() {
        if raw[i] == b'%'
            && i + 2 < raw.len()
            && let (Some(h), Some(l)) = (hex_value(raw[i + 1]), hex_value(raw[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_decodes_escapes_and_keeps_stray_percents() {
        assert_eq!(&*percent_decode(b"/a%20b"), b"/a b");
        assert_eq!(&*percent_decode(b"/%2e%2E/x"), b"/../x");
        assert_eq!(&*percent_decode(b"/100%"), b"/100%");
        assert_eq!(&*percent_decode(b"/%4"), b"/%4");
        assert_eq!(&*percent_decode(b"/%zz"), b"/%zz");
        assert_eq!(&*percent_decode(b"/%41"), b"/A");
        assert!(matches!(percent_decode(b"/plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn cgi_names_match_headers_case_insensitively() {
        assert!(cgi_name_matches("User-Agent", "USER_AGENT"));
        assert!(cgi_name_matches("x-a", "X_A"));
        assert!(!cgi_name_matches("X-A", "X_B"));
        assert!(!cgi_name_matches("X-AB", "X_A"));
    }
}
