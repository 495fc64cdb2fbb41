//! What the simulated clients do, all drawn from the seed: their requests (with what the server
//! must answer to each), how the bytes go on the wire (split points, delays, waits for a
//! response or a `100 Continue`), and how each client ends.

use std::time::Duration;

use asycamore::crc32::Crc32;
use asycamore::detect::{HeadDetector, Limits, RequestHead};
use asycamore::executor::Step;
use asycamore::executor::sim::XorShift;

/// The server settings of one run, drawn from the seed (timeouts in whole milliseconds, so that
/// the checker's arithmetic is exact).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `--head-timeout`.
    pub head: Duration,
    /// `--keepalive-timeout`.
    pub keepalive: Duration,
    /// `--body-timeout`.
    pub body: Duration,
    /// `--write-timeout`.
    pub write: Duration,
}

impl Timeouts {
    /// The shortest of them: the pacing of ordinary clients stays well inside it.
    pub fn shortest(&self) -> Duration {
        self.head.min(self.keepalive).min(self.body).min(self.write)
    }
}

/// Which demo application a request reaches, and what it must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: `Hello, World!`; or `POST /`, which `/` does not take: 405, its body never read.
    Hello,
    /// `POST /echo`: the body back.
    Echo,
    /// `POST /upload`: a JSON summary (bytes, chunks, CRC-32, trailer names).
    Upload,
    /// `GET /sleep?ms=N`: answered no sooner than N ms after the request arrived.
    Sleep(u64),
    /// `GET /ws`, a WebSocket handshake followed by frames: `101` with the accept key, then
    /// every frame echoed ([`Req::ws_echo`]) and the close answered.
    Ws,
    /// `GET /count` upgraded to the test protocol `count`: the bytes after the head, which the
    /// client ends with a half-close, are counted, and the count comes back after the `101`.
    Count(usize),
    /// A request from `tests/data/requests/invalid/` that the server must refuse with this
    /// status (or 408 if its bytes took longer than the head timeout), then close.
    Invalid(u16),
}

/// How a request uses `Expect: 100-continue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectMode {
    /// Not sent.
    None,
    /// Sent, and the body follows without waiting.
    Eager,
    /// Sent, and the body waits for `100 Continue` (or a final status, after which the client
    /// sends nothing more).
    Wait,
}

/// One request and what the server must answer to it.
#[derive(Debug, Clone)]
pub struct Req {
    /// The bytes on the wire.
    pub bytes: Vec<u8>,
    /// Length of the head within `bytes`.
    pub head_len: usize,
    /// The route.
    pub route: Route,
    /// `HEAD` (the response has no body).
    pub head_method: bool,
    /// The body's content (de-chunked).
    pub body: Vec<u8>,
    /// Chunks the body was sent in (`ChunkStart` events: 1 for a non-empty `Content-Length`).
    pub chunks: usize,
    /// Trailer field names, as sent.
    pub trailers: Vec<String>,
    /// HTTP/1.0.
    pub http10: bool,
    /// The client asks to close after it (HTTP/1.0 without keep-alive, or `Connection: close`).
    pub wants_close: bool,
    /// `Expect: 100-continue`.
    pub expect: ExpectMode,
    /// For [`Route::Ws`]: the frames the server must send back, in order (the last answers the
    /// client's close).
    pub ws_echo: Vec<Vec<u8>>,
}

impl Req {
    /// True if body bytes follow the head on the wire (an empty chunked body has its last chunk).
    pub fn has_body(&self) -> bool {
        self.bytes.len() > self.head_len
    }

    /// True if the route reads the body before answering (so a waiting client needs the 100).
    pub fn reads_body(&self) -> bool {
        matches!(self.route, Route::Echo | Route::Upload)
    }
}

/// When a segment may go out, besides its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// At once (after the delay).
    None,
    /// Once the final response to request `i` is complete.
    Response(usize),
    /// Once request `i` has had its `100 Continue`, or its final response (then this segment and
    /// everything after it is never sent).
    Continue(usize),
}

/// Bytes the client writes in one go, after `delay` and once its gate is open.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Wait this long after the previous segment went out (or the gate opened).
    pub delay: Duration,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// What must have happened first.
    pub gate: Gate,
}

