//! `bytes`: bytes out or bytes in, and nothing else — the application `asycamore-bench profiles`
//! measures the server's own costs with, one application profile at a time.
//!
//! - `GET /bytes?n=N&write=W` answers `N` bytes of `x` (`Content-Length: N`, default 13) written
//!   `W` bytes at a time (default: all at once). One write of 64 KiB is the *large* profile, 1 MiB
//!   in 4 KiB writes the *stream* one, 100 writes of 16 bytes *many small writes*.
//! - `POST /bytes` (or `PUT`) reads the body to its end, dropping it, and answers with its length
//!   (`{"bytes": N}`): the *upload* profile, without the checksum `/upload` computes, so what is
//!   measured is what reading a body costs.
//!
//! A tutorial of a producer: the writing state writes piece after piece until the output says
//! `WouldBlock` (above its high-water mark), then returns `WouldBlock` — the exchange has asked
//! for the client's socket to become writable — and carries on from `left` when resumed. The
//! pieces are copied into one output buffer, so many small writes cost one `send(2)` when the
//! client keeps up, not one each (what the seed projects' Twisted thread warned about).

use executor::{Cx, Step};

use crate::detect::BodyEvent;
use crate::service::{App, Environ, Exchange, Handler, Method};

/// The largest `n` a request may ask for (1 GiB); more is a 400.
pub const MAX_BYTES: u64 = 1 << 30;

/// The largest `write` (64 KiB): the pieces come from one static block of that size.
pub const MAX_WRITE: usize = 64 * 1024;

/// What every piece is cut from.
static BLOCK: [u8; MAX_WRITE] = [b'x'; MAX_WRITE];

/// The `bytes` application.
#[derive(Debug, Default, Clone, Copy)]
pub struct Bytes;

/// The handler of one `bytes` request.
#[derive(Debug)]
pub enum BytesHandler {
    /// The request has not been looked at yet.
    Start,
    /// Answering: `left` bytes still to write, at most `piece` per write.
    Writing {
        /// Body bytes not written yet.
        left: u64,
        /// Bytes per write.
        piece: usize,
    },
    /// Reading the request body: `bytes` of it so far.
    Reading {
        /// Body bytes read so far.
        bytes: u64,
    },
}

impl App for Bytes {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head, Method::Post, Method::Put])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(BytesHandler::Start)
    }
}

impl Handler for BytesHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match *self {
                BytesHandler::Start => {
                    if matches!(ex.environ().request_method(), "POST" | "PUT") {
                        *self = BytesHandler::Reading { bytes: 0 };
                        continue;
                    }
                    let asked = number(ex, "n", 13, 0..=MAX_BYTES).and_then(|n| {
                        let whole = n.clamp(1, MAX_WRITE as u64);
                        let piece = number(ex, "write", whole, 1..=MAX_WRITE as u64)?;
                        Ok((n, piece as usize))
                    });
                    let (n, piece) = match asked {
                        Ok(asked) => asked,
                        Err(reason) => {
                            ex.fail(400, &reason);
                            return Step::Ready(());
                        }
                    };
                    let length = n.to_string();
                    let headers = [("Content-Type", "text/plain"), ("Content-Length", &length)];
                    if ex.start_response(200, &headers).is_err() {
                        return Step::Ready(());
                    }
                    *self = BytesHandler::Writing { left: n, piece };
                }
                BytesHandler::Writing { left: 0, .. } => return Step::Ready(()),
                BytesHandler::Writing { left, piece } => {
                    let size = (left as usize).min(piece);
                    match ex.write(&BLOCK[..size], cx) {
                        Ok(Step::Ready(taken)) => {
                            *self = BytesHandler::Writing {
                                left: left - taken as u64,
                                piece,
                            };
                        }
                        // The output is full: resumed when the client has taken enough.
                        Ok(Step::WouldBlock) => return Step::WouldBlock,
                        Err(_) => return Step::Ready(()),
                    }
                }
                BytesHandler::Reading { bytes } => {
                    let event = match ex.read_body(cx) {
                        Ok(Step::WouldBlock) => return Step::WouldBlock,
                        Ok(Step::Ready(event)) => event,
                        Err(e) => {
                            ex.fail(e.status(), &e.to_string());
                            return Step::Ready(());
                        }
                    };
                    let data = match event {
                        BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data) => data,
                        BodyEvent::End { .. } => {
                            let body = format!("{{\"bytes\": {bytes}}}\n");
                            ex.respond(
                                200,
                                &[("Content-Type", "application/json")],
                                body.as_bytes(),
                            );
                            return Step::Ready(());
                        }
                    };
                    *self = BytesHandler::Reading {
                        bytes: bytes + data.len() as u64,
                    };
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "bytes"
    }
}

/// Query parameter `name` as a whole number in `range` (`default` when absent).
///
/// # Errors
/// A one-line reason for the 400 when it is not a number or outside the range.
fn number(
    ex: &Exchange<'_>,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let Some(raw) = ex.environ().query_value(name) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(n) if range.contains(&n) && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "{name} must be a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}
