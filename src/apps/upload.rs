//! `upload`: consumes a request body chunk by chunk and answers with what it saw.
//!
//! A tutorial of the input sentinel (`wsgi.input_sentinel` in the seed projects): the handler asks
//! for the next body event; when none is buffered, `read_body` says `WouldBlock`, the handler
//! returns `WouldBlock`, and the connection resumes it when more bytes arrive. Each piece is
//! folded into running totals and dropped, so an upload of any size costs the same memory.
//!
//! The answer is JSON: `{"bytes": N, "chunks": N, "crc32": "xxxxxxxx", "trailers": [..]}` — the
//! CRC-32 is the one of zlib and Python's `zlib.crc32`, so a client can check it.

use asycamore_executor::{Cx, Step};

use crate::detect::BodyEvent;
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

/// A JSON string literal for `s`.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib), a byte at a time from a 256-entry table.
#[derive(Debug, Clone, Copy)]
pub struct Crc32 {
    state: u32,
}

impl Default for Crc32 {
    fn default() -> Crc32 {
        Crc32 { state: !0 }
    }
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    /// Folds `data` in.
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.state;
        for &b in data {
            c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        self.state = c;
    }

    /// The checksum of everything folded in so far.
    pub fn value(&self) -> u32 {
        !self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        let mut crc = Crc32::default();
        crc.update(b"123456789");
        assert_eq!(crc.value(), 0xCBF4_3926);
        let mut split = Crc32::default();
        split.update(b"1234");
        split.update(b"56789");
        assert_eq!(split.value(), 0xCBF4_3926);
        assert_eq!(Crc32::default().value(), 0);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
