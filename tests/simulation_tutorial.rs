//! Following one HTTP request through the server, under the simulator: a walk through the trace.
//! Read it in order, like `executor/tests/scheduler.rs`.
//!
//! One worker serves the demo `upload` application on a simulated listener; one client, a
//! coroutine on the same executor, connects, sends `POST /upload` with a five-byte body, reads
//! the answer, and then stays connected, idle, until the server's keep-alive timeout closes the
//! connection. The trace records every decision of the scheduler (who resumed, and why), what
//! every task then waits for, and what the connection says it does (`Cx::note`), each with its
//! virtual time. Nothing here waits for real: ten seconds of keep-alive pass in microseconds.
//!
//! The tasks: `t0` is the acceptor, `t1` the shutdown watcher, `t2` the client, and `t3` the
//! connection the acceptor spawns for it. Descriptors of simulated sockets start at 100000: the
//! listener is `fd 100000`, the client's end `fd 100001`, the server's end `fd 100002`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use asycamore::apps::Upload;
use asycamore::config::Config;
use asycamore::executor::net::Stream;
use asycamore::executor::sim::{Sim, SimPoller, SimStream};
use asycamore::executor::{Coroutine, Cx, Executor, Step};
use asycamore::server::{WorkerSetup, spawn_worker};
use asycamore::shutdown::WorkerShutdown;
use asycamore::stats::ServerStats;

/// The request the client sends.
const REQUEST: &[u8] = b"POST /upload HTTP/1.1\r\nHost: sim\r\nContent-Length: 5\r\n\r\nhello";

/// A client that sends [`REQUEST`] at once and reads until the server closes.
enum Client {
    /// Not connected yet.
    Start {
        sim: Sim,
        listener: RawFd,
        received: Rc<RefCell<Vec<u8>>>,
    },
    /// Sending from `sent`, then reading into `received` until the end of stream.
    Talking {
        stream: SimStream,
        sent: usize,
        received: Rc<RefCell<Vec<u8>>>,
    },
}

