//! Messages from frames (RFC 6455 §5.4–§5.6): [`MessageDecoder`] runs a [`FrameDecoder`] and adds
//! the rules that span frames — fragmentation, the size of a whole message, UTF-8 text, control
//! frames and their payloads.
//!
//! Data still streams: a data frame comes out as `DataStart`, `Data` pieces as they arrive, and
//! `DataEnd`, so a 1 MiB message passes through a 16 KiB buffer. Control frames are small
//! (at most 125 bytes, §5.5), so their payloads are collected in the decoder and come out whole,
//! as `Ping`, `Pong` or `Close` values that borrow nothing.
//!
//! # Rules (close code 1002 unless noted)
//!
//! - a continuation frame only while a fragmented text or binary message is unfinished, and a
//!   text or binary frame only when none is (§5.4); control frames may come between fragments
//!   (§5.4: "Control frames MAY be injected in the middle of a fragmented message");
//! - a message's fragments add up to at most the decoder's limit (1009, §7.4.1), checked when each
//!   frame's length is known, before its payload is handed out;
//! - a text message is valid UTF-8 (1007, §5.6, §8.1), checked as the bytes arrive: an invalid
//!   sequence is refused at the byte that makes it certain, even inside a frame, and a code point
//!   left unfinished at the end of the final fragment when that fragment ends. A code point may be
//!   split between fragments;
//! - a close frame's payload is empty, or a valid code (see [`CloseCode::is_valid`]) and a reason
//!   in UTF-8 (§5.5.1, §7.4); a one-byte payload or an invalid code is 1002, a reason that is not
//!   UTF-8 is 1007 (Autobahn's case 7.5.1 accepts 1002 or 1007; 1007 says what is wrong). Control
//!   payloads are checked when complete;
//! - after a close frame nothing more is read (§5.5.1: the peer sends nothing after its close).
//!
//! The frame-level rules are [`FrameDecoder`]'s. A rule that depends on a frame's opcode or length
//! is checked as soon as that part of the header has arrived, not when the header is complete.

use executor::Step;

use super::frame::{FrameDecoder, FrameError, FrameEvent, FrameState, Payload};
use super::utf8::Utf8Validator;
use super::{CloseCode, MAX_CONTROL_PAYLOAD, MAX_MESSAGE, Opcode};

/// Why a message (or the frames carrying it) was refused. Every variant maps to a close code
/// ([`MessageError::close_code`]); after any of them the connection must be failed (RFC 6455
/// §7.1.7): send a close frame with that code if the output is at a frame boundary, then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageError {
    /// A frame broke a framing rule; the inner error says which.
    Frame(FrameError),
    /// A continuation frame with no fragmented message to continue (§5.4; 1002).
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is unfinished (§5.4; 1002).
    ExpectedContinuation,
    /// The message's fragments add up to more than the limit (§7.4.1; 1009).
    TooLarge,
    /// A text message that is not valid UTF-8 (§8.1; 1007).
    InvalidUtf8,
    /// A close frame with a one-byte payload, too short for a code (§5.5.1; 1002).
    CloseTooShort,
    /// A close frame with a code that must not be sent (§7.4; 1002).
    InvalidCloseCode,
    /// A close frame whose reason is not valid UTF-8 (§5.5.1; 1007).
    InvalidCloseReason,
}

