//! Helpers shared by the executor's integration tests: trace assertions, small coroutines whose
//! behaviour is easy to read in a trace, and socket setup.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use executor::net::{Options, TcpListener};
use executor::{Coroutine, Cx, Executor, Poller, Reason, Step};

/// Asserts the executor's trace, line by line; on a mismatch prints both schedules in full with
/// the first differing line marked, so the reader can follow what happened.
#[track_caller]
pub fn assert_trace<P: Poller>(executor: &Executor<P>, expected: &[&str]) {
    let actual = executor.trace_lines();
    if actual
        .iter()
        .map(String::as_str)
        .eq(expected.iter().copied())
    {
        return;
    }
    let first = actual
        .iter()
        .zip(expected)
        .position(|(a, e)| a != e)
        .unwrap_or(actual.len().min(expected.len()));
    let show = |lines: Vec<&str>| {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{} {i:3}  {l}\n", if i == first { ">>" } else { "  " }))
            .collect::<String>()
    };
    panic!(
        "trace differs at line {first}\n--- expected ({} lines)\n{}--- actual ({} lines)\n{}",
        expected.len(),
        show(expected.to_vec()),
        actual.len(),
        show(actual.iter().map(String::as_str).collect()),
    );
}

/// A listener on 127.0.0.1 with a port the kernel picks.
#[track_caller]
pub fn loopback_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap(), Options::default())
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    (listener, addr)
}

/// Sleeps until a deadline `after` its first resume, then finishes.
#[derive(Debug)]
pub enum Sleep {
    /// Not started; holds the delay.
    Start(Duration),
    /// Waiting for the deadline.
    Sleeping(Instant),
}

impl Coroutine for Sleep {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        let until = match *self {
            Sleep::Start(after) => cx.now() + after,
            Sleep::Sleeping(until) if cx.now() >= until => return Step::Ready(()),
            Sleep::Sleeping(until) => until,
        };
        *self = Sleep::Sleeping(until);
        cx.wait_until(until);
        Step::WouldBlock
    }
    fn kind(&self) -> &'static str {
        "sleep"
    }
}

/// Yields this many times, then finishes.
#[derive(Debug)]
pub struct Yielder(pub u32);

impl Coroutine for Yielder {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if self.0 == 0 {
            return Step::Ready(());
        }
        self.0 -= 1;
        cx.yield_now();
        Step::WouldBlock
    }
    fn kind(&self) -> &'static str {
        "yielder"
    }
}

/// Waits for `fd` to be readable, with an optional timeout; finishes on whichever comes first.
/// It does not read: it only studies the scheduler.
#[derive(Debug)]
pub struct ReadableOrDeadline {
    /// The descriptor.
    pub fd: RawFd,
    /// How long to wait, counted from the first resume.
    pub timeout: Option<Duration>,
    /// The deadline, once started.
    pub deadline: Option<Instant>,
}

impl ReadableOrDeadline {
    /// Waits on `fd` for at most `timeout`.
    pub fn new(fd: RawFd, timeout: Option<Duration>) -> Self {
        ReadableOrDeadline {
            fd,
            timeout,
            deadline: None,
        }
    }
}

impl Coroutine for ReadableOrDeadline {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        match cx.reason() {
            Reason::Spawned => {
                self.deadline = self.timeout.map(|t| cx.now() + t);
            }
            Reason::Fd(_) | Reason::Deadline => return Step::Ready(()),
            Reason::Wake | Reason::Yield => {}
        }
        cx.wait_readable(self.fd);
        if let Some(deadline) = self.deadline {
            cx.wait_until(deadline);
        }
        Step::WouldBlock
    }
    fn kind(&self) -> &'static str {
        "reader"
    }
}

/// Like a keep-alive connection: waits for `fd` to be readable with an idle timeout counted from
/// its last wake, so each readable wake pushes the deadline later. Finishes when the timeout
/// passes with the fd idle.
#[derive(Debug)]
pub struct IdleTimeout {
    /// The descriptor.
    pub fd: RawFd,
    /// How long the fd may stay idle.
    pub idle: Duration,
}

