//! The frames a server receives (RFC 6455 §5.2): [`FrameDecoder`], its states
//! ([`FrameState`]), and the masked [`Payload`] views it hands out.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! The header is taken one byte at a time into the decoder's state, so it may arrive split
//! anywhere and is consumed as it arrives; each rule is checked at the byte that decides it. The
//! payload is never held: it is handed out as it arrives, as slices of the caller's buffer, so a
//! frame of any size passes through a buffer of any size.
//!
//! # Why payloads come out as masked views
//!
//! A client masks every payload byte with a 4-byte key (§5.3), so handing out plain bytes needs
//! somewhere to write them. Unmasking in place would need `&mut` access to the connection's read
//! buffer, which hands out `&[u8]`; decoding into an output buffer picks the destination for the
//! caller. Instead a [`Payload`] borrows the masked bytes in the input, remembers where they sit in
//! the key, and unmasks while copying to wherever the caller wants them: straight into the
//! connection's write buffer after a frame header (an echo copies each byte once), into a message
//! buffer, or into a small array for a control frame. The raw bytes are reachable only through
//! [`Payload::masked`], so unmasking cannot be forgotten by accident.
//!
//! # Rules (each a protocol error, close code 1002, unless noted)
//!
//! - RSV1–3 must be 0: no extension is ever negotiated (§5.2);
//! - the opcode must be defined (§5.2);
//! - control frames must have FIN set and at most 125 bytes of payload (§5.5);
//! - every frame from a client must be masked (§5.1);
//! - the length must use the fewest bytes (§5.2: "the minimal number of bytes MUST be used"), and
//!   a 64-bit length must have its most significant bit clear (§5.2);
//! - a data frame longer than the decoder's limit is refused with 1009 (§7.4.1), when its length
//!   is complete and before any of its payload is handed out. Control frames are bounded by 125
//!   bytes instead.

use executor::Step;

use super::{CloseCode, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_MESSAGE, Opcode};

/// Why a frame was refused. Every variant maps to a close code ([`FrameError::close_code`]);
/// after any of them the connection must be failed (RFC 6455 §7.1.7): where the next frame begins
/// is no longer known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameError {
    /// RSV1, RSV2 or RSV3 is set, and no extension gave them a meaning (§5.2; 1002).
    ReservedBits,
    /// The opcode is one of the reserved values 3–7 or 11–15 (§5.2; 1002).
    UnknownOpcode,
    /// A close, ping or pong frame without FIN (§5.5; 1002).
    FragmentedControl,
    /// A close, ping or pong frame with more than 125 bytes of payload (§5.5; 1002).
    ControlTooLong,
    /// A frame from the client without the MASK bit (§5.1; 1002).
    Unmasked,
    /// A 64-bit length with its most significant bit set (§5.2; 1002).
    LengthHighBit,
    /// A length written with more bytes than needed: a 16-bit length below 126 or a 64-bit
    /// length below 65536 (§5.2; 1002).
    NonMinimalLength,
    /// A data frame longer than the decoder's limit (§7.4.1; 1009).
    TooLarge,
}

