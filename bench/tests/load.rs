//! The `load` tool against real servers on 127.0.0.1: the demo server in-process (counts must add
//! up) and tiny fake servers whose broken responses must be counted as errors, never successes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

use asycamore::server::{Server, ServerOptions, ShutdownHandle};
use asycamore::service::App;
use asycamore_bench::load::{self, Kind, LoadConfig, PostBody, Report};

/// Stops the in-process server when dropped, so a failed assertion does not leave it running.
struct DemoServer {
    addr: SocketAddr,
    stop: ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.stop.begin();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts `asycamore --app hello` in a thread of this process.
#[track_caller]
fn demo_server() -> DemoServer {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut options = ServerOptions::new("127.0.0.1:0".parse().expect("address"));
        // The load runs close their connections; a short grace keeps a failed test quick.
        options.grace = Duration::from_millis(500);
        let server = Server::bind(options).expect("bind the demo server");
        tx.send((server.local_addr(), server.shutdown_handle()))
            .expect("test waits");
        server
            .run(|_| Rc::new(asycamore::apps::Hello) as Rc<dyn App>)
            .expect("server runs");
    });
    let (addr, stop) = rx.recv().expect("server starts");
    DemoServer {
        addr,
        stop,
        thread: Some(thread),
    }
}

#[track_caller]
fn assert_counts_add_up(report: &Report) {
    assert_eq!(
        report.sent,
        report.responses + report.errors.of_requests(),
        "sent = responses + errors: {report:?}"
    );
}

#[test]
fn pipelined_gets_for_a_second_add_up_and_are_all_ok() {
    let server = demo_server();
    let config = LoadConfig::get(server.addr, 8, 4, Duration::from_millis(800));
    let report = load::run(&config).expect("load runs");
    assert_counts_add_up(&report);
    assert!(report.responses > 1000, "{report:?}");
    assert_eq!(report.classes()[1], report.responses, "all 2xx");
    assert_eq!(report.errors, load::Errors::default());
    assert_eq!(report.connects, 8);
    assert!(report.latency.len() == report.responses);
    assert!(report.requests_per_sec() > 0.0);
    let json = report.to_json();
    for key in [
        "\"requests_per_sec\"",
        "\"2xx\"",
        "\"malformed\"",
        "\"timeout\"",
        "\"p999\"",
    ] {
        assert!(json.contains(key), "{key} in {json}");
    }
}

#[test]
fn mixed_get_and_chunked_post_clients_with_a_request_count() {
    let server = demo_server();
    let config = LoadConfig {
        requests: Some(2000),
        duration: None,
        mix: vec![(Kind::Get, 1), (Kind::Post, 1)],
        post_body: PostBody::Chunked {
            chunks: 3,
            size: 100,
        },
        ..LoadConfig::get(server.addr, 4, 2, Duration::ZERO)
    };
    let report = load::run(&config).expect("load runs");
    assert_counts_add_up(&report);
    assert_eq!(report.sent, 2000);
    assert_eq!(report.responses, 2000, "{report:?}");
    assert!(report.sent_by_kind.iter().all(|(_, n)| *n > 0));
}

#[test]
fn open_loop_rate_sends_on_schedule_and_one_request_per_connection() {
    let server = demo_server();
    let config = LoadConfig {
        rate: Some(2000.0),
        close: true,
        depth: 1,
        ..LoadConfig::get(server.addr, 4, 1, Duration::from_millis(500))
    };
    let report = load::run(&config).expect("load runs");
    assert_counts_add_up(&report);
    // 2000/s for half a second, give or take scheduling.
    assert!(
        (600..=1100).contains(&report.sent),
        "sent {} at 2000/s for 0.5 s",
        report.sent
    );
    assert_eq!(report.errors.of_requests(), 0, "{report:?}");
    assert!(
        report.connects >= report.responses,
        "a connection per request"
    );
}

/// A server that answers every request on a connection with `response`, for `connections`
/// connections, reading until the client closes.
fn fake_server(response: &'static [u8], connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    seen.drain(..end + 4);
                    if stream.write_all(response).is_err() {
                        break;
                    }
                }
            }
        }
    });
    addr
}

#[test]
fn a_broken_chunked_body_is_counted_as_malformed() {
    // The chunk says 5 bytes but 7 follow before the CRLF.
    let addr = fake_server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHelloXX\r\n0\r\n\r\n",
        3,
    );
    let config = LoadConfig {
        requests: Some(3),
        duration: None,
        timeout: Duration::from_secs(2),
        ..LoadConfig::get(addr, 1, 1, Duration::ZERO)
    };
    let report = load::run(&config).expect("load runs");
    assert_counts_add_up(&report);
    assert_eq!(report.sent, 3);
    assert_eq!(
        report.responses, 0,
        "a malformed response is never a success"
    );
    assert_eq!(report.errors.malformed, 3, "{report:?}");
}

#[test]
fn pipelined_requests_behind_a_malformed_response_are_errors_too() {
    let addr = fake_server(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 1);
    let config = LoadConfig {
        requests: Some(4),
        duration: None,
        timeout: Duration::from_secs(2),
        ..LoadConfig::get(addr, 1, 4, Duration::ZERO)
    };
    let report = load::run(&config).expect("load runs");
    assert_counts_add_up(&report);
    assert_eq!(report.errors.malformed, 4, "{report:?}");
}
