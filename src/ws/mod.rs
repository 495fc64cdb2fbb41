//! WebSocket (RFC 6455), the pure parts: the opening handshake's checks and accept key, a
//! resumable frame decoder, message assembly with UTF-8 validation, and the frame encoder.
//!
//! OVERVIEW
//!
//! Nothing here does I/O, reads a clock or allocates per frame, like [`detect`](crate::detect):
//! decoders take bytes from the caller's buffer and answer [`Step::Ready`] with an event,
//! [`Step::WouldBlock`] ("need more bytes", not an error), or a typed error that knows its close
//! code; encoders append to the caller's output buffer.

pub mod base64;
mod encode;
mod frame;
mod handshake;
mod message;
pub mod sha1;
mod utf8;

pub use crate::executor::Step;
pub use encode::{
    header_len, write_close, write_close_empty, write_frame, write_frame_masked, write_header,
    write_header_masked, write_ping, write_pong,
};
pub use frame::{FrameDecoder, FrameError, FrameEvent, FrameState, Payload};
pub use handshake::{ACCEPT_LEN, GUID, HandshakeError, UpgradeRequest, accept_key, validate_upgrade};
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