impl FrameError {
    /// The close code to fail the connection with (RFC 6455 §7.4.1).
    pub fn close_code(self) -> CloseCode {
        match self {
            FrameError::TooLarge => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short, fixed description, short enough for a close frame's reason.
    pub fn reason(self) -> &'static str {
        match self {
            FrameError::ReservedBits => "reserved bits set",
            FrameError::UnknownOpcode => "unknown opcode",
            FrameError::FragmentedControl => "fragmented control frame",
            FrameError::ControlTooLong => "control frame too long",
            FrameError::Unmasked => "unmasked client frame",
            FrameError::LengthHighBit => "64-bit length with high bit set",
            FrameError::NonMinimalLength => "length not minimally encoded",
            FrameError::TooLarge => "frame too large",
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason(), self.close_code().0)
    }
}

impl std::error::Error for FrameError {}

/// One thing a frame decoder found, borrowing from the input it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEvent<'b> {
    /// A frame's header is complete and valid; its payload follows.
    Start(FrameHeader),
    /// More of the payload (never empty), as it arrived.
    Payload(Payload<'b>),
    /// The payload is complete (right after `Start` for an empty payload).
    End,
}

/// Where a frame decoder is. Header states carry what the header has said so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameState {
    /// Expecting the first byte of a frame: FIN, RSV1–3 and the opcode.
    Start,
    /// After the first byte; expecting the second: MASK and the 7-bit length.
    Length {
        /// The FIN bit.
        fin: bool,
        /// The opcode.
        opcode: Opcode,
    },
    /// Inside the 16- or 64-bit extended length (network byte order).
    ExtendedLength {
        /// The FIN bit.
        fin: bool,
        /// The opcode.
        opcode: Opcode,
        /// The length so far.
        len: u64,
        /// Bytes of the length field: 2 or 8.
        width: u8,
        /// Bytes of it read so far (fewer than `width`).
        read: u8,
    },
    /// Inside the 4-byte masking key.
    MaskingKey {
        /// The complete header.
        header: FrameHeader,
        /// The key so far.
        key: [u8; 4],
        /// Bytes of it read so far (fewer than 4).
        read: u8,
    },
    /// Inside the payload.
    Payload {
        /// The frame's header.
        header: FrameHeader,
        /// The masking key.
        key: [u8; 4],
        /// Payload bytes not yet handed out (never 0).
        remaining: u64,
    },
    /// The payload is complete; [`FrameEvent::End`] is next.
    End,
}

/// Decodes the frames a server receives into [`FrameEvent`]s; see the module doc for the rules.
/// Allocates nothing.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    state: FrameState,
    /// Largest data frame payload in bytes.
    max_payload: u64,
}

impl Default for FrameDecoder {
    /// A decoder with [`MAX_MESSAGE`] as its limit.
    fn default() -> FrameDecoder {
        FrameDecoder::new(MAX_MESSAGE)
    }
}

impl FrameDecoder {
    /// A decoder before the first frame, refusing data frames with more than `max_payload` bytes
    /// of payload (`u64::MAX`: no limit beyond the protocol's).
    pub fn new(max_payload: u64) -> FrameDecoder {
        FrameDecoder {
            state: FrameState::Start,
            max_payload,
        }
    }

    /// The current state.
    pub fn state(&self) -> FrameState {
        self.state
    }

    /// True between frames: nothing of a frame has been consumed since the last
    /// [`FrameEvent::End`].
    pub fn is_between_frames(&self) -> bool {
        self.state == FrameState::Start
    }

