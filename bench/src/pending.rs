//! `pending`: holds more connection attempts than the server accepts (after the C10k page's
//! "sclients"), and measures the server's accept rate and a normal client's latency meanwhile.
//!
//! Three kinds of task on one executor:
//! - a *normal client* does sequential `GET`s for the whole run (a new connection per request by
//!   default, so it also waits in the accept queue), its latencies split into *before* the flood
//!   and *during* it;
//! - at the end of the baseline, a *spawner* starts `-k` *holders*: each connects, sends one `GET`
//!   and, once the response arrives (proof the server accepted it), keeps the connection open and
//!   silent until the end; attempts not yet answered are the pending ones;
//! - optionally `--idle` sockets that connect and never send a byte.
//!
//! Every second it prints connections established, answered (accepted) and still pending.

use std::cell::RefCell;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use asycamore::executor::net::{Connect, TcpStream};
use asycamore::executor::{Coroutine, Cx, Executor, Step};
use asycamore::units::Seconds;

use crate::cli::{self, ToolError};
use crate::framing::ResponseDetector;
use crate::histogram::Histogram;
use crate::target::Target;

/// Hold connection attempts beyond the server's accept rate; report accept rate and the latency
/// a normal client sees before and during.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "pending")]
pub struct PendingArgs {
    /// the URL, http://host:port/path
    #[argh(positional)]
    pub url: String,
    /// connection attempts to open at once and hold (default 2000)
    #[argh(option, short = 'k', default = "2000")]
    pub attempts: usize,
    /// extra connected sockets that never send anything (default 0)
    #[argh(option, default = "0")]
    pub idle: usize,
    /// baseline before the flood, e.g. 2s or 500ms; a bare number is seconds (default 2s)
    #[argh(option, default = "Seconds(Duration::from_secs(2))")]
    pub before: Seconds,
    /// how long to hold the flood, e.g. 5s; a bare number is seconds (default 5s)
    #[argh(option, short = 'd', default = "Seconds(Duration::from_secs(5))")]
    pub duration: Seconds,
    /// the normal client keeps one connection alive instead of connecting per request
    #[argh(switch)]
    pub keepalive: bool,
}

/// What the run saw.
#[derive(Debug, Default)]
pub struct PendingReport {
    /// Normal-client latencies before the flood, nanoseconds.
    pub before: Histogram,
    /// Normal-client latencies during the flood, nanoseconds.
    pub during: Histogram,
    /// Normal-client requests that failed.
    pub normal_errors: u64,
    /// Holders whose connect completed.
    pub established: u64,
    /// Holders whose request was answered (accepted by the server).
    pub answered: u64,
    /// Holders that failed (connect refused, reset, timed out).
    pub failed: u64,
    /// Idle sockets connected.
    pub idle_connected: u64,
    /// When the flood started, and when the last holder was answered.
    pub flood: Option<(Instant, Instant)>,
    /// Per second of the flood: (established, answered) so far.
    pub timeline: Vec<(u64, u64)>,
}

/// Where a holder is.
enum Holder {
    /// Connecting.
    Connecting(Connect),
    /// Request sent (or being sent); waiting for the response.
    Asking {
        /// The connection.
        stream: TcpStream,
        /// Request bytes written.
        written: usize,
        /// Response bytes so far.
        buffer: Vec<u8>,
    },
    /// Answered, or an idle socket: held open and silent until the end (the stream is kept only so
    /// it stays open).
    Holding {
        /// The held connection.
        _stream: TcpStream,
    },
    /// Failed.
    Failed,
}

/// A holder (or idle socket) task.
struct HolderTask {
    report: Rc<RefCell<PendingReport>>,
    request: Rc<[u8]>,
    /// Idle sockets never send.
    idle: bool,
    end: Instant,
    state: Holder,
}

