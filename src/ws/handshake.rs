//! The server's side of the opening handshake (RFC 6455 §4.2): checking an upgrade request's
//! fields ([`validate_upgrade`], [`UpgradeRequest`]) and computing `Sec-WebSocket-Accept`
//! ([`accept_key`]).
//!
//! Plain data in, plain data out: the caller has parsed the request head and writes the
//! response. On success it answers (§4.2.2, step 5):
//!
//! ```text
//! HTTP/1.1 101 Switching Protocols
//! Upgrade: websocket
//! Connection: Upgrade
//! Sec-WebSocket-Accept: <the 28 bytes from accept_key>
//! ```
//!
//! and speaks WebSocket from the next byte on, in both directions. No subprotocol
//! (`Sec-WebSocket-Protocol`) or extension (`Sec-WebSocket-Extensions`) is ever selected, so the
//! response names none and the frames' RSV bits must stay 0 (§4.2.2, §9.1). `Origin` (§10.2) is
//! the application's business and not checked here; `Host` is checked by the head parser.
//!
//! On failure the caller answers with [`HandshakeError::status`] and the fields in
//! [`HandshakeError::headers`], and does not upgrade:
//!
//! | failure | status |
//! |---|---|
//! | method not `GET`, or HTTP/1.0 (§4.2.1, item 1) | 400 |
//! | no `websocket` in `Upgrade` (item 3) | 426, with `Upgrade: websocket` (RFC 9110 §15.5.22) |
//! | no `upgrade` in `Connection` (item 4) | 400 |
//! | `Sec-WebSocket-Version` missing or repeated (item 6, §11.3.5) | 400, with `Sec-WebSocket-Version: 13` |
//! | `Sec-WebSocket-Version` not `13` (item 6, §4.4) | 426, with `Sec-WebSocket-Version: 13` |
//! | `Sec-WebSocket-Key` missing, repeated, or not base64 of 16 bytes (item 5, §11.3.1) | 400 |
//!
//! ```
//! use asycamore::detect::Version;
//! use asycamore::ws::{HandshakeError, UpgradeRequest};
//!
//! let request = UpgradeRequest {
//!     method: b"GET",
//!     version: Version::Http11,
//!     connection: Some(b"keep-alive, Upgrade"),
//!     upgrade: Some(b"websocket"),
//!     sec_websocket_version: Some(b"13"),
//!     sec_websocket_key: Some(b"dGhlIHNhbXBsZSBub25jZQ=="),
//! };
//! assert_eq!(&request.validate().unwrap(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//!
//! let old = UpgradeRequest { sec_websocket_version: Some(b"8"), ..request };
//! assert_eq!(old.validate(), Err(HandshakeError::UnsupportedVersion));
//! assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
//! ```

use super::base64;
use super::sha1::Sha1;
use crate::detect::Version;

/// The GUID a server appends to the client's key before hashing it (RFC 6455 §1.3, §4.2.2).
pub const GUID: &[u8; 36] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Length of a `Sec-WebSocket-Accept` value: base64 of a 20-byte SHA-1 digest.
pub const ACCEPT_LEN: usize = 28;

/// The only protocol version this server speaks (RFC 6455 §4.1, §11.6).
const VERSION: &[u8] = b"13";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2, step 5.4):
/// base64(SHA-1(key ‖ [`GUID`])). `sec_websocket_key` is the field value as sent, without
/// surrounding whitespace and *not* base64-decoded (§1.3).
pub fn accept_key(sec_websocket_key: &[u8]) -> [u8; ACCEPT_LEN] {
    let mut sha1 = Sha1::new();
    sha1.update(sec_websocket_key);
    sha1.update(GUID);
    let digest = sha1.finish();
    let mut accept = [0; ACCEPT_LEN];
    // 20 bytes encode to exactly 28 characters, so this always fits.
    let _ = base64::encode_to_slice(&digest, &mut accept);
    accept
}

