//! The connection's HTTP behaviour over real sockets on 127.0.0.1: keep-alive, pipelining,
//! framing of responses, `Expect: 100-continue`, error responses, timeouts and panics.

mod util;

use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use asycamore::config::Config;
use asycamore::executor::{Cx, Step};
use asycamore::service::{App, Environ, Exchange, Handler};
use util::{Reader, connect, roundtrip, serve, serve_demo};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn keep_alive_is_the_default_for_http11() {
    let addr = serve_demo();
    let mut stream = connect(addr);
    stream.write_all(GET).unwrap();
    let mut reader = Reader::new(stream.try_clone().unwrap());
    let first = reader.response();
    assert_eq!(first.status, 200);
    assert_eq!(first.body, b"Hello, World!");
    assert_eq!(first.header("content-length"), Some("13"));
    assert!(first.header("date").is_some());
    assert_eq!(first.header("connection"), None);
    stream.write_all(GET).unwrap();
    assert_eq!(reader.response().body, b"Hello, World!");
}

#[test]
fn http10_closes_unless_asked_to_keep_alive() {
    let addr = serve_demo();
    let mut stream = connect(addr);
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut reader = Reader::new(stream);
    let r = reader.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(reader.closed());

    let mut stream = connect(addr);
    stream
        .write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut reader = Reader::new(stream.try_clone().unwrap());
    assert_eq!(reader.response().header("connection"), Some("keep-alive"));
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(reader.response().status, 200);
    assert!(reader.closed());
}

#[test]
fn connection_close_is_honoured_as_one_item_of_a_list() {
    let addr = serve_demo();
    let mut stream = connect(addr);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: foo, close\r\n\r\n")
        .unwrap();
    let mut reader = Reader::new(stream);
    assert_eq!(reader.response().header("connection"), Some("close"));
    assert!(reader.closed());
}

#[test]
fn pipelined_requests_are_answered_in_order_at_every_split() {
    let addr = serve_demo();
    let batch: Vec<u8> = [
        &b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n",
    ]
    .concat();
    for split in 0..=batch.len() {
        let mut stream = connect(addr);
        stream.write_all(&batch[..split]).unwrap();
        if split % 7 == 3 {
            std::thread::sleep(Duration::from_millis(2));
        }
        stream.write_all(&batch[split..]).unwrap();
        let mut reader = Reader::new(stream);
        let hello = reader.response();
        assert_eq!(hello.body, b"Hello, World!", "split at {split}");
        let echo = reader.response();
        assert_eq!(echo.body, b"hello", "split at {split}");
        let upload = reader.response();
        assert!(
            String::from_utf8_lossy(&upload.body).contains("\"bytes\": 3"),
            "split at {split}"
        );
        assert_eq!(reader.response().status, 404, "split at {split}");
    }
}

/// A body that outgrows the connection's small read buffer moves, with whatever was read of it,
/// into one of the worker's spare body buffers (left there by an earlier body). A request
/// pipelined behind the body must come out whole, wherever the reads split the bytes: in the
/// small buffer at the swap, or only in the spare.
#[test]
fn a_request_pipelined_behind_a_body_survives_the_move_into_a_spare_body_buffer() {
    let addr = serve_demo(); // one worker, so every connection shares its spares
    let len = 200_000;
    let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n");
    // The first connection leaves a spare; each later one takes it at its body's first read.
    // Splits: the head alone, the head with a little body, a read that fills the small buffer,
    // and everything up to the middle of the pipelined request's head. Each body differs, so
    // a spare's stale bytes cannot pass for this connection's.
    let splits = [
        head.len(),
        head.len(),
        head.len() + 100,
        head.len() + 10_000,
        head.len() + len + GET.len() / 2,
    ];
    for (round, split) in splits.into_iter().enumerate() {
        let body = util::pattern(len, 7 + round as u64);
        let batch = [head.as_bytes(), &body, GET].concat();
        let stream = connect(addr);
        let mut writer = stream.try_clone().expect("clone");
        let first = batch[..split].to_vec();
        let rest = batch[split..].to_vec();
        let sending = std::thread::spawn(move || {
            writer.write_all(&first).expect("write");
            std::thread::sleep(Duration::from_millis(20));
            writer.write_all(&rest).expect("write");
        });
        let mut reader = Reader::new(stream);
        let echo = reader.response();
        assert_eq!(echo.status, 200, "split at {split}");
        assert!(echo.body == body, "echoed body differs, split at {split}");
        let hello = reader.response();
        assert_eq!(hello.body, b"Hello, World!", "split at {split}");
        sending.join().expect("writer");
    }
}