    /// Decodes from the start of `input`: returns how many bytes were consumed and one event, or
    /// `WouldBlock` once everything given has been consumed and more is needed. Consumed bytes are
    /// never needed again (header bytes are kept in the state), so the caller drops them and
    /// calls again with what follows, plus whatever has arrived since. A `Payload` borrows from
    /// the consumed part of `input`: use it before dropping those bytes.
    ///
    /// Payload comes out as far as it has arrived; to hand out less at a time (an output buffer
    /// nearly full), pass a shorter `input`.
    ///
    /// # Errors
    /// A [`FrameError`] at the first byte that breaks a rule. The state is then the one before that
    /// byte; the connection must be failed.
    pub fn decode<'b>(
        &mut self,
        input: &'b [u8],
    ) -> Result<(usize, Step<FrameEvent<'b>>), FrameError> {
        let mut pos = 0;
        loop {
            match self.state {
                FrameState::Payload {
                    header,
                    key,
                    remaining,
                } => {
                    let available = input.len() - pos;
                    let n = usize::try_from(remaining).map_or(available, |r| r.min(available));
                    if n == 0 {
                        return Ok((pos, Step::WouldBlock));
                    }
                    // The offset of this piece in the payload, modulo 4, is its place in the key.
                    let phase = ((header.len - remaining) % 4) as u8;
                    let payload = Payload {
                        masked: &input[pos..pos + n],
                        key,
                        phase,
                    };
                    self.state = match remaining - n as u64 {
                        0 => FrameState::End,
                        remaining => FrameState::Payload {
                            header,
                            key,
                            remaining,
                        },
                    };
                    return Ok((pos + n, Step::Ready(FrameEvent::Payload(payload))));
                }
                FrameState::End => {
                    self.state = FrameState::Start;
                    return Ok((pos, Step::Ready(FrameEvent::End)));
                }
                _ => {
                    let Some(&b) = input.get(pos) else {
                        return Ok((pos, Step::WouldBlock));
                    };
                    let next = self.header_byte(b)?;
                    pos += 1;
                    let before = std::mem::replace(&mut self.state, next);
                    // The last byte of the masking key completes the header.
                    if let FrameState::MaskingKey {
                        header, read: 3, ..
                    } = before
                    {
                        return Ok((pos, Step::Ready(FrameEvent::Start(header))));
                    }
                }
            }
        }
    }

    /// One header byte: the next state. This `match` is the whole transition table of the header.
    #[inline]
    fn header_byte(&self, b: u8) -> Result<FrameState, FrameError> {
        use FrameState::*;
        let next = match (self.state, b) {
            // §5.2: FIN is the high bit, RSV1–3 the next three, the opcode the low four.
            (Start, _) if b & 0x70 != 0 => return Err(FrameError::ReservedBits),
            (Start, _) => {
                let fin = b & 0x80 != 0;
                let opcode = Opcode::from_bits(b & 0x0F).ok_or(FrameError::UnknownOpcode)?;
                if opcode.is_control() && !fin {
                    return Err(FrameError::FragmentedControl);
                }
                Length { fin, opcode }
            }
            // §5.1: "The server MUST close the connection upon receiving a frame that is not
            // masked." MASK is the high bit of the second byte.
            (Length { .. }, 0x00..=0x7F) => return Err(FrameError::Unmasked),
            (Length { opcode, .. }, _)
                if opcode.is_control() && usize::from(b & 0x7F) > MAX_CONTROL_PAYLOAD =>
            {
                return Err(FrameError::ControlTooLong);
            }
            // 126 and 127 announce a 16- and a 64-bit length.
            (Length { fin, opcode }, 0xFE) => ExtendedLength {
                fin,
                opcode,
                len: 0,
                width: 2,
                read: 0,
            },
            (Length { fin, opcode }, 0xFF) => ExtendedLength {
                fin,
                opcode,
                len: 0,
                width: 8,
                read: 0,
            },
            (Length { fin, opcode }, _) => self.masking_key(fin, opcode, u64::from(b & 0x7F))?,
            (
                ExtendedLength {
                    width: 8, read: 0, ..
                },
                0x80..=0xFF,
            ) => return Err(FrameError::LengthHighBit),
            (
                ExtendedLength {
                    fin,
                    opcode,
                    len,
                    width,
                    read,
                },
                _,
            ) if read + 1 < width => ExtendedLength {
                fin,
                opcode,
                len: len << 8 | u64::from(b),
                width,
                read: read + 1,
            },
            (
                ExtendedLength {
                    fin,
                    opcode,
                    len,
                    width,
                    ..
                },
                _,
            ) => {
                let len = len << 8 | u64::from(b);
                let least = if width == 2 { 126 } else { 0x1_0000 };
                if len < least {
                    return Err(FrameError::NonMinimalLength);
                }
                self.masking_key(fin, opcode, len)?
            }
            (
                MaskingKey {
                    header,
                    mut key,
                    read,
                },
                _,
            ) => {
                key[usize::from(read)] = b;
                match (read, header.len) {
                    (0..=2, _) => MaskingKey {
                        header,
                        key,
                        read: read + 1,
                    },
                    (_, 0) => End,
                    (_, remaining) => Payload {
                        header,
                        key,
                        remaining,
                    },
                }
            }
            // `decode` hands these out without reading header bytes.
            (Payload { .. } | End, _) => self.state,
        };
        Ok(next)
    }

    /// The length is complete: check it against the limit and expect the masking key.
    #[inline]
    fn masking_key(&self, fin: bool, opcode: Opcode, len: u64) -> Result<FrameState, FrameError> {
        if !opcode.is_control() && len > self.max_payload {
            return Err(FrameError::TooLarge);
        }
        Ok(FrameState::MaskingKey {
            header: FrameHeader { fin, opcode, len },
            key: [0; 4],
            read: 0,
        })
    }
}

/// A piece of a frame's payload as it arrived: masked bytes borrowed from the input, with the key
/// and their place in it. Every way of reading it unmasks (see the module doc for why).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Payload<'b> {
    masked: &'b [u8],
    key: [u8; 4],
    /// Index in `key` of the byte that masks `masked[0]` (0–3).
    phase: u8,
}

