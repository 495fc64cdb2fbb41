//! WebSocket (RFC 6455), the pure parts: the opening handshake's checks and accept key, a
//! resumable frame decoder, message assembly with UTF-8 validation, and the frame encoder.
//!
//! Like [`detect`](crate::detect), nothing here does I/O or reads a clock, and the decoders
//! allocate nothing: they take bytes from the caller's buffer and answer [`Step::Ready`] with an
//! event, [`Step::WouldBlock`] ("need more bytes", not an error), or a typed error that knows its
//! close code; encoders append to the caller's output buffer. That keeps every piece testable at
//! every split point of its input.
//!
//! - [`validate_upgrade`] / [`UpgradeRequest::validate`]: is this request a valid opening
//!   handshake (§4.2.1)? `Ok` gives the `Sec-WebSocket-Accept` value ([`accept_key`]); a
//!   [`HandshakeError`] gives the status and fields to refuse with.
//! - [`MessageDecoder`]: the client's bytes → [`MessageEvent`]s, with every rule of §5 checked
//!   (framing through [`FrameDecoder`], then fragmentation, message size, UTF-8, close frames);
//!   a [`MessageError`] knows its close code.
//! - [`write_header`], [`write_frame`], [`write_close`], [`write_pong`]...: the server's frames.
//! - Underneath: [`sha1`] and [`base64`] for the handshake, [`Utf8Validator`] for text.
//!
//! # Driving it from a connection
//!
//! A WebSocket handler is a step machine over the connection's read and write buffers:
//!
//! 1. Handshake: `validate_upgrade(method, version, head.headers(buf))`. On `Ok(accept)` write
//!    `101 Switching Protocols` with `Upgrade: websocket`, `Connection: Upgrade` and
//!    `Sec-WebSocket-Accept: accept`; on `Err(e)` answer `e.status()` with `e.headers()`. After
//!    the 101 the connection speaks WebSocket only: bytes already read past the head are frames.
//! 2. Frames: call [`MessageDecoder::decode`] on the unconsumed input, handle the event, then
//!    consume the `used` bytes it reported (a `Data` payload borrows them until then). On
//!    `WouldBlock` consume `used` too — the decoder keeps partial headers in its own state, so
//!    nothing is ever left for it in the buffer — and wait until readable.
//! 3. Backpressure: payload comes out as far as it has arrived, never more than the input given.
//!    While the write buffer is above its high-water mark, stop decoding and wait until writable;
//!    or pass only `&input[..room]`. A 1 MiB message then streams through in pieces.
//! 4. Echo: on `DataStart` write a header with the same `fin` and `len` (opcode
//!    `kind.opcode()` for the first frame, [`Opcode::Continuation`] after); on `Data(p)`,
//!    [`Payload::unmask_into`] the write buffer — each byte is copied once, unmasked on the way;
//!    on `Ping(p)` write a pong with `p.as_bytes()`; on `Close(c)` answer with a close (the same
//!    code, or an empty close if it had none), flush, and close the socket (§5.5.1, §7.1.1).
//! 5. Errors: fail the connection (§7.1.7) — write [`write_close`]`(out, e.close_code(),
//!    e.reason())` if the output is at a frame boundary, flush, close. An echo that streams a text
//!    frame before its end is checked may be inside that frame when its UTF-8 breaks: drop the
//!    unsent part of the frame if none of it has been flushed, else close without a close frame.
//!
//! ```
//! use asycamore::executor::Step;
//! use asycamore::ws::{
//!     CloseCode, MessageDecoder, MessageEvent, Opcode, write_close, write_close_empty,
//!     write_frame, write_frame_masked, write_header, write_pong,
//! };
//!
//! // What a client sends: "Hel" + "lo" as a fragmented text message with a ping between the
//! // fragments, then a close; every frame masked (§5.3).
//! let mut wire = Vec::new();
//! write_frame_masked(&mut wire, false, Opcode::Text, b"Hel", [1, 2, 3, 4]);
//! write_frame_masked(&mut wire, true, Opcode::Ping, b"are you there?", [5, 6, 7, 8]);
//! write_frame_masked(&mut wire, true, Opcode::Continuation, b"lo", [9, 10, 11, 12]);
//! write_frame_masked(&mut wire, true, Opcode::Close, b"\x03\xe8bye", [13, 14, 15, 16]);
//!
//! let mut decoder = MessageDecoder::default();
//! let mut out = Vec::new(); // the connection's write buffer
//! // The bytes arrive in two reads, split inside the ping.
//! let (first, second) = wire.split_at(12);
//! let mut input = first.to_vec(); // the connection's read buffer
//! let mut arrived = Some(second);
//! loop {
//!     let (used, step) = decoder.decode(&input).expect("a well-behaved client");
//!     let event = match step {
//!         Step::Ready(event) => event,
//!         Step::WouldBlock => {
//!             input.drain(..used); // all of it: the decoder keeps what it needs
//!             input.extend_from_slice(arrived.take().expect("more arrives"));
//!             continue;
//!         }
//!     };
//!     match event {
//!         MessageEvent::DataStart { kind, first, fin, len } => {
//!             let opcode = if first { kind.opcode() } else { Opcode::Continuation };
//!             write_header(&mut out, fin, opcode, len);
//!         }
//!         MessageEvent::Data(payload) => payload.unmask_into(&mut out),
//!         MessageEvent::DataEnd { .. } | MessageEvent::Pong(_) => {}
//!         MessageEvent::Ping(payload) => write_pong(&mut out, payload.as_bytes()),
//!         MessageEvent::Close(close) => {
//!             assert_eq!((close.code(), close.reason()), (Some(CloseCode::NORMAL), "bye"));
//!             match close.code() {
//!                 Some(code) => write_close(&mut out, code, ""),
//!                 None => write_close_empty(&mut out),
//!             }
//!             break; // flush `out`, then close the socket
//!         }
//!     }
//!     input.drain(..used);
//! }
//!
//! let mut expected = Vec::new();
//! write_frame(&mut expected, false, Opcode::Text, b"Hel");
//! write_frame(&mut expected, true, Opcode::Pong, b"are you there?");
//! write_frame(&mut expected, true, Opcode::Continuation, b"lo");
//! write_close(&mut expected, CloseCode::NORMAL, "");
//! assert_eq!(out, expected);
//! ```
//!
//! [`Step::Ready`]: crate::executor::Step::Ready
//! [`Step::WouldBlock`]: crate::executor::Step::WouldBlock