impl Coroutine for HolderTask {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let now = cx.now();
            if now >= self.end {
                return Step::Ready(());
            }
            match &mut self.state {
                Holder::Connecting(connect) => match connect.poll(cx) {
                    Ok(Step::WouldBlock) => {
                        cx.wait_until(self.end);
                        return Step::WouldBlock;
                    }
                    Ok(Step::Ready(stream)) => {
                        cx.clear_waits();
                        let mut report = self.report.borrow_mut();
                        if self.idle {
                            report.idle_connected += 1;
                            self.state = Holder::Holding { _stream: stream };
                        } else {
                            report.established += 1;
                            self.state = Holder::Asking {
                                stream,
                                written: 0,
                                buffer: Vec::new(),
                            };
                        }
                    }
                    Err(_) => {
                        cx.clear_waits();
                        self.report.borrow_mut().failed += 1;
                        self.state = Holder::Failed;
                    }
                },
                Holder::Asking {
                    stream,
                    written,
                    buffer,
                } => {
                    let fd = stream.as_raw_fd();
                    if *written < self.request.len() {
                        match stream.write(&self.request[*written..]) {
                            Ok(Step::Ready(n)) => *written += n,
                            Ok(Step::WouldBlock) => cx.wait_writable(fd),
                            Err(_) => {
                                self.report.borrow_mut().failed += 1;
                                self.state = Holder::Failed;
                                continue;
                            }
                        }
                    }
                    match stream.read_to_spare(buffer) {
                        Ok(Step::Ready(n)) if n > 0 => {
                            let mut used = 0;
                            if let Ok(Step::Ready(_)) =
                                ResponseDetector::new().advance(buffer, &mut used)
                            {
                                let mut report = self.report.borrow_mut();
                                report.answered += 1;
                                if let Some((_, last)) = &mut report.flood {
                                    *last = now;
                                }
                                let Holder::Asking { stream, .. } =
                                    std::mem::replace(&mut self.state, Holder::Failed)
                                else {
                                    continue;
                                };
                                self.state = Holder::Holding { _stream: stream };
                            }
                        }
                        Ok(Step::WouldBlock) => {
                            cx.wait_readable(fd);
                            cx.wait_until(self.end);
                            return Step::WouldBlock;
                        }
                        Ok(_) | Err(_) => {
                            self.report.borrow_mut().failed += 1;
                            self.state = Holder::Failed;
                        }
                    }
                }
                Holder::Holding { .. } => {
                    // Silent until the end; the socket closes when the task is dropped.
                    cx.wait_until(self.end);
                    return Step::WouldBlock;
                }
                Holder::Failed => return Step::Ready(()),
            }
        }
    }

    fn kind(&self) -> &'static str {
        "holder"
    }
}

/// Where the normal client is.
enum Normal {
    /// Connecting for the next request.
    Connecting(Connect),
    /// One request on `stream`, sent at `sent`.
    Asking {
        /// The connection.
        stream: TcpStream,
        /// Request bytes written.
        written: usize,
        /// Response bytes so far.
        buffer: Vec<u8>,
        /// When this request started (including its connect).
        started: Instant,
    },
    /// Waiting a moment between requests, keeping the connection if any.
    Pausing(Option<TcpStream>, Instant),
}

/// The normal client's task.
struct NormalClient {
    report: Rc<RefCell<PendingReport>>,
    target: Target,
    request: Rc<[u8]>,
    keepalive: bool,
    flood_at: Instant,
    end: Instant,
    state: Normal,
    started: Instant,
}

/// Pause between the normal client's requests, so it samples latency rather than loading the
/// server itself.
const NORMAL_PAUSE: Duration = Duration::from_millis(2);
/// A normal request that takes longer than this counts as an error.
const NORMAL_TIMEOUT: Duration = Duration::from_secs(10);

impl NormalClient {
    fn done(&mut self, now: Instant, stream: Option<TcpStream>, ok: bool) {
        let mut report = self.report.borrow_mut();
        if ok {
            let ns = now.saturating_duration_since(self.started).as_nanos() as u64;
            if self.started < self.flood_at {
                report.before.record(ns);
            } else {
                report.during.record(ns);
            }
        } else {
            report.normal_errors += 1;
        }
        let keep = if self.keepalive && ok { stream } else { None };
        self.state = Normal::Pausing(keep, now + NORMAL_PAUSE);
    }
}

