//! The complete program in README's "A program of your own" (`tests/kit/program.rs`, which
//! `tests/readme.rs` holds README to, byte for byte), run over a real socket: its three routes
//! on a server of two workers, so the store is seen to be shared.

// The program as it stands; under the test harness its `main` is not the entry point, and the
// tests below serve its `app` themselves.
include!("kit/program.rs");

mod util;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Instant;

use asycamore::server::Server;
use util::roundtrip;

/// Serves the program's `app` with `workers` workers on an ephemeral port.
fn start(workers: usize) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let pool = Arc::new(ThreadPool::new(2, 8).expect("pool"));
        let store = Store::default();
        let mut options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        options.workers = workers;
        let server = Server::bind(options).expect("bind 127.0.0.1:0");
        tx.send(server.local_addr()).expect("send address");
        server
            .run(move |_| app(&pool, &store))
            .expect("server runs");
    });
    rx.recv().expect("the server's address")
}

fn request(addr: SocketAddr, method: &str, target: &str, body: &str) -> util::Response {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    roundtrip(addr, head.as_bytes())
}

#[test]
fn hello_and_the_slow_lookup() {
    let addr = start(1);
    let r = request(addr, "GET", "/", "");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello\n"[..]));
    let began = Instant::now();
    let r = request(addr, "GET", "/lookup?key=a%20b", "");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"value of a b\n"[..]));
    assert!(
        began.elapsed() >= Duration::from_millis(100),
        "the timer came first"
    );
}

#[test]
fn the_store_is_one_across_two_workers() {
    let addr = start(2);
    // Each request on its own connection: the kernel spreads them over both workers.
    for i in 0..20 {
        let r = request(addr, "PUT", &format!("/kv/k{i}"), &format!("v{i}"));
        assert_eq!(r.status, 204, "PUT k{i}");
    }
    for i in 0..20 {
        let r = request(addr, "GET", &format!("/kv/k{i}"), "");
        assert_eq!(
            (r.status, r.body),
            (200, format!("v{i}").into_bytes()),
            "GET k{i}"
        );
    }
    assert_eq!(request(addr, "DELETE", "/kv/k0", "").status, 204);
    assert_eq!(request(addr, "GET", "/kv/k0", "").status, 404);
    let r = request(addr, "POST", "/kv/k1", "x");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, PUT, DELETE, OPTIONS"));
}
