//! `oneraw`, `bulkfetch`, `pending` and `idle` against the demo server on 127.0.0.1, each kept short.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use asycamore::server::{Server, ServerOptions, ShutdownHandle};
use asycamore::service::App;
use asycamore_bench::bulkfetch::{self, Outcome};
use asycamore_bench::target::Target;
use asycamore_bench::{idle, oneraw, pending};

/// The demo server (hello at every path) in a thread; shut down when dropped.
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

#[track_caller]
fn demo_server() -> DemoServer {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut options = ServerOptions::new("127.0.0.1:0".parse().expect("address"));
        options.grace = Duration::from_millis(300);
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

#[test]
fn oneraw_returns_two_pipelined_responses_and_the_close() {
    let server = demo_server();
    let request =
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (response, error) =
        oneraw::exchange(server.addr, request.to_vec(), Duration::from_secs(2)).expect("runs");
    assert!(error.is_none(), "{error:?}");
    let text = String::from_utf8_lossy(&response);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    assert!(text.ends_with("Hello, World!"), "{text}");
}

#[test]
fn bulkfetch_reports_each_url_in_order() {
    let server = demo_server();
    let refused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = refused.local_addr().expect("address");
    drop(refused);
    let urls = vec![
        format!("http://{}/", server.addr),
        format!("http://{dead}/"),
        "ftp://x/".to_string(),
        format!("http://{}/other", server.addr),
    ];
    let results = bulkfetch::fetch_all(&urls, 3, Duration::from_secs(2)).expect("runs");
    assert_eq!(results.len(), 4);
    let ok = Outcome::Response {
        status: 200,
        body_len: 13,
    };
    assert_eq!(results[0].outcome, ok);
    assert!(matches!(&results[1].outcome, Outcome::Error(e) if e.contains("connect")));
    assert!(matches!(&results[2].outcome, Outcome::Error(_)));
    assert_eq!(results[3].outcome, ok);
}

#[test]
fn pending_holders_are_all_answered_by_a_fast_acceptor() {
    let server = demo_server();
    let target = Target::parse(&format!("http://{}/", server.addr)).expect("url");
    let report = pending::run(
        &target,
        50,
        10,
        Duration::from_millis(200),
        Duration::from_millis(600),
        false,
    )
    .expect("runs");
    assert_eq!(report.answered, 50, "{report:?}");
    assert_eq!(report.idle_connected, 10);
    assert!(!report.before.is_empty() && !report.during.is_empty());
    assert_eq!(report.normal_errors, 0);
}

#[test]
fn idle_connections_are_all_answered_again_when_woken_together() {
    let server = demo_server();
    let target = Target::parse(&format!("http://{}/", server.addr)).expect("url");
    let report = idle::run(&target, 200, Duration::from_millis(200)).expect("runs");
    assert_eq!(report.held, 200, "{report:?}");
    assert_eq!(report.failed_first + report.failed_woken, 0, "{report:?}");
    assert_eq!(
        report.woken.len(),
        200,
        "every held connection answered twice"
    );
}