/// What kind of client this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Requests back to back, in random pieces with tiny delays.
    Pipelined,
    /// Each request after the previous response, in pieces with delays well inside the timeouts;
    /// some wait for `100 Continue`.
    Sequential,
    /// After some ordinary requests, part of a head, then silence: a 408 at the head timeout.
    SlowHead,
    /// An upload whose body stops halfway: a 408 at the body timeout after its last byte.
    SlowBody,
    /// Asks for a large echo and stops reading: the server gives up at the write timeout.
    NonReader,
    /// Resets the connection at a random point.
    Resetter,
    /// A few keep-alive requests, then a WebSocket handshake with frames (sent with it or after
    /// the 101) and a close; it reads until the server closes.
    WebSocket,
}

/// How a client that has all its answers ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It closes.
    Close,
    /// It stays, idle, until the server's keep-alive timeout closes the connection.
    Idle,
    /// Once everything is sent it shuts its write side (a half-close) and reads until the
    /// server closes.
    HalfClose,
}

/// Everything one client does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its number.
    pub id: usize,
    /// When it connects.
    pub connect_at: Duration,
    /// Its kind.
    pub kind: Kind,
    /// Its requests, in order.
    pub requests: Vec<Req>,
    /// Its bytes on the wire, in order; each belongs to one request ([`Plan::owner`]).
    pub segments: Vec<Segment>,
    /// For each segment, the request its bytes belong to (the first, if it spans several).
    pub owner: Vec<usize>,
    /// Stops reading once it has received this many bytes.
    pub stop_reading_after: Option<usize>,
    /// Reads at most this many bytes at a time, and waits this long after each read (a slow
    /// reader, well inside the write timeout).
    pub read_pace: Option<(usize, Duration)>,
    /// Resets the connection after writing this many segments.
    pub reset_after: Option<usize>,
    /// How it ends once answered.
    pub ending: Ending,
}

/// One run's whole scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed it came from.
    pub seed: u64,
    /// The server's timeouts.
    pub timeouts: Timeouts,
    /// The server's output high-water mark.
    pub output_high_water: usize,
    /// The server's drain limit.
    pub drain_limit: u64,
    /// The clients.
    pub clients: Vec<Plan>,
    /// When a graceful shutdown begins (otherwise once every client is done).
    pub shutdown_at: Option<Duration>,
    /// Fault probabilities of the simulated sockets.
    pub faults: asycamore::executor::sim::Faults,
}

/// The invalid requests of the corpus: bytes, status, and whether the error is in the head (the
/// others are body errors, sent to `/upload`, which reads the body and answers the error).
pub struct Corpus {
    entries: Vec<(Vec<u8>, u16)>,
}

impl Corpus {
    /// Loads `tests/data/requests/invalid/*.STATUS.http`.
    pub fn load() -> Corpus {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/requests/invalid");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("the invalid corpus")
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        let entries = files
            .iter()
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?;
                let status: u16 = name
                    .strip_suffix(".http")?
                    .rsplit('.')
                    .next()?
                    .parse()
                    .ok()?;
                let bytes = std::fs::read(path).ok()?;
                Some((route_body_errors_to_upload(bytes), status))
            })
            .collect();
        Corpus { entries }
    }

    fn pick(&self, rng: &mut XorShift) -> (Vec<u8>, u16) {
        let i = (rng.next_u64() % self.entries.len() as u64) as usize;
        self.entries[i].clone()
    }
}

/// A request whose head parses but whose body is bad reaches `hello` at `/`, which answers
/// without reading it; sent to `/upload` instead, the body is read and its error answered.
fn route_body_errors_to_upload(bytes: Vec<u8>) -> Vec<u8> {
    let mut head = RequestHead::new();
    let parsed = HeadDetector::new(Limits::default()).detect(&bytes, &mut head);
    if !matches!(parsed, Ok((_, Step::Ready(())))) || head.target(&bytes) != b"/" {
        return bytes;
    }
    let Some(space) = bytes.iter().position(|&b| b == b' ') else {
        return bytes;
    };
    let mut routed = bytes[..=space].to_vec();
    routed.extend_from_slice(b"/upload");
    routed.extend_from_slice(&bytes[space + 2..]);
    routed
}

/// The random choices, with a few helpers.
struct Dice(XorShift);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.0.next_u64() % n }
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.0.next_u64() as u8).collect()
    }
}