impl Coroutine for IdleTimeout {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if cx.reason() == Reason::Deadline {
            return Step::Ready(());
        }
        cx.wait_readable(self.fd);
        cx.wait_until(cx.now() + self.idle);
        Step::WouldBlock
    }
    fn kind(&self) -> &'static str {
        "idle"
    }
}

/// Waits for one wake (or a deadline, if given), then finishes.
#[derive(Debug)]
pub struct WaitForWake {
    /// Optional deadline relative to the first resume.
    pub timeout: Option<Duration>,
    started: Option<Instant>,
}

impl WaitForWake {
    /// Waits for a wake for at most `timeout`.
    pub fn new(timeout: Option<Duration>) -> Self {
        WaitForWake {
            timeout,
            started: None,
        }
    }
}

impl Coroutine for WaitForWake {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if cx.reason() != Reason::Spawned {
            return Step::Ready(());
        }
        let started = *self.started.get_or_insert(cx.now());
        cx.wait_wake();
        if let Some(t) = self.timeout {
            cx.wait_until(started + t);
        }
        Step::WouldBlock
    }
    fn kind(&self) -> &'static str {
        "waiter"
    }
}

/// Returns `WouldBlock` without waiting for anything: a buggy coroutine.
#[derive(Debug)]
pub struct Forgetful;

impl Coroutine for Forgetful {
    type Output = ();
    fn resume(&mut self, _cx: &mut Cx<'_>) -> Step<()> {
        Step::WouldBlock
    }
    fn kind(&self) -> &'static str {
        "forgetful"
    }
}

/// A connected pair of non-blocking loopback TCP streams.
#[track_caller]
pub fn tcp_pair() -> (executor::net::TcpStream, executor::net::TcpStream) {
    use executor::net::TcpStream;
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let a = std::net::TcpStream::connect(std_listener.local_addr().unwrap()).expect("connect");
    let (b, _) = std_listener.accept().expect("accept");
    (
        TcpStream::from_std(a).unwrap(),
        TcpStream::from_std(b).unwrap(),
    )
}

/// Reads one byte per resume from a stream until it has `want` bytes.
#[derive(Debug)]
pub struct ByteReader<S> {
    /// The stream.
    pub stream: S,
    /// Bytes still to read.
    pub want: usize,
}

impl<S: executor::net::Stream> Coroutine for ByteReader<S> {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        let mut byte = [0u8];
        match self.stream.read(&mut byte) {
            Ok(Step::Ready(1)) => self.want -= 1,
            Ok(Step::Ready(_)) | Err(_) => return Step::Ready(()),
            Ok(Step::WouldBlock) => {}
        }
        if self.want == 0 {
            return Step::Ready(());
        }
        cx.wait_readable(self.stream.as_raw_fd());
        Step::WouldBlock
    }
    fn kind(&self) -> &'static str {
        "byte-reader"
    }
}

/// A poller wrapper counting registration changes, to show what the executor asks of it.
#[derive(Debug)]
pub struct Counting<P> {
    /// The real poller.
    pub inner: P,
    /// Calls to `register`, `modify`, `deregister`, `forget_closed`.
    pub changes: [u32; 4],
}

impl<P: Poller> Poller for Counting<P> {
    fn register(&mut self, fd: RawFd, i: executor::Interest) -> std::io::Result<()> {
        self.changes[0] += 1;
        self.inner.register(fd, i)
    }
    fn modify(&mut self, fd: RawFd, i: executor::Interest) -> std::io::Result<()> {
        self.changes[1] += 1;
        self.inner.modify(fd, i)
    }
    fn deregister(&mut self, fd: RawFd) -> std::io::Result<()> {
        self.changes[2] += 1;
        self.inner.deregister(fd)
    }
    fn forget_closed(&mut self, fd: RawFd) -> std::io::Result<()> {
        self.changes[3] += 1;
        self.inner.forget_closed(fd)
    }
    fn poll(
        &mut self,
        events: &mut Vec<executor::Event>,
        timeout: Option<Duration>,
    ) -> std::io::Result<()> {
        self.inner.poll(events, timeout)
    }
    fn now(&self) -> Instant {
        self.inner.now()
    }
    fn notifier(&mut self) -> std::io::Result<std::sync::Arc<dyn executor::Notify>> {
        self.inner.notifier()
    }
}
