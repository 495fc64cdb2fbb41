//! The `ws` benchmark: N WebSocket connections, each echoing one message of a given size at a
//! time (send, wait for the echo, send again) for a while — messages per second, round-trip
//! percentiles, and with `--server-pid` the server's CPU per message; or, with `--idle`, N
//! connections that only shake hands and stay, and what they cost the server in RSS.
//!
//! Each connection is a coroutine on our executor: connect, send the handshake, read the `101`,
//! then a masked frame out and the server's unmasked frame back, over and over.

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use asycamore::executor::net::{Connect, TcpStream};
use asycamore::executor::{Coroutine, Cx, Executor, Step};
use asycamore::units::{Bytes, Seconds};
use asycamore::ws::{Opcode, write_frame_masked};

use crate::cli::{ToolError, positive};
use crate::histogram::Histogram;
use crate::procfs::{cpu_seconds, vm_kib};
use crate::target::Target;

/// Bench a WebSocket echo server (`asycamore`'s `/ws`).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ws")]
pub struct WsArgs {
    /// the echo's URL, ws://host:port/path
    #[argh(positional)]
    url: String,
    /// connections (default 50)
    #[argh(option, short = 'c', default = "50")]
    connections: usize,
    /// payload bytes of each message (default 64)
    #[argh(option, default = "Bytes(64)")]
    size: Bytes,
    /// how long to echo (default 5s)
    #[argh(option, short = 'd', default = "Seconds(Duration::from_secs(5))")]
    duration: Seconds,
    /// the server's pid, to report its CPU per message and its RSS
    #[argh(option)]
    server_pid: Option<u32>,
    /// only open the connections, shake hands and hold them for --duration: the server's RSS
    /// per idle WebSocket connection (needs --server-pid)
    #[argh(switch)]
    idle: bool,
}

/// What all connections share.
#[derive(Default)]
struct Shared {
    /// Round trips, in nanoseconds.
    rtt: Histogram,
    /// Connections that finished their handshake.
    open: usize,
    /// Connections that are done (the time is up, or they failed).
    finished: usize,
    /// The first failure, if any.
    error: Option<String>,
}

/// One connection's state.
enum State {
    /// Connecting.
    Connecting(Connect),
    /// Sending the handshake (bytes written so far) and reading the `101`.
    Handshake(TcpStream, usize),
    /// Sending a message (bytes written so far), then reading its echo.
    Echo(TcpStream, usize, Instant),
    /// Idle after the handshake, until the end.
    Holding(TcpStream),
    /// Finished.
    Done,
}

/// One benchmark connection.
struct Conn {
    state: State,
    request: Rc<Vec<u8>>,
    frame: Rc<Vec<u8>>,
    /// Bytes of the echo still due, and bytes read so far (head and payload).
    echo_len: usize,
    buf: Vec<u8>,
    end: Instant,
    idle: bool,
    shared: Rc<RefCell<Shared>>,
}

impl Conn {
    fn fail(&mut self, what: String) -> Step<()> {
        let mut shared = self.shared.borrow_mut();
        shared.error.get_or_insert(what);
        shared.finished += 1;
        self.state = State::Done;
        Step::Ready(())
    }

