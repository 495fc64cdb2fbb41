//! `ws`: a WebSocket echo (RFC 6455) at `/ws` — every message comes back as it was sent, frame
//! by frame, pings get pongs, and a close gets a close.
//!
//! A tutorial of an application that takes over its connection. The handler checks the opening
//! handshake ([`validate_upgrade`], §4.2.1) and answers `101 Switching Protocols` with
//! [`Exchange::switch_protocols`], handing over an [`Echo`] tunnel; a bad handshake gets 400 or
//! 426 with `Sec-WebSocket-Version: 13` where §4.4 wants it. From then on the connection runs
//! the tunnel on the raw bytes: one enum, one `match`, each state a line.
//!
//! The echo streams: a frame's payload is unmasked straight from the read buffer into the write
//! buffer as it arrives, so a 1 MiB message never sits whole in memory, and while the output is
//! above its high-water mark the tunnel stops decoding (backpressure) instead of reading on.
//! Messages are capped (`--ws-max-message`, larger is a close 1009), text is checked as UTF-8 as it
//! streams (1007), and any other breach of §5 is a close 1002 (the decoder's
//! [`MessageError::close_code`](crate::ws::MessageError::close_code)). A failure found in the
//! middle of a frame already being echoed leaves no room for a valid close frame, so the connection
//! then closes without one (§7.1.7 allows that). During a graceful shutdown an idle echo says
//! goodbye with a close 1001.

use executor::{Cx, Step, ready};

use crate::service::{App, Environ, Exchange, Handler, Method, Tunnel, Upgraded};
use crate::ws::{
    ACCEPT_LEN, CloseCode, HandshakeError, MessageDecoder, MessageEvent, Opcode, validate_upgrade,
    write_close, write_close_empty, write_header, write_pong,
};

/// The `ws` application.
#[derive(Debug, Clone, Copy)]
pub struct WsEcho {
    max_message: u64,
}

impl WsEcho {
    /// Echoes messages of up to `max_message` payload bytes (all fragments together).
    pub fn new(max_message: u64) -> WsEcho {
        WsEcho { max_message }
    }
}

impl App for WsEcho {
    fn methods(&self) -> Option<&[Method]> {
        // RFC 6455 §4.1: the handshake is a GET; HEAD is answered as a GET that did not ask to
        // upgrade (RFC 9110 §9.3.2).
        Some(&[Method::Get, Method::Head])
    }

    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        let head = environ.head();
        let answer = if environ.request_method() == "HEAD" {
            Err(HandshakeError::MissingUpgrade)
        } else {
            validate_upgrade(
                environ.request_method().as_bytes(),
                head.version(),
                environ.headers(),
            )
        };
        Box::new(Handshake {
            answer,
            max_message: self.max_message,
        })
    }
}

/// The handler of the opening handshake: switch, or refuse.
#[derive(Debug)]
pub struct Handshake {
    answer: Result<[u8; ACCEPT_LEN], HandshakeError>,
    max_message: u64,
}

impl Handler for Handshake {
    fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
        match self.answer {
            Ok(accept) => {
                let accept = std::str::from_utf8(&accept).unwrap_or_default();
                let echo = Box::new(Echo::new(self.max_message));
                if let Err(e) =
                    ex.switch_protocols("websocket", &[("Sec-WebSocket-Accept", accept)], echo)
                {
                    // The handshake checks passed: a request with a body, or a shutdown.
                    ex.close_after();
                    ex.fail(e.status(), &e.to_string());
                }
            }
            Err(e) => {
                let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
                headers.extend_from_slice(e.headers());
                // Frames the client sent after the head, hoping, are no HTTP: close after this.
                ex.close_after();
                ex.respond(e.status(), &headers, format!("{}\n", e.reason()).as_bytes());
            }
        }
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "ws"
    }
}

/// The echo, once the connection speaks WebSocket.
#[derive(Debug)]
pub struct Echo {
    decoder: MessageDecoder,
    state: EchoState,
}

/// Where the echo is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoState {
    /// Echoing; `owed` payload bytes of the frame being echoed are still to be written (0
    /// between frames: a close frame may be written).
    Open {
        /// Payload bytes of the echoed frame not yet written.
        owed: u64,
    },
    /// Our close frame is written (or cannot be): the stream is over once it is sent.
    Closed,
}

impl Echo {
    /// An echo of messages up to `max_message` bytes.
    pub fn new(max_message: u64) -> Echo {
        Echo {
            decoder: MessageDecoder::new(max_message),
            state: EchoState::Open { owed: 0 },
        }
    }

    /// Where it is.
    pub fn state(&self) -> EchoState {
        self.state
    }
}

impl Tunnel for Echo {
    fn resume(&mut self, io: &mut Upgraded<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let EchoState::Open { owed } = self.state else {
                // The connection sends what is left, then closes (§7.1.1).
                return Step::Ready(());
            };
            if (io.shutting_down() || io.ending()) && owed == 0 && self.decoder.is_idle() {
                // Going away: the server is shutting down, or the connection idled out.
                let reason = if io.ending() {
                    "idle for too long"
                } else {
                    "server shutting down"
                };
                write_close(io.output(), CloseCode::GOING_AWAY, reason);
                self.state = EchoState::Closed;
                continue;
            }
            // Backpressure first: decode only while the output has room, and no more payload
            // than fits (the decoder takes any prefix of its input). The decoder is asked even
            // with no input: a frame whose last byte came in the previous read still has its end
            // to report, after which the echo is at a message boundary.
            ready!(io.wait_room(cx));
            let room = io.room();
            let (input, out) = io.split();
            let input = &input[..input.len().min(room)];
            let (used, event) = match self.decoder.decode(input) {
                Ok((used, Step::Ready(event))) => (used, event),
                Ok((used, Step::WouldBlock)) => {
                    // All of it taken: the decoder keeps partial headers itself.
                    io.consume(used);
                    if io.input().is_empty() && io.peer_closed() {
                        // The client closed without a close frame (§7.1.5: 1006, nothing to
                        // send).
                        return Step::Ready(());
                    }
                    ready!(io.wait_input(cx));
                    continue;
                }
                Err(e) => {
                    if owed == 0 {
                        write_close(out, e.close_code(), e.reason());
                    }
                    self.state = EchoState::Closed;
                    continue;
                }
            };
            self.state = match event {
                MessageEvent::DataStart {
                    kind,
                    first,
                    fin,
                    len,
                } => {
                    let opcode = if first {
                        kind.opcode()
                    } else {
                        Opcode::Continuation
                    };
                    write_header(out, fin, opcode, len);
                    EchoState::Open { owed: len }
                }
                MessageEvent::Data(payload) => {
                    payload.unmask_into(out);
                    EchoState::Open {
                        owed: owed.saturating_sub(payload.len() as u64),
                    }
                }
                MessageEvent::DataEnd { .. } | MessageEvent::Pong(_) => EchoState::Open { owed },
                MessageEvent::Ping(payload) => {
                    write_pong(out, payload.as_bytes());
                    EchoState::Open { owed }
                }
                MessageEvent::Close(close) => {
                    // §5.5.1: answer with the code received (or an empty close).
                    match close.code() {
                        Some(code) => write_close(out, code, ""),
                        None => write_close_empty(out),
                    }
                    EchoState::Closed
                }
            };
            io.consume(used);
        }
    }

    fn kind(&self) -> &'static str {
        "ws"
    }
}
