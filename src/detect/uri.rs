//! The URI parts of a request head: which of the four forms a request-target is in (RFC 9112
//! §3.2), and whether a `Host` value is a `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 9112 §3.2).
//!
//! ```text
//! request-target = origin-form / absolute-form / authority-form / asterisk-form
//! origin-form    = absolute-path [ "?" query ]
//! absolute-form  = absolute-URI
//! authority-form = uri-host ":" port
//! asterisk-form  = "*"
//! Host           = uri-host [ ":" port ]
//! uri-host       = IP-literal / IPv4address / reg-name            ; RFC 3986 §3.2.2
//! IP-literal     = "[" ( IPv6address / IPvFuture ) "]"
//! reg-name       = *( unreserved / pct-encoded / sub-delims )
//! port           = *DIGIT
//! ```
//!
//! Only syntax is decided here; which forms a method may use is the head parser's rule. Every
//! check is a byte loop over the class table in [`super::syntax`]; nothing allocates.

use super::syntax::{all_reg_name_bytes, is_hexdig, is_reg_name_byte, is_scheme_byte};

/// The form of a request-target (RFC 9112 §3.2), from
/// [`RequestHead::target_form`](super::RequestHead::target_form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TargetForm {
    /// `/path?query` (RFC 9112 §3.2.1): the usual form, for any method but CONNECT.
    #[default]
    Origin,
    /// `scheme://authority/path?query` (RFC 9112 §3.2.2): sent to proxies; a server must accept
    /// it too, for any method but CONNECT.
    Absolute,
    /// `host:port` (RFC 9112 §3.2.3): only, and always, with CONNECT.
    Authority,
    /// `*` (RFC 9112 §3.2.4): only with OPTIONS, asking about the server as a whole.
    Asterisk,
}

/// The form `target` is in, or `None` if it is in none. `target` has already been checked to be
/// non-empty VCHAR ([`super::syntax::is_target`]); the path and query of the origin and absolute
/// forms are not looked at further.
///
/// The grammar alone is ambiguous: `example.com:443` is an authority-form and also an
/// absolute-URI with scheme `example.com` and path `443`. Like the `http` crate and nginx we take
/// an absolute-form to be `scheme "://" ...`, which every `http` and `https` URI is (RFC 9110
/// §4.2), and anything else with a `host:port` shape to be an authority-form.
#[inline]
pub(crate) fn target_form(target: &[u8]) -> Option<TargetForm> {
    match target {
        [b'/', ..] => Some(TargetForm::Origin),
        b"*" => Some(TargetForm::Asterisk),
        _ if is_absolute_form(target) => Some(TargetForm::Absolute),
        _ if is_authority_form(target) => Some(TargetForm::Authority),
        _ => None,
    }
}

/// True if `target` begins `scheme "://"`, the scheme being `ALPHA *( ALPHA / DIGIT / "+" / "-" /
/// "." )` (RFC 3986 §3.1).
fn is_absolute_form(target: &[u8]) -> bool {
    let Some((&first, rest)) = target.split_first() else {
        return false;
    };
    if !first.is_ascii_alphabetic() {
        return false;
    }
    let scheme = rest.iter().take_while(|&&b| is_scheme_byte(b)).count();
    rest[scheme..].starts_with(b"://")
}

/// True if `target` is `uri-host ":" port` with neither part empty: RFC 9110 §9.3.6 says a CONNECT
/// names the host and port of the tunnel, and that there is no default port.
fn is_authority_form(target: &[u8]) -> bool {
    matches!(split_host_port(target), Some((host, Some(port))) if !host.is_empty() && !port.is_empty())
}

/// True if `value` is a valid `Host` field value: `uri-host [ ":" port ]` (RFC 9110 §7.2). An
/// empty value is one (an empty `reg-name`): RFC 9112 §3.2 has a client send it when the target
/// URI has no authority. `userinfo` is not allowed (RFC 9110 §7.2 excludes it), nor is an IPv6
/// zone identifier (RFC 6874 is not part of `uri-host`).
#[inline]
pub(crate) fn is_host(value: &[u8]) -> bool {
    split_host_port(value).is_some()
}

/// Splits `uri-host [ ":" port ]` into the host and the port (without its colon), checking both;
/// `None` if `s` is not one. The port is `*DIGIT` (RFC 3986 §3.2.3), so it may be empty.
///
/// An `IPv4address` needs no check of its own: its bytes are all `reg-name` bytes, so every
/// dotted quad, valid or not (`999.1.1.1`), is a valid `reg-name`.
#[inline(always)]
fn split_host_port(s: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let host_len = if let [b'[', rest @ ..] = s {
        ip_literal_len(rest)?
    } else {
        // A `reg-name` has no `:`, so a port, if there is one, follows the last. Most values
        // are a plain name, with or without a port: one pass up to the first byte that is not
        // a plain name byte answers them, that byte being the port's colon or the end. Only a
        // name with a `%` (or a bad byte) takes the exact check, from the last colon.
        let plain = s
            .iter()
            .position(|&b| !is_reg_name_byte(b))
            .unwrap_or(s.len());
        match s[plain..] {
            [] | [b':', ..] => plain,
            _ => {
                let host_len = s.iter().rposition(|&b| b == b':').unwrap_or(s.len());
                if !is_reg_name(&s[..host_len]) {
                    return None;
                }
                host_len
            }
        }
    };
    let (host, rest) = s.split_at(host_len);
    match rest {
        [] => Some((host, None)),
        [b':', port @ ..] if port.iter().all(u8::is_ascii_digit) => Some((host, Some(port))),
        _ => None,
    }
}