/// Why an upgrade request was refused. Each variant says which part of the request is wrong and
/// what to answer ([`HandshakeError::status`], [`HandshakeError::headers`]); see the module doc's
/// table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeError {
    /// The method is not `GET` (§4.2.1, item 1; 400).
    MethodNotGet,
    /// The request is HTTP/1.0; the handshake needs HTTP/1.1 or higher (§4.2.1, item 1; 400).
    HttpVersion,
    /// `Upgrade` is missing or does not list `websocket` (§4.2.1, item 3; 426).
    MissingUpgrade,
    /// `Connection` is missing or does not list `upgrade` (§4.2.1, item 4; 400).
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Version` (§4.2.1, item 6; 400).
    MissingVersion,
    /// `Sec-WebSocket-Version` appears more than once (§11.3.5; 400).
    DuplicateVersion,
    /// `Sec-WebSocket-Version` is not `13` (§4.2.1, item 6, and §4.4; 426).
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key` (§4.2.1, item 5; 400).
    MissingKey,
    /// `Sec-WebSocket-Key` appears more than once (§11.3.1; 400).
    DuplicateKey,
    /// `Sec-WebSocket-Key` is not the base64 encoding of 16 bytes (§4.2.1, item 5; 400).
    InvalidKey,
}

impl HandshakeError {
    /// The response status.
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::MissingUpgrade | HandshakeError::UnsupportedVersion => 426,
            _ => 400,
        }
    }

    /// Fields the error response must carry besides the usual ones, as `(name, value)`:
    /// for a 426, `Upgrade: websocket` (RFC 9110 §15.5.22) with the `upgrade` connection option
    /// that must accompany it (RFC 9110 §7.8; a second `Connection` line is equivalent to adding
    /// to the first, RFC 9110 §5.3), and the version this server speaks whenever the version was
    /// the problem or could be (RFC 6455 §4.4).
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        const UPGRADE_REQUIRED: &[(&str, &str)] = &[
            ("Upgrade", "websocket"),
            ("Connection", "upgrade"),
            ("Sec-WebSocket-Version", "13"),
        ];
        match self {
            HandshakeError::MissingUpgrade | HandshakeError::UnsupportedVersion => UPGRADE_REQUIRED,
            HandshakeError::MissingVersion | HandshakeError::DuplicateVersion => {
                &[("Sec-WebSocket-Version", "13")]
            }
            _ => &[],
        }
    }

    /// A short, fixed description.
    pub fn reason(self) -> &'static str {
        match self {
            HandshakeError::MethodNotGet => "WebSocket handshake must use GET",
            HandshakeError::HttpVersion => "WebSocket handshake needs HTTP/1.1",
            HandshakeError::MissingUpgrade => "Upgrade must list websocket",
            HandshakeError::MissingConnectionUpgrade => "Connection must list upgrade",
            HandshakeError::MissingVersion => "missing Sec-WebSocket-Version",
            HandshakeError::DuplicateVersion => "repeated Sec-WebSocket-Version",
            HandshakeError::UnsupportedVersion => "unsupported Sec-WebSocket-Version",
            HandshakeError::MissingKey => "missing Sec-WebSocket-Key",
            HandshakeError::DuplicateKey => "repeated Sec-WebSocket-Key",
            HandshakeError::InvalidKey => "Sec-WebSocket-Key is not base64 of 16 bytes",
        }
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for HandshakeError {}

/// The parts of a request the handshake depends on, as plain data: each field's value as sent
/// (surrounding whitespace is ignored), `None` if absent. For a request whose fields may repeat,
/// [`validate_upgrade`] takes them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeRequest<'a> {
    /// The method, e.g. `GET` (case-sensitive, RFC 9110 §9.1).
    pub method: &'a [u8],
    /// The protocol version.
    pub version: Version,
    /// The `Connection` field.
    pub connection: Option<&'a [u8]>,
    /// The `Upgrade` field.
    pub upgrade: Option<&'a [u8]>,
    /// The `Sec-WebSocket-Version` field.
    pub sec_websocket_version: Option<&'a [u8]>,
    /// The `Sec-WebSocket-Key` field.
    pub sec_websocket_key: Option<&'a [u8]>,
}

impl UpgradeRequest<'_> {
    /// Checks the request: the `Sec-WebSocket-Accept` value to answer with, or why not.
    ///
    /// # Errors
    /// As [`validate_upgrade`].
    pub fn validate(&self) -> Result<[u8; ACCEPT_LEN], HandshakeError> {
        let fields = [
            ("Connection", self.connection),
            ("Upgrade", self.upgrade),
            ("Sec-WebSocket-Version", self.sec_websocket_version),
            ("Sec-WebSocket-Key", self.sec_websocket_key),
        ];
        validate_upgrade(
            self.method,
            self.version,
            fields
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        )
    }
}