    /// Reads what is there into `buf`; `Ok(false)` on `WouldBlock` (the wait registered).
    fn fill(&mut self, stream: &TcpStream, cx: &mut Cx<'_>) -> Result<bool, String> {
        let mut piece = [0u8; 64 * 1024];
        match stream.read(&mut piece) {
            Ok(Step::Ready(0)) => Err("the server closed the connection".into()),
            Ok(Step::Ready(n)) => {
                self.buf.extend_from_slice(&piece[..n]);
                Ok(true)
            }
            Ok(Step::WouldBlock) => {
                cx.wait_readable(stream.as_raw_fd());
                Ok(false)
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }
}

impl Coroutine for Conn {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Connecting(mut connect) => match connect.poll(cx) {
                    Ok(Step::Ready(stream)) => {
                        // Each message is one small write: never hold it back (Nagle).
                        let _ = stream.set_nodelay(true);
                        self.state = State::Handshake(stream, 0);
                    }
                    Ok(Step::WouldBlock) => {
                        self.state = State::Connecting(connect);
                        return Step::WouldBlock;
                    }
                    Err(e) => return self.fail(format!("connect: {e}")),
                },
                State::Handshake(stream, sent) => {
                    if sent < self.request.len() {
                        match stream.write(&self.request[sent..]) {
                            Ok(Step::Ready(n)) => self.state = State::Handshake(stream, sent + n),
                            Ok(Step::WouldBlock) => {
                                cx.wait_writable(stream.as_raw_fd());
                                self.state = State::Handshake(stream, sent);
                                return Step::WouldBlock;
                            }
                            Err(e) => return self.fail(format!("write: {e}")),
                        }
                        continue;
                    }
                    if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        if !self.buf.starts_with(b"HTTP/1.1 101 ") {
                            let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                            return self.fail(format!("no 101: {line}"));
                        }
                        self.buf.drain(..end + 4);
                        self.shared.borrow_mut().open += 1;
                        self.state = if self.idle {
                            State::Holding(stream)
                        } else {
                            State::Echo(stream, 0, cx.now())
                        };
                        continue;
                    }
                    match self.fill(&stream, cx) {
                        Ok(true) => self.state = State::Handshake(stream, sent),
                        Ok(false) => {
                            self.state = State::Handshake(stream, sent);
                            return Step::WouldBlock;
                        }
                        Err(e) => return self.fail(e),
                    }
                }
                State::Echo(stream, sent, began) => {
                    if sent < self.frame.len() {
                        match stream.write(&self.frame[sent..]) {
                            Ok(Step::Ready(n)) => self.state = State::Echo(stream, sent + n, began),
                            Ok(Step::WouldBlock) => {
                                cx.wait_writable(stream.as_raw_fd());
                                // Read what comes back meanwhile: a large echo starts early.
                                if let Err(e) = self.fill(&stream, cx) {
                                    return self.fail(e);
                                }
                                self.state = State::Echo(stream, sent, began);
                                return Step::WouldBlock;
                            }
                            Err(e) => return self.fail(format!("write: {e}")),
                        }
                        continue;
                    }
                    if self.buf.len() >= self.echo_len {
                        self.buf.drain(..self.echo_len);
                        let now = cx.now();
                        let rtt = now.saturating_duration_since(began);
                        self.shared
                            .borrow_mut()
                            .rtt
                            .record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
                        if now >= self.end {
                            self.shared.borrow_mut().finished += 1;
                            return Step::Ready(());
                        }
                        self.state = State::Echo(stream, 0, now);
                        continue;
                    }
                    match self.fill(&stream, cx) {
                        Ok(true) => self.state = State::Echo(stream, sent, began),
                        Ok(false) => {
                            self.state = State::Echo(stream, sent, began);
                            return Step::WouldBlock;
                        }
                        Err(e) => return self.fail(e),
                    }
                }
                State::Holding(stream) => {
                    if cx.now() >= self.end {
                        self.shared.borrow_mut().finished += 1;
                        return Step::Ready(());
                    }
                    cx.wait_until(self.end);
                    self.state = State::Holding(stream);
                    return Step::WouldBlock;
                }
                State::Done => return Step::Ready(()),
            }
        }
    }

    fn kind(&self) -> &'static str {
        "ws-client"
    }
}

/// The length of the server's unmasked frame carrying `len` payload bytes (RFC 6455 §5.2).
fn server_frame_len(len: usize) -> usize {
    let header = match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    };
    header + len
}

/// The `ws` subcommand.
///
/// # Errors
/// A usage error for bad flags; a failure if a connection failed or nothing was echoed.
pub fn main(args: WsArgs) -> Result<(), ToolError> {
    let http = args
        .url
        .strip_prefix("ws://")
        .map(|rest| format!("http://{rest}"))
        .ok_or_else(|| ToolError::Usage("the URL must start with ws://".into()))?;
    let target = Target::parse(&http).map_err(|e| ToolError::Usage(e.to_string()))?;
    let duration = positive("duration", args.duration)?;
    if args.connections == 0 {
        return Err(ToolError::Usage("-c must be at least 1".into()));
    }
    if args.idle && args.server_pid.is_none() {
        return Err(ToolError::Usage("--idle needs --server-pid".into()));
    }
    let size = usize::try_from(args.size.get())
        .map_err(|_| ToolError::Usage("--size is too large".into()))?;
    let report = run(
        &target,
        args.connections,
        size,
        duration,
        args.idle,
        args.server_pid,
    )?;
    println!("{report}");
    Ok(())
}

