//! [`Version`]: the protocol version a request is served as.

/// The protocol version of a request, as it will be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`, and `HTTP/1.2` to `HTTP/1.9`, which RFC 9110 §2.5 says to serve as 1.1.
    #[default]
    Http11,
}

impl Version {
    /// The version as written in a start line: `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}