/// Draws a whole scenario from `seed`.
pub fn scenario(seed: u64, corpus: &Corpus) -> Scenario {
    let mut d = Dice(XorShift::new(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5,
    ));
    let timeouts = Timeouts {
        head: d.ms(1_000, 10_000),
        keepalive: d.ms(1_000, 30_000),
        body: d.ms(1_000, 20_000),
        write: d.ms(1_000, 20_000),
    };
    let output_high_water = if d.chance(50) {
        64 * 1024
    } else {
        d.range(512, 64 * 1024) as usize
    };
    let drain_limit = if d.chance(70) {
        256 * 1024
    } else {
        d.range(0, 8 * 1024)
    };
    let faults = asycamore::executor::sim::Faults {
        spurious_eagain: if d.chance(50) { 0.05 } else { 0.0 },
        short_io: if d.chance(50) { 0.2 } else { 0.0 },
        reset: if d.chance(15) { 0.002 } else { 0.0 },
        emfile: if d.chance(30) { 0.1 } else { 0.0 },
    };
    let clients = (0..d.range(1, 6) as usize)
        .map(|id| plan(&mut d, id, &timeouts, drain_limit, corpus))
        .collect();
    let shutdown_at = d.chance(30).then(|| d.ms(0, 3_000));
    // WebSocket clients come from dice of their own, so every other client of a seed is what it
    // was before they existed (the named seeds keep their scenarios).
    let mut w = Dice(XorShift::new(
        seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x5753,
    ));
    let mut clients: Vec<Plan> = clients;
    if w.chance(35) {
        let id = clients.len();
        clients.push(websocket_client(&mut w, id, &timeouts));
    }
    Scenario {
        seed,
        timeouts,
        output_high_water,
        drain_limit,
        clients,
        shutdown_at,
        faults,
    }
}

fn plan(d: &mut Dice, id: usize, t: &Timeouts, drain_limit: u64, corpus: &Corpus) -> Plan {
    let kind = match d.below(100) {
        0..=34 => Kind::Pipelined,
        35..=64 => Kind::Sequential,
        65..=72 => Kind::SlowHead,
        73..=80 => Kind::SlowBody,
        81..=89 => Kind::NonReader,
        _ => Kind::Resetter,
    };
    let connect_at = d.ms(0, 500);
    let mut requests = Vec::new();
    let n = match kind {
        Kind::Pipelined | Kind::Resetter => d.range(1, 6),
        Kind::Sequential => d.range(1, 4),
        Kind::SlowHead | Kind::SlowBody => d.range(0, 2),
        Kind::NonReader | Kind::WebSocket => 0,
    };
    for i in 0..n {
        let last = i + 1 == n;
        let waiting_allowed = kind == Kind::Sequential;
        requests.push(ordinary(d, last, waiting_allowed, drain_limit));
    }
    if matches!(kind, Kind::Pipelined | Kind::Sequential) && d.chance(10) {
        let (bytes, status) = corpus.pick(&mut d.0);
        requests.push(invalid(bytes, status));
        if d.chance(50) {
            // Bytes after a framing error are never answered.
            requests.push(hello_get(false, false));
        }
    }
    match kind {
        Kind::SlowHead => requests.push(hello_get(false, false)),
        Kind::SlowBody => {
            let len = d.range(2, 4096) as usize;
            let chunked = d.chance(50);
            let spec = Spec {
                route: Route::Upload,
                target: "/upload",
                len,
                chunked,
                http10: false,
                close: false,
                expect: ExpectMode::None,
            };
            requests.push(with_body(d, spec));
        }
        Kind::NonReader if d.chance(50) => {
            let len = d.range(150_000, 400_000) as usize;
            requests.push(echo(d, len, false, false, ExpectMode::None));
        }
        Kind::NonReader => {
            // Enough small answers to fill the client's buffer and leave output pending
            // while the connection waits for the next head.
            for _ in 0..d.range(250, 400) {
                requests.push(hello_get(false, false));
            }
        }
        _ => {}
    }
    let segments_and_owner = segments(d, kind, &requests, t);
    let stop_reading_after = (kind == Kind::NonReader).then(|| d.below(8 * 1024) as usize);
    let read_pace =
        (matches!(kind, Kind::Pipelined | Kind::Sequential) && d.chance(25)).then(|| {
            // At least 256 bytes every 5 ms: the largest response still arrives within seconds.
            let most = d.range(256, 4096) as usize;
            (most, d.ms(0, 5))
        });
    let reset_after =
        (kind == Kind::Resetter).then(|| d.below(segments_and_owner.0.len() as u64 + 1) as usize);
    Plan {
        id,
        connect_at,
        kind,
        requests,
        segments: segments_and_owner.0,
        owner: segments_and_owner.1,
        stop_reading_after,
        read_pace,
        reset_after,
        ending: if d.chance(60) {
            Ending::Close
        } else {
            Ending::Idle
        },
    }
}

