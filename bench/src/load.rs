//! `load`: an HTTP/1.1 load generator on our executor, with pipelining, open-loop rates and
//! latency percentiles.
//!
//! Each connection is one [`Client`] task, a state machine `Backoff → Connecting → Open → Done`.
//! Requests are built once per kind ([`Plan`]): a batch buffer holds the request `depth` times, so a
//! pipeline batch is one `write` of a prefix of it. Responses are parsed from one reused buffer per
//! connection by [`ResponseDetector`], which checks the framing of every response (head, then
//! Content-Length or chunked with chunk syntax verified); a malformed one is an error, never a
//! success, and closes the connection.
//!
//! Closed loop (the default) works like wrk's pipelining: when a connection has no request in
//! flight it writes the next batch of `depth` requests. With `--rate`, the run is open loop: each
//! connection has a schedule of intended send times, sends whatever is due (up to `depth` in
//! flight), and latency is measured from the *intended* time, so a stalled server shows up as
//! latency instead of silently lowering the request rate (coordinated omission).
//!
//! Accounting: every request written counts as sent, and ends as exactly one response or one error
//! (`read`: the connection failed or closed with it outstanding; `malformed`: its response, or one
//! before it on the connection, broke the framing; `timeout`: no byte moved for `--timeout` while it
//! was outstanding). Connect errors carry no request and are counted on their own.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use asycamore::executor::net::{Connect, TcpStream};
use asycamore::executor::{Coroutine, Cx, EpollPoller, Executor, Step};
use asycamore::units::{Bytes, Seconds};

use crate::cli::{self, ToolError};
use crate::framing::ResponseDetector;
use crate::histogram::Histogram;
use crate::sys;
use crate::target::Target;

/// How long a client waits before reconnecting after a failed connect.
pub const CONNECT_BACKOFF: Duration = Duration::from_millis(20);
/// Initial capacity of each connection's read buffer, in bytes.
pub const READ_BUFFER: usize = 64 * 1024;
/// An open-loop run waits for a send due this soon by polling, not sleeping (see
/// [`Executor::set_spin_window`]).
pub const SPIN_WINDOW: Duration = Duration::from_millis(2);
/// How long a run lasts without `-d` or `-n`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Drive an HTTP server with N connections, pipelining, GET/POST mixes or a fixed request rate.
#[derive(FromArgs, Debug, Clone)]
#[argh(subcommand, name = "load")]
pub struct LoadArgs {
    /// the URL to load, http://host:port/path
    #[argh(positional)]
    pub url: String,
    /// concurrent connections (default 50)
    #[argh(option, short = 'c', default = "50")]
    pub connections: usize,
    /// requests in flight per connection, written as one batch (default 1)
    #[argh(option, short = 'p', default = "1")]
    pub pipeline: usize,
    /// how long to run, e.g. 10s, 500ms, 2m; a bare number is seconds (default 10s, unless -n
    /// is given)
    #[argh(option, short = 'd')]
    pub duration: Option<Seconds>,
    /// total requests to send instead of a duration
    #[argh(option, short = 'n')]
    pub requests: Option<u64>,
    /// POST with a Content-Length body of this size, e.g. 1024 or 64K (default: GET)
    #[argh(option)]
    pub body_size: Option<Bytes>,
    /// POST with a chunked body of this many chunks (with --chunk-size)
    #[argh(option)]
    pub chunks: Option<usize>,
    /// size of each chunk of a chunked POST, e.g. 1024 or 16K (default 1024)
    #[argh(option, default = "Bytes(1024)")]
    pub chunk_size: Bytes,
    /// mix of client kinds by weight, e.g. get=3,post=1 (POSTs use --body-size or --chunks,
    /// default 1024 bytes)
    #[argh(option)]
    pub mix: Option<String>,
    /// path for POST requests when it differs from the URL's (e.g. /upload)
    #[argh(option)]
    pub post_path: Option<String>,
    /// total requests per second, open loop (latency counted from the intended send time)
    #[argh(option)]
    pub rate: Option<f64>,
    /// time without progress before outstanding requests count as timed out, and before a -n
    /// run whose connects all fail gives up (default 5s)
    #[argh(option, default = "Seconds(Duration::from_secs(5))")]
    pub timeout: Seconds,
    /// extra request header, "Name: value" (repeatable)
    #[argh(option, short = 'H')]
    pub header: Vec<String>,
    /// one request per connection: send Connection: close and reconnect after each response
    #[argh(switch)]
    pub close: bool,
    /// print one JSON object instead of the text report
    #[argh(switch)]
    pub json: bool,
}

