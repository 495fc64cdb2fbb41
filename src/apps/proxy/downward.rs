//! [`Downward`]: the response's way to the client — the upstream's head read with the server's
//! response-head detector and passed on (hop-by-hop fields dropped), then its body decoded with
//! the server's own body decoder and handed to the exchange piece by piece, which frames it again
//! for the client, then its trailer fields.

use std::os::fd::AsRawFd;

use executor::net::TcpStream;
use executor::{Cx, Next, Step};

use crate::detect::{
    BodyDecoder, BodyEvent, BodyFraming, Limits, ResponseFraming, ResponseHead,
    ResponseHeadDetector,
};
use crate::service::Exchange;

use super::ProxyError;
use super::request::HOP_BY_HOP;

/// Bytes read from the upstream at a time.
pub(super) const PIECE: usize = 64 * 1024;

/// Most fields passed on from an upstream response head to the client.
const MAX_PASSED_FIELDS: usize = 100;

/// How the upstream's response body ends.
#[derive(Debug)]
pub(super) enum Relay {
    /// No body (HEAD, 204, 304).
    Empty,
    /// `Content-Length` or chunked, decoded by the server's own decoder.
    Framed(BodyDecoder),
    /// At the upstream's close (RFC 9112 §6.3 rule 8).
    UntilClose,
}

/// Where the response's way down is.
#[derive(Debug)]
pub(super) enum Downward {
    /// Reading the response head (an interim 1xx is skipped) into `buf`.
    Head {
        /// Bytes of the response read so far.
        buf: Vec<u8>,
        /// The head detector, mid-head.
        detector: ResponseHeadDetector,
        /// The head it parses into.
        head: ResponseHead,
    },
    /// Relaying the body: `held[sent..]` is owed to the client, `buf` holds upstream bytes not
    /// yet decoded; `ended` once the body's end is decoded.
    Body {
        /// Upstream bytes not yet decoded.
        buf: Vec<u8>,
        /// How the body ends.
        relay: Relay,
        /// Decoded body bytes for the client.
        held: Vec<u8>,
        /// How many of `held` are written.
        sent: usize,
        /// The upstream's trailer fields, relayed after the body.
        trailers: Vec<(String, Vec<u8>)>,
        /// True once the end of the body has been decoded.
        ended: bool,
        /// The upstream keeps the connection open after this response.
        reusable: bool,
    },
    /// The response is complete; `reusable` if the upstream connection may serve another
    /// request (it did not say close, and nothing came after the body).
    Done {
        /// The connection can go back to the pool.
        reusable: bool,
    },
}

impl Downward {
    /// At the start of a response.
    pub(super) fn new() -> Downward {
        Downward::Head {
            buf: Vec::with_capacity(4096),
            detector: ResponseHeadDetector::new(),
            head: ResponseHead::new(),
        }
    }

    /// True while it waits for the upstream to say something (its silence then counts).
    pub(super) fn waits_on_upstream(&self) -> bool {
        matches!(self, Downward::Head { .. })
            || matches!(self, Downward::Body { held, sent, .. } if sent == &held.len())
    }

    /// True once the response has begun to reach the client (no retry is possible then).
    pub(super) fn started(&self) -> bool {
        !matches!(self, Downward::Head { buf, .. } if buf.is_empty())
    }

    /// One step: read from the upstream, or hand the client what is held. A `Wait` has
    /// registered in `cx` what it waits for (the upstream readable, or — through the exchange —
    /// room in the client's output).
    ///
    /// # Errors
    /// The upstream broke the protocol or went away, or the client's response could not be
    /// written.
    pub(super) fn step(
        self,
        upstream: &TcpStream,
        ex: &mut Exchange<'_>,
        cx: &mut Cx<'_>,
    ) -> Result<Next<Downward>, ProxyError> {
        match self {
            Downward::Head {
                buf,
                detector,
                head,
            } => read_head(buf, detector, head, upstream, ex, cx),
            Downward::Body {
                buf,
                relay,
                held,
                mut sent,
                trailers,
                ended,
                reusable,
            } if sent < held.len() => {
                let step = ex
                    .write_all(&held, &mut sent, cx)
                    .map_err(|_| ProxyError::ClientGone)?;
                let body = Downward::Body {
                    buf,
                    relay,
                    held,
                    sent,
                    trailers,
                    ended,
                    reusable,
                };
                Ok(match step {
                    Step::Ready(()) => Next::Go(body),
                    Step::WouldBlock => Next::Wait(body),
                })
            }
            Downward::Body {
                buf,
                trailers,
                ended: true,
                reusable,
                ..
            } => {
                if !trailers.is_empty() {
                    let fields: Vec<(&str, &[u8])> = trailers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_slice()))
                        .collect();
                    // Dropped where the client's framing cannot carry them (HTTP/1.0).
                    let _ = ex.end_with_trailers(&fields);
                }
                Ok(Next::Go(Downward::Done {
                    reusable: reusable && buf.is_empty(),
                }))
            }
            Downward::Body {
                buf,
                relay,
                held,
                trailers,
                reusable,
                ..
            } => decode_body(buf, relay, held, trailers, reusable, upstream, cx),
            done @ Downward::Done { .. } => Ok(Next::Wait(done)),
        }
    }
}

