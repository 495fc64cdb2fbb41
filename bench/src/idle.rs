//! `idle`: many keep-alive connections that each asked once and then sit idle, woken together.
//!
//! `-c N` connections each send one `GET` and read its response (round one). Once every one is
//! answered the tool prints a `held` line (so a caller can read the server's memory while the N
//! connections are idle: `compare`'s `idle10k` cell does), waits `--hold`, then has every
//! connection send a second request at the same moment (round two) and reports how long the
//! server took to answer them all: an idle connection must still be served at once when it
//! wakes, whatever its memory was spent on meanwhile.

use std::cell::{Cell, RefCell};
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use asycamore::executor::net::{Connect, TcpStream};
use asycamore::executor::{Coroutine, Cx, Executor, Step, Waker};
use asycamore::units::Seconds;

use crate::cli::{self, ToolError};
use crate::framing::ResponseDetector;
use crate::histogram::Histogram;
use crate::target::Target;

/// Hold many idle keep-alive connections, then wake them all at once.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "idle")]
pub struct IdleArgs {
    /// the URL, http://host:port/path
    #[argh(positional)]
    pub url: String,
    /// connections to open, each asking once and then idle (default 10000)
    #[argh(option, short = 'c', default = "10000")]
    pub connections: usize,
    /// how long they stay idle once all are answered, e.g. 3s; a bare number is seconds
    /// (default 3s)
    #[argh(option, default = "Seconds(Duration::from_secs(3))")]
    pub hold: Seconds,
}

/// Longest the whole run may take before the connections still waiting count as failed.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What the run saw.
#[derive(Debug, Default)]
pub struct IdleReport {
    /// Connections answered in round one (the ones held idle).
    pub held: u64,
    /// Connections that failed in round one (connect or first request).
    pub failed_first: u64,
    /// Time from the start to the last round-one answer.
    pub opened_in: Duration,
    /// Round-two latencies from the common wake moment, nanoseconds.
    pub woken: Histogram,
    /// Held connections whose second request failed (closed, reset, or not answered in time).
    pub failed_woken: u64,
}

/// State shared by the connections and the coordinator.
struct Shared {
    report: RefCell<IdleReport>,
    /// Wakers of the connections waiting idle for round two.
    idle: RefCell<Vec<Waker>>,
    /// When round two began, once it has.
    wake_at: Cell<Option<Instant>>,
    request: Vec<u8>,
}

/// Where one connection is.
enum Phase {
    /// Connecting.
    Connecting(Connect),
    /// Sending its request of `round` (1 or 2) and reading the response.
    Asking {
        /// The connection.
        stream: TcpStream,
        /// Which round.
        round: u8,
        /// Request bytes written.
        written: usize,
        /// Response bytes so far.
        buffer: Vec<u8>,
    },
    /// Answered once; idle until round two.
    Idle(TcpStream),
    /// Finished (answered twice, or failed).
    Done,
}

/// One connection.
struct IdleConnection {
    shared: Rc<Shared>,
    deadline: Instant,
    phase: Phase,
}

impl IdleConnection {
    /// Counts a failure in the round the connection is in and finishes it.
    fn fail(&mut self) -> Step<()> {
        let mut report = self.shared.report.borrow_mut();
        match self.phase {
            Phase::Connecting(_) | Phase::Asking { round: 1, .. } => report.failed_first += 1,
            _ => report.failed_woken += 1,
        }
        self.phase = Phase::Done;
        Step::Ready(())
    }
}

impl Coroutine for IdleConnection {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let now = cx.now();
            if now >= self.deadline {
                return self.fail();
            }
            match &mut self.phase {
                Phase::Connecting(connect) => match connect.poll(cx) {
                    Ok(Step::WouldBlock) => {
                        cx.wait_until(self.deadline);
                        return Step::WouldBlock;
                    }
                    Ok(Step::Ready(stream)) => {
                        cx.clear_waits();
                        self.phase = Phase::Asking {
                            stream,
                            round: 1,
                            written: 0,
                            buffer: Vec::new(),
                        };
                    }
                    Err(_) => {
                        cx.clear_waits();
                        return self.fail();
                    }
                },
                Phase::Asking {
                    stream,
                    round,
                    written,
                    buffer,
                } => {
                    let fd = stream.as_raw_fd();
                    let request = &self.shared.request;
                    if *written < request.len() {
                        match stream.write(&request[*written..]) {
                            Ok(Step::Ready(n)) => *written += n,
                            Ok(Step::WouldBlock) => cx.wait_writable(fd),
                            Err(_) => return self.fail(),
                        }
                    }
                    match stream.read_to_spare(buffer) {
                        Ok(Step::Ready(n)) if n > 0 => {
                            let mut used = 0;
                            match ResponseDetector::new().advance(buffer, &mut used) {
                                Ok(Step::Ready(_)) => {}
                                Ok(Step::WouldBlock) => continue,
                                Err(_) => return self.fail(),
                            }
                            cx.clear_waits();
                            let round = *round;
                            let Phase::Asking { stream, .. } =
                                std::mem::replace(&mut self.phase, Phase::Done)
                            else {
                                return Step::Ready(());
                            };
                            let mut report = self.shared.report.borrow_mut();
                            if round == 1 {
                                report.held += 1;
                                self.phase = Phase::Idle(stream);
                            } else {
                                let from = self.shared.wake_at.get().unwrap_or(now);
                                let ns = now.saturating_duration_since(from).as_nanos();
                                report.woken.record(u64::try_from(ns).unwrap_or(u64::MAX));
                                return Step::Ready(());
                            }
                        }
                        Ok(Step::WouldBlock) => {
                            cx.wait_readable(fd);
                            cx.wait_until(self.deadline);
                            return Step::WouldBlock;
                        }
                        Ok(_) | Err(_) => return self.fail(),
                    }
                }
                Phase::Idle(_) => {
                    if self.shared.wake_at.get().is_none() {
                        self.shared.idle.borrow_mut().push(cx.waker());
                        cx.wait_wake();
                        cx.wait_until(self.deadline);
                        return Step::WouldBlock;
                    }
                    let Phase::Idle(stream) = std::mem::replace(&mut self.phase, Phase::Done)
                    else {
                        return Step::Ready(());
                    };
                    self.phase = Phase::Asking {
                        stream,
                        round: 2,
                        written: 0,
                        buffer: Vec::new(),
                    };
                }
                Phase::Done => return Step::Ready(()),
            }
        }
    }

    fn kind(&self) -> &'static str {
        "idle connection"
    }
}