/// Checks an upgrade request (RFC 6455 §4.2.1) from its method, version and header fields as
/// `(name, value)` in any order (names compared case-insensitively; others are ignored), e.g.
/// [`RequestHead::headers`](crate::detect::RequestHead::headers). Returns the
/// `Sec-WebSocket-Accept` value for the response.
///
/// `Connection` and `Upgrade` are comma-separated lists (RFC 9110 §5.6.1) whose elements are
/// compared case-insensitively (RFC 6455 §4.2.1, items 3–4), and may be split across several
/// lines; `Sec-WebSocket-Version` and `Sec-WebSocket-Key` must appear once.
///
/// # Errors
/// The first failure in the order method, HTTP version, `Upgrade`, `Connection`,
/// `Sec-WebSocket-Version`, `Sec-WebSocket-Key` (the version before the key, since a client of
/// another version may send a different key), as a [`HandshakeError`].
pub fn validate_upgrade<'a>(
    method: &[u8],
    version: Version,
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<[u8; ACCEPT_LEN], HandshakeError> {
    let mut upgrade = false;
    let mut connection = false;
    let mut ws_version = Once::Absent;
    let mut key = Once::Absent;
    for (name, value) in fields {
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= list_contains(value, b"websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= list_contains(value, b"upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            ws_version.add(trim(value));
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            key.add(trim(value));
        }
    }

    if method != b"GET" {
        return Err(HandshakeError::MethodNotGet);
    }
    if version == Version::Http10 {
        return Err(HandshakeError::HttpVersion);
    }
    if !upgrade {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !connection {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    match ws_version {
        Once::Absent => return Err(HandshakeError::MissingVersion),
        Once::Repeated => return Err(HandshakeError::DuplicateVersion),
        Once::One(v) if v != VERSION => return Err(HandshakeError::UnsupportedVersion),
        Once::One(_) => {}
    }
    let key = match key {
        Once::Absent => return Err(HandshakeError::MissingKey),
        Once::Repeated => return Err(HandshakeError::DuplicateKey),
        Once::One(key) => key,
    };
    // §4.2.1, item 5: "a base64-encoded value that, when decoded, is 16 bytes in length". 18
    // bytes of room: what 24 characters decode to at most.
    let mut nonce = [0u8; 18];
    match base64::decode_to_slice(key, &mut nonce) {
        Ok(16) => Ok(accept_key(key)),
        _ => Err(HandshakeError::InvalidKey),
    }
}

/// A field that must appear at most once.
#[derive(Debug, Clone, Copy)]
enum Once<'a> {
    /// Not seen.
    Absent,
    /// Seen once, with this value.
    One(&'a [u8]),
    /// Seen more than once.
    Repeated,
}

impl<'a> Once<'a> {
    /// Another occurrence.
    fn add(&mut self, value: &'a [u8]) {
        *self = match self {
            Once::Absent => Once::One(value),
            _ => Once::Repeated,
        };
    }
}

/// `value` without leading and trailing SP and HTAB (RFC 9110 §5.6.3, OWS).
fn trim(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// True if the comma-separated list `value` has an element equal to `token`, ignoring ASCII case
/// and the whitespace around elements (RFC 9110 §5.6.1; empty elements are allowed and skipped).
fn list_contains(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|element| trim(element).eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_section_1_3_example() {
        assert_eq!(
            &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        // The digest the RFC shows before encoding.
        let mut sha1 = Sha1::new();
        sha1.update(b"dGhlIHNhbXBsZSBub25jZQ==");
        sha1.update(GUID);
        assert_eq!(
            sha1.finish(),
            [
                0xb3, 0x7a, 0x4f, 0x2c, 0xc0, 0x62, 0x4f, 0x16, 0x90, 0xf6, 0x46, 0x06, 0xcf, 0x38,
                0x59, 0x45, 0xb2, 0xbe, 0xc4, 0xea
            ]
        );
    }

    #[test]
    fn lists_and_trimming() {
        assert!(list_contains(b"keep-alive, Upgrade", b"upgrade"));
        assert!(list_contains(b" ,UPGRADE\t", b"upgrade"));
        assert!(!list_contains(b"upgrade-insecure", b"upgrade"));
        assert!(!list_contains(b"", b"upgrade"));
        assert_eq!(trim(b" \t x y\t "), b"x y");
        assert_eq!(trim(b"  "), b"");
    }
}