/// What a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET` without a body.
    Get,
    /// `POST` with a Content-Length or chunked body.
    Post,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Get => "get",
            Kind::Post => "post",
        }
    }
}

/// The body of POST requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostBody {
    /// A body of this many bytes with `Content-Length`.
    Length(usize),
    /// `chunks` chunks of `size` bytes with `Transfer-Encoding: chunked`.
    Chunked {
        /// Number of chunks.
        chunks: usize,
        /// Bytes per chunk.
        size: usize,
    },
}

/// A load run, fully specified; [`run`] executes it.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// Request target of GETs.
    pub path: String,
    /// Request target of POSTs.
    pub post_path: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub depth: usize,
    /// Run time (when `requests` is `None`).
    pub duration: Option<Duration>,
    /// Total requests (instead of a duration).
    pub requests: Option<u64>,
    /// Client kinds and their weights; connection `i` gets the `i`-th entry of the expanded list.
    pub mix: Vec<(Kind, u32)>,
    /// What POSTs carry.
    pub post_body: PostBody,
    /// Total requests per second for an open-loop run.
    pub rate: Option<f64>,
    /// Time without progress before outstanding requests time out.
    pub timeout: Duration,
    /// Extra header lines, without CRLF.
    pub headers: Vec<String>,
    /// Send `Connection: close` and reconnect after each response.
    pub close: bool,
    /// Print a progress line each second on stderr.
    pub progress: bool,
}

impl LoadConfig {
    /// A closed-loop GET run of `addr` for `duration`, for tests and other tools.
    pub fn get(addr: SocketAddr, connections: usize, depth: usize, duration: Duration) -> Self {
        LoadConfig {
            addr,
            host: addr.to_string(),
            path: "/".into(),
            post_path: "/".into(),
            connections,
            depth,
            duration: Some(duration),
            requests: None,
            mix: vec![(Kind::Get, 1)],
            post_body: PostBody::Length(0),
            rate: None,
            timeout: Duration::from_secs(5),
            headers: Vec::new(),
            close: false,
            progress: false,
        }
    }

    /// Builds a run from the command line.
    ///
    /// # Errors
    /// A message naming the bad flag.
    pub fn from_args(args: &LoadArgs) -> Result<LoadConfig, String> {
        let chunk_size = args.chunk_size.as_usize();
        let body_size = args.body_size.map(Bytes::as_usize);
        let target = Target::parse(&args.url).map_err(|e| format!("{}: {e}", args.url))?;
        if args.connections == 0 || args.pipeline == 0 {
            return Err("-c and -p must be at least 1".into());
        }
        let post_body = match (args.chunks, body_size) {
            (Some(_), Some(_)) => return Err("give --body-size or --chunks, not both".into()),
            (Some(chunks), None) => {
                if chunks == 0 || chunk_size == 0 {
                    return Err("--chunks and --chunk-size must be at least 1".into());
                }
                PostBody::Chunked {
                    chunks,
                    size: chunk_size,
                }
            }
            (None, Some(n)) => PostBody::Length(n),
            (None, None) => PostBody::Length(1024),
        };
        let mix = match &args.mix {
            Some(spec) => parse_mix(spec)?,
            None if args.chunks.is_some() || body_size.is_some() => vec![(Kind::Post, 1)],
            None => vec![(Kind::Get, 1)],
        };
        let duration = match (args.duration, args.requests) {
            (Some(_), Some(_)) => return Err("give -d or -n, not both".into()),
            (None, Some(_)) => None,
            (d, None) => Some(seconds("-d", d.unwrap_or(Seconds(DEFAULT_DURATION)))?),
        };
        if let Some(rate) = args.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("--rate must be a positive number of requests per second".into());
        }
        for h in &args.header {
            if !h.contains(':') || h.contains('\r') || h.contains('\n') {
                return Err(format!("-H {h:?}: expected \"Name: value\" on one line"));
            }
        }
        let close = args.close
            || args.header.iter().any(|h| {
                let (name, value) = h.split_once(':').unwrap_or((h, ""));
                name.trim().eq_ignore_ascii_case("connection")
                    && value.trim().eq_ignore_ascii_case("close")
            });
        Ok(LoadConfig {
            addr: target.addr,
            host: target.host,
            post_path: args
                .post_path
                .clone()
                .unwrap_or_else(|| target.path.clone()),
            path: target.path,
            connections: args.connections,
            depth: if close { 1 } else { args.pipeline },
            duration,
            requests: args.requests,
            mix,
            post_body,
            rate: args.rate,
            timeout: seconds("--timeout", args.timeout)?,
            headers: args.header.clone(),
            close,
            progress: !args.json && sys::stderr_is_terminal(),
        })
    }

    /// The bytes of one request of `kind`.
    pub fn request(&self, kind: Kind) -> Vec<u8> {
        let mut r = String::new();
        let path = match kind {
            Kind::Get => &self.path,
            Kind::Post => &self.post_path,
        };
        let method = match kind {
            Kind::Get => "GET",
            Kind::Post => "POST",
        };
        let _ = write!(r, "{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for h in &self.headers {
            let _ = write!(r, "{h}\r\n");
        }
        let has_connection = self.headers.iter().any(|h| {
            h.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("connection"))
        });
        if self.close && !has_connection {
            r.push_str("Connection: close\r\n");
        }
        let mut bytes = match (kind, self.post_body) {
            (Kind::Get, _) => {
                r.push_str("\r\n");
                r.into_bytes()
            }
            (Kind::Post, PostBody::Length(n)) => {
                let _ = write!(r, "Content-Length: {n}\r\n\r\n");
                let mut b = r.into_bytes();
                b.resize(b.len() + n, b'x');
                b
            }
            (Kind::Post, PostBody::Chunked { chunks, size }) => {
                r.push_str("Transfer-Encoding: chunked\r\n\r\n");
                let mut b = r.into_bytes();
                for _ in 0..chunks {
                    b.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                    b.resize(b.len() + size, b'x');
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(b"0\r\n\r\n");
                b
            }
        };
        bytes.shrink_to_fit();
        bytes
    }
}

