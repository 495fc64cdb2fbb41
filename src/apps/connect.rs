//! `connect`: `CONNECT host:port` tunnels (RFC 9110 §9.3.6) to an allow-list of destinations
//! (`--allow-connect HOST:PORT[,…]`), so the server is never an open proxy: a destination not on
//! the list is a 403, and without the flag the router answers every CONNECT with 405.
//!
//! A tutorial of a tunnel with two sockets. The handler connects to the destination over a
//! non-blocking socket (the step the proxy uses, [`TcpStream::connect`]), with a deadline; a
//! refused or slow destination is a 502 or a 504. Connected, it answers `200` with
//! [`Exchange::accept_connect`] and hands the connection a [`Relay`], which copies bytes both
//! ways until both sides have finished: what the client sends goes to the destination (a write
//! the destination is slow to take waits on its socket), what the destination sends goes to the
//! client (and waits for the client's room: backpressure both ways). The client's end of input
//! is passed on as a half-close (`shutdown(SHUT_WR)`) and the tunnel ends when the destination
//! has closed its side and everything it sent was handed to the client.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use executor::net::{Connect, TcpStream};
use executor::{Cx, Step};

use crate::service::{App, Environ, Exchange, Handler, Method, Timer, Tunnel, Upgraded};

/// How long connecting to the destination may take before the answer is 504.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes read from the destination (and held for it) in one piece.
const PIECE: usize = 16 * 1024;

/// The `connect` application: the destinations it tunnels to.
#[derive(Debug, Clone)]
pub struct ConnectProxy {
    /// Each allowed `host:port` as it is written in a request target, and its address.
    allowed: Rc<[(String, SocketAddr)]>,
}

impl ConnectProxy {
    /// Tunnels to these destinations only: each `host:port` as clients write it in the CONNECT
    /// target (compared ignoring ASCII case), with the address it was resolved to at start-up (a
    /// name lookup blocks, so it has no place on the loop).
    pub fn new(allowed: Vec<(String, SocketAddr)>) -> ConnectProxy {
        ConnectProxy {
            allowed: allowed.into(),
        }
    }
}

impl App for ConnectProxy {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Connect])
    }

    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        // RFC 9110 §9.3.6: a CONNECT has no content; one that sends some is refused before
        // any connection is made.
        if environ.content_length().is_some_and(|n| n > 0) || environ.is_chunked() {
            return Box::new(ConnectHandler::Refused(
                400,
                "a CONNECT request has no content",
            ));
        }
        let target = environ.target();
        let found = self
            .allowed
            .iter()
            .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(target));
        Box::new(match found {
            Some(&(_, addr)) => ConnectHandler::Start(addr),
            None => ConnectHandler::Refused(403, "this server does not tunnel to that destination"),
        })
    }
}

/// The handler of one CONNECT: reach the destination, then answer.
#[derive(Debug)]
pub enum ConnectHandler {
    /// Refused with this status and reason (a destination not on the list: 403).
    Refused(u16, &'static str),
    /// Not started: the destination's address.
    Start(SocketAddr),
    /// Connecting, until the deadline.
    Connecting(Connect, Timer),
}

impl Handler for ConnectHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        // Every answer but the 200 refuses, and bytes the client sent after the head (a TLS
        // hello, hoping) are not HTTP: the connection closes after it. (After the 200 the
        // connection is a tunnel, which ends with a close anyway.)
        ex.close_after();
        loop {
            *self = match self {
                ConnectHandler::Refused(status, reason) => {
                    ex.fail(*status, reason);
                    return Step::Ready(());
                }
                ConnectHandler::Start(addr) => ConnectHandler::Connecting(
                    TcpStream::connect(*addr),
                    Timer::after(CONNECT_TIMEOUT, cx),
                ),
                ConnectHandler::Connecting(connect, timer) => match connect.poll(cx) {
                    Ok(Step::Ready(upstream)) => {
                        let relay = Box::new(Relay::new(upstream));
                        if let Err(e) = ex.accept_connect(&[], relay) {
                            ex.fail(e.status(), &e.to_string());
                        }
                        return Step::Ready(());
                    }
                    Ok(Step::WouldBlock) => {
                        if timer.poll(cx).is_ready() {
                            ex.fail(504, "the destination did not answer in time");
                            return Step::Ready(());
                        }
                        return Step::WouldBlock;
                    }
                    Err(e) => {
                        ex.fail(502, &format!("cannot reach the destination: {e}"));
                        return Step::Ready(());
                    }
                },
            };
        }
    }

    fn kind(&self) -> &'static str {
        "connect"
    }
}