/// The key of every simulated WebSocket handshake (RFC 6455 §1.3's example) and its accept
/// value.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for [`WS_KEY`].
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A WebSocket client: up to two keep-alive GETs, then the handshake and its frames.
fn websocket_client(d: &mut Dice, id: usize, t: &Timeouts) -> Plan {
    let mut requests: Vec<Req> = (0..d.range(0, 2))
        .map(|_| hello_get(false, false))
        .collect();
    let before = requests.clone();
    let counting = d.chance(30);
    let ws = if counting { count(d) } else { websocket(d) };
    let (mut segments, mut owner) = self::segments(d, Kind::Sequential, &before, t);
    let i = requests.len();
    let budget = t.shortest().as_millis() as u64 / 8;
    let (head, frames) = ws.bytes.split_at(ws.head_len);
    let gate = if i > 0 {
        Gate::Response(i - 1)
    } else {
        Gate::None
    };
    // The frames go with the head, or once the 101 is in (both are allowed: a client may send
    // frames at once, and the server must hand them to the tunnel first).
    let with_head = d.chance(50);
    let first: Vec<u8> = if with_head {
        ws.bytes.clone()
    } else {
        head.to_vec()
    };
    split(d, &first, gate, budget, &mut |s| {
        segments.push(s);
        owner.push(i);
    });
    if !with_head {
        split(d, frames, Gate::Response(i), budget, &mut |s| {
            segments.push(s);
            owner.push(i);
        });
    }
    requests.push(ws);
    let read_pace = d
        .chance(25)
        .then(|| (d.range(256, 4096) as usize, d.ms(0, 5)));
    Plan {
        id,
        connect_at: d.ms(0, 500),
        kind: Kind::WebSocket,
        requests,
        segments,
        owner,
        stop_reading_after: None,
        read_pace,
        reset_after: None,
        ending: if counting {
            Ending::HalfClose
        } else {
            Ending::Idle
        },
    }
}

/// An upgrade to the test protocol `count`, with bytes after the head.
fn count(d: &mut Dice) -> Req {
    let head = head_lines(
        "GET",
        "/count",
        false,
        false,
        &[
            "Connection: Upgrade".to_owned(),
            "Upgrade: count".to_owned(),
        ],
    );
    let head_len = head.len();
    let len = d.range(0, 100_000) as usize;
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&d.bytes(len));
    Req {
        bytes,
        head_len,
        route: Route::Count(len),
        head_method: false,
        body: Vec::new(),
        chunks: 0,
        trailers: Vec::new(),
        http10: false,
        wants_close: false,
        expect: ExpectMode::None,
        ws_echo: Vec::new(),
    }
}

/// A WebSocket request drawn from `seed` alone, for the checker's own tests.
pub fn websocket_request(seed: u64) -> Req {
    websocket(&mut Dice(XorShift::new(seed)))
}