/// The length of the bracketed IP-literal that starts a host, `[` included, given the bytes after
/// the `[`; `None` if it is not one. RFC 3986 §3.2.2: an IP-literal is the only host that may
/// contain `:`, so it is bracketed. Rare, so kept out of the inlined common path.
#[cold]
fn ip_literal_len(rest: &[u8]) -> Option<usize> {
    let close = memchr::memchr(b']', rest)?;
    is_ip_literal(&rest[..close]).then_some(close + 2)
}

/// True if `s` is a `reg-name` (RFC 3986 §3.2.2): `unreserved / sub-delims / pct-encoded`.
#[inline]
fn is_reg_name(s: &[u8]) -> bool {
    // Host names are plain bytes (`localhost`, `10.0.0.1`, `www.example.com`): one pass with no
    // branch per byte answers them; only a name with a `%` (or a bad byte) takes the second.
    all_reg_name_bytes(s) || is_pct_reg_name(s)
}

/// The exact `reg-name` check, byte by byte, for a name with a `%` in it: each `%` must be
/// followed by two hex digits (RFC 3986 §2.1).
fn is_pct_reg_name(mut s: &[u8]) -> bool {
    loop {
        match s {
            [] => return true,
            [b'%', rest @ ..] if is_pct_tail(rest) => s = &rest[2..],
            [b, rest @ ..] if is_reg_name_byte(*b) => s = rest,
            _ => return false,
        }
    }
}

/// True if `s` starts with the two `HEXDIG` of a `pct-encoded` (RFC 3986 §2.1).
#[inline]
fn is_pct_tail(s: &[u8]) -> bool {
    matches!(s, [a, b, ..] if is_hexdig(*a) && is_hexdig(*b))
}

/// True if `inner`, the part between the brackets, is `IPv6address / IPvFuture` (RFC 3986
/// §3.2.2).
fn is_ip_literal(inner: &[u8]) -> bool {
    match inner {
        [b'v' | b'V', rest @ ..] => is_ipv_future(rest),
        _ => is_ipv6(inner),
    }
}

/// True if `s` (after the `v`) is the rest of an `IPvFuture`: `1*HEXDIG "." 1*( unreserved /
/// sub-delims / ":" )`.
fn is_ipv_future(s: &[u8]) -> bool {
    let version = s.iter().take_while(|&&b| is_hexdig(b)).count();
    match &s[version..] {
        [b'.', rest @ ..] if version > 0 && !rest.is_empty() => {
            rest.iter().all(|&b| is_reg_name_byte(b) || b == b':')
        }
        _ => false,
    }
}

/// Pieces of an IPv6 address: eight 16-bit groups (RFC 4291 §2.2).
const IPV6_GROUPS: usize = 8;

/// Hex digits in one `h16` at most (RFC 3986 §3.2.2: `h16 = 1*4HEXDIG`).
const H16_DIGITS: usize = 4;

/// True if `s` is an `IPv6address` (RFC 3986 §3.2.2). Its nine alternatives come to: `h16` groups
/// separated by `:`, the last of which may be an `IPv4address` counting as two; exactly eight
/// groups, or at most seven with one `::` standing for the rest.
fn is_ipv6(s: &[u8]) -> bool {
    let mut groups = 0;
    let mut compressed = false;
    let mut rest = s;
    if let [b':', b':', after @ ..] = rest {
        compressed = true;
        rest = after;
    }
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|&&b| is_hexdig(b)).count();
        if rest.get(digits) == Some(&b'.') {
            // ls32 as an IPv4address: only at the end.
            if !is_ipv4(rest) {
                return false;
            }
            groups += 2;
            break;
        }
        if digits == 0 || digits > H16_DIGITS {
            return false;
        }
        groups += 1;
        rest = match &rest[digits..] {
            [] => break,
            [b':', b':', after @ ..] if !compressed => {
                compressed = true;
                after
            }
            // A single colon must be followed by another group.
            [b':', after @ ..] if !after.is_empty() && after[0] != b':' => after,
            _ => return false,
        };
        if groups > IPV6_GROUPS {
            return false;
        }
    }
    if compressed {
        groups < IPV6_GROUPS
    } else {
        groups == IPV6_GROUPS
    }
}