impl MessageError {
    /// The close code to fail the connection with (RFC 6455 §7.4.1).
    pub fn close_code(self) -> CloseCode {
        match self {
            MessageError::Frame(e) => e.close_code(),
            MessageError::TooLarge => CloseCode::MESSAGE_TOO_BIG,
            MessageError::InvalidUtf8 | MessageError::InvalidCloseReason => {
                CloseCode::INVALID_PAYLOAD
            }
            MessageError::UnexpectedContinuation
            | MessageError::ExpectedContinuation
            | MessageError::CloseTooShort
            | MessageError::InvalidCloseCode => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short, fixed description, short enough for a close frame's reason.
    pub fn reason(self) -> &'static str {
        match self {
            MessageError::Frame(e) => e.reason(),
            MessageError::UnexpectedContinuation => "continuation frame outside a message",
            MessageError::ExpectedContinuation => "new message inside a fragmented one",
            MessageError::TooLarge => "message too large",
            MessageError::InvalidUtf8 => "text message is not valid UTF-8",
            MessageError::CloseTooShort => "close payload of one byte",
            MessageError::InvalidCloseCode => "invalid close code",
            MessageError::InvalidCloseReason => "close reason is not valid UTF-8",
        }
    }
}

impl From<FrameError> for MessageError {
    fn from(e: FrameError) -> MessageError {
        MessageError::Frame(e)
    }
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.close_code().0)
    }
}

impl std::error::Error for MessageError {}

/// What a data message holds (RFC 6455 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

impl MessageKind {
    /// The opcode of a message's first frame.
    pub fn opcode(self) -> Opcode {
        match self {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        }
    }
}

/// The payload of a control frame, at most [`MAX_CONTROL_PAYLOAD`] bytes, unmasked and held by
/// value so that an event carrying it borrows nothing.
#[derive(Clone, Copy)]
pub struct ControlPayload {
    bytes: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl ControlPayload {
    /// No bytes.
    pub fn empty() -> ControlPayload {
        ControlPayload {
            bytes: [0; MAX_CONTROL_PAYLOAD],
            len: 0,
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True if there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a piece of payload, unmasked; whatever would pass [`MAX_CONTROL_PAYLOAD`] is
    /// dropped (the frame decoder refuses longer control frames before their payload).
    fn push(&mut self, piece: Payload<'_>) {
        let at = usize::from(self.len);
        let n = piece.unmask_to_slice(&mut self.bytes[at..]);
        self.len += n as u8;
    }
}

impl Default for ControlPayload {
    fn default() -> ControlPayload {
        ControlPayload::empty()
    }
}

impl PartialEq for ControlPayload {
    fn eq(&self, other: &ControlPayload) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ControlPayload {}

impl std::fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ControlPayload")
            .field(&self.as_bytes())
            .finish()
    }
}

/// A close frame that passed its checks: no payload, or a valid code and a UTF-8 reason
/// (RFC 6455 §5.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame {
    payload: ControlPayload,
}

impl CloseFrame {
    /// Checks a close frame's payload.
    ///
    /// # Errors
    /// [`MessageError::CloseTooShort`], [`MessageError::InvalidCloseCode`] or
    /// [`MessageError::InvalidCloseReason`].
    pub fn parse(payload: ControlPayload) -> Result<CloseFrame, MessageError> {
        match payload.as_bytes() {
            [] => {}
            [_] => return Err(MessageError::CloseTooShort),
            [hi, lo, reason @ ..] => {
                if !CloseCode(u16::from_be_bytes([*hi, *lo])).is_valid() {
                    return Err(MessageError::InvalidCloseCode);
                }
                let mut utf8 = Utf8Validator::new();
                utf8.feed_slice(reason)
                    .and_then(|()| utf8.finish())
                    .map_err(|_| MessageError::InvalidCloseReason)?;
            }
        }
        Ok(CloseFrame { payload })
    }

    /// The status code, if the frame had one. A close with none is answered with an empty close,
    /// one with a code usually by echoing the code (§5.5.1).
    pub fn code(&self) -> Option<CloseCode> {
        match self.payload.as_bytes() {
            [hi, lo, ..] => Some(CloseCode(u16::from_be_bytes([*hi, *lo]))),
            _ => None,
        }
    }

    /// The reason, possibly empty.
    pub fn reason(&self) -> &str {
        // Checked by `parse`: this never falls back.
        std::str::from_utf8(self.payload.as_bytes().get(2..).unwrap_or_default())
            .unwrap_or_default()
    }