fn seconds(flag: &str, value: Seconds) -> Result<Duration, String> {
    cli::positive(flag, value).map_err(|e| e.to_string())
}

/// Parses `get=3,post=1`.
fn parse_mix(spec: &str) -> Result<Vec<(Kind, u32)>, String> {
    let mut mix = Vec::new();
    for part in spec.split(',') {
        let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
        let kind = match name.trim() {
            "get" | "GET" => Kind::Get,
            "post" | "POST" => Kind::Post,
            other => return Err(format!("--mix: unknown kind {other:?} (get or post)")),
        };
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("--mix: bad weight in {part:?}"))?;
        if weight > 0 {
            mix.push((kind, weight));
        }
    }
    if mix.is_empty() {
        return Err("--mix needs at least one kind with a weight above 0".into());
    }
    Ok(mix)
}

/// Error counts by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Errors {
    /// Connection attempts that failed (no request was sent on them).
    pub connect: u64,
    /// Requests lost to a connection that failed or closed while they were outstanding.
    pub read: u64,
    /// Requests whose response (or an earlier one on the same connection) was malformed.
    pub malformed: u64,
    /// Requests outstanding when a connection made no progress for the timeout.
    pub timeout: u64,
}

impl Errors {
    /// Errors that ended a sent request (all but `connect`).
    pub fn of_requests(&self) -> u64 {
        self.read + self.malformed + self.timeout
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Requests written.
    pub sent: u64,
    /// Well-framed responses received.
    pub responses: u64,
    /// Responses received before the end of the duration (all of them for a `-n` run).
    pub responses_in_window: u64,
    /// Responses by status code (index = code, 0..600; anything else at 0).
    pub statuses: Vec<u64>,
    /// Errors by kind.
    pub errors: Errors,
    /// Bytes read from the server.
    pub bytes_read: u64,
    /// Requests sent by each kind.
    pub sent_by_kind: Vec<(Kind, u64)>,
    /// Latency of every response, nanoseconds.
    pub latency: Histogram,
    /// Open loop: how late each request left against its intended time, nanoseconds — the
    /// tool's own timing error, which every latency above includes.
    pub send_lag: Histogram,
    /// The measured time (the duration, or until the last response of a `-n` run).
    pub elapsed: Duration,
    /// Connections opened.
    pub connects: u64,
}

impl Report {
    fn new() -> Report {
        Report {
            sent: 0,
            responses: 0,
            responses_in_window: 0,
            statuses: vec![0; 600],
            errors: Errors::default(),
            bytes_read: 0,
            sent_by_kind: vec![(Kind::Get, 0), (Kind::Post, 0)],
            latency: Histogram::new(),
            send_lag: Histogram::new(),
            elapsed: Duration::ZERO,
            connects: 0,
        }
    }

