//! Writing frames (RFC 6455 §5.2) into an output buffer: whole frames, a header alone (so a large
//! payload can follow in pieces as it becomes available, with no copy into a frame), and the
//! control frames a server sends.
//!
//! A server's frames are never masked (§5.1: "A server MUST NOT mask any frames that it sends to
//! the client"); the `_masked` writers are for clients (tests, load generators). Every length is
//! written in the fewest bytes (§5.2). Nothing here checks the output buffer's size: the caller
//! applies its own backpressure (stop decoding while the buffer is above its high-water mark) and
//! can reserve [`header_len`] bytes ahead.

use super::{CloseCode, MAX_CONTROL_PAYLOAD, Opcode, apply_mask};

/// Bytes of the header of an unmasked frame with `len` bytes of payload: 2, 4 (16-bit length)
/// or 10 (64-bit length). A masked header has 4 more.
pub fn header_len(len: u64) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Appends the header of an unmasked frame whose `len` payload bytes the caller appends next.
///
/// Control frames (close, ping, pong) must have `fin` set and at most [`MAX_CONTROL_PAYLOAD`]
/// bytes (§5.5); prefer [`write_close`], [`write_ping`] and [`write_pong`], which ensure it.
/// `len` must be below 2^63 (§5.2). Both are the caller's to keep (checked in debug builds).
pub fn write_header(out: &mut Vec<u8>, fin: bool, opcode: Opcode, len: u64) {
    debug_assert!(
        !opcode.is_control() || (fin && len <= MAX_CONTROL_PAYLOAD as u64),
        "control frames are unfragmented and short (RFC 6455 §5.5)"
    );
    debug_assert!(
        len >> 63 == 0,
        "a 64-bit length has its high bit clear (§5.2)"
    );
    write_header_bytes(out, fin, opcode, len, None);
}

/// Appends the header of a frame masked with `key`, as a client sends it (§5.3); the caller
/// appends the payload and masks it with [`apply_mask`]`(key, 0, ..)`. Unlike [`write_header`]
/// this checks nothing, so that a test client can send what a server must refuse.
pub fn write_header_masked(out: &mut Vec<u8>, fin: bool, opcode: Opcode, len: u64, key: [u8; 4]) {
    write_header_bytes(out, fin, opcode, len, Some(key));
}

/// The header: FIN and opcode, MASK and the shortest length field, then the key if masked.
fn write_header_bytes(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    len: u64,
    key: Option<[u8; 4]>,
) {
    out.push(u8::from(fin) << 7 | opcode.bits());
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(key) = key {
        out.extend_from_slice(&key);
    }
}

/// Appends a whole unmasked frame. The rules of [`write_header`] apply.
pub fn write_frame(out: &mut Vec<u8>, fin: bool, opcode: Opcode, payload: &[u8]) {
    out.reserve(header_len(payload.len() as u64) + payload.len());
    write_header(out, fin, opcode, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Appends a whole frame masked with `key`, as a client sends it; like [`write_header_masked`],
/// it checks nothing.
pub fn write_frame_masked(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    key: [u8; 4],
) {
    write_header_masked(out, fin, opcode, payload.len() as u64, key);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(key, 0, &mut out[start..]);
}

/// Appends a close frame with `code` and `reason` (§5.5.1). The reason is cut to the 123 bytes
/// that fit beside the code, at a character boundary, so the frame is always valid.
pub fn write_close(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    write_header(out, true, Opcode::Close, 2 + reason.len() as u64);
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(reason);
}

/// Appends a close frame with no payload (no code, no reason): the reply to a close frame that
/// had none (§5.5.1).
pub fn write_close_empty(out: &mut Vec<u8>) {
    write_header(out, true, Opcode::Close, 0);
}

/// Appends a ping with `payload`, cut to [`MAX_CONTROL_PAYLOAD`] bytes (§5.5.2).
pub fn write_ping(out: &mut Vec<u8>, payload: &[u8]) {
    write_frame(
        out,
        true,
        Opcode::Ping,
        &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)],
    );
}

/// Appends a pong with `payload`, cut to [`MAX_CONTROL_PAYLOAD`] bytes. In reply to a ping the
/// payload must be the ping's (§5.5.3), which is never longer.
pub fn write_pong(out: &mut Vec<u8>, payload: &[u8]) {
    write_frame(
        out,
        true,
        Opcode::Pong,
        &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_examples() {
        // §5.7: unmasked "Hello", and the same in two fragments.
        let mut out = Vec::new();
        write_frame(&mut out, true, Opcode::Text, b"Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        write_frame(&mut out, false, Opcode::Text, b"Hel");
        write_frame(&mut out, true, Opcode::Continuation, b"lo");
        assert_eq!(out, [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
        // A masked "Hello".
        out.clear();
        write_frame_masked(
            &mut out,
            true,
            Opcode::Text,
            b"Hello",
            [0x37, 0xfa, 0x21, 0x3d],
        );
        assert_eq!(
            out,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        // An unmasked ping with "Hello", and the 256-byte and 64 KiB binary headers.
        out.clear();
        write_ping(&mut out, b"Hello");
        assert_eq!(out, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        write_header(&mut out, true, Opcode::Binary, 256);
        assert_eq!(out, [0x82, 0x7E, 0x01, 0x00]);
        out.clear();
        write_header(&mut out, true, Opcode::Binary, 65536);
        assert_eq!(out, [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn smallest_length_encoding_at_each_boundary() {
        for (len, want) in [
            (0, 2),
            (125, 2),
            (126, 4),
            (0xFFFF, 4),
            (0x1_0000, 10),
            (u64::MAX >> 1, 10),
        ] {
            let mut out = Vec::new();
            write_header(&mut out, true, Opcode::Binary, len);
            assert_eq!(out.len(), want, "{len}");
            assert_eq!(header_len(len), want);
        }
    }

    #[test]
    fn close_reason_is_cut_at_a_character_boundary() {
        let mut out = Vec::new();
        write_close(&mut out, CloseCode::NORMAL, "");
        assert_eq!(out, [0x88, 0x02, 0x03, 0xE8]);
        out.clear();
        // 122 ASCII bytes then a 2-byte character: the character does not fit in 123 bytes.
        let reason = format!("{}é", "a".repeat(122));
        write_close(&mut out, CloseCode::GOING_AWAY, &reason);
        assert_eq!(out[1], 2 + 122);
        assert_eq!(&out[4..], "a".repeat(122).as_bytes());
        out.clear();
        write_close_empty(&mut out);
        assert_eq!(out, [0x88, 0x00]);
        out.clear();
        write_pong(&mut out, &[7; 200]);
        assert_eq!(out.len(), 2 + MAX_CONTROL_PAYLOAD);
    }
}
