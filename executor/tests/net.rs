//! Real sockets on 127.0.0.1: the echo service under load, and connecting without blocking.

mod util;

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use executor::acceptor::Acceptor;
use executor::echo::Echo;
use executor::net::{Connect, TcpStream};
use executor::{Coroutine, Cx, Executor, Step, Task};

/// Bytes each client sends: more than one echo buffer, so echoes come back in pieces.
const MESSAGE_LEN: usize = 10_000;

fn message(client: usize) -> Vec<u8> {
    (0..MESSAGE_LEN)
        .map(|i| (i * 31 + client * 7) as u8)
        .collect()
}

/// A client: connect, send the message, read the echo back and check every byte.
enum EchoClient {
    /// Connecting.
    Connecting(Connect),
    /// Sending `message[sent..]` while collecting whatever echo arrives.
    Talking {
        stream: TcpStream,
        sent: usize,
        received: Vec<u8>,
    },
    /// Finished.
    Done,
}

struct Client {
    id: usize,
    message: Vec<u8>,
    state: EchoClient,
    done: Rc<Cell<usize>>,
}

impl Coroutine for Client {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match &mut self.state {
                EchoClient::Connecting(connect) => match connect.poll(cx) {
                    Ok(Step::WouldBlock) => return Step::WouldBlock,
                    Err(e) => panic!("connect to the echo server: {e}"),
                    Ok(Step::Ready(stream)) => {
                        self.state = EchoClient::Talking {
                            stream,
                            sent: 0,
                            received: Vec::new(),
                        };
                    }
                },
                EchoClient::Talking {
                    stream,
                    sent,
                    received,
                } => {
                    let mut blocked = true;
                    if *sent < self.message.len() {
                        match stream.write(&self.message[*sent..]).expect("write") {
                            Step::Ready(n) => {
                                *sent += n;
                                blocked = false;
                            }
                            Step::WouldBlock => cx.wait_writable(stream.as_raw_fd()),
                        }
                    }
                    match stream.read_to_spare(received).expect("read") {
                        Step::Ready(0) => panic!("client {} got EOF early", self.id),
                        Step::Ready(_) => blocked = false,
                        Step::WouldBlock => cx.wait_readable(stream.as_raw_fd()),
                    }
                    if received.len() >= self.message.len() {
                        assert!(received == &self.message, "client {} echo differs", self.id);
                        self.done.set(self.done.get() + 1);
                        self.state = EchoClient::Done;
                    } else if blocked {
                        return Step::WouldBlock;
                    } else {
                        cx.clear_waits();
                    }
                }
                EchoClient::Done => return Step::Ready(()),
            }
        }
    }

    fn kind(&self) -> &'static str {
        "client"
    }
}

fn echo_server(executor: &mut Executor) -> SocketAddr {
    let (listener, addr) = util::loopback_listener();
    executor.spawn(Acceptor::new(listener, |stream, _| -> Task {
        Box::new(Echo::new(stream))
    }));
    addr
}

#[test]
fn echo_serves_500_concurrent_clients_byte_exact() {
    executor::net::raise_fd_limit().expect("raise the descriptor limit");
    let mut executor = Executor::new().unwrap();
    let addr = echo_server(&mut executor);
    let done = Rc::new(Cell::new(0));
    const CLIENTS: usize = 500;
    for id in 0..CLIENTS {
        executor.spawn(Client {
            id,
            message: message(id),
            state: EchoClient::Connecting(TcpStream::connect(addr)),
            done: Rc::clone(&done),
        });
    }
    let give_up = Instant::now() + Duration::from_secs(20);
    while done.get() < CLIENTS {
        assert!(
            Instant::now() < give_up,
            "only {} of {CLIENTS} clients done",
            done.get()
        );
        executor.turn().unwrap();
    }
    let stats = executor.stats();
    assert!(stats.resumes_of("echo") >= CLIENTS as u64);
    assert!(stats.resumes_of("client") >= CLIENTS as u64);
}

#[test]
fn echo_serves_blocking_std_clients_on_threads() {
    let mut executor = Executor::new().unwrap();
    let addr = echo_server(&mut executor);
    let stop = executor.stop_handle();
    let clients = std::thread::spawn(move || {
        for id in 0..8 {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let msg = message(id);
            let writer = {
                let mut s = s.try_clone().unwrap();
                let msg = msg.clone();
                std::thread::spawn(move || s.write_all(&msg).unwrap())
            };
            let mut back = vec![0; msg.len()];
            s.read_exact(&mut back).unwrap();
            writer.join().unwrap();
            assert_eq!(back, msg);
        }
        stop.stop();
    });
    executor.run().unwrap();
    clients.join().unwrap();
    assert_eq!(
        executor.len(),
        1,
        "the acceptor is still there after a stop"
    );
}

#[test]
fn accepted_streams_have_nodelay_and_addresses() {
    let (listener, addr) = util::loopback_listener();
    let client = std::net::TcpStream::connect(addr).unwrap();
    let accepted = loop {
        if let Step::Ready(pair) = listener.accept().unwrap() {
            break pair;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let (stream, peer) = accepted;
    assert!(stream.nodelay().unwrap());
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(stream.peer_addr().unwrap(), client.local_addr().unwrap());
    assert_eq!(stream.local_addr().unwrap(), addr);
    let mut buf = [0u8; 4];
    assert_eq!(stream.read(&mut buf).unwrap(), Step::WouldBlock);
    stream.shutdown_write().unwrap();
    let mut rest = Vec::new();
    (&client).read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "the client sees end-of-stream after shutdown_write"
    );
}

/// `TCP_DEFER_ACCEPT`: off by default, set by the listener's options, changed on an open
/// listener; with it on, a connection is accepted once its first bytes are there, so the first
/// read finds them.
#[test]
fn defer_accept_is_set_by_the_options_and_the_first_read_finds_the_request() {
    use executor::net::{Options, TcpListener};
    let plain = TcpListener::bind("127.0.0.1:0".parse().unwrap(), Options::default()).unwrap();
    assert_eq!(plain.defer_accept_secs().unwrap(), 0);
    let options = Options {
        defer_accept_secs: 1,
        ..Options::default()
    };
    let deferred = TcpListener::bind("127.0.0.1:0".parse().unwrap(), options).unwrap();
    assert_eq!(deferred.defer_accept_secs().unwrap(), 1);

    let mut client = std::net::TcpStream::connect(deferred.local_addr().unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        matches!(deferred.accept(), Ok(Step::WouldBlock)),
        "handed over before a byte arrived"
    );
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let Ok(Step::Ready((stream, _))) = deferred.accept() else {
        panic!("not accepted once the request arrived");
    };
    let mut buf = [0u8; 64];
    assert_eq!(stream.read(&mut buf).unwrap(), Step::Ready(18));

    deferred.set_defer_accept(0).unwrap();
    assert_eq!(deferred.defer_accept_secs().unwrap(), 0);
}