impl Coroutine for NormalClient {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let now = cx.now();
            if now >= self.end {
                return Step::Ready(());
            }
            match &mut self.state {
                Normal::Pausing(stream, until) => {
                    if now < *until {
                        cx.wait_until(*until);
                        return Step::WouldBlock;
                    }
                    self.started = now;
                    self.state = match stream.take() {
                        Some(stream) => Normal::Asking {
                            stream,
                            written: 0,
                            buffer: Vec::new(),
                            started: now,
                        },
                        None => Normal::Connecting(TcpStream::connect(self.target.addr)),
                    };
                }
                Normal::Connecting(connect) => match connect.poll(cx) {
                    Ok(Step::WouldBlock) => {
                        cx.wait_until(self.started + NORMAL_TIMEOUT);
                        if now >= self.started + NORMAL_TIMEOUT {
                            cx.clear_waits();
                            self.done(now, None, false);
                            continue;
                        }
                        return Step::WouldBlock;
                    }
                    Ok(Step::Ready(stream)) => {
                        cx.clear_waits();
                        self.state = Normal::Asking {
                            stream,
                            written: 0,
                            buffer: Vec::new(),
                            started: self.started,
                        };
                    }
                    Err(_) => {
                        cx.clear_waits();
                        self.done(now, None, false);
                    }
                },
                Normal::Asking {
                    stream,
                    written,
                    buffer,
                    started,
                } => {
                    let fd = stream.as_raw_fd();
                    if now >= *started + NORMAL_TIMEOUT {
                        self.done(now, None, false);
                        continue;
                    }
                    if *written < self.request.len() {
                        match stream.write(&self.request[*written..]) {
                            Ok(Step::Ready(n)) => *written += n,
                            Ok(Step::WouldBlock) => cx.wait_writable(fd),
                            Err(_) => {
                                self.done(now, None, false);
                                continue;
                            }
                        }
                    }
                    match stream.read_to_spare(buffer) {
                        Ok(Step::Ready(n)) if n > 0 => {
                            let mut used = 0;
                            match ResponseDetector::new().advance(buffer, &mut used) {
                                Ok(Step::Ready(_)) => {
                                    let Normal::Asking { stream, .. } = std::mem::replace(
                                        &mut self.state,
                                        Normal::Pausing(None, now),
                                    ) else {
                                        continue;
                                    };
                                    self.done(now, Some(stream), true);
                                }
                                Ok(Step::WouldBlock) => {}
                                Err(_) => self.done(now, None, false),
                            }
                        }
                        Ok(Step::WouldBlock) => {
                            cx.wait_readable(fd);
                            cx.wait_until(*started + NORMAL_TIMEOUT);
                            return Step::WouldBlock;
                        }
                        Ok(_) | Err(_) => self.done(now, None, false),
                    }
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "normal"
    }
}

/// Starts the holders at the end of the baseline, then records the timeline each second.
struct Spawner {
    report: Rc<RefCell<PendingReport>>,
    request: Rc<[u8]>,
    target: Target,
    attempts: usize,
    idle: usize,
    flood_at: Instant,
    end: Instant,
    /// Next timeline sample, once the flood started.
    next_sample: Option<Instant>,
}

impl Coroutine for Spawner {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        let now = cx.now();
        if now >= self.end {
            return Step::Ready(());
        }
        match self.next_sample {
            None if now < self.flood_at => {
                cx.wait_until(self.flood_at);
                return Step::WouldBlock;
            }
            None => {
                self.report.borrow_mut().flood = Some((now, now));
                for i in 0..self.attempts + self.idle {
                    cx.spawn(HolderTask {
                        report: Rc::clone(&self.report),
                        request: Rc::clone(&self.request),
                        idle: i >= self.attempts,
                        end: self.end,
                        state: Holder::Connecting(TcpStream::connect(self.target.addr)),
                    });
                }
                self.next_sample = Some(now + Duration::from_secs(1));
            }
            Some(at) if now >= at => {
                let mut report = self.report.borrow_mut();
                let sample = (report.established, report.answered);
                report.timeline.push(sample);
                eprintln!(
                    "pending: {:>3} s  established {:>6}  answered {:>6}  pending {:>6}  failed {}",
                    report.timeline.len(),
                    sample.0,
                    sample.1,
                    (self.attempts as u64).saturating_sub(sample.1 + report.failed),
                    report.failed
                );
                self.next_sample = Some(at + Duration::from_secs(1));
            }
            Some(_) => {}
        }
        if let Some(at) = self.next_sample {
            cx.wait_until(at);
        }
        Step::WouldBlock
    }
}