pub mod base64;
mod encode;
mod frame;
mod handshake;
mod message;
pub mod sha1;
mod utf8;

pub use encode::{
    header_len, write_close, write_close_empty, write_frame, write_frame_masked, write_header,
    write_header_masked, write_ping, write_pong,
};
pub use frame::{FrameDecoder, FrameError, FrameEvent, FrameState, Payload};
pub use handshake::{
    ACCEPT_LEN, GUID, HandshakeError, UpgradeRequest, accept_key, validate_upgrade,
};
pub use message::{
    CloseFrame, ControlPayload, MessageDecoder, MessageError, MessageEvent, MessageKind,
    MessageState,
};
pub use utf8::{Utf8Error, Utf8State, Utf8Validator};

/// Default largest message, in bytes of payload (all its fragments together): 16 MiB. Messages
/// are streamed, so this bounds what one message may make the server read, not memory; it is
/// inclusive, so Autobahn's largest echo case (9.1.6, 16 MiB of text) passes.
pub const MAX_MESSAGE: u64 = 16 * 1024 * 1024;

/// Largest payload of a control frame (close, ping, pong), in bytes (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (RFC 6455 §5.2, §11.8). Opcodes 3–7 and 11–15 are reserved and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// `0x0`: a continuation of a fragmented message (§5.4).
    Continuation,
    /// `0x1`: the first frame of a text message (§5.6).
    Text,
    /// `0x2`: the first frame of a binary message (§5.6).
    Binary,
    /// `0x8`: a close frame (§5.5.1).
    Close,
    /// `0x9`: a ping (§5.5.2).
    Ping,
    /// `0xA`: a pong (§5.5.3).
    Pong,
}

impl Opcode {
    /// The opcode for the low four bits of a frame's first byte, if it is defined.
    pub fn from_bits(bits: u8) -> Option<Opcode> {
        match bits {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// The four bits as sent.
    pub fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// True for close, ping and pong: the opcodes with the high bit set (§5.5), which must not be
    /// fragmented and carry at most [`MAX_CONTROL_PAYLOAD`] bytes.
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// What a frame's header says (RFC 6455 §5.2), once the whole header has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message (always true for control frames).
    pub fin: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// The payload length in bytes.
    pub len: u64,
}

/// A close status code (RFC 6455 §7.4), as sent in the first two bytes of a close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigated away).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a kind of data the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1007: data inconsistent with its message type (text that is not UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// True if the code may appear in a close frame (RFC 6455 §7.4.1, §7.4.2): 1000–1003 and
    /// 1007–1011 (defined by the RFC), 3000–3999 (registered with IANA) and 4000–4999 (private
    /// use). Refused: below 1000 (unused), 1004 (reserved), 1005, 1006 and 1015 (which §7.4.1
    /// says must never be sent in a close frame), 1016–2999 (reserved for the protocol), and
    /// 1012–1014: IANA has registered them since, but they are not part of RFC 6455 and
    /// Autobahn's testsuite accepts either answer, so we stay with the RFC's list. A close frame
    /// with any other code is a protocol error (1002).
    pub fn is_valid(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1011 | 3000..=4999)
    }
}

/// XORs `data` with the masking key `key` (RFC 6455 §5.3), starting at byte `phase` of the key
/// (the offset of `data[0]` in the payload, modulo 4). Masking and unmasking are the same
/// operation.
pub fn apply_mask(key: [u8; 4], phase: usize, data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(phase + i) & 3];
    }
}