    /// The payload as received: empty, or the code in network byte order and the reason.
    pub fn payload(&self) -> &ControlPayload {
        &self.payload
    }
}

/// One thing a message decoder found. Only `Data` borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageEvent<'b> {
    /// A data frame begins. To echo the framing as received, write a header with
    /// `fin`, `len` and the opcode `kind.opcode()` if `first`, else
    /// [`Opcode::Continuation`].
    DataStart {
        /// What the message holds.
        kind: MessageKind,
        /// True for the message's first frame (opcode text or binary), false for a continuation.
        first: bool,
        /// True for the message's last frame.
        fin: bool,
        /// This frame's payload length in bytes.
        len: u64,
    },
    /// More of the current data frame's payload (never empty), already checked: for text, the
    /// message so far is a valid beginning of UTF-8 text.
    Data(Payload<'b>),
    /// The data frame's payload is complete. With `fin` the message is complete, and a text
    /// message is valid UTF-8 as a whole.
    DataEnd {
        /// True if this was the message's last frame.
        fin: bool,
    },
    /// A ping: answer with a pong carrying the same payload (§5.5.2).
    Ping(ControlPayload),
    /// A pong (§5.5.3), usually ignored.
    Pong(ControlPayload),
    /// A close frame (§5.5.1): answer with a close frame, then close the connection. The decoder
    /// reads nothing after it; every later call hands out this event again.
    Close(CloseFrame),
}

/// A data message that has begun and not ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageProgress {
    /// What the message holds.
    pub kind: MessageKind,
    /// Payload bytes of its frames so far, as their headers declared them.
    pub len: u64,
    /// The UTF-8 check of a text message so far (unused for binary).
    pub utf8: Utf8Validator,
}

/// Where a message decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Between frames; `message` is the fragmented message in progress, if any.
    Between {
        /// The unfinished message.
        message: Option<MessageProgress>,
    },
    /// Inside a data frame of `message`.
    Data {
        /// The message the frame belongs to.
        message: MessageProgress,
        /// True if the frame is the message's last.
        fin: bool,
    },
    /// Inside a control frame, collecting its payload.
    Control {
        /// Close, ping or pong.
        opcode: Opcode,
        /// The payload so far.
        payload: ControlPayload,
        /// The fragmented message it interrupted, if any.
        message: Option<MessageProgress>,
    },
    /// A close frame was received (terminal).
    Closed(CloseFrame),
}

/// Decodes a client's frames into [`MessageEvent`]s, enforcing the rules in the module doc.
/// Allocates nothing.
#[derive(Debug, Clone)]
pub struct MessageDecoder {
    state: MessageState,
    frames: FrameDecoder,
    /// Largest message in bytes, all fragments together.
    max_message: u64,
}

impl Default for MessageDecoder {
    /// A decoder with [`MAX_MESSAGE`] as its limit.
    fn default() -> MessageDecoder {
        MessageDecoder::new(MAX_MESSAGE)
    }
}

impl MessageDecoder {
    /// A decoder at the start of a connection, refusing messages of more than `max_message`
    /// bytes of payload (`u64::MAX`: no limit beyond the protocol's).
    pub fn new(max_message: u64) -> MessageDecoder {
        MessageDecoder {
            state: MessageState::Between { message: None },
            frames: FrameDecoder::new(max_message),
            max_message,
        }
    }

    /// The current state.
    pub fn state(&self) -> MessageState {
        self.state
    }

    /// Where the underlying frame decoder is.
    pub fn frame_state(&self) -> FrameState {
        self.frames.state()
    }

