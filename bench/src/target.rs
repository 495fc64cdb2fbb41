//! Where a tool sends its requests: `http://host:port/path` parsed into an address, a `Host` value
//! and a request target.

use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The resolved address (the first one the name resolves to).
    pub addr: SocketAddr,
    /// The `Host` header value (`host:port` as written in the URL).
    pub host: String,
    /// The request target: path and query, `/` if the URL has none.
    pub path: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Only `http://` is supported.
    Scheme,
    /// The authority is empty or has a bad port.
    Authority,
    /// The host does not resolve.
    Resolve(String),
}

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlError::Scheme => f.write_str("only http:// URLs are supported"),
            UrlError::Authority => f.write_str("the URL needs a host (and optionally :port)"),
            UrlError::Resolve(e) => write!(f, "cannot resolve the host: {e}"),
        }
    }
}

impl std::error::Error for UrlError {}

impl Target {
    /// Parses `http://host[:port][/path]` (port 80 by default).
    ///
    /// # Errors
    /// See [`UrlError`].
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let rest = url.strip_prefix("http://").ok_or(UrlError::Scheme)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(UrlError::Authority);
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = Target::resolve(&with_port)?;
        Ok(Target {
            addr,
            host: authority.to_string(),
            path: path.to_string(),
        })
    }

    /// Resolves `host:port` to its first address.
    ///
    /// # Errors
    /// [`UrlError::Resolve`] or [`UrlError::Authority`].
    pub fn resolve(host_port: &str) -> Result<SocketAddr, UrlError> {
        host_port
            .to_socket_addrs()
            .map_err(|e| UrlError::Resolve(e.to_string()))?
            .next()
            .ok_or(UrlError::Authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("http://127.0.0.1:8080/echo?x=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.path, "/echo?x=1");
        let t = Target::parse("http://127.0.0.1").unwrap();
        assert_eq!(t.addr.port(), 80);
        assert_eq!(t.path, "/");
        assert_eq!(Target::parse("https://x/"), Err(UrlError::Scheme));
        assert_eq!(Target::parse("http:///x"), Err(UrlError::Authority));
    }
}