    /// Responses per second over the measured time.
    pub fn requests_per_sec(&self) -> f64 {
        self.responses_in_window as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Bytes read per second over the measured time.
    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes_read as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub fn classes(&self) -> [u64; 5] {
        let mut c = [0; 5];
        for (code, &n) in self.statuses.iter().enumerate() {
            if (100..600).contains(&code) {
                c[code / 100 - 1] += n;
            }
        }
        c
    }

    /// The latency quantile `q` in microseconds.
    pub fn latency_us(&self, q: f64) -> f64 {
        self.latency.quantile(q) as f64 / 1000.0
    }

    /// One JSON object with the figures.
    pub fn to_json(&self) -> String {
        let c = self.classes();
        let e = &self.errors;
        let mut codes = String::new();
        for (code, &n) in self.statuses.iter().enumerate() {
            if n > 0 {
                let sep = if codes.is_empty() { "" } else { "," };
                let _ = write!(codes, "{sep}\"{code}\":{n}");
            }
        }
        format!(
            concat!(
                "{{\"requests_per_sec\":{:.1},\"bytes_per_sec\":{:.1},\"elapsed_sec\":{:.3},",
                "\"sent\":{},\"responses_total\":{},\"connects\":{},",
                "\"responses\":{{\"1xx\":{},\"2xx\":{},\"3xx\":{},\"4xx\":{},\"5xx\":{}}},",
                "\"status\":{{{}}},",
                "\"errors\":{{\"connect\":{},\"read\":{},\"malformed\":{},\"timeout\":{}}},",
                "\"latency_us\":{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"p999\":{:.1},",
                "\"max\":{:.1},\"mean\":{:.1}}},",
                "\"send_lag_us\":{{\"p50\":{:.1},\"p99\":{:.1},\"max\":{:.1}}}}}"
            ),
            self.requests_per_sec(),
            self.bytes_per_sec(),
            self.elapsed.as_secs_f64(),
            self.sent,
            self.responses,
            self.connects,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            codes,
            e.connect,
            e.read,
            e.malformed,
            e.timeout,
            self.latency_us(0.5),
            self.latency_us(0.9),
            self.latency_us(0.99),
            self.latency_us(0.999),
            self.latency.max() as f64 / 1000.0,
            self.latency.mean() / 1000.0,
            self.send_lag.quantile(0.5) as f64 / 1000.0,
            self.send_lag.quantile(0.99) as f64 / 1000.0,
            self.send_lag.max() as f64 / 1000.0,
        )
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:.0} requests/s, {:.2} MB/s over {:.2} s",
            self.requests_per_sec(),
            self.bytes_per_sec() / 1e6,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "sent {}, responses {}, connections opened {}",
            self.sent, self.responses, self.connects
        );
        for (kind, n) in &self.sent_by_kind {
            if *n > 0 {
                let _ = writeln!(s, "  {} sent: {n}", kind.name());
            }
        }
        let _ = writeln!(
            s,
            "latency µs: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
            self.latency_us(0.5),
            self.latency_us(0.9),
            self.latency_us(0.99),
            self.latency_us(0.999),
            self.latency.max() as f64 / 1000.0,
            self.latency.mean() / 1000.0
        );
        if !self.send_lag.is_empty() {
            let _ = writeln!(
                s,
                "send lag µs (behind the schedule): p50 {:.1}  p99 {:.1}  max {:.1}",
                self.send_lag.quantile(0.5) as f64 / 1000.0,
                self.send_lag.quantile(0.99) as f64 / 1000.0,
                self.send_lag.max() as f64 / 1000.0
            );
        }
        let codes: Vec<String> = self
            .statuses
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        let _ = writeln!(s, "status codes: {}", codes.join(", "));
        let e = &self.errors;
        let _ = writeln!(
            s,
            "errors: connect {}, read {}, malformed {}, timeout {}",
            e.connect, e.read, e.malformed, e.timeout
        );
        s
    }
}

/// The prepared requests of one kind.
struct KindPlan {
    kind: Kind,
    /// Length of one request.
    len: usize,
    /// The request `depth` times over.
    batch: Vec<u8>,
}

/// What every client shares: the requests and the limits.
struct Plan {
    addr: SocketAddr,
    kinds: Vec<KindPlan>,
    depth: usize,
    /// Time between intended sends on one connection (open loop).
    interval: Option<Duration>,
    timeout: Duration,
}

