//! The head detector: accepted and rejected heads, both sides of every limit, framing rules, and
//! every valid case fed at every split point and byte by byte.

mod detect_util;

use asycamore::detect::{
    BodyFraming, HeadDetector, HeadError, Limits, MAX_REQUEST_BODY, RequestHead, TargetForm,
    Version,
};
use asycamore::executor::Step;
use detect_util::{HeadSnapshot, detect_growing, detect_once, detect_shotgun, lossy};

fn limits() -> Limits {
    Limits::default()
}

#[track_caller]
fn accept(input: &[u8]) -> HeadSnapshot {
    match detect_shotgun(limits(), input) {
        Ok(Some(s)) => s,
        other => panic!("{:?} was not accepted: {other:?}", lossy(input)),
    }
}

#[track_caller]
fn reject(input: &[u8], want: HeadError) {
    assert_eq!(
        detect_shotgun(limits(), input),
        Err(want),
        "{:?}",
        lossy(input)
    );
}

#[test]
fn simple_get() {
    let s = accept(b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    assert_eq!(s.method, "GET");
    assert_eq!(s.target, b"/index.html?q=1");
    assert_eq!(s.version, Version::Http11);
    assert_eq!(
        s.headers,
        [
            ("Host".into(), b"example.com".to_vec()),
            ("Accept".into(), b"*/*".to_vec())
        ]
    );
    assert_eq!(s.host.as_deref(), Some(&b"example.com"[..]));
    assert_eq!(s.framing, BodyFraming::None);
    assert!(s.keep_alive);
    assert!(!s.expects_continue);
}

#[test]
fn ready_length_excludes_what_follows() {
    let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n";
    assert_eq!(accept(input).len, 27);
}

#[test]
fn accepted_table() {
    // (input, method, target, version, framing, keep_alive)
    type Case<'a> = (&'a [u8], &'a str, &'a [u8], Version, BodyFraming, bool);
    let cases: &[Case] = &[
        (
            b"GET / HTTP/1.0\r\n\r\n",
            "GET",
            b"/",
            Version::Http10,
            BodyFraming::None,
            false,
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            "GET",
            b"/",
            Version::Http10,
            BodyFraming::None,
            true,
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n",
            "GET",
            b"/",
            Version::Http10,
            BodyFraming::None,
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, CLOSE\r\n\r\n",
            "GET",
            b"/",
            Version::Http11,
            BodyFraming::None,
            false,
        ),
        (
            b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
            "GET",
            b"/",
            Version::Http11,
            BodyFraming::None,
            true,
        ),
        (
            b"GET / HTTP/1.9\r\nHost: a\r\n\r\n",
            "GET",
            b"/",
            Version::Http11,
            BodyFraming::None,
            true,
        ),
        (
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET",
            b"/",
            Version::Http11,
            BodyFraming::None,
            true,
        ),
        (
            b"\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET",
            b"/",
            Version::Http11,
            BodyFraming::None,
            true,
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            "POST",
            b"/p",
            Version::Http11,
            BodyFraming::Length(5),
            true,
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            "POST",
            b"/p",
            Version::Http11,
            BodyFraming::Length(0),
            true,
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            "POST",
            b"/p",
            Version::Http11,
            BodyFraming::Length(5),
            true,
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\n",
            "POST",
            b"/p",
            Version::Http11,
            BodyFraming::Length(5),
            true,
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST",
            b"/p",
            Version::Http11,
            BodyFraming::Chunked,
            true,
        ),
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED , \r\n\r\n",
            "POST",
            b"/p",
            Version::Http11,
            BodyFraming::Chunked,
            true,
        ),
        (
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            "OPTIONS",
            b"*",
            Version::Http11,
            BodyFraming::None,
            true,
        ),
        (
            b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
            "CONNECT",
            b"a.example:443",
            Version::Http11,
            BodyFraming::None,
            true,
        ),
        (
            b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET",
            b"http://a/b",
            Version::Http11,
            BodyFraming::None,
            true,
        ),
        (
            b"M-SEARCH_! /x HTTP/1.1\r\nHost: a\r\n\r\n",
            "M-SEARCH_!",
            b"/x",
            Version::Http11,
            BodyFraming::None,
            true,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
            "GET",
            b"/",
            Version::Http11,
            BodyFraming::None,
            true,
        ),
    ];
    for &(input, method, target, version, framing, keep_alive) in cases {
        let s = accept(input);
        assert_eq!(
            (
                s.method.as_str(),
                &s.target[..],
                s.version,
                s.framing,
                s.keep_alive
            ),
            (method, target, version, framing, keep_alive),
            "{:?}",
            lossy(input)
        );
        assert_eq!(s.len, input.len());
    }
}