    /// True once a close frame has been received.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, MessageState::Closed(_))
    }

    /// True between frames and outside any message: the peer has sent only complete messages, so
    /// a connection may stop here without cutting one.
    pub fn is_idle(&self) -> bool {
        self.state == MessageState::Between { message: None } && self.frames.is_between_frames()
    }

    /// Decodes from the start of `input`, with the calling convention of
    /// [`FrameDecoder::decode`]: `(consumed, step)`, one event per call, `WouldBlock` once all of
    /// `input` is consumed and more is needed; a `Data` payload borrows from the consumed part.
    /// Pass a shorter `input` to take less payload at a time.
    ///
    /// # Errors
    /// A [`MessageError`] at the first byte that breaks a rule (control payloads: when complete).
    /// The connection must then be failed with [`MessageError::close_code`].
    pub fn decode<'b>(
        &mut self,
        input: &'b [u8],
    ) -> Result<(usize, Step<MessageEvent<'b>>), MessageError> {
        if let MessageState::Closed(close) = self.state {
            return Ok((0, Step::Ready(MessageEvent::Close(close))));
        }
        let mut pos = 0;
        loop {
            let (used, step) = self.frames.decode(&input[pos..])?;
            pos += used;
            let Step::Ready(event) = step else {
                // Input ran out inside a header: the opcode or length that has arrived may already
                // break a message rule.
                self.check_partial_header()?;
                return Ok((pos, Step::WouldBlock));
            };
            let (state, event) = self.on_frame_event(event)?;
            self.state = state;
            if let Some(event) = event {
                return Ok((pos, Step::Ready(event)));
            }
        }
    }

    /// One frame event: the next state, and the event to hand out, if any. This `match` is the
    /// whole transition table.
    fn on_frame_event<'b>(
        &self,
        event: FrameEvent<'b>,
    ) -> Result<(MessageState, Option<MessageEvent<'b>>), MessageError> {
        use MessageState::*;
        let next = match (self.state, event) {
            (Between { message }, FrameEvent::Start(header)) => {
                match self.admit(message, header.opcode, Some(header.len))? {
                    None => (
                        Control {
                            opcode: header.opcode,
                            payload: ControlPayload::empty(),
                            message,
                        },
                        None,
                    ),
                    Some(progress) => (
                        Data {
                            message: progress,
                            fin: header.fin,
                        },
                        Some(MessageEvent::DataStart {
                            kind: progress.kind,
                            first: message.is_none(),
                            fin: header.fin,
                            len: header.len,
                        }),
                    ),
                }
            }
            (Data { mut message, fin }, FrameEvent::Payload(piece)) => {
                if message.kind == MessageKind::Text {
                    message
                        .utf8
                        .feed(piece.bytes())
                        .map_err(|_| MessageError::InvalidUtf8)?;
                }
                (Data { message, fin }, Some(MessageEvent::Data(piece)))
            }
            (Data { message, fin: true }, FrameEvent::End) => {
                if message.kind == MessageKind::Text {
                    message
                        .utf8
                        .finish()
                        .map_err(|_| MessageError::InvalidUtf8)?;
                }
                (
                    Between { message: None },
                    Some(MessageEvent::DataEnd { fin: true }),
                )
            }
            (
                Data {
                    message,
                    fin: false,
                },
                FrameEvent::End,
            ) => (
                Between {
                    message: Some(message),
                },
                Some(MessageEvent::DataEnd { fin: false }),
            ),
            (
                Control {
                    opcode,
                    mut payload,
                    message,
                },
                FrameEvent::Payload(piece),
            ) => {
                payload.push(piece);
                (
                    Control {
                        opcode,
                        payload,
                        message,
                    },
                    None,
                )
            }
            (
                Control {
                    opcode: Opcode::Close,
                    payload,
                    ..
                },
                FrameEvent::End,
            ) => {
                let close = CloseFrame::parse(payload)?;
                (Closed(close), Some(MessageEvent::Close(close)))
            }
            (
                Control {
                    opcode: Opcode::Ping,
                    payload,
                    message,
                },
                FrameEvent::End,
            ) => (Between { message }, Some(MessageEvent::Ping(payload))),
            (
                Control {
                    payload, message, ..
                },
                FrameEvent::End,
            ) => (Between { message }, Some(MessageEvent::Pong(payload))),
            // The frame decoder hands out Start, then Payload pieces, then End, and `decode` stops
            // at Closed: no other pair can occur.
            (state, _) => {
                debug_assert!(false, "frame event out of order in {state:?}");
                (state, None)
            }
        };
        Ok(next)
    }

    /// The message rules for a frame with `opcode` (and `len`, once known) while `message` is
    /// unfinished: the message a data frame belongs to, with `len` counted, or `None` for a
    /// control frame. The one place that decides which frame may come when.
    fn admit(
        &self,
        message: Option<MessageProgress>,
        opcode: Opcode,
        len: Option<u64>,
    ) -> Result<Option<MessageProgress>, MessageError> {
        let mut progress = match (message, opcode) {
            (_, Opcode::Close | Opcode::Ping | Opcode::Pong) => return Ok(None),
            (None, Opcode::Continuation) => return Err(MessageError::UnexpectedContinuation),
            (Some(_), Opcode::Text | Opcode::Binary) => {
                return Err(MessageError::ExpectedContinuation);
            }
            (Some(progress), Opcode::Continuation) => progress,
            (None, Opcode::Text | Opcode::Binary) => MessageProgress {
                kind: if opcode == Opcode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                },
                len: 0,
                utf8: Utf8Validator::new(),
            },
        };
        if let Some(len) = len {
            progress.len = progress
                .len
                .checked_add(len)
                .filter(|&total| total <= self.max_message)
                .ok_or(MessageError::TooLarge)?;
        }
        Ok(Some(progress))
    }

    /// Applies [`MessageDecoder::admit`] to a header that has only partly arrived.
    fn check_partial_header(&self) -> Result<(), MessageError> {
        let MessageState::Between { message } = self.state else {
            return Ok(());
        };
        let (opcode, len) = match self.frames.state() {
            FrameState::Length { opcode, .. } | FrameState::ExtendedLength { opcode, .. } => {
                (opcode, None)
            }
            FrameState::MaskingKey { header, .. } => (header.opcode, Some(header.len)),
            FrameState::Start | FrameState::Payload { .. } | FrameState::End => return Ok(()),
        };
        self.admit(message, opcode, len).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::write_frame_masked;

    const KEY: [u8; 4] = [1, 2, 3, 4];

    #[test]
    fn opcode_rule_is_checked_at_the_opcode_byte() {
        let mut d = MessageDecoder::default();
        // A lone continuation's first byte: refused before its length or key arrive.
        assert_eq!(d.decode(&[0x80]), Err(MessageError::UnexpectedContinuation));
    }

    #[test]
    fn message_size_is_checked_when_the_length_is_known() {
        let mut d = MessageDecoder::new(10);
        let mut frames = Vec::new();
        write_frame_masked(&mut frames, false, Opcode::Binary, &[0; 6], KEY);
        let (n, _) = d.decode(&frames).unwrap();
        let (m, _) = d.decode(&frames[n..]).unwrap();
        let (k, _) = d.decode(&frames[n + m..]).unwrap();
        assert_eq!(n + m + k, frames.len());
        // 6 + 5 > 10: refused at the length byte, before the masking key.
        assert_eq!(d.decode(&[0x80, 0x85]), Err(MessageError::TooLarge));
    }

    #[test]
    fn control_payload_collects_across_pieces() {
        let mut frame = Vec::new();
        write_frame_masked(&mut frame, true, Opcode::Ping, b"0123456789", KEY);
        let mut d = MessageDecoder::default();
        let mut at = 0;
        let mut end = 0;
        let event = loop {
            end = (end + 3).min(frame.len());
            let (n, step) = d.decode(&frame[at..end]).unwrap();
            at += n;
            if let Step::Ready(e) = step {
                break e;
            }
        };
        assert_eq!(at, frame.len());
        let MessageEvent::Ping(p) = event else {
            panic!("{event:?}")
        };
        assert_eq!(p.as_bytes(), b"0123456789");
    }
}