/// The run's counters and end conditions, shared by the clients.
struct Shared {
    report: Report,
    /// Requests still to be sent in a `-n` run.
    remaining: Option<u64>,
    /// End of a duration run.
    stop_at: Option<Instant>,
    /// Clients that have finished.
    finished: usize,
    /// Time the last response arrived.
    last_response: Instant,
    /// Time a connection was last established or a response last arrived: a `-n` run whose
    /// connects keep failing gives up once this is `--timeout` old, instead of retrying forever.
    last_progress: Instant,
}

impl Shared {
    fn stopping(&self, now: Instant) -> bool {
        self.remaining == Some(0) || self.stop_at.is_some_and(|s| now >= s)
    }

    /// Takes up to `want` requests from the budget of a `-n` run.
    fn take(&mut self, want: usize) -> usize {
        match &mut self.remaining {
            None => want,
            Some(left) => {
                let n = (*left).min(want as u64);
                *left -= n;
                n as usize
            }
        }
    }
}

/// Which error ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Read,
    Malformed,
    Timeout,
}

/// An open connection.
struct Open {
    stream: TcpStream,
    detector: ResponseDetector,
    /// Bytes of the batch buffer written so far, and where the current batch ends.
    written: usize,
    batch_end: usize,
    /// When bytes last moved (either way).
    last_progress: Instant,
    /// The timeout check: a fixed deadline, moved only when it fires, so the executor keeps one
    /// timer instead of re-arming it on every resume.
    check_at: Instant,
}

/// Where a client is.
enum ClientState {
    /// Waiting until this time before connecting again (after a connect error).
    Backoff(Instant),
    /// Connecting.
    Connecting(Connect),
    /// Connected: sending requests and reading responses (boxed: the detector's searcher is large
    /// and allocated once per connection anyway).
    Open(Box<Open>),
    /// Finished.
    Done,
}

/// What one resume of an open connection decided.
enum Next {
    /// Stay open; waits are registered.
    Wait,
    /// Close and connect again.
    Reconnect,
    /// Close and finish.
    Finish,
}

/// One connection's task.
struct Client {
    plan: Rc<Plan>,
    shared: Rc<RefCell<Shared>>,
    /// Index into `plan.kinds`.
    kind: usize,
    state: ClientState,
    /// Intended send time of each outstanding request, oldest first.
    in_flight: VecDeque<Instant>,
    /// Read buffer; unparsed bytes sit at its front.
    buffer: Vec<u8>,
    /// Next intended send time (open loop).
    next_send: Option<Instant>,
}

