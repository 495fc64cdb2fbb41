//! The `epoll(7)` backend under the executor. Alone in its test binary, so descriptor numbers are
//! not taken by tests running beside it: the reuse below is deterministic.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use executor::net::TcpStream;
use executor::{Coroutine, Cx, EpollPoller, Executor, Step};

/// Waits readable on a socket; when woken, closes it and, in the same resume, connects a new one
/// (which gets the closed number) and waits readable on that: the executor sees "the same fd,
/// the same interest" while epoll no longer watches anything under that number.
struct Reconnect {
    addr: SocketAddr,
    listener: std::net::TcpListener,
    stream: Option<TcpStream>,
    /// The accepted end of the second connection, kept open.
    peer: Option<std::net::TcpStream>,
    /// `(old number, new number)` once reconnected.
    numbers: Option<(RawFd, RawFd)>,
}

impl Coroutine for Reconnect {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if self.peer.is_some() {
            return Step::Ready(()); // woken on the new socket
        }
        let Some(stream) = &self.stream else {
            return Step::Ready(());
        };
        let fd = stream.as_raw_fd();
        if cx.reason() == executor::Reason::Spawned {
            cx.wait_readable(fd);
            return Step::WouldBlock;
        }
        self.stream = None; // closes `fd`
        let client = std::net::TcpStream::connect(self.addr).expect("connect");
        let (mut server, _) = self.listener.accept().expect("accept");
        server.write_all(b"y").expect("write");
        let stream = TcpStream::from_std(client).expect("nonblocking");
        let new_fd = stream.as_raw_fd();
        self.numbers = Some((fd, new_fd));
        self.stream = Some(stream);
        self.peer = Some(server);
        cx.wait_readable(new_fd);
        Step::WouldBlock
    }
}

#[test]
fn a_socket_closed_and_replaced_under_the_same_number_is_still_watched() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let mut first_peer = std::net::TcpStream::connect(addr).expect("connect");
    let (first, _) = listener.accept().expect("accept");
    let mut executor = Executor::with_poller(EpollPoller::new().unwrap()).unwrap();
    let task = Reconnect {
        addr,
        listener,
        stream: Some(TcpStream::from_std(first).unwrap()),
        peer: None,
        numbers: None,
    };
    let numbers = std::rc::Rc::new(std::cell::Cell::new(None));
    let seen = std::rc::Rc::clone(&numbers);
    executor.spawn(Watch { task, seen });
    first_peer.write_all(b"x").expect("write");
    let finished = executor
        .run_until(std::time::Instant::now() + Duration::from_secs(5))
        .unwrap();
    let (old, new) = numbers.get().expect("the task reconnected");
    assert_eq!(old, new, "the new socket reuses the closed number");
    assert!(finished, "woken by the new socket's byte, not stuck");
}

/// Runs the task and publishes the numbers it saw.
struct Watch {
    task: Reconnect,
    seen: std::rc::Rc<std::cell::Cell<Option<(RawFd, RawFd)>>>,
}

impl Coroutine for Watch {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        let step = self.task.resume(cx);
        self.seen.set(self.task.numbers);
        step
    }
}