#[test]
fn target_forms_accepted() {
    use TargetForm::*;
    // RFC 9112 §3.2: each form with a method that may use it.
    let cases: &[(&[u8], TargetForm)] = &[
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Origin),
        (
            b"GET /a/b?c=d&e=*:@!$'()+,;=%20 HTTP/1.1\r\nHost: a\r\n\r\n",
            Origin,
        ),
        (b"GET //double HTTP/1.1\r\nHost: a\r\n\r\n", Origin),
        (b"GET /*?q=[x]{y}|\"z\" HTTP/1.1\r\nHost: a\r\n\r\n", Origin),
        (b"OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n", Origin),
        (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Asterisk),
        (b"OPTIONS * HTTP/1.0\r\n\r\n", Asterisk),
        (b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", Absolute),
        (b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", Absolute),
        (
            b"POST HTTPS://a:8443/up?x HTTP/1.1\r\nHost: a:8443\r\nContent-Length: 0\r\n\r\n",
            Absolute,
        ),
        (b"OPTIONS http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", Absolute),
        (
            b"GET coap+tcp://[::1]/x HTTP/1.1\r\nHost: [::1]\r\n\r\n",
            Absolute,
        ),
        (
            b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
            Authority,
        ),
        (
            b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
            Authority,
        ),
        (
            b"CONNECT 192.0.2.1:8080 HTTP/1.1\r\nHost: 192.0.2.1:8080\r\n\r\n",
            Authority,
        ),
    ];
    for &(input, form) in cases {
        let s = accept(input);
        assert_eq!(s.target_form, form, "{:?}", lossy(input));
        assert_eq!(s.len, input.len());
    }
}

#[test]
fn host_values_accepted() {
    // RFC 9110 §7.2 and RFC 3986 §3.2.2: reg-name, IPv4address, IP-literal, with or without a
    // port; an empty value (RFC 9112 §3.2, for a target without authority).
    for host in [
        &b""[..],
        b"example.com",
        b"example.com:8080",
        b"EXAMPLE.COM.",
        b"127.0.0.1",
        b"127.0.0.1:80",
        b"[::1]",
        b"[::1]:8080",
        b"[2001:db8:85a3::8a2e:370:7334]:443",
        b"[::ffff:192.0.2.128]",
        b"[v1.fe80::a+en1]",
        b"xn--caf-dma.example",
        b"caf%C3%A9.example",
        b"a_b-c~d!$&'()*+,;=",
        b"example.com:",
    ] {
        let mut input = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        input.extend_from_slice(host);
        input.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            accept(&input).host.as_deref(),
            Some(host),
            "{:?}",
            lossy(host)
        );
    }
    // An empty Host with nothing after the colon at all.
    assert_eq!(
        accept(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").host.as_deref(),
        Some(&b""[..])
    );
}

#[test]
fn values_are_trimmed_and_empty_values_kept() {
    let s = accept(b"GET / HTTP/1.1\r\nHost:  a \t\r\nX-Empty:\r\nX-Sp:   \r\n\r\n");
    assert_eq!(s.host.as_deref(), Some(&b"a"[..]));
    assert_eq!(s.headers[1], ("X-Empty".into(), vec![]));
    assert_eq!(s.headers[2], ("X-Sp".into(), vec![]));
}

#[test]
fn expect_continue() {
    let s =
        accept(b"PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
    assert!(s.expects_continue);
    // RFC 9110 §10.1.1: ignored from an HTTP/1.0 client, and pointless without a body.
    let s = accept(b"PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    assert!(!s.expects_continue);
    let s = accept(b"GET /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
    assert!(!s.expects_continue);
}

#[test]
fn header_lookup_is_case_insensitive_and_first() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
    let mut d = HeadDetector::new(limits());
    let mut head = RequestHead::new();
    assert_eq!(d.detect(buf, &mut head), Ok((buf.len(), Step::Ready(()))));
    assert_eq!(head.header(buf, "X-a"), Some(&b"1"[..]));
    assert_eq!(head.header(buf, "missing"), None);
    assert_eq!(head.header_count(), 3);
    let (name, value) = head.header_ranges().nth(1).unwrap();
    assert_eq!((&buf[name], &buf[value]), (&b"X-A"[..], &b"1"[..]));
}

#[test]
fn rejected_table() {
    use HeadError::*;
    let cases: &[(&[u8], HeadError)] = &[
        // Line endings.
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", BareLf),
        (b"GET / HTTP/1.1\r\nHost: a\n\r\n", BareLf),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\n", BareLf),
        (b"GET / HTTP/1.1\r\nHost: a\n\n", BareLf),
        (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", BareLf),
        (b"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", MalformedRequestLine),
        (b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", InvalidHeaderValue),
        // Request line.
        (b"GET\r\n\r\n", MalformedRequestLine),
        (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET /\t HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET  HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET /?q=\xff HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET http://a/\xe2\x82\xac HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET /\x1b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        // Target forms (RFC 9112 §3.2).
        (b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", UnrecognizedTarget),
        (b"GET ?q HTTP/1.1\r\nHost: a\r\n\r\n", UnrecognizedTarget),
        (b"GET example.com HTTP/1.1\r\nHost: a\r\n\r\n", UnrecognizedTarget),
        (b"GET http:/a HTTP/1.1\r\nHost: a\r\n\r\n", UnrecognizedTarget),
        (b"GET 1http://a HTTP/1.1\r\nHost: a\r\n\r\n", UnrecognizedTarget),
        (b"GET ** HTTP/1.1\r\nHost: a\r\n\r\n", UnrecognizedTarget),
        (b"OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", UnrecognizedTarget),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", AsteriskFormWithoutOptions),
        (b"options * HTTP/1.1\r\nHost: a\r\n\r\n", AsteriskFormWithoutOptions),
        (b"POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", AsteriskFormWithoutOptions),
        (b"GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", AuthorityFormWithoutConnect),
        (b"OPTIONS [::1]:80 HTTP/1.1\r\nHost: a\r\n\r\n", AuthorityFormWithoutConnect),
        (b"connect a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", AuthorityFormWithoutConnect),
        (b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", ConnectWithoutAuthorityForm),
        (b"CONNECT * HTTP/1.1\r\nHost: a\r\n\r\n", ConnectWithoutAuthorityForm),
        (b"CONNECT http://a:1/ HTTP/1.1\r\nHost: a:1\r\n\r\n", ConnectWithoutAuthorityForm),
        (b"CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", ConnectWithoutAuthorityForm),
        (b"CONNECT example.com: HTTP/1.1\r\nHost: example.com\r\n\r\n", ConnectWithoutAuthorityForm),
        (b"CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n", ConnectWithoutAuthorityForm),
        (b"CONNECT [::1:443 HTTP/1.1\r\nHost: a\r\n\r\n", ConnectWithoutAuthorityForm),
        (b"CONNECT user@a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", ConnectWithoutAuthorityForm),
        (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidMethod),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidMethod),
        (b"G\xc3\xa9T / HTTP/1.1\r\nHost: a\r\n\r\n", InvalidMethod),
        (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET / http/1.1\r\nHost: a\r\n\r\n", MalformedVersion),
        (b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", MalformedVersion),
        (b"GET / HTTP/1\r\nHost: a\r\n\r\n", MalformedVersion),
        (b"GET / HTTP/2\r\nHost: a\r\n\r\n", MalformedVersion),
        (b"GET / FOO/1.1\r\nHost: a\r\n\r\n", MalformedVersion),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", VersionNotSupported),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", VersionNotSupported),
        (b"GET / HTTP/3.0\r\n\r\n", VersionNotSupported),
        (b"GET / HTTP/0.9\r\n\r\n", VersionNotSupported),
        (b"GET /index.html\r\n", VersionNotSupported),
        (b"OPTIONS *\r\n", VersionNotSupported),
        (b"GET * HTTP/2.0\r\n\r\n", VersionNotSupported),
        // One space, no target: not HTTP/0.9 for the URI "HTTP/1.1" but a broken request line.
        (b"GET HTTP/1.1\r\nHost: a\r\n\r\n", MalformedRequestLine),
        (b"GET foo\r\n", MalformedRequestLine),
        (b"GET *\r\n", MalformedRequestLine),
        // Fields: httparse's defaults and ours.
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A\t: 1\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tfolded\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX\x00A: 1\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: 1\r\n\r\n", InvalidHeaderName),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n", InvalidHeaderValue),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x012\r\n\r\n", InvalidHeaderValue),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n", InvalidHeaderValue),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n", InvalidHeaderName),
        // Host.
        (b"GET / HTTP/1.1\r\n\r\n", MissingHost),
        (b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", MultipleHost),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", MultipleHost),
        (b"GET / HTTP/1.1\r\nHost: bad host name\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7:8:9]\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]:80\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n", InvalidHost),
        // Content-Length.
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", ConflictingContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", ConflictingContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1.0\r\n\r\n", InvalidContentLength),
        // Transfer-Encoding.
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", TransferEncodingWithContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingWithContentLength),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingInHttp10),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", UnsupportedTransferCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", UnsupportedTransferCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", UnsupportedTransferCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x-foo\r\n\r\n", UnsupportedTransferCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", UnsupportedTransferCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", ChunkedNotLast),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n", ChunkedNotLast),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked, identity\r\n\r\n", ChunkedNotLast),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", ChunkedNotLast),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", ChunkedTwice),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ChunkedTwice),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", UnsupportedTransferCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", EmptyTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", EmptyTransferEncoding),
    ];
    for &(input, want) in cases {
        reject(input, want);
    }
}

#[test]
fn statuses_and_reasons() {
    use HeadError::*;
    let cases = [
        (BareLf, 400),
        (RequestLineTooLong, 414),
        (HeadTooLarge, 431),
        (TooManyHeaders, 431),
        (VersionNotSupported, 505),
        (UnsupportedTransferCoding, 501),
        (ChunkedNotLast, 400),
        (ChunkedTwice, 400),
        (TransferEncodingWithContentLength, 400),
        (MissingHost, 400),
        (InvalidHost, 400),
        (InvalidTarget, 400),
        (UnrecognizedTarget, 400),
        (AsteriskFormWithoutOptions, 400),
        (AuthorityFormWithoutConnect, 400),
        (ConnectWithoutAuthorityForm, 400),
        (ContentLengthTooLarge, 413),
    ];
    for (e, status) in cases {
        assert_eq!(e.status(), status, "{e:?}");
        assert!(!e.reason().is_empty());
    }
}

/// A POST head declaring a body of `len` bytes.
fn post_with_length(len: u64) -> Vec<u8> {
    format!("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n").into_bytes()
}

#[test]
fn request_body_limit_both_sides() {
    // A limit of our own.
    let small = Limits {
        max_request_body: 100,
        ..Limits::default()
    };
    for (len, ok) in [
        (0, true),
        (99, true),
        (100, true),
        (101, false),
        (u64::MAX, false),
    ] {
        let got = detect_shotgun(small, &post_with_length(len));
        if ok {
            assert_eq!(got.unwrap().unwrap().framing, BodyFraming::Length(len));
        } else {
            assert_eq!(got, Err(HeadError::ContentLengthTooLarge), "{len}");
        }
    }
    // The default: 4 GiB exactly is accepted, one more byte is not, nor is 10 GiB.
    assert_eq!(MAX_REQUEST_BODY, 4 * 1024 * 1024 * 1024);
    let s = detect_shotgun(limits(), &post_with_length(MAX_REQUEST_BODY))
        .unwrap()
        .unwrap();
    assert_eq!(s.framing, BodyFraming::Length(MAX_REQUEST_BODY));
    for len in [MAX_REQUEST_BODY + 1, 10_737_418_240] {
        assert_eq!(
            detect_shotgun(limits(), &post_with_length(len)),
            Err(HeadError::ContentLengthTooLarge),
            "{len}"
        );
    }
    // 0 is unlimited.
    let unlimited = Limits {
        max_request_body: 0,
        ..Limits::default()
    };
    let s = detect_shotgun(unlimited, &post_with_length(u64::MAX))
        .unwrap()
        .unwrap();
    assert_eq!(s.framing, BodyFraming::Length(u64::MAX));
    // Syntax first: a length too large to be a u64 is malformed, not too large; and a framing
    // conflict is a 400 whatever the length.
    let mut overflow =
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n".to_vec();
    assert_eq!(
        detect_shotgun(small, &overflow),
        Err(HeadError::InvalidContentLength)
    );
    overflow =
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    assert_eq!(
        detect_shotgun(small, &overflow),
        Err(HeadError::TransferEncodingWithContentLength)
    );
    // A chunked head is not refused: its size is not known yet.
    let chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        detect_shotgun(small, chunked).unwrap().unwrap().framing,
        BodyFraming::Chunked
    );
    // HTTP/1.0 too.
    let old = b"POST / HTTP/1.0\r\nContent-Length: 101\r\n\r\n";
    assert_eq!(
        detect_shotgun(small, old),
        Err(HeadError::ContentLengthTooLarge)
    );
}

/// A request line of exactly `len` bytes (without CRLF).
fn request_line(len: usize) -> Vec<u8> {
    let mut line = b"GET /".to_vec();
    line.resize(len - " HTTP/1.1".len(), b'a');
    line.extend_from_slice(b" HTTP/1.1");
    assert_eq!(line.len(), len);
    line
}

#[test]
fn request_line_limit_both_sides() {
    let limits = Limits {
        max_request_line: 64,
        ..Limits::default()
    };
    for (len, ok) in [(63, true), (64, true), (65, false)] {
        let mut input = request_line(len);
        input.extend_from_slice(b"\r\nHost: a\r\n\r\n");
        let got = detect_shotgun(limits, &input);
        if ok {
            assert!(matches!(got, Ok(Some(_))), "{len}: {got:?}");
        } else {
            assert_eq!(got, Err(HeadError::RequestLineTooLong), "{len}");
        }
    }
    // A line of exactly the limit whose CR has arrived but not its LF is still waiting.
    let mut input = request_line(64);
    input.push(b'\r');
    assert_eq!(detect_once(limits, &input), Ok(None));
}

#[test]
fn request_line_limit_before_the_line_ends() {
    // A megabyte with no CRLF fails as soon as the limit is passed, not when the line ends.
    let mut d = HeadDetector::new(Limits::default());
    let mut head = RequestHead::new();
    let mut buf = b"GET /".to_vec();
    buf.resize(1 << 20, b'a');
    let mut failed_at = None;
    for end in (1..buf.len()).step_by(1024) {
        match d.detect(&buf[..end], &mut head) {
            Ok((_, Step::WouldBlock)) => {}
            Err(e) => {
                assert_eq!(e, HeadError::RequestLineTooLong);
                failed_at = Some(end);
                break;
            }
            Ok((_, Step::Ready(()))) => panic!("no head here"),
        }
    }
    let at = failed_at.expect("must fail");
    assert!(
        at > asycamore::detect::MAX_REQUEST_LINE
            && at <= asycamore::detect::MAX_REQUEST_LINE + 1024,
        "{at}"
    );
}

#[test]
fn head_limit_both_sides() {
    let base = b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n".len();
    for (max_head, ok) in [(base + 10, true), (base, true), (base - 1, false)] {
        let limits = Limits {
            max_head,
            ..Limits::default()
        };
        let input = b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n";
        let got = detect_shotgun(limits, input);
        assert_eq!(got.is_ok(), ok, "{max_head}: {got:?}");
        if !ok {
            assert_eq!(got, Err(HeadError::HeadTooLarge));
        }
    }
    // Leading empty lines count.
    let limits = Limits {
        max_head: base + 1,
        ..Limits::default()
    };
    assert_eq!(
        detect_once(limits, b"\r\nGET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n"),
        Err(HeadError::HeadTooLarge)
    );
    // An endless field fails once the limit is passed.
    let mut input = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    input.resize(200_000, b'v');
    let limits = Limits::default();
    assert_eq!(detect_once(limits, &input[..limits.max_head]), Ok(None));
    assert_eq!(
        detect_once(limits, &input[..limits.max_head + 1]),
        Err(HeadError::HeadTooLarge)
    );
    // As does an endless stream of empty lines.
    let input = b"\r\n".repeat(40_000);
    assert_eq!(detect_once(limits, &input), Err(HeadError::HeadTooLarge));
}

#[test]
fn header_count_limit_both_sides() {
    let head = |n: usize| {
        let mut h = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 1..n {
            h.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        h.extend_from_slice(b"\r\n");
        h
    };
    let limits = Limits::default();
    let s = detect_once(limits, &head(100)).unwrap().unwrap();
    assert_eq!(s.headers.len(), 100);
    assert_eq!(
        detect_once(limits, &head(101)),
        Err(HeadError::TooManyHeaders)
    );
    // Raised past the stack arrays: still parsed.
    let big = Limits {
        max_headers: 500,
        ..Limits::default()
    };
    assert_eq!(
        detect_once(big, &head(500)).unwrap().unwrap().headers.len(),
        500
    );
    assert_eq!(detect_once(big, &head(501)), Err(HeadError::TooManyHeaders));
    for n in [16, 17, 128, 129] {
        assert_eq!(
            detect_once(big, &head(n)).unwrap().unwrap().headers.len(),
            n
        );
    }
    // The count is enforced before the head ends.
    let mut partial = head(200);
    partial.truncate(partial.len() - 2);
    assert_eq!(
        detect_once(limits, &partial),
        Err(HeadError::TooManyHeaders)
    );
}

#[test]
fn errors_come_early() {
    // A bad version is refused when the request line ends, before any field.
    assert_eq!(
        detect_once(limits(), b"GET / HTTP/2.0\r\n"),
        Err(HeadError::VersionNotSupported)
    );
    assert_eq!(
        detect_once(limits(), b"GET / HTTP/1.1\n"),
        Err(HeadError::BareLf)
    );
    assert_eq!(
        detect_once(limits(), b"GET / HTTP/1.1\r\nA: b\n"),
        Err(HeadError::BareLf)
    );
}

#[test]
fn detector_is_reusable_across_pipelined_heads() {
    let buf = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
    let mut d = HeadDetector::new(limits());
    let mut head = RequestHead::new();
    let Ok((n, Step::Ready(()))) = d.detect(buf, &mut head) else {
        panic!()
    };
    assert_eq!(head.target(buf), b"/1");
    let rest = &buf[n..];
    // Grow the second one byte by byte.
    for end in 0..rest.len() {
        assert_eq!(d.detect(&rest[..end], &mut head), Ok((0, Step::WouldBlock)));
    }
    assert_eq!(d.detect(rest, &mut head), Ok((rest.len(), Step::Ready(()))));
    assert_eq!(head.target(rest), b"/2");
    assert!(!head.keep_alive());
    assert_eq!(head.header_count(), 2);
}

#[test]
fn wrong_buffer_never_panics() {
    let buf = b"GET /long/path HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut d = HeadDetector::new(limits());
    let mut head = RequestHead::new();
    assert!(d.detect(buf, &mut head).unwrap().1.is_ready());
    assert_eq!(head.target(b"short"), b"");
    assert_eq!(head.headers(b"").count(), 1);
    // A buffer that shrank between calls restarts the scan.
    assert_eq!(d.detect(&buf[..20], &mut head), Ok((0, Step::WouldBlock)));
    assert_eq!(d.detect(&buf[..5], &mut head), Ok((0, Step::WouldBlock)));
    assert_eq!(d.detect(buf, &mut head), Ok((buf.len(), Step::Ready(()))));
}

#[test]
fn split_points_on_a_large_head() {
    let mut input = b"GET /".to_vec();
    input.extend(std::iter::repeat_n(b'p', 300));
    input.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n");
    for i in 0..40 {
        input.extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(i * 3)).as_bytes());
    }
    input.extend_from_slice(b"\r\n");
    let s = detect_growing(limits(), &input, (0..input.len()).step_by(7))
        .unwrap()
        .unwrap();
    assert_eq!(s.headers.len(), 41);
    assert_eq!(accept(&input), s);
}

/// The fuzz target's limits, small enough to reach.
fn fuzz_limits() -> Limits {
    Limits {
        max_request_line: 64,
        max_head: 256,
        max_headers: 8,
        ..Limits::default()
    }
}

#[test]
fn limit_errors_do_not_depend_on_where_reads_split() {
    // Found by the `head` fuzz target: a request line over the limit that ends in a bare LF was a
    // 414 when read in pieces but a 400 when read at once. The limit comes first now.
    let input = std::fs::read("tests/data/fuzz-regressions/head-limit-before-bare-lf.bin").unwrap();
    assert_eq!(
        detect_shotgun(fuzz_limits(), &input[1..]),
        Err(HeadError::RequestLineTooLong)
    );
    let mut line = request_line(70);
    line.push(b'\n');
    assert_eq!(
        detect_shotgun(fuzz_limits(), &line),
        Err(HeadError::RequestLineTooLong)
    );
    // The head limit and the line limit: whichever a byte-by-byte feed hits first.
    let limits = Limits {
        max_request_line: 64,
        max_head: 40,
        ..Limits::default()
    };
    assert_eq!(detect_shotgun(limits, &line), Err(HeadError::HeadTooLarge));
    let mut crlfs = b"\r\n".repeat(10);
    crlfs.extend_from_slice(&line);
    let limits = Limits {
        max_request_line: 30,
        max_head: 40,
        ..Limits::default()
    };
    assert_eq!(detect_shotgun(limits, &crlfs), Err(HeadError::HeadTooLarge));
    let limits = Limits {
        max_request_line: 10,
        max_head: 40,
        ..Limits::default()
    };
    assert_eq!(
        detect_shotgun(limits, &crlfs),
        Err(HeadError::RequestLineTooLong)
    );
    // A field line: the head limit before the bare LF.
    let mut long_field = b"GET / HTTP/1.1\r\nX: ".to_vec();
    long_field.resize(300, b'v');
    long_field.extend_from_slice(b"\n\r\n");
    assert_eq!(
        detect_shotgun(fuzz_limits(), &long_field),
        Err(HeadError::HeadTooLarge)
    );
    // A request line of exactly the limit followed by CR then a bare byte: still the line limit.
    let mut cr = request_line(64);
    cr.extend_from_slice(b"\rX\r\n\r\n");
    assert_eq!(
        detect_shotgun(fuzz_limits(), &cr),
        Err(HeadError::RequestLineTooLong)
    );
}

#[test]
fn leading_empty_lines_past_the_head_limit() {
    // Found by the `head` fuzz target: the whole-head fast path sliced past its window when the
    // leading empty lines alone were longer than the head limit.
    let input =
        std::fs::read("tests/data/fuzz-regressions/head-leading-crlfs-past-limit.bin").unwrap();
    assert_eq!(
        detect_shotgun(fuzz_limits(), &input[1..]),
        Err(HeadError::HeadTooLarge)
    );
}