impl Coroutine for Client {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let now = cx.now();
            match &mut self.state {
                ClientState::Backoff(until) => {
                    if self.shared.borrow().stopping(now) {
                        self.state = ClientState::Done;
                    } else if now < *until {
                        cx.wait_until(*until);
                        return Step::WouldBlock;
                    } else {
                        self.state = ClientState::Connecting(TcpStream::connect(self.plan.addr));
                    }
                }
                ClientState::Connecting(connect) => match connect.poll(cx) {
                    Ok(Step::WouldBlock) => return Step::WouldBlock,
                    Ok(Step::Ready(stream)) => {
                        cx.clear_waits();
                        let _ = stream.set_nodelay(true);
                        let mut shared = self.shared.borrow_mut();
                        shared.report.connects += 1;
                        shared.last_progress = now;
                        drop(shared);
                        self.buffer.clear();
                        self.state = ClientState::Open(Box::new(Open {
                            stream,
                            detector: ResponseDetector::new(),
                            written: 0,
                            batch_end: 0,
                            last_progress: now,
                            check_at: now + self.plan.timeout,
                        }));
                    }
                    Err(_) => {
                        cx.clear_waits();
                        let mut shared = self.shared.borrow_mut();
                        shared.report.errors.connect += 1;
                        // A duration run ends on its own; a `-n` run against a server that
                        // refuses every connection would retry forever.
                        let stalled = shared.remaining.is_some()
                            && now.saturating_duration_since(shared.last_progress)
                                >= self.plan.timeout;
                        drop(shared);
                        self.state = if stalled {
                            ClientState::Done
                        } else {
                            ClientState::Backoff(now + CONNECT_BACKOFF)
                        };
                    }
                },
                ClientState::Open(_) => match self.resume_open(cx) {
                    Next::Wait => return Step::WouldBlock,
                    Next::Reconnect => {
                        cx.clear_waits();
                        self.state = if self.shared.borrow().stopping(now) {
                            ClientState::Done
                        } else {
                            ClientState::Connecting(TcpStream::connect(self.plan.addr))
                        };
                    }
                    Next::Finish => {
                        cx.clear_waits();
                        self.state = ClientState::Done;
                    }
                },
                ClientState::Done => {
                    self.shared.borrow_mut().finished += 1;
                    // Requests that could not be sent before the end are not counted anywhere.
                    return Step::Ready(());
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "load-client"
    }
}

impl Client {
    /// Drives an open connection: sends what is due, reads and checks responses.
    fn resume_open(&mut self, cx: &mut Cx<'_>) -> Next {
        let now = cx.now();
        let plan = Rc::clone(&self.plan);
        let kind = &plan.kinds[self.kind];
        let fd = match &self.state {
            ClientState::Open(open) => open.stream.as_raw_fd(),
            _ => return Next::Finish,
        };
        // Read first only if woken (or just connected): after a write the socket is most likely
        // empty, and poll is level-triggered, so skipping the read cannot lose a wake.
        let mut try_read = true;
        loop {
            cx.clear_waits();
            let mut progress = false;
            let ClientState::Open(open) = &mut self.state else {
                return Next::Finish;
            };

            // Timeout: nothing moved for `timeout` while requests were outstanding.
            if now >= open.check_at {
                if !self.in_flight.is_empty() && now >= open.last_progress + plan.timeout {
                    return self.fail(Failure::Timeout);
                }
                open.check_at = open.last_progress.max(now) + plan.timeout;
            }

            // Read and parse.
            if try_read {
                if self.buffer.capacity() - self.buffer.len() < READ_BUFFER / 4 {
                    self.buffer.reserve(READ_BUFFER);
                }
                match open.stream.read_to_spare(&mut self.buffer) {
                    Ok(Step::Ready(0)) => return self.peer_closed(now),
                    Ok(Step::Ready(n)) => {
                        open.last_progress = now;
                        progress = true;
                        let full = self.buffer.len() == self.buffer.capacity();
                        try_read = full;
                        self.shared.borrow_mut().report.bytes_read += n as u64;
                        match self.parse(now) {
                            Ok(true) => {}
                            Ok(false) => return Next::Reconnect,
                            Err(failure) => return self.fail(failure),
                        }
                    }
                    Ok(Step::WouldBlock) => {
                        try_read = false;
                        cx.wait_readable(fd);
                    }
                    Err(_) => return self.fail(Failure::Read),
                }
            } else {
                cx.wait_readable(fd);
            }
            let ClientState::Open(open) = &mut self.state else {
                return Next::Finish;
            };

            // Schedule a batch when the last one is written.
            if open.written == open.batch_end {
                let mut shared = self.shared.borrow_mut();
                let stopping = shared.stopping(now);
                if stopping && self.in_flight.is_empty() {
                    return Next::Finish;
                }
                let room = plan.depth - self.in_flight.len().min(plan.depth);
                let mut n = 0;
                if !stopping && room > 0 {
                    match (plan.interval, self.next_send.as_mut()) {
                        (Some(interval), Some(next)) => {
                            let mut due = 0;
                            let mut at = *next;
                            while due < room && at <= now {
                                due += 1;
                                at += interval;
                            }
                            n = shared.take(due);
                            // The lag is read off a fresh clock, just before the write below:
                            // the loop's cached `now` dates from the start of this turn, and
                            // would hide the time the turn's earlier steps took.
                            let sending_at = Instant::now();
                            for _ in 0..n {
                                let lag = sending_at.saturating_duration_since(*next);
                                shared.report.send_lag.record(lag.as_nanos() as u64);
                                self.in_flight.push_back(*next);
                                *next += interval;
                            }
                            if *next > now {
                                cx.wait_until(*next);
                            }
                        }
                        _ if self.in_flight.is_empty() => {
                            n = shared.take(room);
                            self.in_flight.extend(std::iter::repeat_n(now, n));
                        }
                        _ => {}
                    }
                }
                if n > 0 {
                    shared.report.sent += n as u64;
                    let kind_index = kind.kind as usize;
                    shared.report.sent_by_kind[kind_index].1 += n as u64;
                    open.written = 0;
                    open.batch_end = n * kind.len;
                }
            }

            // Write what is pending.
            if open.written < open.batch_end {
                match open.stream.write(&kind.batch[open.written..open.batch_end]) {
                    Ok(Step::Ready(n)) => {
                        open.written += n;
                        open.last_progress = now;
                        progress |= open.written == open.batch_end;
                        if open.written < open.batch_end {
                            cx.wait_writable(fd);
                        }
                    }
                    Ok(Step::WouldBlock) => cx.wait_writable(fd),
                    Err(_) => return self.fail(Failure::Read),
                }
            }

            if !progress {
                if !self.in_flight.is_empty() {
                    cx.wait_until(open.check_at);
                }
                return Next::Wait;
            }
        }
    }