/// `Head`: reads until the head is complete, then starts the client's response.
fn read_head(
    mut buf: Vec<u8>,
    mut detector: ResponseHeadDetector,
    mut head: ResponseHead,
    upstream: &TcpStream,
    ex: &mut Exchange<'_>,
    cx: &mut Cx<'_>,
) -> Result<Next<Downward>, ProxyError> {
    let was_head = ex.environ().request_method() == "HEAD";
    match detector.detect(&buf, &mut head, was_head)? {
        (n, Step::Ready(())) if head.is_interim() => {
            // An interim response (103 Early Hints, say): skipped.
            buf.drain(..n);
            Ok(Next::Go(Downward::Head {
                buf,
                detector,
                head,
            }))
        }
        (n, Step::Ready(())) => {
            start_response(ex, &head, &buf[..n])?;
            buf.drain(..n);
            let relay = match head.framing() {
                ResponseFraming::None => Relay::Empty,
                ResponseFraming::UntilClose => Relay::UntilClose,
                // A response body: the request-body limit is not ours to apply to it.
                ResponseFraming::Chunked => Relay::Framed(BodyDecoder::new(
                    BodyFraming::Chunked,
                    &Limits {
                        max_request_body: 0,
                        ..Limits::default()
                    },
                )),
                ResponseFraming::Length(n) => Relay::Framed(BodyDecoder::new(
                    BodyFraming::Length(n),
                    &Limits {
                        max_request_body: 0,
                        ..Limits::default()
                    },
                )),
            };
            Ok(Next::Go(Downward::Body {
                buf,
                relay,
                held: Vec::new(),
                sent: 0,
                trailers: Vec::new(),
                ended: false,
                reusable: !head.closes(),
            }))
        }
        (_, Step::WouldBlock) => match read(upstream, &mut buf, cx)? {
            Step::Ready(0) if buf.is_empty() => Err(ProxyError::Closed),
            Step::Ready(0) => Err(ProxyError::ClosedMidHead),
            Step::Ready(_) => Ok(Next::Go(Downward::Head {
                buf,
                detector,
                head,
            })),
            Step::WouldBlock => Ok(Next::Wait(Downward::Head {
                buf,
                detector,
                head,
            })),
        },
    }
}

/// Starts the client's response with the upstream's status and end-to-end fields (borrowed
/// from the head's bytes: no copy of its own).
fn start_response(
    ex: &mut Exchange<'_>,
    head: &ResponseHead,
    bytes: &[u8],
) -> Result<(), ProxyError> {
    let connection_options: Vec<&str> = head
        .headers(bytes)
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(',').map(str::trim))
        .collect();
    // The server frames the body for the client itself, so a length passes on only where the
    // upstream's framing was that length.
    let keep_length = matches!(
        head.framing(),
        ResponseFraming::Length(_) | ResponseFraming::None
    );
    let fields: Vec<(&str, &str)> = head
        .headers(bytes)
        .filter(|(name, _)| {
            !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
                && !connection_options
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(name))
                && (keep_length || !name.eq_ignore_ascii_case("content-length"))
        })
        .take(MAX_PASSED_FIELDS)
        .collect();
    ex.start_response(head.status(), &fields)
        .map_err(|_| ProxyError::BadStatus)
}

/// `Body`, with nothing held: decodes the next piece from `buf`, reading more when needed.
fn decode_body(
    mut buf: Vec<u8>,
    mut relay: Relay,
    mut held: Vec<u8>,
    mut trailers: Vec<(String, Vec<u8>)>,
    reusable: bool,
    upstream: &TcpStream,
    cx: &mut Cx<'_>,
) -> Result<Next<Downward>, ProxyError> {
    held.clear();
    let mut ended = false;
    let mut consumed = 0;
    match &mut relay {
        Relay::Empty => ended = true,
        Relay::UntilClose => std::mem::swap(&mut held, &mut buf),
        Relay::Framed(decoder) => match decoder.decode(&buf) {
            Ok((n, Step::Ready(BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data)))) => {
                held.extend_from_slice(data);
                consumed = n;
            }
            Ok((n, Step::Ready(BodyEvent::End { trailers: fields }))) => {
                trailers.extend(fields.iter().map(|(k, v)| (k.to_owned(), v.to_vec())));
                consumed = n;
                ended = true;
            }
            Ok((n, Step::WouldBlock)) => consumed = n,
            Err(_) => return Err(ProxyError::BadBody),
        },
    }
    buf.drain(..consumed);
    if ended || !held.is_empty() {
        return Ok(Next::Go(Downward::Body {
            buf,
            relay,
            held,
            sent: 0,
            trailers,
            ended,
            reusable,
        }));
    }
    // All decoded: read more.
    let step = read(upstream, &mut buf, cx)?;
    let ended = match step {
        Step::Ready(0) if matches!(relay, Relay::UntilClose) => true,
        // Closed before the declared end.
        Step::Ready(0) => return Err(ProxyError::ClosedMidBody),
        Step::Ready(_) | Step::WouldBlock => false,
    };
    let state = Downward::Body {
        buf,
        relay,
        held,
        sent: 0,
        trailers,
        ended,
        reusable: reusable && !ended,
    };
    Ok(match step {
        Step::WouldBlock => Next::Wait(state),
        Step::Ready(_) => Next::Go(state),
    })
}

/// Reads what the upstream sent into `buf`; on `WouldBlock` waits for it to be readable.
fn read(
    upstream: &TcpStream,
    buf: &mut Vec<u8>,
    cx: &mut Cx<'_>,
) -> Result<Step<usize>, ProxyError> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(PIECE);
    }
    match upstream.read_to_spare(buf) {
        Ok(Step::WouldBlock) => {
            cx.wait_readable(upstream.as_raw_fd());
            Ok(Step::WouldBlock)
        }
        Ok(step) => Ok(step),
        Err(e) => Err(ProxyError::Failed(e.kind())),
    }
}