#[test]
fn head_gets_headers_only() {
    let addr = serve_demo();
    let mut stream = connect(addr);
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    stream.write_all(GET).unwrap();
    let mut reader = Reader::new(stream);
    let head = reader.response_to("HEAD").unwrap();
    assert_eq!(head.header("content-length"), Some("13"));
    assert!(head.body.is_empty());
    // The next response starts right where the head ended: no body bytes were sent for HEAD.
    assert_eq!(reader.response().body, b"Hello, World!");
}

/// Answers with the status in the query (`/?204`), writing a body the server must drop when the
/// status allows none; without a Content-Length, so the server chooses the framing.
struct StatusApp;
struct StatusHandler(u16);

impl App for StatusApp {
    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(StatusHandler(environ.query_string().parse().unwrap_or(200)))
    }
}

impl Handler for StatusHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        ex.start_response(self.0, &[("Content-Type", "text/plain")])
            .unwrap();
        let _ = ex.write(b"streamed body", cx);
        Step::Ready(())
    }
}

#[test]
fn no_content_statuses_carry_no_body_and_unsized_bodies_are_chunked_for_11_only() {
    let addr = serve(Config::default(), || Rc::new(StatusApp));
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /?204 HTTP/1.1\r\nHost: t\r\n\r\nGET /?304 HTTP/1.1\r\nHost: t\r\n\r\nGET /?200 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = Reader::new(stream);
    let r204 = reader.response();
    assert_eq!(r204.status, 204);
    assert_eq!(r204.header("transfer-encoding"), None);
    assert_eq!(r204.header("content-length"), None);
    assert_eq!(reader.response().status, 304);
    let chunked = reader.response();
    assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
    assert_eq!(chunked.body, b"streamed body");

    // HTTP/1.0 never sees chunked: the body runs to the close.
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /?200 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut reader = Reader::new(stream);
    let r = reader.response();
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, b"streamed body");
}

#[test]
fn expect_continue_is_sent_when_the_app_reads_the_body() {
    let addr = serve_demo();
    let mut stream = connect(addr);
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut reader = Reader::new(stream.try_clone().unwrap());
    let interim = reader.response();
    assert_eq!(interim.status, 100);
    stream.write_all(b"abcd").unwrap();
    let done = reader.response();
    assert_eq!(done.status, 200);
    assert!(String::from_utf8_lossy(&done.body).contains("\"bytes\": 4"));
}

#[test]
fn expect_continue_is_not_sent_when_the_app_answers_without_reading() {
    let addr = serve_demo();
    let mut stream = connect(addr);
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let mut reader = Reader::new(stream);
    let r = reader.response();
    // `/` takes GET and HEAD: the 405 is final without the body.
    assert_eq!(r.status, 405, "the final answer comes first, without a 100");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(reader.closed());
}

#[test]
fn expect_continue_is_never_sent_to_http10() {
    let addr = serve_demo();
    let mut stream = connect(addr);
    stream
        .write_all(b"POST /upload HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi")
        .unwrap();
    let r = Reader::new(stream).response();
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("\"bytes\": 2"));
}

#[test]
fn an_unread_body_is_drained_and_the_connection_kept() {
    let addr = serve_demo();
    let mut stream = connect(addr);
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789")
        .unwrap();
    stream.write_all(GET).unwrap();
    let mut reader = Reader::new(stream);
    // `/` does not take POST: answered (405) without reading the body, which is then discarded.
    let refused = reader.response();
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("connection"), None);
    assert_eq!(reader.response().body, b"Hello, World!");
}

#[test]
fn a_framing_error_answers_400_closes_and_parses_nothing_after() {
    let addr = serve_demo();
    let mut stream = connect(addr);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = Reader::new(stream);
    let r = reader.response();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("date").is_some());
    assert!(
        reader.closed(),
        "the smuggled request must never be answered"
    );
}

#[test]
fn detector_errors_map_to_their_status() {
    let addr = serve_demo();
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", 400),
    ];
    for (request, status) in cases {
        let r = roundtrip(addr, request);
        assert_eq!(r.status, *status, "{}", String::from_utf8_lossy(request));
    }
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', 9000));
    long.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(roundtrip(addr, &long).status, 414);
    let mut big = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..200 {
        big.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    assert_eq!(roundtrip(addr, &big).status, 431);
}