/// A WebSocket handshake followed by masked frames: messages of text or binary in one to three
/// fragments, pings between frames, and a close; with the frames the echo must send back.
fn websocket(d: &mut Dice) -> Req {
    use asycamore::ws::{Opcode, write_frame, write_frame_masked};
    let head = head_lines(
        "GET",
        "/ws",
        false,
        false,
        &[
            "Connection: Upgrade".to_owned(),
            "Upgrade: websocket".to_owned(),
            "Sec-WebSocket-Version: 13".to_owned(),
            format!("Sec-WebSocket-Key: {WS_KEY}"),
        ],
    );
    let head_len = head.len();
    let mut wire = head.into_bytes();
    let mut echo = Vec::new();
    let mask = |d: &mut Dice| [0, 1, 2, 3].map(|_| d.below(256) as u8);
    let ping = |d: &mut Dice, wire: &mut Vec<u8>, echo: &mut Vec<Vec<u8>>| {
        let len = d.range(0, 125) as usize;
        let payload = d.bytes(len);
        let m = mask(d);
        write_frame_masked(wire, true, Opcode::Ping, &payload, m);
        let mut pong = Vec::new();
        write_frame(&mut pong, true, Opcode::Pong, &payload);
        echo.push(pong);
    };
    for _ in 0..d.range(1, 5) {
        let text = d.chance(50);
        let len = match d.below(10) {
            0 => 0,
            1..=6 => d.range(1, 200) as usize,
            7 | 8 => d.range(200, 70_000) as usize,
            _ => d.range(70_000, 200_000) as usize,
        };
        let message: Vec<u8> = if text {
            // Valid UTF-8 with two-byte characters, which fragments may split.
            (0..len)
                .map(|k| if k % 7 == 3 { 'é' } else { 'a' })
                .collect::<String>()
                .into_bytes()
        } else {
            d.bytes(len)
        };
        let fragments = d.range(1, 3) as usize;
        let mut at = 0;
        for f in 0..fragments {
            let last = f + 1 == fragments;
            let end = if last {
                message.len()
            } else {
                at + (d.below((message.len() - at) as u64 + 1) as usize)
            };
            let opcode = match (f, text) {
                (0, true) => Opcode::Text,
                (0, false) => Opcode::Binary,
                _ => Opcode::Continuation,
            };
            let m = mask(d);
            write_frame_masked(&mut wire, last, opcode, &message[at..end], m);
            let mut back = Vec::new();
            write_frame(&mut back, last, opcode, &message[at..end]);
            echo.push(back);
            at = end;
            if d.chance(20) {
                ping(d, &mut wire, &mut echo);
            }
        }
    }
    let m = mask(d);
    write_frame_masked(&mut wire, true, Opcode::Close, b"\x03\xe8bye", m);
    echo.push(vec![0x88, 2, 0x03, 0xe8]);
    Req {
        bytes: wire,
        head_len,
        route: Route::Ws,
        head_method: false,
        body: Vec::new(),
        chunks: 0,
        trailers: Vec::new(),
        http10: false,
        wants_close: false,
        expect: ExpectMode::None,
        ws_echo: echo,
    }
}

/// An ordinary request: its route, version, body and expectation drawn at random.
fn ordinary(d: &mut Dice, last: bool, waiting_allowed: bool, drain_limit: u64) -> Req {
    let http10 = d.chance(15);
    let close = if http10 {
        d.chance(50)
    } else {
        last && d.chance(15) || d.chance(3)
    };
    let expect = |d: &mut Dice| {
        if http10 {
            ExpectMode::None
        } else if waiting_allowed && d.chance(20) {
            ExpectMode::Wait
        } else if d.chance(15) {
            ExpectMode::Eager
        } else {
            ExpectMode::None
        }
    };
    let body_len = |d: &mut Dice| match d.below(100) {
        0..=4 => 0,
        5..=44 => d.range(1, 100) as usize,
        45..=79 => d.range(100, 4096) as usize,
        80..=94 => d.range(4096, 65536) as usize,
        _ => d.range(65536, 300_000) as usize,
    };
    match d.below(100) {
        0..=29 => hello_get(http10, close),
        30..=39 => hello_head(http10, close),
        40..=44 => {
            // hello never reads this body: the server discards it, or closes if it is larger
            // than it will discard.
            let len = d.range(1, (drain_limit.max(1) * 2).min(100_000)) as usize;
            let e = expect(d);
            hello_post(d, len, http10, close, e)
        }
        45..=64 => {
            let len = body_len(d);
            let e = expect(d);
            echo(d, len, http10, close, e)
        }
        65..=84 => {
            let len = body_len(d);
            let chunked = !http10 && d.chance(50);
            let expect = expect(d);
            with_body(
                d,
                Spec {
                    route: Route::Upload,
                    target: "/upload",
                    len,
                    chunked,
                    http10,
                    close,
                    expect,
                },
            )
        }
        _ => {
            let ms = d.range(0, 500);
            sleep(ms, http10, close)
        }
    }
}