    /// Parses every complete response in the buffer. `Ok(false)`: the server said it closes.
    fn parse(&mut self, now: Instant) -> Result<bool, Failure> {
        let ClientState::Open(open) = &mut self.state else {
            return Ok(false);
        };
        let mut pos = 0;
        let mut shared = self.shared.borrow_mut();
        let in_window = shared.stop_at.is_none_or(|s| now <= s);
        let mut keep = true;
        let result = loop {
            match open.detector.advance(&self.buffer[pos..], &mut pos) {
                Ok(Step::Ready(response)) => {
                    let Some(sent_at) = self.in_flight.pop_front() else {
                        // A response nobody asked for: the stream is out of step.
                        shared.report.errors.malformed += 1;
                        break Err(Failure::Malformed);
                    };
                    let report = &mut shared.report;
                    report.responses += 1;
                    report.responses_in_window += u64::from(in_window);
                    let code = usize::from(response.status);
                    report.statuses[if code < 600 { code } else { 0 }] += 1;
                    report
                        .latency
                        .record(now.saturating_duration_since(sent_at).as_nanos() as u64);
                    shared.last_response = now;
                    shared.last_progress = now;
                    if response.close {
                        keep = false;
                        break Ok(());
                    }
                }
                Ok(Step::WouldBlock) => break Ok(()),
                Err(_) => break Err(Failure::Malformed),
            }
        };
        drop(shared);
        if pos == self.buffer.len() {
            self.buffer.clear();
        } else if pos > 0 {
            self.buffer.copy_within(pos.., 0);
            self.buffer.truncate(self.buffer.len() - pos);
        }
        result?;
        if !keep {
            // Whatever was pipelined behind a closing response is lost with the connection.
            let lost = self.in_flight.len() as u64;
            self.shared.borrow_mut().report.errors.read += lost;
            self.in_flight.clear();
        }
        Ok(keep)
    }

    /// The server closed its side.
    fn peer_closed(&mut self, now: Instant) -> Next {
        let ClientState::Open(open) = &mut self.state else {
            return Next::Finish;
        };
        if let Some(response) = open.detector.finish()
            && let Some(sent_at) = self.in_flight.pop_front()
        {
            let mut shared = self.shared.borrow_mut();
            let in_window = shared.stop_at.is_none_or(|s| now <= s);
            let report = &mut shared.report;
            report.responses += 1;
            report.responses_in_window += u64::from(in_window);
            report.statuses[usize::from(response.status).min(599)] += 1;
            report
                .latency
                .record(now.saturating_duration_since(sent_at).as_nanos() as u64);
        }
        if self.in_flight.is_empty() {
            // An idle connection closed by the server (keep-alive timeout): just reconnect.
            Next::Reconnect
        } else {
            self.fail(Failure::Read)
        }
    }

    /// Counts every outstanding request as lost to `failure`; the connection is dropped.
    fn fail(&mut self, failure: Failure) -> Next {
        let lost = self.in_flight.len() as u64;
        self.in_flight.clear();
        let mut shared = self.shared.borrow_mut();
        let errors = &mut shared.report.errors;
        match failure {
            Failure::Read => errors.read += lost,
            Failure::Malformed => errors.malformed += lost,
            Failure::Timeout => errors.timeout += lost,
        }
        Next::Reconnect
    }
}

/// Prints a progress line on stderr every second.
struct Progress {
    shared: Rc<RefCell<Shared>>,
    clients: usize,
    next: Instant,
    started: Instant,
    last_responses: u64,
}

impl Coroutine for Progress {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        let shared = self.shared.borrow();
        if shared.finished >= self.clients {
            eprint!("\r\x1b[K");
            return Step::Ready(());
        }
        if cx.now() >= self.next {
            let r = &shared.report;
            let e = r.errors;
            eprint!(
                "\r\x1b[K{:>4.0}s  {:>9} req/s  responses {}  errors {}  p99 {:.0} µs",
                cx.now().duration_since(self.started).as_secs_f64(),
                r.responses - self.last_responses,
                r.responses,
                e.connect + e.of_requests(),
                r.latency_us(0.99),
            );
            self.last_responses = r.responses;
            self.next += Duration::from_secs(1);
        }
        cx.wait_until(self.next);
        Step::WouldBlock
    }

    fn kind(&self) -> &'static str {
        "progress"
    }
}

