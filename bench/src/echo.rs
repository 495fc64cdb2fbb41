//! The `echo` benchmark: echo round trips over loopback, and the cost of one turn of the
//! executor's loop as the number of registered idle descriptors grows.
//!
//! Round trips: an echo server (acceptor plus one `Echo` task per connection) runs on its own
//! executor thread; N client tasks on the main thread's executor each send a small message, wait
//! for all of it to come back, and repeat until the time is up.
//!
//! Turn cost: one task yields forever, so every turn polls with a zero timeout and resumes it
//! once; around it, K tasks each wait on one end of an idle socketpair. `poll(2)` scans all K
//! descriptors each time, which is what the figure shows; `epoll(7)` looks only at the ready ones,
//! so its column stays flat.

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use asycamore::units::{Bytes, Millis};
use asycamore_bench::cli::ToolError;
use executor::acceptor::Acceptor;
use executor::echo::Echo;
use executor::net::{Connect, Options, TcpListener, TcpStream};
use executor::{Coroutine, Cx, Executor, Poller, Step, Task};

/// Echo round trips over 127.0.0.1, and the cost of one turn of the loop with idle fds.
#[derive(FromArgs)]
#[argh(subcommand, name = "echo")]
pub struct EchoArgs {
    /// concurrent connections for a round-trip run (repeatable; default 1 and 50)
    #[argh(option, short = 'c')]
    connections: Vec<usize>,
    /// size of each message, e.g. 32 or 4K (default 32)
    #[argh(option, default = "Bytes(32)")]
    message: Bytes,
    /// time per round-trip run, e.g. 1s or 500ms; a bare number is milliseconds (default 1000)
    #[argh(option, default = "Millis(Duration::from_secs(1))")]
    millis: Millis,
    /// registered idle fds for a turn-cost run (repeatable; default 1, 100 and 10000)
    #[argh(option, short = 'f')]
    idle_fds: Vec<usize>,
}

/// Runs the benchmark and prints the tables.
pub fn run(args: EchoArgs) -> Result<(), ToolError> {
    let connections = if args.connections.is_empty() {
        vec![1, 50]
    } else {
        args.connections
    };
    let idle_fds = if args.idle_fds.is_empty() {
        vec![1, 100, 10_000]
    } else {
        args.idle_fds
    };
    let limit =
        executor::net::raise_fd_limit().map_err(|e| format!("raising RLIMIT_NOFILE: {e}"))?;
    let run_for = args.millis.get();
    let message = args.message.as_usize();
    if message == 0 || run_for.is_zero() {
        return Err(ToolError::Usage(
            "--message and --millis must be above 0".into(),
        ));
    }

    println!(
        "echo round trips over 127.0.0.1, {}-byte messages, {run_for:?} per run",
        message
    );
    println!(
        "{:>12} {:>14} {:>14}",
        "connections", "round trips/s", "mean latency"
    );
    for &n in &connections {
        let (trips, elapsed) =
            round_trips(n, message, run_for).map_err(|e| format!("echo with {n}: {e}"))?;
        let per_sec = trips as f64 / elapsed.as_secs_f64();
        let latency = elapsed.as_secs_f64() * n as f64 / trips.max(1) as f64;
        println!("{n:>12} {per_sec:>14.0} {:>11.1} µs", latency * 1e6);
    }

    println!();
    println!("one turn of the loop: zero-timeout poll + one yielding task (RLIMIT_NOFILE {limit})");
    println!(
        "{:>12} {:>14} {:>14}",
        "idle fds", "poll ns/turn", "epoll ns/turn"
    );
    for &k in &idle_fds {
        let (poll, _) = turn_cost(Executor::new().map_err(|e| e.to_string())?, k)
            .map_err(|e| format!("turns with {k} fds: {e}"))?;
        let epoll = epoll_turn_cost(k).map_err(|e| format!("epoll turns with {k} fds: {e}"))?;
        println!(
            "{k:>12} {:>14} {:>14}",
            poll.as_nanos(),
            epoll.map_or_else(|| "-".to_string(), |d| d.as_nanos().to_string())
        );
    }
    Ok(())
}

/// Runs `n` ping-pong clients against an echo server for `run_for`; returns the round trips
/// completed and the time they took.
fn round_trips(n: usize, message: usize, run_for: Duration) -> std::io::Result<(u64, Duration)> {
    let listener = TcpListener::bind("127.0.0.1:0".parse().expect("address"), Options::default())?;
    let addr = listener.local_addr()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let mut executor = Executor::new()?;
        executor.spawn(Acceptor::new(listener, |stream, _| -> Task {
            Box::new(Echo::new(stream))
        }));
        ready_tx
            .send(executor.stop_handle())
            .expect("main thread waits");
        executor.run()
    });
    let stop = ready_rx.recv().expect("server thread starts");

    let mut executor = Executor::new()?;
    let trips = Rc::new(Cell::new(0));
    let started = Instant::now();
    let until = started + run_for;
    for _ in 0..n {
        executor.spawn(PingClient::new(addr, message, until, Rc::clone(&trips)));
    }
    let result = executor.run();
    let elapsed = started.elapsed();
    stop.stop();
    server.join().expect("server thread")?;
    result?;
    Ok((trips.get(), elapsed))
}

