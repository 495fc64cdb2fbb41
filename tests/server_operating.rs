//! What an operator relies on: graceful shutdown on SIGTERM, a second signal exiting at once,
//! `--max-connections`, several workers on one port.

mod util;

use std::io::Write;
use std::time::{Duration, Instant};

use util::{Reader, connect, spawn_server};

/// Sends `signal` to the spawned server.
fn kill(server: &util::Spawned, signal: i32) {
    util::send_signal(server.child.id(), signal);
}

/// Waits for the spawned server to exit; returns its exit code.
#[track_caller]
fn wait_exit(server: &mut util::Spawned, within: Duration) -> Option<i32> {
    util::wait_exit(&mut server.child, within)
}

#[test]
fn sigterm_lets_in_flight_requests_finish_and_exits_0() {
    let mut server = spawn_server(&["--workers", "2", "--grace", "10"]);
    // An idle keep-alive connection (answered once), and one whose request is in flight (a
    // slow upload).
    let mut idle = connect(server.addr);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut idle = Reader::new(idle);
    assert_eq!(idle.response().status, 200);
    let mut busy = connect(server.addr);
    busy.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    kill(&server, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    // The idle connection is closed without a response.
    assert!(idle.closed());
    // New connections are refused once the listeners are closed.
    assert!(
        std::net::TcpStream::connect(server.addr).is_err(),
        "still accepting after SIGTERM"
    );
    // The in-flight request completes, and says the connection closes.
    busy.write_all(b"56789").unwrap();
    let mut reader = Reader::new(busy);
    let r = reader.response();
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("\"bytes\": 10"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(reader.closed());
    assert_eq!(wait_exit(&mut server, Duration::from_secs(5)), Some(0));
}

#[test]
fn the_grace_period_bounds_the_wait_and_a_second_signal_exits_at_once() {
    let mut server = spawn_server(&["--workers", "1", "--grace", "0.5"]);
    let mut stuck = connect(server.addr);
    stuck
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    kill(&server, libc::SIGTERM);
    assert_eq!(wait_exit(&mut server, Duration::from_secs(5)), Some(0));
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "left before the grace period"
    );

    let mut server = spawn_server(&["--workers", "1", "--grace", "30"]);
    let mut stuck = connect(server.addr);
    stuck
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    kill(&server, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    kill(&server, libc::SIGINT);
    let code = wait_exit(&mut server, Duration::from_secs(5));
    assert_eq!(code, Some(128 + libc::SIGINT));
}

#[test]
fn max_connections_holds_new_clients_in_the_backlog_until_one_closes() {
    let server = spawn_server(&["--workers", "1", "--max-connections", "2"]);
    let first = connect(server.addr);
    let second = connect(server.addr);
    // Both are served.
    for c in [&first, &second] {
        let mut c = c.try_clone().unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    }
    let mut r1 = Reader::new(first);
    let mut r2 = Reader::new(second);
    assert_eq!(r1.response().status, 200);
    assert_eq!(r2.response().status, 200);
    // A third connects (the kernel's backlog takes it) but is not served yet.
    let mut third = connect(server.addr);
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut byte = [0u8; 1];
    let early = std::io::Read::read(&mut third, &mut byte);
    assert!(early.is_err(), "served beyond --max-connections");
    // Once one closes, the third is accepted and answered.
    drop(r1);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(Reader::new(third).response().status, 200);
}

#[test]
fn several_workers_share_one_port() {
    let server = spawn_server(&["--workers", "2"]);
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut c = connect(addr);
                c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                Reader::new(c).response().status
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
}

#[test]
fn healthz_answers_503_once_shutdown_has_begun() {
    let mut server = spawn_server(&["--workers", "1", "--grace", "5"]);
    let mut probe = connect(server.addr);
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = Reader::new(probe.try_clone().unwrap());
    assert_eq!(reader.response().status, 200);
    // A request under way when the signal comes (its head half sent) is still answered: 503.
    probe.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    kill(&server, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    probe.write_all(b"st: t\r\n\r\n").unwrap();
    let r = reader.response();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(wait_exit(&mut server, Duration::from_secs(5)), Some(0));
}

/// Both readiness backends serve the same: keep-alive, a pipelined batch (with a body and a 404),
/// several clients at once, and an idle connection closed by its timeout.
#[test]
fn the_poll_and_epoll_backends_serve_alike() {
    for poller in ["poll", "epoll"] {
        let server = spawn_server(&[
            "--workers",
            "1",
            "--poller",
            poller,
            "--keepalive-timeout",
            "0.5",
        ]);
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let addr = server.addr;
                std::thread::spawn(move || {
                    let mut c = connect(addr);
                    c.write_all(
                        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\
                          POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
                          GET /nope HTTP/1.1\r\nHost: t\r\n\r\n",
                    )
                    .unwrap();
                    let mut r = Reader::new(c);
                    let got = [r.response(), r.response(), r.response()];
                    let summary: Vec<_> = got.iter().map(|g| (g.status, g.body.clone())).collect();
                    (summary, r.closed())
                })
            })
            .collect();
        for c in clients {
            let (summary, closed_when_idle) = c.join().unwrap();
            assert_eq!(
                summary,
                [
                    (200, b"Hello, World!".to_vec()),
                    (200, b"hello".to_vec()),
                    (404, b"not found\n".to_vec()),
                ],
                "{poller}"
            );
            assert!(closed_when_idle, "{poller}: the idle connection is closed");
        }
    }
}

/// A keep-alive client that sends its next request just as shutdown begins — it could not know —
/// is answered (with `Connection: close`), not reset: an idle connection gets a last short wait.
#[test]
fn a_request_arriving_on_an_idle_connection_during_shutdown_is_answered() {
    let mut server = spawn_server(&["--workers", "1", "--grace", "10"]);
    let mut c = connect(server.addr);
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut reader = Reader::new(c.try_clone().unwrap());
    assert_eq!(reader.response().status, 200);
    kill(&server, libc::SIGTERM);
    // Shutdown has begun once the listener is closed.
    util::wait_until("the listener closes", Duration::from_secs(5), || {
        std::net::TcpStream::connect(server.addr).is_err()
    });
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let r = reader.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(reader.closed());
    assert_eq!(wait_exit(&mut server, Duration::from_secs(5)), Some(0));
}

/// `TCP_DEFER_ACCEPT` (the default): a connection that has sent nothing stays with the kernel, so
/// it is not counted open; it is served all the same when it speaks, soon or after the deferral
/// ran out and the kernel handed it over. `--no-defer-accept` accepts it at once.
#[test]
fn a_silent_connection_is_accepted_once_it_speaks_or_at_once_without_defer_accept() {
    fn open_connections(addr: std::net::SocketAddr) -> f64 {
        let page = util::get(addr, "/metrics");
        let page = String::from_utf8_lossy(&page.body).into_owned();
        // The scrape's own connection is open while it is answered.
        util::metric(&page, "asycamore_connections_open").expect("connections_open") - 1.0
    }
    let request = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

    let server = spawn_server(&["--workers", "1"]);
    let soon = connect(server.addr);
    let late = connect(server.addr);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        open_connections(server.addr),
        0.0,
        "held by the kernel until they speak"
    );
    for (mut stream, wait) in [(soon, 0), (late, 1_500)] {
        std::thread::sleep(Duration::from_millis(wait));
        stream.write_all(request).unwrap();
        let mut reader = Reader::new(stream);
        assert_eq!(reader.response().status, 200, "after {wait} ms more");
        assert!(reader.closed());
    }

    let server = spawn_server(&["--workers", "1", "--no-defer-accept"]);
    let silent = connect(server.addr);
    util::wait_until(
        "the silent connection accepted",
        Duration::from_secs(5),
        || open_connections(server.addr) == 1.0,
    );
    let mut silent = silent;
    silent.write_all(request).unwrap();
    assert_eq!(Reader::new(silent).response().status, 200);
}