/// The tunnel: bytes both ways between the client and the destination.
#[derive(Debug)]
pub struct Relay {
    upstream: TcpStream,
    /// Client bytes taken from the connection and not yet written to the destination.
    to_upstream: Vec<u8>,
    /// The client's end of input has been passed on (the destination's write side is shut).
    client_done: bool,
    /// The destination has closed its side.
    upstream_done: bool,
}

impl Relay {
    /// A relay to a connected destination.
    pub fn new(upstream: TcpStream) -> Relay {
        Relay {
            upstream,
            to_upstream: Vec::new(),
            client_done: false,
            upstream_done: false,
        }
    }

    /// Client → destination, as far as both allow. True if anything moved.
    fn forward(&mut self, io: &mut Upgraded<'_>, cx: &mut Cx<'_>) -> std::io::Result<bool> {
        let mut moved = false;
        loop {
            if self.to_upstream.is_empty() {
                let take = io.input().len().min(PIECE);
                self.to_upstream.extend_from_slice(&io.input()[..take]);
                io.consume(take);
            }
            if self.to_upstream.is_empty() {
                if io.peer_closed() {
                    if !self.client_done {
                        self.client_done = true;
                        // A half-close: the destination may still answer (RFC 9110 §9.3.6).
                        let _ = self.upstream.shutdown_write();
                    }
                } else {
                    let _ = io.wait_input(cx);
                }
                return Ok(moved);
            }
            match self.upstream.write(&self.to_upstream)? {
                Step::Ready(n) => {
                    self.to_upstream.drain(..n);
                    moved = true;
                }
                Step::WouldBlock => {
                    cx.wait_writable(self.upstream.as_raw_fd());
                    return Ok(moved);
                }
            }
        }
    }

    /// Destination → client, while the client's output has room. True if anything moved.
    fn backward(&mut self, io: &mut Upgraded<'_>, cx: &mut Cx<'_>) -> std::io::Result<bool> {
        let mut moved = false;
        let mut piece = [0u8; PIECE];
        while !self.upstream_done {
            if io.wait_room(cx).is_ready() {
                let want = io.room().min(PIECE);
                match self.upstream.read(&mut piece[..want])? {
                    Step::Ready(0) => self.upstream_done = true,
                    Step::Ready(n) => io.output().extend_from_slice(&piece[..n]),
                    Step::WouldBlock => {
                        cx.wait_readable(self.upstream.as_raw_fd());
                        return Ok(moved);
                    }
                }
                moved = true;
            } else {
                return Ok(moved);
            }
        }
        Ok(moved)
    }
}

impl Tunnel for Relay {
    fn resume(&mut self, io: &mut Upgraded<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            cx.clear_waits();
            let moved = match (self.forward(io, cx), self.backward(io, cx)) {
                (Ok(forward), Ok(backward)) => forward || backward,
                // Either socket failed: the tunnel is over (the connection closes).
                _ => return Step::Ready(()),
            };
            if self.upstream_done {
                // Everything the destination sent is in the client's output, which the
                // connection sends before it closes.
                return Step::Ready(());
            }
            if !moved {
                return Step::WouldBlock;
            }
        }
    }

    fn kind(&self) -> &'static str {
        "connect"
    }
}
