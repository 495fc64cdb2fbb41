//! [`Upward`]: the request's way to the upstream — its head, then its body piece by piece as the
//! client sends it, re-chunked if it came chunked.

use std::os::fd::AsRawFd;

use executor::net::TcpStream;
use executor::{Cx, Next, Step};

use crate::detect::BodyEvent;
use crate::response::write_hex;
use crate::service::{Exchange, InputError};

use super::request::Upload;

/// Where the request's way up is.
#[derive(Debug)]
pub(super) enum Upward {
    /// Writing `out[sent..]` (the head, or one framed piece of the body); `last` if nothing
    /// follows it.
    Sending {
        /// The bytes for the upstream.
        out: Vec<u8>,
        /// How many of them are written.
        sent: usize,
        /// How the body is framed.
        upload: Upload,
        /// This is the end of the request.
        last: bool,
    },
    /// Waiting for the next piece of the request body from the client; `out` is kept for reuse.
    Reading {
        /// The buffer for the next piece.
        out: Vec<u8>,
        /// How the body is framed.
        upload: Upload,
    },
    /// The whole request is with the upstream.
    Sent,
    /// The upstream stopped taking the request: it may have answered early (a 413, say), and
    /// what it says is the answer.
    Refused,
}

impl Upward {
    /// The request's head (with `upload` its body's framing), to be sent; `has_body` if a body
    /// follows it.
    pub(super) fn new(head: Vec<u8>, upload: Upload, has_body: bool) -> Upward {
        Upward::Sending {
            out: head,
            sent: 0,
            upload,
            last: !has_body,
        }
    }

    /// True once nothing more goes up.
    pub(super) fn finished(&self) -> bool {
        matches!(self, Upward::Sent | Upward::Refused)
    }

    /// True while it waits for the upstream to take bytes (its silence then counts).
    pub(super) fn waits_on_upstream(&self) -> bool {
        matches!(self, Upward::Sending { .. })
    }

    /// One step: write to the upstream, or take a body piece from the client. A `Wait` has
    /// registered in `cx` what it waits for (the upstream writable, or — through the exchange —
    /// the client's next bytes); `Sent` and `Refused` wait for nothing.
    ///
    /// # Errors
    /// The client's body could not be read.
    pub(super) fn step(
        self,
        upstream: &TcpStream,
        ex: &mut Exchange<'_>,
        cx: &mut Cx<'_>,
    ) -> Result<Next<Upward>, InputError> {
        Ok(match self {
            Upward::Sending {
                mut out,
                sent,
                upload,
                last,
            } => match upstream.write(&out[sent..]) {
                Ok(Step::Ready(n)) if sent + n < out.len() => Next::Go(Upward::Sending {
                    out,
                    sent: sent + n,
                    upload,
                    last,
                }),
                Ok(Step::Ready(_)) if last => Next::Go(Upward::Sent),
                Ok(Step::Ready(_)) => {
                    out.clear();
                    Next::Go(Upward::Reading { out, upload })
                }
                Ok(Step::WouldBlock) => {
                    cx.wait_writable(upstream.as_raw_fd());
                    Next::Wait(Upward::Sending {
                        out,
                        sent,
                        upload,
                        last,
                    })
                }
                Err(_) => Next::Go(Upward::Refused),
            },
            Upward::Reading { mut out, upload } => match ex.read_body(cx)? {
                Step::WouldBlock => Next::Wait(Upward::Reading { out, upload }),
                Step::Ready(BodyEvent::ChunkStart { data, .. } | BodyEvent::Data(data)) => {
                    frame_piece(&mut out, upload, data);
                    Next::Go(Upward::Sending {
                        out,
                        sent: 0,
                        upload,
                        last: false,
                    })
                }
                Step::Ready(BodyEvent::End { trailers }) => {
                    if upload == Upload::Chunked {
                        out.extend_from_slice(b"0\r\n");
                        out.extend_from_slice(trailers.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                    Next::Go(Upward::Sending {
                        out,
                        sent: 0,
                        upload,
                        last: true,
                    })
                }
            },
            done @ (Upward::Sent | Upward::Refused) => Next::Wait(done),
        })
    }
}

/// Appends a body piece to `out` as it goes up: as it is, or as one chunk.
fn frame_piece(out: &mut Vec<u8>, upload: Upload, data: &[u8]) {
    match upload {
        Upload::Chunked if !data.is_empty() => {
            write_hex(out, data.len() as u64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Upload::Chunked => {}
        Upload::Plain => out.extend_from_slice(data),
    }
}