/// True if `s` is an `IPv4address` (RFC 3986 §3.2.2): four `dec-octet`s 0..=255 separated by
/// dots, without leading zeros.
fn is_ipv4(s: &[u8]) -> bool {
    let mut octets = 0;
    for octet in s.split(|&b| b == b'.') {
        let valid = match *octet {
            [d] => d.is_ascii_digit(),
            [b'1'..=b'9', d] => d.is_ascii_digit(),
            [b'1', d, e] => d.is_ascii_digit() && e.is_ascii_digit(),
            [b'2', b'0'..=b'4', d] => d.is_ascii_digit(),
            [b'2', b'5', b'0'..=b'5'] => true,
            _ => false,
        };
        if !valid {
            return false;
        }
        octets += 1;
    }
    octets == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        use TargetForm::*;
        let cases: &[(&[u8], Option<TargetForm>)] = &[
            (b"/", Some(Origin)),
            (b"/a?b=c", Some(Origin)),
            (b"//x", Some(Origin)),
            (b"*", Some(Asterisk)),
            (b"http://a/b", Some(Absolute)),
            (b"HTTPS://a:1", Some(Absolute)),
            (b"coap+tcp://h", Some(Absolute)),
            (b"a.b-c://", Some(Absolute)),
            (b"example.com:443", Some(Authority)),
            (b"[::1]:8443", Some(Authority)),
            (b"1.2.3.4:80", Some(Authority)),
            (b"foo", None),
            (b"**", None),
            (b"*/", None),
            (b"example.com", None),
            (b"example.com:", None),
            (b":443", None),
            (b"h:44a", None),
            (b"1http://a", None),
            (b"http:/a", None),
            (b"http:a", None),
            (b"://a", None),
            (b"HTTP/1.1", None),
            (b"user@h:1", None),
        ];
        for &(target, form) in cases {
            assert_eq!(
                target_form(target),
                form,
                "{:?}",
                String::from_utf8_lossy(target)
            );
        }
    }

    #[test]
    fn hosts() {
        for good in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"example.com:",
            b":80",
            b"EXAMPLE.com.",
            b"a-b_c~d",
            b"caf%C3%A9.example",
            b"!$&'()*+,;=",
            b"127.0.0.1",
            b"127.0.0.1:80",
            b"999.999.999.999",
            b"[::1]",
            b"[::1]:8080",
            b"[2001:db8::1]:443",
            b"[::ffff:192.0.2.1]",
            b"[v1.fe80::a+en1]",
            b"[V7.x]:1",
        ] {
            assert!(is_host(good), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"bad host name"[..],
            b"a b",
            b"user@host",
            b"host/path",
            b"host?q",
            b"host#f",
            b"a:b:c",
            b"a:80a",
            b"a:-1",
            b"%",
            b"%4",
            b"%zz",
            b"caf\xc3\xa9",
            b"a\tb",
            b"[::1",
            b"::1",
            b"[::1]x",
            b"[::1]:x",
            b"[]",
            b"[fe80::1%25eth0]",
            b"[v.x]",
            b"[v1.]",
            b"[v1x]",
            b"a[b]",
        ] {
            assert!(!is_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ipv6_addresses() {
        // Every alternative of RFC 3986 §3.2.2's IPv6address, and its edges.
        for good in [
            &b"1:2:3:4:5:6:7:8"[..],
            b"1:2:3:4:5:6:1.2.3.4",
            b"::2:3:4:5:6:7:8",
            b"::3:4:5:6:7:1.2.3.4",
            b"1::3:4:5:6:7:8",
            b"1::4:5:6:7:1.2.3.4",
            b"1:2::4:5:6:7:8",
            b"1:2:3:4:5::7:8",
            b"1:2:3:4:5::1.2.3.4",
            b"1:2:3:4:5:6::8",
            b"1:2:3:4:5:6:7::",
            b"::",
            b"::1",
            b"1::",
            b"::1.2.3.4",
            b"ffff:FFFF:0:00:000:0000:a:B",
            b"2001:db8::8a2e:370:7334",
        ] {
            assert!(is_ipv6(good), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b""[..],
            b":",
            b":::",
            b"1:2:3:4:5:6:7",
            b"1:2:3:4:5:6:7:8:9",
            b"1:2:3:4:5:6:7:8::",
            b"::1:2:3:4:5:6:7:8",
            b"1:2:3:4:5:6::1.2.3.4",
            b"1:2:3:4:5:6:7::1.2.3.4",
            b"1::2::3",
            b"1:::2",
            b":1::2",
            b"1::2:",
            b"12345::",
            b"g::",
            b"1.2.3.4::",
            b"::1.2.3.4:1",
            b"::1.2.3",
            b"::1.2.3.256",
            b"::01.2.3.4",
            b"1:2:3:4:5:6:7:8%eth0",
        ] {
            assert!(!is_ipv6(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ipv4_addresses() {
        for good in [
            &b"0.0.0.0"[..],
            b"255.255.255.255",
            b"10.0.199.249",
            b"1.22.100.249",
        ] {
            assert!(is_ipv4(good), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"256.0.0.0"[..],
            b"1.2.3",
            b"1.2.3.4.5",
            b"01.2.3.4",
            b"1..2.3",
            b"1.2.3.",
            b"300.1.1.1",
            b"260.1.1.1",
            b"1.2.3.a",
        ] {
            assert!(!is_ipv4(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