fn head_lines(method: &str, target: &str, http10: bool, close: bool, extra: &[String]) -> String {
    let mut head = format!(
        "{method} {target} HTTP/1.{}\r\nHost: sim\r\n",
        if http10 { 0 } else { 1 }
    );
    if http10 && !close {
        head.push_str("Connection: keep-alive\r\n");
    } else if !http10 && close {
        head.push_str("Connection: close\r\n");
    }
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

fn bare(route: Route, head: String, http10: bool, close: bool, head_method: bool) -> Req {
    Req {
        head_len: head.len(),
        bytes: head.into_bytes(),
        route,
        head_method,
        body: Vec::new(),
        chunks: 0,
        trailers: Vec::new(),
        http10,
        wants_close: close,
        expect: ExpectMode::None,
        ws_echo: Vec::new(),
    }
}

fn hello_get(http10: bool, close: bool) -> Req {
    bare(
        Route::Hello,
        head_lines("GET", "/", http10, close, &[]),
        http10,
        close,
        false,
    )
}

fn hello_head(http10: bool, close: bool) -> Req {
    bare(
        Route::Hello,
        head_lines("HEAD", "/", http10, close, &[]),
        http10,
        close,
        true,
    )
}

fn sleep(ms: u64, http10: bool, close: bool) -> Req {
    let target = format!("/sleep?ms={ms}");
    bare(
        Route::Sleep(ms),
        head_lines("GET", &target, http10, close, &[]),
        http10,
        close,
        false,
    )
}

fn invalid(bytes: Vec<u8>, status: u16) -> Req {
    Req {
        head_len: bytes.len(),
        bytes,
        route: Route::Invalid(status),
        head_method: false,
        body: Vec::new(),
        chunks: 0,
        trailers: Vec::new(),
        http10: false,
        wants_close: true,
        expect: ExpectMode::None,
        ws_echo: Vec::new(),
    }
}

/// The shape of a request with a body.
struct Spec<'a> {
    route: Route,
    target: &'a str,
    len: usize,
    chunked: bool,
    http10: bool,
    close: bool,
    expect: ExpectMode,
}

/// A request with a body: `Content-Length`, or chunked with random chunk sizes, extensions and
/// trailers.
fn with_body(d: &mut Dice, spec: Spec<'_>) -> Req {
    let Spec {
        route,
        target,
        len,
        chunked,
        http10,
        close,
        expect,
    } = spec;
    let body = d.bytes(len);
    let mut extra = Vec::new();
    if expect != ExpectMode::None {
        extra.push("Expect: 100-continue".to_owned());
    }
    let mut trailers = Vec::new();
    let mut chunks = 0;
    let mut wire = Vec::new();
    if chunked {
        extra.push("Transfer-Encoding: chunked".to_owned());
        let mut at = 0;
        while at < len {
            let size = (d.range(1, 8192) as usize).min(len - at);
            wire.extend_from_slice(format!("{size:x}").as_bytes());
            match d.below(8) {
                0 => wire.extend_from_slice(b";ext=1"),
                1 => wire.extend_from_slice(b";name=\"a b\""),
                2 => wire.extend_from_slice(b" ;x"),
                _ => {}
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&body[at..at + size]);
            wire.extend_from_slice(b"\r\n");
            at += size;
            chunks += 1;
        }
        wire.extend_from_slice(b"0\r\n");
        if d.chance(30) {
            for name in ["X-Sum", "X-Count"].iter().take(d.range(1, 2) as usize) {
                wire.extend_from_slice(format!("{name}: 1\r\n").as_bytes());
                trailers.push((*name).to_owned());
            }
        }
        wire.extend_from_slice(b"\r\n");
    } else {
        extra.push(format!("Content-Length: {len}"));
        wire.extend_from_slice(&body);
        chunks = usize::from(len > 0);
    }
    let head = head_lines("POST", target, http10, close, &extra);
    let head_len = head.len();
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&wire);
    Req {
        bytes,
        head_len,
        route,
        head_method: false,
        body,
        chunks,
        trailers,
        http10,
        wants_close: close,
        expect,
        ws_echo: Vec::new(),
    }
}

fn echo(d: &mut Dice, len: usize, http10: bool, close: bool, expect: ExpectMode) -> Req {
    let chunked = !http10 && d.chance(40);
    with_body(
        d,
        Spec {
            route: Route::Echo,
            target: "/echo",
            len,
            chunked,
            http10,
            close,
            expect,
        },
    )
}

fn hello_post(d: &mut Dice, len: usize, http10: bool, close: bool, expect: ExpectMode) -> Req {
    with_body(
        d,
        Spec {
            route: Route::Hello,
            target: "/",
            len,
            chunked: false,
            http10,
            close,
            expect,
        },
    )
}