#[test]
fn a_partial_head_times_out_with_408_and_an_idle_connection_closes_silently() {
    let config = Config {
        head_timeout: Duration::from_millis(300),
        keepalive_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let addr = serve(config, || Rc::new(asycamore::apps::Hello));
    // A slow-loris peer: a few bytes, then nothing.
    let mut loris = connect(addr);
    loris.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let started = Instant::now();
    let mut reader = Reader::new(loris);
    assert_eq!(reader.response().status, 408);
    assert!(reader.closed());
    assert!(started.elapsed() < Duration::from_secs(5));

    let idle = connect(addr);
    let mut reader = Reader::new(idle);
    assert!(
        reader.closed(),
        "an idle connection closes without a response"
    );
}

#[test]
fn a_slow_loris_does_not_delay_other_clients() {
    let addr = serve_demo();
    let mut loris = connect(addr);
    loris.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    assert_eq!(roundtrip(addr, GET).status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(loris);
}

/// Panics on `/panic` before responding, and on `/late` after starting the response.
struct PanicApp;
struct PanicHandler(bool);

impl App for PanicApp {
    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(PanicHandler(environ.path_info() == "/late"))
    }
}

impl Handler for PanicHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        if self.0 {
            ex.start_response(200, &[]).unwrap();
            let _ = ex.write(b"partial", cx);
        }
        panic!("this handler fails on purpose");
    }
}

#[test]
fn a_panicking_app_gets_500_and_the_server_carries_on() {
    let addr = serve(Config::default(), || Rc::new(PanicApp));
    let other = connect(addr);
    let r = roundtrip(addr, b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 500);
    assert_eq!(r.header("connection"), Some("close"));

    let mut late = connect(addr);
    late.write_all(b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The head went out; the server can only cut the body short by closing: no last chunk.
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut late, &mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        raw.contains("partial") && !raw.ends_with("0\r\n\r\n"),
        "{raw}"
    );

    // A connection opened before the panics is still served.
    let mut other = other;
    other
        .write_all(b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(Reader::new(other).response().status, 500);
}

#[test]
fn a_client_that_does_not_read_does_not_delay_another() {
    let addr = serve_demo();
    // Ask for a large echo and never read it.
    let mut hog = connect(addr);
    let body = vec![b'x'; 8 * 1024 * 1024];
    hog.write_all(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let writer = std::thread::spawn(move || {
        let _ = hog.write_all(&body);
        hog
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(roundtrip(addr, GET).body, b"Hello, World!");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(writer);
}

/// Connections between requests give their request back to the worker's spares and take one
/// (maybe another connection's) for the next head. Two connections on one worker, taking turns
/// so each takes the other's: a head with many fields, then `Expect: 100-continue` with a body,
/// then a pipelined HEAD and GET, then a head over the server's field limit (the limit a spare
/// enforces is this server's, not a default), all on connections that went idle in between.
#[test]
fn requests_taken_from_the_spares_carry_nothing_of_another_connection() {
    let mut config = Config::default();
    config.limits.max_headers = 8;
    let addr = serve(config, || {
        Rc::new(
            asycamore::middleware::Router::new()
                .exact("/", asycamore::apps::Hello)
                .mount("/echo", asycamore::apps::Echo),
        )
    });
    let (mut a, mut b) = (connect(addr), connect(addr));
    let (mut ra, mut rb) = (
        Reader::new(a.try_clone().unwrap()),
        Reader::new(b.try_clone().unwrap()),
    );
    let idle = || std::thread::sleep(Duration::from_millis(30));
    // A: seven fields, the most this server allows but one.
    let fields: String = (0..6).map(|i| format!("X-F{i}: {i}\r\n")).collect();
    a.write_all(format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n").as_bytes())
        .unwrap();
    assert_eq!(ra.response().body, b"Hello, World!");
    idle();
    // B: a body behind 100-continue, on the request A gave back.
    b.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    assert_eq!(rb.response().status, 100);
    b.write_all(b"hello").unwrap();
    let echo = rb.response();
    assert_eq!((echo.status, echo.body.as_slice()), (200, &b"hello"[..]));
    idle();
    // A: two pipelined requests in one write, after idling.
    a.write_all(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = ra.response_to("HEAD").expect("HEAD answered");
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(ra.response().body, b"Hello, World!");
    idle();
    // B: nine fields, one over this server's limit: 431, and the connection closes.
    let fields: String = (0..8).map(|i| format!("X-F{i}: {i}\r\n")).collect();
    b.write_all(format!("GET / HTTP/1.1\r\nHost: t\r\n{fields}\r\n").as_bytes())
        .unwrap();
    assert_eq!(rb.response().status, 431);
    assert!(rb.closed());
    // A still works, with a request from the spares once more.
    idle();
    a.write_all(GET).unwrap();
    assert_eq!(ra.response().body, b"Hello, World!");
}
