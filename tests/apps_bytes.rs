//! `/bytes`, the profiles benchmark's application: bodies of a chosen size in writes of a chosen
//! size, a body read and dropped — and what many small writes cost in system calls, counted by
//! the executor (its `sends`, on `/_status`) and by `--profile` per handler kind.

mod util;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{Reader, connect, free_port, roundtrip, spawn_server, wait_exit};

/// The executor's sending system calls and their bytes, summed over workers, from `/_status`.
fn sends(reader: &mut Reader) -> (u64, u64) {
    reader
        .stream
        .write_all(b"GET /_status HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = reader.response();
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    let field = |name: &str| -> u64 {
        let key = format!("\"{name}\": ");
        let at = text
            .find(&key)
            .unwrap_or_else(|| panic!("{name} in {text}"))
            + key.len();
        let digits: String = text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    (field("sends"), field("sent_bytes"))
}

#[test]
fn a_hundred_small_writes_leave_in_one_send_when_the_client_keeps_up() {
    let server = spawn_server(&["--workers", "1"]);
    let mut reader = Reader::new(connect(server.addr));
    // The executor's figures are published every 250 ms: let the start settle first.
    std::thread::sleep(Duration::from_millis(600));
    let (calls_before, bytes_before) = sends(&mut reader);
    const REQUESTS: u64 = 200;
    for _ in 0..REQUESTS {
        reader
            .stream
            .write_all(b"GET /bytes?n=1600&write=16 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let r = reader.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, vec![b'x'; 1600]);
    }
    std::thread::sleep(Duration::from_millis(600));
    let (calls_after, bytes_after) = sends(&mut reader);
    // One send per response, plus the first status page's own.
    let calls = calls_after - calls_before;
    assert!(
        (REQUESTS..=REQUESTS + 2).contains(&calls),
        "{calls} sends for {REQUESTS} responses of 100 writes each"
    );
    assert!(bytes_after - bytes_before > REQUESTS * 1600);
}

#[test]
fn profile_reports_sends_and_resumes_per_handler_kind() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .args(["--bind", &addr, "--quiet", "--workers", "1", "--profile"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn asycamore");
    util::wait_until("the server listens", Duration::from_secs(10), || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    let mut reader = Reader::new(connect(addr.parse().unwrap()));
    for _ in 0..50 {
        reader
            .stream
            .write_all(b"GET /bytes?n=1600&write=16 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(reader.response().status, 200);
        reader
            .stream
            .write_all(b"GET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(reader.response().status, 200);
    }
    drop(reader);
    util::send_signal(child.id(), libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    let mut report = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    let line = |kind: &str| -> String {
        report
            .lines()
            .find(|l| l.contains(&format!("requests of {kind}: 50;")))
            .unwrap_or_else(|| panic!("no line for {kind} in {report}"))
            .to_owned()
    };
    eprintln!("{report}");
    let bytes = line("bytes");
    assert!(bytes.contains(" 1.00 sends"), "{bytes}");
    assert!(bytes.contains("1.00 handler resumes"), "{bytes}");
    // The sleep resumes twice: to arm its timer, and when it fires.
    let sleep = line("sleep");
    assert!(sleep.contains("2.00 handler resumes"), "{sleep}");
    assert!(report.contains("sends: "), "{report}");
}

#[test]
fn bytes_answers_the_size_asked_in_pieces_and_refuses_bad_numbers() {
    let server = spawn_server(&[]);
    let r = roundtrip(
        server.addr,
        b"GET /bytes?n=100000&write=7 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100000"));
    assert_eq!(r.body, vec![b'x'; 100_000]);
    let r = roundtrip(
        server.addr,
        b"GET /bytes HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.body, vec![b'x'; 13]);
    let r = roundtrip(
        server.addr,
        b"GET /bytes?n=0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((r.status, r.body.len()), (200, 0));
    for query in [
        "n=-1",
        "n=x",
        "n=1073741825",
        "write=0",
        "write=65537",
        "n=+5",
    ] {
        let request =
            format!("GET /bytes?{query} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let r = roundtrip(server.addr, request.as_bytes());
        assert_eq!(r.status, 400, "{query}");
    }
    let mut s = connect(server.addr);
    s.write_all(b"HEAD /bytes?n=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = Reader::new(s);
    let r = reader.response_to("HEAD").expect("a response");
    assert_eq!(r.header("content-length"), Some("5000"));
    assert!(r.body.is_empty());
}

#[test]
fn bytes_reads_a_body_to_its_end_and_counts_it() {
    let server = spawn_server(&[]);
    let mut request =
        b"POST /bytes HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..16 {
        request.extend_from_slice(b"1000\r\n");
        request.extend_from_slice(&[b'y'; 4096]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let mut s = connect(server.addr);
    s.write_all(&request).unwrap();
    let body = vec![b'z'; 65536];
    s.write_all(b"PUT /bytes HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n")
        .unwrap();
    s.write_all(&body).unwrap();
    let mut reader = Reader::new(s);
    assert_eq!(reader.response().body, b"{\"bytes\": 65536}\n");
    assert_eq!(reader.response().body, b"{\"bytes\": 65536}\n");
}

#[test]
fn a_stream_in_flight_finishes_whole_through_sigterm_to_a_slow_reader() {
    let mut server = spawn_server(&["--workers", "1"]);
    let mut s = connect(server.addr);
    s.write_all(b"GET /bytes?n=5000000&write=4096 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // A slow start: the output fills, the handler waits for room.
    let mut first = [0u8; 1000];
    s.read_exact(&mut first).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    util::send_signal(server.child.id(), libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let mut all = first.to_vec();
    all.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&all[..all.len().min(300)]).into_owned();
    let head_end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // The head went out before the signal, so the close comes after the whole body.
    assert_eq!(
        all.len() - head_end,
        5_000_000,
        "the whole body, then the close"
    );
    assert!(all[head_end..].iter().all(|&b| b == b'x'));
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
}