/// Splits the requests into segments as `kind` sends them.
fn segments(
    d: &mut Dice,
    kind: Kind,
    requests: &[Req],
    t: &Timeouts,
) -> (Vec<Segment>, Vec<usize>) {
    let mut segments = Vec::new();
    let mut owner = Vec::new();
    let push = |segments: &mut Vec<Segment>, owner: &mut Vec<usize>, i, s| {
        segments.push(s);
        owner.push(i);
    };
    // Ordinary pacing stays far inside every timeout.
    let budget = t.shortest().as_millis() as u64 / 8;
    for (i, r) in requests.iter().enumerate() {
        let last = i + 1 == requests.len();
        let gate = match kind {
            Kind::Sequential | Kind::SlowHead | Kind::SlowBody if i > 0 => Gate::Response(i - 1),
            _ => Gate::None,
        };
        let special = last && matches!(kind, Kind::SlowHead | Kind::SlowBody);
        if special && kind == Kind::SlowHead {
            // Part of the head, in a few pieces, then nothing more.
            let cut = d.range(1, r.head_len as u64 - 1) as usize;
            split(d, &r.bytes[..cut], gate, budget, &mut |s| {
                push(&mut segments, &mut owner, i, s)
            });
            continue;
        }
        if special && kind == Kind::SlowBody {
            let cut = d.range(r.head_len as u64 + 1, r.bytes.len() as u64 - 1) as usize;
            split(d, &r.bytes[..cut], gate, budget, &mut |s| {
                push(&mut segments, &mut owner, i, s)
            });
            continue;
        }
        let (head, body) = r.bytes.split_at(r.head_len);
        if r.expect == ExpectMode::Wait && !body.is_empty() {
            split(d, head, gate, budget, &mut |s| {
                push(&mut segments, &mut owner, i, s)
            });
            split(d, body, Gate::Continue(i), budget, &mut |s| {
                push(&mut segments, &mut owner, i, s)
            });
            continue;
        }
        match kind {
            Kind::Pipelined | Kind::Resetter | Kind::NonReader => {
                // Few delays, tiny ones: requests run together on the wire.
                let pieces = d.range(1, 3);
                cut_into(d, &r.bytes, pieces, gate, 3, &mut |s| {
                    push(&mut segments, &mut owner, i, s)
                });
            }
            _ => split(d, &r.bytes, gate, budget, &mut |s| {
                push(&mut segments, &mut owner, i, s)
            }),
        }
    }
    (segments, owner)
}

/// Cuts `bytes` into a few pieces (or, for short ones now and then, one byte each) with delays
/// that together stay under `budget` ms.
fn split(d: &mut Dice, bytes: &[u8], gate: Gate, budget: u64, out: &mut dyn FnMut(Segment)) {
    let pieces = if bytes.len() < 2 {
        1
    } else if bytes.len() <= 200 && d.chance(10) {
        bytes.len() as u64
    } else {
        d.range(1, 6.min(bytes.len() as u64))
    };
    cut_into(d, bytes, pieces, gate, budget / pieces.max(1), out);
}

fn cut_into(
    d: &mut Dice,
    bytes: &[u8],
    pieces: u64,
    gate: Gate,
    max_delay: u64,
    out: &mut dyn FnMut(Segment),
) {
    let mut cuts: Vec<usize> = (1..pieces)
        .map(|_| d.range(1, bytes.len().max(2) as u64 - 1) as usize)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut start = 0;
    for (k, end) in cuts.into_iter().chain([bytes.len()]).enumerate() {
        if end <= start {
            continue;
        }
        let delay = if d.chance(50) {
            Duration::ZERO
        } else {
            d.ms(0, max_delay)
        };
        out(Segment {
            delay,
            bytes: bytes[start..end].to_vec(),
            gate: if k == 0 { gate } else { Gate::None },
        });
        start = end;
    }
}

/// The upload summary the server must answer for `req`.
pub fn upload_summary(req: &Req) -> String {
    let mut crc = Crc32::default();
    crc.update(&req.body);
    let names: Vec<String> = req.trailers.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "{{\"bytes\": {}, \"chunks\": {}, \"crc32\": \"{:08x}\", \"trailers\": [{}]}}\n",
        req.body.len(),
        req.chunks,
        crc.value(),
        names.join(", ")
    )
}