/// Runs the probe and returns what it saw.
///
/// # Errors
/// If the executor cannot be created or polling fails.
pub fn run(
    target: &Target,
    attempts: usize,
    idle: usize,
    before: Duration,
    duration: Duration,
    keepalive: bool,
) -> io::Result<PendingReport> {
    let _ = asycamore::executor::net::raise_fd_limit();
    let connection = if keepalive {
        ""
    } else {
        "Connection: close\r\n"
    };
    let request: Rc<[u8]> = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n{connection}\r\n",
        target.path, target.host
    )
    .into_bytes()
    .into();
    let holder_request: Rc<[u8]> = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        target.path, target.host
    )
    .into_bytes()
    .into();
    let report = Rc::new(RefCell::new(PendingReport::default()));
    let start = Instant::now();
    let flood_at = start + before;
    let end = flood_at + duration;
    let mut executor = Executor::new()?;
    executor.spawn(NormalClient {
        report: Rc::clone(&report),
        target: target.clone(),
        request,
        keepalive,
        flood_at,
        end,
        state: Normal::Pausing(None, start),
        started: start,
    });
    executor.spawn(Spawner {
        report: Rc::clone(&report),
        request: holder_request,
        target: target.clone(),
        attempts,
        idle,
        flood_at,
        end,
        next_sample: None,
    });
    executor.run_until(end + Duration::from_millis(50))?;
    drop(executor);
    Ok(std::mem::take(&mut *report.borrow_mut()))
}

/// The `pending` subcommand.
///
/// # Errors
/// A message for bad flags or a failed run.
pub fn main(args: PendingArgs) -> Result<(), ToolError> {
    let target =
        Target::parse(&args.url).map_err(|e| ToolError::Usage(format!("{}: {e}", args.url)))?;
    let before = cli::positive("--before", args.before)?;
    let duration = cli::positive("-d", args.duration)?;
    let report = run(
        &target,
        args.attempts,
        args.idle,
        before,
        duration,
        args.keepalive,
    )
    .map_err(|e| format!("pending: {e}"))?;
    let accept_rate = match report.flood {
        Some((from, last)) if report.answered > 0 && last > from => {
            report.answered as f64 / (last - from).as_secs_f64()
        }
        _ => 0.0,
    };
    println!(
        "holders: {} attempts, {} established, {} answered (accepted), {} failed, {} still pending",
        args.attempts,
        report.established,
        report.answered,
        report.failed,
        (args.attempts as u64).saturating_sub(report.answered + report.failed)
    );
    println!(
        "idle sockets connected: {} of {}",
        report.idle_connected, args.idle
    );
    println!("accept rate (answered holders / time to the last answer): {accept_rate:.0}/s");
    let us = |h: &Histogram, q: f64| h.quantile(q) as f64 / 1000.0;
    println!(
        "normal client ({}), µs:",
        if args.keepalive {
            "keep-alive"
        } else {
            "a connection per request"
        }
    );
    for (name, h) in [("before", &report.before), ("during", &report.during)] {
        println!(
            "  {name}: {} requests  p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}",
            h.len(),
            us(h, 0.5),
            us(h, 0.9),
            us(h, 0.99),
            h.max() as f64 / 1000.0
        );
    }
    println!("  errors: {}", report.normal_errors);
    Ok(())
}
