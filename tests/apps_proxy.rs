//! `/proxy/`: a front `asycamore` forwarding to a second one (or to a scripted upstream) — a
//! 100 MB chunked upload and a 100 MB echo relayed byte for byte, the forwarded request's shape,
//! and 502, 503 and 504.

mod util;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use asycamore::crc32::Crc32;
use util::{Reader, connect, free_port, pattern, roundtrip, spawn_server};

/// Bytes of the relayed upload and echo.
const BIG: usize = 100 * 1000 * 1000;

#[test]
fn a_100mb_chunked_upload_is_relayed_intact() {
    let upstream = spawn_server(&[]);
    let front = spawn_server(&["--upstream", &upstream.addr.to_string()]);
    let piece = pattern(100_000, 3);
    let mut stream = connect(front.addr);
    stream
        .write_all(b"POST /proxy/upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let mut crc = Crc32::default();
    let mut batch = Vec::new();
    for _ in 0..BIG / piece.len() {
        batch.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        batch.extend_from_slice(&piece);
        batch.extend_from_slice(b"\r\n");
        crc.update(&piece);
        if batch.len() > 1 << 20 {
            stream.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    batch.extend_from_slice(b"0\r\nX-Done: yes\r\n\r\n");
    stream.write_all(&batch).unwrap();
    let r = Reader::new(stream).response();
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.contains(&format!("\"bytes\": {BIG}")), "{text}");
    assert!(
        text.contains(&format!("\"crc32\": \"{:08x}\"", crc.value())),
        "{text}"
    );
    // Trailers are forwarded with the re-chunked body.
    assert!(text.contains("\"X-Done\""), "{text}");
}

#[test]
fn a_100mb_echo_comes_back_byte_for_byte() {
    let upstream = spawn_server(&[]);
    let front = spawn_server(&["--upstream", &upstream.addr.to_string()]);
    let piece = pattern(250_000, 5);
    let mut stream = connect(front.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST /proxy/echo HTTP/1.1\r\nHost: t\r\nContent-Length: {BIG}\r\n\r\n"
    )
    .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let to_send = piece.clone();
    let sender = std::thread::spawn(move || {
        for _ in 0..BIG / to_send.len() {
            writer.write_all(&to_send).unwrap();
        }
    });
    let head = util::read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {BIG}\r\n")),
        "{head}"
    );
    let mut received = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    while received < BIG {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {received} bytes");
        for (i, b) in buf[..n].iter().enumerate() {
            let at = received + i;
            assert_eq!(*b, piece[at % piece.len()], "byte {at}");
        }
        received += n;
    }
    sender.join().unwrap();
}

#[test]
fn the_request_is_forwarded_without_prefix_or_hop_by_hop_fields() {
    // A scripted upstream: records the request, answers with a close-delimited HTTP/1.0 body.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let recorder = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.ends_with(b"\r\n\r\nbody") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&request));
            request.extend_from_slice(&buf[..n]);
        }
        conn.write_all(
            b"HTTP/1.0 201 Created\r\nX-Up: 1\r\nKeep-Alive: timeout=5\r\n\r\nuntil close",
        )
        .unwrap();
        String::from_utf8(request).unwrap()
    });
    let front = spawn_server(&["--upstream", &upstream.to_string()]);
    let r = roundtrip(
        front.addr,
        b"PUT /proxy/a%20b/c?x=1&y=%2F HTTP/1.1\r\nHost: front\r\nConnection: keep-alive, X-Private\r\n\
          X-Private: secret\r\nKeep-Alive: 5\r\nX-Forwarded-For: 1.2.3.4\r\nX-Other: kept\r\n\
          Content-Length: 4\r\n\r\nbody",
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"until close");
    assert_eq!(r.header("x-up"), Some("1"));
    assert_eq!(r.header("keep-alive"), None);
    let request = recorder.join().unwrap();
    assert!(
        request.starts_with("PUT /a%20b/c?x=1&y=%2F HTTP/1.1\r\n"),
        "{request}"
    );
    let lower = request.to_ascii_lowercase();
    assert!(lower.contains("\r\nhost: front\r\n"), "{request}");
    assert!(lower.contains("\r\nx-other: kept\r\n"), "{request}");
    assert!(
        lower.contains("\r\nx-forwarded-for: 1.2.3.4, 127.0.0.1\r\n"),
        "{request}"
    );
    assert!(lower.contains("\r\ncontent-length: 4\r\n"), "{request}");
    // Kept alive for the next request (HTTP/1.1's default): no Connection field of ours.
    assert!(!lower.contains("\r\nconnection:"), "{request}");
    assert!(!lower.contains("x-private"), "{request}");
    assert!(!lower.contains("keep-alive"), "{request}");
}

#[test]
fn no_upstream_is_a_503_that_says_so() {
    let server = spawn_server(&[]);
    let r = roundtrip(server.addr, b"GET /proxy/ HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 503);
    assert!(String::from_utf8_lossy(&r.body).contains("--upstream"));
}

#[test]
fn a_refused_upstream_is_a_502() {
    let port = free_port(); // nothing listens there now
    let front = spawn_server(&["--upstream", &format!("127.0.0.1:{port}")]);
    let r = roundtrip(front.addr, b"GET /proxy/x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 502);
}

#[test]
fn a_silent_upstream_is_a_504_after_the_timeout() {
    // Accepts (the kernel does, from the backlog) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let front = spawn_server(&[
        "--upstream",
        &upstream.to_string(),
        "--upstream-timeout",
        "0.5",
    ]);
    let start = Instant::now();
    let r = roundtrip(front.addr, b"GET /proxy/x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 504);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    drop(listener);
}

#[test]
fn upstream_connections_are_reused_between_requests() {
    // A scripted upstream that answers every request on a connection, and counts connections.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut byte = [0u8; 1024];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if conn
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .is_err()
                        {
                            return;
                        }
                    }
                    match conn.read(&mut byte) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&byte[..n]),
                    }
                }
            });
        }
    });
    let front = spawn_server(&["--upstream", &upstream.to_string(), "--workers", "1"]);
    for _ in 0..5 {
        let r = roundtrip(front.addr, b"GET /proxy/x HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one upstream connection serves every request"
    );
}

#[test]
fn a_pooled_connection_the_upstream_closed_is_replaced() {
    // An upstream that closes every connection after one response, without saying so.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            // Dropped: closed behind the proxy's back.
        }
    });
    let front = spawn_server(&["--upstream", &upstream.to_string(), "--workers", "1"]);
    for _ in 0..3 {
        let r = roundtrip(front.addr, b"GET /proxy/x HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        std::thread::sleep(Duration::from_millis(50));
    }
}