impl<'b> Payload<'b> {
    /// A piece of payload: `masked` as sent, masked by `key` starting at byte `phase % 4` of it.
    /// With a zero key the bytes are unmasked already, which is how tests or an unmasked source
    /// make one.
    pub fn new(masked: &'b [u8], key: [u8; 4], phase: usize) -> Payload<'b> {
        Payload {
            masked,
            key,
            phase: (phase % 4) as u8,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.masked.len()
    }

    /// True if there are no bytes (a decoder never hands out an empty piece).
    pub fn is_empty(&self) -> bool {
        self.masked.is_empty()
    }

    /// The unmasked bytes, one at a time.
    pub fn bytes(&self) -> impl ExactSizeIterator<Item = u8> + 'b {
        let (key, phase) = (self.key, usize::from(self.phase));
        self.masked
            .iter()
            .enumerate()
            .map(move |(i, &b)| b ^ key[(phase + i) & 3])
    }

    /// Appends the unmasked bytes to `out`.
    pub fn unmask_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(self.masked);
        super::apply_mask(self.key, usize::from(self.phase), &mut out[start..]);
    }

    /// Writes the unmasked bytes at the start of `out` and returns how many: all of them, or as
    /// many as fit.
    pub fn unmask_to_slice(&self, out: &mut [u8]) -> usize {
        let n = self.len().min(out.len());
        out[..n].copy_from_slice(&self.masked[..n]);
        super::apply_mask(self.key, usize::from(self.phase), &mut out[..n]);
        n
    }

    /// The unmasked bytes in a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        self.unmask_into(&mut v);
        v
    }

    /// The bytes as they arrived, still masked, with the key and the index in it of the byte that
    /// masks the first: for a caller that unmasks them itself with
    /// [`apply_mask`](super::apply_mask).
    pub fn masked(&self) -> (&'b [u8], [u8; 4], usize) {
        (self.masked, self.key, usize::from(self.phase))
    }
}

impl std::fmt::Debug for Payload<'_> {
    /// Shows the unmasked bytes, which is what the payload means.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Payload").field(&self.to_vec()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    #[test]
    fn rfc6455_masked_hello() {
        // §5.7: a single-frame masked text message containing "Hello".
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut d = FrameDecoder::default();
        let (n, step) = d.decode(&frame).unwrap();
        assert_eq!(n, 6);
        assert_eq!(
            step,
            Step::Ready(FrameEvent::Start(FrameHeader {
                fin: true,
                opcode: Opcode::Text,
                len: 5
            }))
        );
        let (m, step) = d.decode(&frame[n..]).unwrap();
        assert_eq!(m, 5);
        let Step::Ready(FrameEvent::Payload(p)) = step else {
            panic!("{step:?}")
        };
        assert_eq!(p.to_vec(), b"Hello");
        assert_eq!(d.state(), FrameState::End);
        assert_eq!(d.decode(&[]).unwrap(), (0, Step::Ready(FrameEvent::End)));
        assert!(d.is_between_frames());
        assert_eq!(d.decode(&[]).unwrap(), (0, Step::WouldBlock));
    }

    #[test]
    fn payload_phase_follows_the_split() {
        let data = b"abcdefghij";
        let mut masked = data.to_vec();
        super::super::apply_mask(KEY, 0, &mut masked);
        for split in 0..=data.len() {
            let first = Payload::new(&masked[..split], KEY, 0);
            let second = Payload::new(&masked[split..], KEY, split);
            let mut out = first.to_vec();
            second.unmask_into(&mut out);
            assert_eq!(out, data);
            let mut arr = [0u8; 10];
            let n = first.unmask_to_slice(&mut arr);
            second.unmask_to_slice(&mut arr[n..]);
            assert_eq!(&arr, data);
            assert!(first.bytes().chain(second.bytes()).eq(data.iter().copied()));
        }
    }

    #[test]
    fn an_error_leaves_the_state_and_consumes_nothing_more() {
        let mut d = FrameDecoder::default();
        // A good first byte, then an unmasked length byte.
        assert_eq!(d.decode(&[0x82]).unwrap(), (1, Step::WouldBlock));
        assert_eq!(d.decode(&[0x05]), Err(FrameError::Unmasked));
        assert_eq!(
            d.state(),
            FrameState::Length {
                fin: true,
                opcode: Opcode::Binary
            }
        );
    }
}