/// Where a ping client is.
enum Ping {
    /// Connecting.
    Connecting(Connect),
    /// Sending the message; `sent` bytes are out.
    Sending(TcpStream, usize),
    /// Waiting for the echo; `got` bytes are back.
    Receiving(TcpStream, usize),
    /// Time is up.
    Done,
}

/// Sends a message, waits for its echo, repeats until `until`.
struct PingClient {
    state: Ping,
    message: Vec<u8>,
    buf: Vec<u8>,
    until: Instant,
    trips: Rc<Cell<u64>>,
}

impl PingClient {
    fn new(addr: SocketAddr, size: usize, until: Instant, trips: Rc<Cell<u64>>) -> PingClient {
        PingClient {
            state: Ping::Connecting(TcpStream::connect(addr)),
            message: vec![b'x'; size.max(1)],
            buf: vec![0; size.max(1)],
            until,
            trips,
        }
    }

    /// Advances one state; `None` means wait (registered in `cx`), `Some` is the next state.
    fn advance(&mut self, state: Ping, cx: &mut Cx<'_>) -> std::io::Result<(Ping, bool)> {
        Ok(match state {
            Ping::Connecting(mut connect) => match connect.poll(cx) {
                Ok(Step::Ready(stream)) => (Ping::Sending(stream, 0), true),
                Err(e) => return Err(e),
                Ok(Step::WouldBlock) => (Ping::Connecting(connect), false),
            },
            Ping::Sending(stream, sent) => match stream.write(&self.message[sent..])? {
                Step::Ready(n) if sent + n == self.message.len() => {
                    (Ping::Receiving(stream, 0), true)
                }
                Step::Ready(n) => (Ping::Sending(stream, sent + n), true),
                Step::WouldBlock => {
                    cx.wait_writable(stream.as_raw_fd());
                    (Ping::Sending(stream, sent), false)
                }
            },
            Ping::Receiving(stream, got) => match stream.read(&mut self.buf[got..])? {
                Step::Ready(0) => (Ping::Done, true),
                Step::Ready(n) if got + n == self.message.len() => {
                    self.trips.set(self.trips.get() + 1);
                    if cx.now() >= self.until {
                        (Ping::Done, true)
                    } else {
                        (Ping::Sending(stream, 0), true)
                    }
                }
                Step::Ready(n) => (Ping::Receiving(stream, got + n), true),
                Step::WouldBlock => {
                    cx.wait_readable(stream.as_raw_fd());
                    (Ping::Receiving(stream, got), false)
                }
            },
            Ping::Done => (Ping::Done, true),
        })
    }
}

impl Coroutine for PingClient {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            if matches!(self.state, Ping::Done) {
                return Step::Ready(());
            }
            let state = std::mem::replace(&mut self.state, Ping::Done);
            match self.advance(state, cx) {
                Ok((next, progressed)) => {
                    self.state = next;
                    if !progressed {
                        return Step::WouldBlock;
                    }
                }
                Err(e) => {
                    eprintln!("ping client: {e}");
                    return Step::Ready(());
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "ping"
    }
}

/// Waits forever for an fd that never becomes readable.
struct Idle(RawFd);

impl Coroutine for Idle {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        cx.wait_readable(self.0);
        Step::WouldBlock
    }
}

/// Yields forever, so that every turn polls with a zero timeout.
struct Spin;

impl Coroutine for Spin {
    type Output = ();
    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        cx.yield_now();
        Step::WouldBlock
    }
}

/// [`turn_cost`] over `epoll(7)`, where the kernel has it.
#[cfg(target_os = "linux")]
fn epoll_turn_cost(k: usize) -> std::io::Result<Option<Duration>> {
    let executor = Executor::with_poller(executor::EpollPoller::new()?)?;
    Ok(Some(turn_cost(executor, k)?.0))
}

#[cfg(not(target_os = "linux"))]
fn epoll_turn_cost(_: usize) -> std::io::Result<Option<Duration>> {
    Ok(None)
}

/// Measures the mean time of one turn of `executor` with `k` idle registered fds.
fn turn_cost<P: Poller>(mut executor: Executor<P>, k: usize) -> std::io::Result<(Duration, u64)> {
    let pairs: Vec<(UnixStream, UnixStream)> = (0..k.div_ceil(2))
        .map(|_| UnixStream::pair())
        .collect::<Result<_, _>>()?;
    let fds = pairs
        .iter()
        .flat_map(|(a, b)| [a.as_raw_fd(), b.as_raw_fd()])
        .take(k);
    for fd in fds {
        executor.spawn(Idle(fd));
    }
    executor.spawn(Spin);
    // Let every task register, then measure steady-state turns for about 200 ms.
    for _ in 0..(k / 256 + 2) {
        executor.turn()?;
    }
    let started = Instant::now();
    let mut turns = 0u64;
    while started.elapsed() < Duration::from_millis(200) {
        for _ in 0..64 {
            executor.turn()?;
        }
        turns += 64;
    }
    Ok((started.elapsed() / turns as u32, turns))
}
