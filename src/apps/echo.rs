//! `echo`: streams the request body back as it arrives.
//!
//! A tutorial of backpressure in both directions. The handler alternates between two moves:
//! take the next body event (if none is buffered, `read_body` says `WouldBlock` and the handler is
//! resumed when bytes arrive), and write what it holds (if the client is not reading, `write` says
//! `WouldBlock` and the handler is resumed when the output has drained). It never holds more than
//! one event's bytes, so a 1 GiB body passes through in a few kilobytes of memory.
//!
//! The response declares the request's `Content-Length` when there is one; otherwise the server
//! frames it (chunked for HTTP/1.1, close-delimited for HTTP/1.0). A chunked request's trailer
//! fields come back as the response's trailers (announced with its `Trailer` field, if the
//! request announced them).

use executor::{Cx, Step};

use crate::detect::BodyEvent;
use crate::service::{App, Environ, Exchange, Handler, Method};

/// The `echo` application.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

/// The handler of one `echo` request.
#[derive(Debug)]
pub enum EchoHandler {
    /// The response has not started yet.
    Start,
    /// Bytes taken from the body and not yet written back (from `sent` on); `ended` once the
    /// body's end has been seen.
    Streaming {
        /// Bytes held for writing.
        held: Vec<u8>,
        /// How many of `held` have been written.
        sent: usize,
        /// True once the request body has ended.
        ended: bool,
        /// The request's trailer fields, to send back after the body.
        trailers: Vec<(String, Vec<u8>)>,
    },
}

impl App for Echo {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Post, Method::Put])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(EchoHandler::Start)
    }
}

impl Handler for EchoHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match self {
                EchoHandler::Start => {
                    let environ = ex.environ();
                    let length = environ.content_length().map(|n| n.to_string());
                    let announced = environ.header_str("trailer").map(str::to_owned);
                    let mut headers = vec![("Content-Type", "application/octet-stream")];
                    if let Some(n) = &length {
                        headers.push(("Content-Length", n.as_str()));
                    } else if let Some(names) = &announced {
                        headers.push(("Trailer", names.as_str()));
                    }
                    if let Err(e) = ex.start_response(200, &headers) {
                        ex.fail(500, &e.to_string());
                        return Step::Ready(());
                    }
                    *self = EchoHandler::Streaming {
                        held: Vec::new(),
                        sent: 0,
                        ended: false,
                        trailers: Vec::new(),
                    };
                }
                EchoHandler::Streaming {
                    held,
                    sent,
                    ended,
                    trailers,
                } => {
                    // First write back what we hold.
                    while *sent < held.len() {
                        match ex.write(&held[*sent..], cx) {
                            Ok(Step::Ready(n)) => *sent += n,
                            Ok(Step::WouldBlock) => return Step::WouldBlock,
                            Err(_) => {
                                ex.close_after();
                                return Step::Ready(());
                            }
                        }
                    }
                    if *ended {
                        if !trailers.is_empty() {
                            let fields: Vec<(&str, &[u8])> = trailers
                                .iter()
                                .map(|(n, v)| (n.as_str(), v.as_slice()))
                                .collect();
                            // A sized (or HTTP/1.0) response cannot carry them: dropped.
                            let _ = ex.end_with_trailers(&fields);
                        }
                        return Step::Ready(());
                    }
                    held.clear();
                    *sent = 0;
                    // Then take the next piece of the body.
                    match ex.read_body(cx) {
                        Ok(Step::WouldBlock) => return Step::WouldBlock,
                        Ok(Step::Ready(
                            BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data),
                        )) => held.extend_from_slice(data),
                        Ok(Step::Ready(BodyEvent::End { trailers: fields })) => {
                            trailers.extend(fields.iter().map(|(n, v)| (n.to_owned(), v.to_vec())));
                            *ended = true;
                        }
                        Err(_) => {
                            // The response has started: all we can do is cut it short.
                            ex.close_after();
                            return Step::Ready(());
                        }
                    }
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "echo"
    }
}