/// Runs a load test on the calling thread's own executor and returns what it measured.
///
/// # Errors
/// If the executor cannot be created or polling fails; connection errors are counted, not returned.
pub fn run(config: &LoadConfig) -> io::Result<Report> {
    let _ = asycamore::executor::net::raise_fd_limit();
    let depth = config.depth.max(1);
    let kinds: Vec<KindPlan> = [Kind::Get, Kind::Post]
        .into_iter()
        .map(|kind| {
            let one = config.request(kind);
            let mut batch = Vec::with_capacity(one.len() * depth);
            for _ in 0..depth {
                batch.extend_from_slice(&one);
            }
            KindPlan {
                kind,
                len: one.len(),
                batch,
            }
        })
        .collect();
    let connections = config.connections.max(1);
    let interval = config
        .rate
        .map(|rate| Duration::from_secs_f64(connections as f64 / rate));
    let plan = Rc::new(Plan {
        addr: config.addr,
        kinds,
        depth,
        interval,
        timeout: config.timeout,
    });
    let start = Instant::now();
    let shared = Rc::new(RefCell::new(Shared {
        report: Report::new(),
        remaining: config.requests,
        stop_at: if config.requests.is_some() {
            None
        } else {
            config.duration.map(|d| start + d)
        },
        finished: 0,
        last_response: start,
        last_progress: start,
    }));
    let pattern: Vec<Kind> = config
        .mix
        .iter()
        .flat_map(|&(kind, weight)| std::iter::repeat_n(kind, weight as usize))
        .collect();
    if interval.is_some() {
        // An open loop sends on a schedule: with the default 50 µs of timer slack the kernel
        // may wake the loop that much late, and every latency would carry it.
        sys::sharpen_timers();
    }
    // epoll, for its nanosecond timeouts (and a thousand connections cost what is ready).
    let mut executor = Executor::with_poller(EpollPoller::new()?.with_nanosecond_timeouts())?;
    if interval.is_some() {
        // Sends due within SPIN_WINDOW (2 ms) are waited for awake: a wake-up from a timed sleep
        // comes 50–150 µs late on a shared guest.
        executor.set_spin_window(SPIN_WINDOW);
    }
    for i in 0..connections {
        let kind = pattern
            .get(i % pattern.len().max(1))
            .copied()
            .unwrap_or(Kind::Get);
        // Open loop: stagger the connections' schedules across one interval.
        let next_send = interval.map(|iv| start + iv.mul_f64(i as f64 / connections as f64));
        executor.spawn(Client {
            plan: Rc::clone(&plan),
            shared: Rc::clone(&shared),
            kind: kind as usize,
            state: ClientState::Connecting(TcpStream::connect(config.addr)),
            in_flight: VecDeque::with_capacity(depth),
            buffer: Vec::with_capacity(READ_BUFFER),
            next_send,
        });
    }
    if config.progress {
        executor.spawn(Progress {
            shared: Rc::clone(&shared),
            clients: connections,
            next: start + Duration::from_secs(1),
            started: start,
            last_responses: 0,
        });
    }
    while shared.borrow().finished < connections {
        executor.turn()?;
    }
    let mut shared = shared.borrow_mut();
    let end = if config.requests.is_some() {
        shared.last_response
    } else {
        config.duration.map_or(shared.last_response, |d| start + d)
    };
    shared.report.elapsed = end.saturating_duration_since(start);
    Ok(shared.report.clone())
}

/// The `load` subcommand.
///
/// # Errors
/// A usage error for bad flags; a failure if the run could not be made or no request succeeded
/// (no 2xx or 3xx response), after the report is printed.
pub fn main(args: LoadArgs) -> Result<(), ToolError> {
    let config = LoadConfig::from_args(&args).map_err(ToolError::Usage)?;
    if !args.json {
        eprintln!(
            "load {} ({}): {} connections, pipeline {}, {}",
            args.url,
            config.addr,
            config.connections,
            config.depth,
            match (config.duration, config.requests) {
                (_, Some(n)) => format!("{n} requests"),
                (Some(d), None) => format!("{:.1} s", d.as_secs_f64()),
                _ => String::new(),
            }
        );
    }
    let report = run(&config).map_err(|e| format!("load: {e}"))?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    let [_, ok, redirected, _, _] = report.classes();
    if ok + redirected == 0 {
        return Err(ToolError::Failed(format!(
            "no request succeeded ({} sent, {} responses, {} errors)",
            report.sent,
            report.responses,
            report.errors.of_requests() + report.errors.connect
        )));
    }
    Ok(())
}
