//! `upload`: consumes a request body chunk by chunk and answers with what it saw.
//!
//! A tutorial of the input sentinel (`wsgi.input_sentinel` in the seed projects): the handler asks
//! for the next body event; when none is buffered, `read_body` says `WouldBlock`, the handler
//! returns `WouldBlock`, and the connection resumes it when more bytes arrive. Each piece is
//! folded into running totals and dropped, so an upload of any size costs the same memory.
//!
//! The answer is JSON: `{"bytes": N, "chunks": N, "crc32": "xxxxxxxx", "trailers": [..]}` — the
//! CRC-32 is the one of zlib and Python's `zlib.crc32`, so a client can check it.

use executor::{Cx, Step};

use crate::crc32::Crc32;
use crate::detect::BodyEvent;
use crate::json::json_string;
use crate::service::{App, Environ, Exchange, Handler, Method};

/// The `upload` application.
#[derive(Debug, Default, Clone, Copy)]
pub struct Upload;

/// The handler of one upload: running totals of the body read so far.
#[derive(Debug, Default)]
pub struct UploadHandler {
    bytes: u64,
    chunks: u64,
    crc: Crc32,
}

impl App for Upload {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Post, Method::Put])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(UploadHandler::default())
    }
}

impl Handler for UploadHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let event = match ex.read_body(cx) {
                Ok(Step::WouldBlock) => return Step::WouldBlock,
                Ok(Step::Ready(event)) => event,
                Err(e) => {
                    ex.fail(e.status(), &e.to_string());
                    return Step::Ready(());
                }
            };
            match event {
                BodyEvent::ChunkStart { data, .. } => {
                    self.chunks += 1;
                    self.take(data);
                }
                BodyEvent::Data(data) => self.take(data),
                BodyEvent::End { trailers } => {
                    let names: Vec<String> =
                        trailers.iter().map(|(name, _)| json_string(name)).collect();
                    let body = format!(
                        "{{\"bytes\": {}, \"chunks\": {}, \"crc32\": \"{:08x}\", \"trailers\": [{}]}}\n",
                        self.bytes,
                        self.chunks,
                        self.crc.value(),
                        names.join(", ")
                    );
                    ex.respond(
                        200,
                        &[("Content-Type", "application/json")],
                        body.as_bytes(),
                    );
                    return Step::Ready(());
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "upload"
    }
}

impl UploadHandler {
    fn take(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        self.crc.update(data);
    }
}
