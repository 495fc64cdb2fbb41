//! RFC 9110/9112 edges, each over a real socket to the demo binary: Host and request-target
//! syntax, methods (501, 405 with `Allow`, `OPTIONS`), chunk-size whitespace, a misplaced
//! `chunked`, error responses to HEAD, the request-body limit, and response trailers through
//! `/echo` and `/proxy/` (read back raw, with curl, and with Python's `http.client`).

mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;

use util::{Reader, connect, roundtrip, spawn_server};

/// Sends `request` and returns everything the server sends until it closes (a few seconds at
/// most: the server lingers briefly after its last byte).
fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    stream.shutdown(std::net::Shutdown::Write).ok();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

#[test]
fn host_and_request_target_syntax() {
    let server = spawn_server(&[]);
    let status = |req: &[u8]| roundtrip(server.addr, req).status;
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost: bad host name\r\n\r\n"),
        400
    );
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 200);
    assert_eq!(
        status(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        200,
        "empty Host is valid"
    );
    assert_eq!(status(b"GET foo HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
    assert_eq!(status(b"GET * HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
    assert_eq!(
        status(b"GET example.com:443 HTTP/1.1\r\nHost: t\r\n\r\n"),
        400
    );
    assert_eq!(
        status("GET /caf\u{e9} HTTP/1.1\r\nHost: t\r\n\r\n".as_bytes()),
        400
    );
    assert_eq!(status(b"GET /a\x01b HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
    assert_eq!(status(b"GET  HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
    assert_eq!(status(b"GET HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
    assert_eq!(
        status(b"GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n"),
        200,
        "absolute-form is accepted"
    );
}

#[test]
fn methods_are_case_sensitive_unknown_ones_are_501_and_others_405_with_allow() {
    let server = spawn_server(&[]);
    let addr = server.addr;
    assert_eq!(
        roundtrip(addr, b"get / HTTP/1.1\r\nHost: t\r\n\r\n").status,
        501
    );
    assert_eq!(
        roundtrip(addr, b"FOO / HTTP/1.1\r\nHost: t\r\n\r\n").status,
        501
    );
    assert_eq!(
        roundtrip(addr, b"FOO /nowhere HTTP/1.1\r\nHost: t\r\n\r\n").status,
        501
    );
    let post = roundtrip(
        addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD, OPTIONS"));
    let delete = roundtrip(addr, b"DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(delete.status, 405);
    assert_eq!(delete.header("allow"), Some("POST, PUT, OPTIONS"));
    let options = roundtrip(addr, b"OPTIONS /upload HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(options.status, 204);
    assert_eq!(options.header("allow"), Some("POST, PUT, OPTIONS"));
    // Server-wide: every method some route takes (the proxy takes any).
    let star = roundtrip(addr, b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(matches!(star.status, 200 | 204), "{}", star.status);
    let allow = star.header("allow").expect("Allow on OPTIONS *");
    for m in ["GET", "HEAD", "POST", "PUT", "OPTIONS"] {
        assert!(allow.split(", ").any(|a| a == m), "{allow}");
    }
    // One application at every path gets the same rules.
    let hello = spawn_server(&["--app", "hello"]);
    let post = roundtrip(
        hello.addr,
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
}

#[test]
fn chunk_size_whitespace_and_a_misplaced_chunked_are_400() {
    let server = spawn_server(&[]);
    let chunked = |line: &str| {
        let req = format!(
            "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{line}\r\nhello\r\n0\r\n\r\n"
        );
        roundtrip(server.addr, req.as_bytes()).status
    };
    assert_eq!(chunked("5 "), 400);
    assert_eq!(chunked("5;"), 400);
    assert_eq!(chunked("5 ;name=value"), 200);
    let mut reader = Reader::new(connect(server.addr));
    reader
        .stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n0\r\n\r\n")
        .unwrap();
    let r = reader.response();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(reader.closed());
    let unknown = roundtrip(
        server.addr,
        b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
    );
    assert_eq!(unknown.status, 501);
}

#[test]
fn error_responses_to_head_have_no_content() {
    let server = spawn_server(&[]);
    for request in [
        &b"HEAD / HTTP/1.1\r\n\r\n"[..],
        b"HEAD / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"HEAD /nowhere HTTP/1.1\r\nHost: t\r\n\r\n",
        b"HEAD /sleep?ms=abc HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let bytes = raw(server.addr, request);
        let text = String::from_utf8_lossy(&bytes);
        let end = text.find("\r\n\r\n").expect("a head") + 4;
        assert!(text.starts_with("HTTP/1.1 4"), "{text}");
        assert_eq!(end, bytes.len(), "content after the head of {text:?}");
    }
}

#[test]
fn the_request_body_limit_refuses_at_once_and_closes() {
    let server = spawn_server(&[]);
    let mut reader = Reader::new(connect(server.addr));
    reader
        .stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10737418240\r\n\r\n")
        .unwrap();
    let r = reader.response();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(reader.closed());
    let mut reader = Reader::new(connect(server.addr));
    reader
        .stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n280000000\r\n",
        )
        .unwrap();
    let r = reader.response();
    assert_eq!(r.status, 413, "a 10 GiB chunk");
    assert_eq!(r.header("connection"), Some("close"));

    // --max-request-body with a unit; 0 lifts the limit.
    let small = spawn_server(&["--max-request-body", "1K"]);
    let body = vec![b'x'; 2048];
    let mut req = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\n\r\n".to_vec();
    req.extend_from_slice(&body);
    assert_eq!(roundtrip(small.addr, &req).status, 413);
    let unlimited = spawn_server(&["--max-request-body", "0"]);
    assert_eq!(roundtrip(unlimited.addr, &req).body, body);
    let help = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--max-request-body"), "{help}");
    assert!(help.contains("--max-body"), "{help}");
}

/// A chunked POST with two trailer fields.
const WITH_TRAILERS: &[u8] = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, X-Count\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\nX-Count: 1\r\n\r\n";

#[test]
fn echo_sends_the_request_trailers_back_as_response_trailers() {
    let server = spawn_server(&[]);
    let r = roundtrip(server.addr, WITH_TRAILERS);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");
    assert_eq!(r.header("trailer"), Some("X-Sum, X-Count"));
    assert_eq!(
        r.trailers,
        [
            ("x-sum".to_owned(), "42".to_owned()),
            ("x-count".to_owned(), "1".to_owned())
        ]
    );
    // An HTTP/1.0 response (close-delimited) cannot carry them: dropped, body intact.
    let r10 = roundtrip(
        server.addr,
        b"POST /echo HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(r10.body, b"hi");
}

#[test]
fn trailers_round_trip_through_the_proxy_with_curl_and_python() {
    let upstream = spawn_server(&[]);
    let front = spawn_server(&["--upstream", &upstream.addr.to_string()]);
    let through = WITH_TRAILERS
        .strip_prefix(b"POST /echo".as_slice())
        .map(|rest| [b"POST /proxy/echo".as_slice(), rest].concat())
        .unwrap();
    let r = roundtrip(front.addr, &through);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");
    assert!(
        r.trailers.contains(&("x-sum".to_owned(), "42".to_owned())),
        "{r:?}"
    );

    // curl --raw shows the chunked coding as it came: an upstream that answers with trailers,
    // relayed by the proxy after the last chunk.
    let scripted = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let scripted_addr = scripted.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = scripted.accept() {
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Digest\r\n\r\n2\r\nok\r\n0\r\nX-Digest: abc\r\n\r\n");
        }
    });
    let relay = spawn_server(&["--upstream", &scripted_addr.to_string()]);
    let out = Command::new("curl")
        .args(["-sS", "--raw"])
        .arg(format!("http://{}/proxy/x", relay.addr))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\r\nok\r\n0\r\nX-Digest: abc\r\n\r\n"
    );

    // Python's http.client reads the response through its trailers, and the connection is
    // then ready for the next request.
    let script = format!(
        r#"
import http.client, socket
s = socket.create_connection(("{host}", {port}), timeout=10)
s.sendall(b"POST /proxy/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
r = http.client.HTTPResponse(s)
r.begin()
assert r.status == 200, r.status
assert r.read() == b"hello"
s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
r = http.client.HTTPResponse(s)
r.begin()
assert r.read() == b"Hello, World!"
print("ok")
"#,
        host = front.addr.ip(),
        port = front.addr.port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Takes bodies of at most 8 bytes (`Exchange::limit_body`), and answers with their length.
struct Small;

/// The handler of [`Small`]: what it has read so far.
struct SmallHandler(Vec<u8>);

impl asycamore::service::App for Small {
    fn handler(
        &self,
        _environ: &mut asycamore::service::Environ<'_>,
    ) -> Box<dyn asycamore::service::Handler> {
        Box::new(SmallHandler(Vec::new()))
    }
}

impl asycamore::service::Handler for SmallHandler {
    fn resume(
        &mut self,
        ex: &mut asycamore::service::Exchange<'_>,
        cx: &mut asycamore::executor::Cx<'_>,
    ) -> asycamore::executor::Step<()> {
        use asycamore::executor::Step;
        ex.limit_body(8);
        match ex.read_to_end(cx, &mut self.0, usize::MAX) {
            Ok(Step::WouldBlock) => Step::WouldBlock,
            Ok(Step::Ready(())) => {
                ex.respond(200, &[], self.0.len().to_string().as_bytes());
                Step::Ready(())
            }
            Err(e) => {
                ex.fail(e.status(), &e.to_string());
                Step::Ready(())
            }
        }
    }
}

#[test]
fn an_app_can_lower_the_body_limit_for_its_route() {
    let addr = util::serve(asycamore::config::Config::default(), || {
        std::rc::Rc::new(Small)
    });
    let ok = roundtrip(
        addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\n12345678",
    );
    assert_eq!((ok.status, ok.body.as_slice()), (200, &b"8"[..]));
    let declared = roundtrip(
        addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n123456789",
    );
    assert_eq!(declared.status, 413);
    assert_eq!(declared.header("connection"), Some("close"));
    let chunked = roundtrip(
        addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n",
    );
    assert_eq!(chunked.status, 413);
}