impl Coroutine for Client {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match self {
                Client::Start {
                    sim,
                    listener,
                    received,
                } => {
                    let stream = sim.connect(*listener).expect("the listener is there");
                    *self = Client::Talking {
                        stream,
                        sent: 0,
                        received: Rc::clone(received),
                    };
                }
                Client::Talking {
                    stream,
                    sent,
                    received,
                } => {
                    if *sent < REQUEST.len() {
                        match stream.write(&REQUEST[*sent..]) {
                            Ok(Step::Ready(n)) => *sent += n,
                            Ok(Step::WouldBlock) => {
                                cx.wait_writable(stream.as_raw_fd());
                                return Step::WouldBlock;
                            }
                            Err(e) => panic!("write: {e}"),
                        }
                        continue;
                    }
                    let mut buf = [0u8; 4096];
                    match stream.read(&mut buf) {
                        Ok(Step::Ready(0)) => return Step::Ready(()),
                        Ok(Step::Ready(n)) => received.borrow_mut().extend_from_slice(&buf[..n]),
                        Ok(Step::WouldBlock) => {
                            cx.wait_readable(stream.as_raw_fd());
                            return Step::WouldBlock;
                        }
                        Err(e) => panic!("read: {e}"),
                    }
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "client"
    }
}

/// Runs the whole conversation; returns the trace and what the client received.
fn conversation() -> (Vec<String>, Vec<u8>) {
    let poller = SimPoller::new(1);
    let sim = poller.handle();
    let mut executor = Executor::with_poller(poller).expect("executor");
    executor.enable_trace_waits();
    let listener = sim.listener();
    let listener_fd = listener.as_raw_fd();
    let config = Config {
        keepalive_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let setup = WorkerSetup {
        app: Rc::new(Upload),
        config: Rc::new(config),
        stats: Rc::new(ServerStats::default()),
        shutdown: Rc::new(WorkerShutdown::default()),
        max_connections: None,
    };
    let _watcher = spawn_worker(
        &mut executor,
        vec![(listener, SocketAddr::from(([127, 0, 0, 1], 80)))],
        setup,
    );
    let received = Rc::new(RefCell::new(Vec::new()));
    executor.spawn(Client::Start {
        sim: sim.clone(),
        listener: listener_fd,
        received: Rc::clone(&received),
    });
    // The acceptor and the watcher never finish by themselves: run past the client's end.
    let end = sim.now() + Duration::from_secs(20);
    executor.run_until(end).expect("run");
    let received = received.take();
    (executor.trace_lines_timed(), received)
}

#[test]
fn one_request_through_the_trace() {
    let (trace, received) = conversation();
    let mut lines = trace.iter().map(String::as_str);
    let mut next = |n: usize| -> Vec<&str> { lines.by_ref().take(n).collect() };

    // Every task is first resumed in spawn order. Each says what wakes it and returns: the
    // acceptor waits for its listener to be readable (or for the watcher's wake, at shutdown),
    // the watcher for a wake, the client — which has connected and written its whole request
    // in that first resume — for the answer.
    assert_eq!(
        next(9),
        [
            "@0.000000s t0 spawned (acceptor)",
            "@0.000000s t1 spawned (shutdown)",
            "@0.000000s t2 spawned (client)",
            "@0.000000s t0 resumed: spawned",
            "@0.000000s t0 waits: fd 100000 readable, wake",
            "@0.000000s t1 resumed: spawned",
            "@0.000000s t1 waits: wake",
            "@0.000000s t2 resumed: spawned",
            "@0.000000s t2 waits: fd 100001 readable",
        ]
    );

    // Accept: the poll finds the listener readable (the client's connection waits in its
    // backlog); the acceptor accepts it and spawns a connection task, then waits again.
    assert_eq!(
        next(3),
        [
            "@0.000000s t0 resumed: fd 100000 readable",
            "@0.000000s t3 spawned (connection)",
            "@0.000000s t0 waits: fd 100000 readable, wake",
        ]
    );

    // The connection's first resume does the whole exchange: one read takes the 60 bytes
    // that are there; the head detector finds a 55-byte head in them; the router is skipped
    // (the worker serves `upload` alone) and the handler is made and resumed; it takes the body
    // as events — one chunk of five bytes, all at hand, then the end — and answers. The
    // connection writes the response in one write, and waits: for the next request (readable),
    // for the keep-alive timeout (10 s from now, when the connection became idle), and for the
    // watcher's wake.
    assert_eq!(
        next(9),
        [
            "@0.000000s t3 resumed: spawned",
            "@0.000000s t3   read 60 bytes",
            "@0.000000s t3   head of 55 bytes: POST /upload HTTP/1.1",
            "@0.000000s t3   resume handler (upload)",
            "@0.000000s t3   body: chunk of 5 bytes, 5 at hand",
            "@0.000000s t3   body: end, 0 trailer fields",
            "@0.000000s t3   handler done: 200",
            "@0.000000s t3   wrote 190 bytes (0 left)",
            "@0.000000s t3 waits: fd 100002 readable, deadline @10.000000s, wake",
        ]
    );

    // The client reads the response and waits for more: it stays connected, idle.
    assert_eq!(
        next(2),
        [
            "@0.000000s t2 resumed: fd 100001 readable",
            "@0.000000s t2 waits: fd 100001 readable",
        ]
    );

    // Nothing is ready, so the simulated poll jumps the clock to the nearest deadline: the
    // keep-alive timeout. The connection closes its write side (the client reads the end of
    // the stream) and lingers, reading and discarding, so that a request already on its way
    // cannot make the kernel reset the connection before the client has read everything
    // (RFC 9112 §9.6). The client sees the end and finishes; the connection, woken by the
    // client's close, finishes too.
    assert_eq!(
        next(8),
        [
            "@10.000000s t3 resumed: deadline",
            "@10.000000s t3   keep-alive timeout: closing",
            "@10.000000s t3   closing: write side shut, lingering",
            "@10.000000s t3 waits: fd 100002 readable, deadline @12.000000s, wake",
            "@10.000000s t2 resumed: fd 100001 readable",
            "@10.000000s t2 finished",
            "@10.000000s t3 resumed: fd 100002 readable",
            "@10.000000s t3 finished",
        ]
    );
    assert_eq!(next(1), Vec::<&str>::new(), "nothing else happened");

    // What the client read: the upload summary, with a Content-Length, kept alive.
    let text = String::from_utf8(received).expect("text");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nContent-Length: 63\r\n"), "{text}");
    assert!(!text.contains("Connection: close"), "{text}");
    assert!(
        text.ends_with(
            "\r\n\r\n{\"bytes\": 5, \"chunks\": 1, \"crc32\": \"3610a686\", \"trailers\": []}\n"
        ),
        "{text}"
    );
}