/// Runs the benchmark and words the result.
fn run(
    target: &Target,
    connections: usize,
    size: usize,
    duration: Duration,
    idle: bool,
    pid: Option<u32>,
) -> Result<String, ToolError> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        target.path, target.host
    );
    let mut frame = Vec::new();
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    write_frame_masked(&mut frame, true, Opcode::Binary, &payload, [7, 1, 9, 3]);
    let (request, frame) = (Rc::new(request.into_bytes()), Rc::new(frame));
    let shared = Rc::new(RefCell::new(Shared::default()));
    let rss_before = pid.and_then(|p| vm_kib(p, "VmRSS"));
    let mut executor = Executor::new().map_err(|e| format!("executor: {e}"))?;
    let start = Instant::now();
    for _ in 0..connections {
        executor.spawn(Conn {
            state: State::Connecting(TcpStream::connect(target.addr)),
            request: Rc::clone(&request),
            frame: Rc::clone(&frame),
            echo_len: server_frame_len(size),
            buf: Vec::new(),
            end: start + duration,
            idle,
            shared: Rc::clone(&shared),
        });
    }
    // The server's CPU time and the echoes so far once every connection is open.
    let mut cpu_start: Option<(f64, u64)> = None;
    let mut rss_open = None;
    while shared.borrow().finished < connections {
        executor.turn().map_err(|e| format!("executor: {e}"))?;
        let s = shared.borrow();
        if cpu_start.is_none() && s.open == connections {
            // Every connection is open: the steady state starts now.
            cpu_start = Some((pid.and_then(cpu_seconds).unwrap_or(0.0), s.rtt.len()));
            rss_open = pid.and_then(|p| vm_kib(p, "VmRSS"));
        }
        if s.error.is_some() {
            break;
        }
    }
    let s = shared.borrow();
    if let Some(e) = &s.error {
        return Err(ToolError::Failed(format!(
            "{e} ({} of {connections} open)",
            s.open
        )));
    }
    if idle {
        let (Some(before), Some(open)) = (rss_before, rss_open) else {
            return Err(ToolError::Failed("cannot read the server's RSS".into()));
        };
        let per = (open.saturating_sub(before) * 1024) as f64 / connections as f64;
        return Ok(format!(
            "{connections} idle WebSocket connections: server RSS {before} KiB before, {open} KiB with them open: {per:.0} bytes each"
        ));
    }
    let elapsed = start.elapsed();
    let messages = s.rtt.len();
    if messages == 0 {
        return Err(ToolError::Failed("no message was echoed".into()));
    }
    let mut out = format!(
        "{connections} connections, {size}-byte messages, {:.1} s: {messages} echoes, {:.0} messages/s; round trip p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64(),
        s.rtt.quantile(0.5) as f64 / 1e3,
        s.rtt.quantile(0.9) as f64 / 1e3,
        s.rtt.quantile(0.99) as f64 / 1e3,
        s.rtt.max() as f64 / 1e3,
    );
    if let (Some(pid), Some((cpu0, messages0))) = (pid, cpu_start) {
        if let Some(cpu1) = cpu_seconds(pid) {
            let counted = messages.saturating_sub(messages0).max(1);
            out.push_str(&format!(
                "; server CPU {:.2} µs per message",
                (cpu1 - cpu0) * 1e6 / counted as f64
            ));
        }
        if let Some(rss) = vm_kib(pid, "VmRSS") {
            out.push_str(&format!(", RSS {rss} KiB"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths_follow_rfc_6455() {
        // §5.2: 7-bit lengths up to 125, then 16-bit, then 64-bit.
        assert_eq!(server_frame_len(0), 2);
        assert_eq!(server_frame_len(125), 127);
        assert_eq!(server_frame_len(126), 130);
        assert_eq!(server_frame_len(65535), 65539);
        assert_eq!(server_frame_len(65536), 65546);
    }
}