/// Prints the `held` line once round one is over, then starts round two after the hold.
struct Coordinator {
    shared: Rc<Shared>,
    connections: u64,
    started: Instant,
    hold: Duration,
    /// When round two starts, once round one is over.
    wake_at: Option<Instant>,
}

/// How often the coordinator looks at round one's progress.
const TICK: Duration = Duration::from_millis(10);

impl Coroutine for Coordinator {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        let now = cx.now();
        match self.wake_at {
            None => {
                let mut report = self.shared.report.borrow_mut();
                if report.held + report.failed_first < self.connections {
                    cx.wait_until(now + TICK);
                    return Step::WouldBlock;
                }
                report.opened_in = now - self.started;
                println!(
                    "held {} idle connections ({} failed) after {} ms",
                    report.held,
                    report.failed_first,
                    report.opened_in.as_millis()
                );
                let _ = io::stdout().flush();
                let at = now + self.hold;
                self.wake_at = Some(at);
                cx.wait_until(at);
                Step::WouldBlock
            }
            Some(at) if now < at => {
                cx.wait_until(at);
                Step::WouldBlock
            }
            Some(_) => {
                // Every held connection asks again at this moment.
                self.shared.wake_at.set(Some(now));
                for waker in self.shared.idle.borrow_mut().drain(..) {
                    waker.wake();
                }
                Step::Ready(())
            }
        }
    }

    fn kind(&self) -> &'static str {
        "coordinator"
    }
}

/// Runs the two rounds and returns what they saw.
///
/// # Errors
/// If the executor cannot be created or polling fails.
pub fn run(target: &Target, connections: usize, hold: Duration) -> io::Result<IdleReport> {
    let _ = asycamore::executor::net::raise_fd_limit();
    let shared = Rc::new(Shared {
        report: RefCell::new(IdleReport::default()),
        idle: RefCell::new(Vec::with_capacity(connections)),
        wake_at: Cell::new(None),
        request: format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
            target.path, target.host
        )
        .into_bytes(),
    });
    let started = Instant::now();
    let deadline = started + hold + RUN_LIMIT;
    let mut executor = Executor::new()?;
    for _ in 0..connections {
        executor.spawn(IdleConnection {
            shared: Rc::clone(&shared),
            deadline,
            phase: Phase::Connecting(TcpStream::connect(target.addr)),
        });
    }
    executor.spawn(Coordinator {
        shared: Rc::clone(&shared),
        connections: connections as u64,
        started,
        hold,
        wake_at: None,
    });
    executor.run_until(deadline + Duration::from_millis(50))?;
    drop(executor);
    let report = std::mem::take(&mut *shared.report.borrow_mut());
    Ok(report)
}

/// The `idle` subcommand.
///
/// # Errors
/// A message for bad flags, a failed run, or connections that were not all answered.
pub fn main(args: IdleArgs) -> Result<(), ToolError> {
    let target =
        Target::parse(&args.url).map_err(|e| ToolError::Usage(format!("{}: {e}", args.url)))?;
    if args.connections == 0 {
        return Err(ToolError::Usage("-c must be at least 1".into()));
    }
    let hold = cli::positive("--hold", args.hold)?;
    let report = run(&target, args.connections, hold).map_err(|e| format!("idle: {e}"))?;
    let ms = |ns: u64| ns as f64 / 1e6;
    let woken = &report.woken;
    println!(
        "woke {} at once: all answered in {:.1} ms (p50 {:.1} ms, p99 {:.1} ms), {} failed",
        woken.len(),
        ms(woken.max()),
        ms(woken.quantile(0.5)),
        ms(woken.quantile(0.99)),
        report.failed_woken
    );
    if report.failed_first + report.failed_woken > 0 {
        return Err(ToolError::Failed(format!(
            "{} of {} connections failed",
            report.failed_first + report.failed_woken,
            args.connections
        )));
    }
    Ok(())
}
