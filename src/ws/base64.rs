//! Base64 with the standard alphabet and padding (RFC 4648 §4): an encoder, and a strict decoder
//! for checking a `Sec-WebSocket-Key` (RFC 6455 §4.2.1, item 4).
//!
//! The decoder accepts exactly what the encoder produces, nothing else: the standard alphabet only
//! (no URL-safe `-`/`_`, RFC 4648 §5), no whitespace or line breaks (§3.3: "implementations MUST
//! reject the encoded data if it contains characters outside the base alphabet"), a length that
//! is a multiple of 4 with `=` padding (§3.2), and pad bits that are zero (§3.5, canonical
//! encoding), so every byte string has one accepted encoding.
//!
//! ```
//! use asycamore::ws::base64;
//!
//! let mut text = Vec::new();
//! base64::encode(b"foob", &mut text);
//! assert_eq!(text, b"Zm9vYg==");
//!
//! let mut bytes = Vec::new();
//! base64::decode(&text, &mut bytes).unwrap();
//! assert_eq!(bytes, b"foob");
//! assert_eq!(base64::decode(b"Zm9vYh==", &mut bytes), Err(base64::Base64Error::NonCanonical));
//! ```

/// The base64 alphabet, value → character (RFC 4648 §4, Table 1).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The pad character.
const PAD: u8 = b'=';

/// Why [`decode`] refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base64Error {
    /// The length is not a multiple of 4 (padding is required, RFC 4648 §3.2).
    InvalidLength,
    /// A byte outside the alphabet, at this offset of the input (RFC 4648 §3.3).
    InvalidByte {
        /// Offset of the byte in the input.
        offset: usize,
    },
    /// `=` somewhere other than the last one or two places of the input.
    InvalidPadding,
    /// The bits after the last encoded byte are not zero, so this is not the one encoding of the
    /// data (RFC 4648 §3.5).
    NonCanonical,
    /// The output slice given to [`decode_to_slice`] is too small.
    OutputTooSmall,
}

impl std::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Base64Error::InvalidLength => f.write_str("base64 length is not a multiple of 4"),
            Base64Error::InvalidByte { offset } => {
                write!(f, "byte outside the base64 alphabet at offset {offset}")
            }
            Base64Error::InvalidPadding => f.write_str("misplaced base64 padding"),
            Base64Error::NonCanonical => f.write_str("non-zero base64 pad bits"),
            Base64Error::OutputTooSmall => f.write_str("base64 output buffer too small"),
        }
    }
}

impl std::error::Error for Base64Error {}

/// Length of the encoding of `n` bytes: 4 characters per started group of 3. `None` if that does
/// not fit in `usize`.
pub fn encoded_len(n: usize) -> Option<usize> {
    n.div_ceil(3).checked_mul(4)
}

/// Appends the encoding of `input` to `out`.
///
/// # Panics
/// If the encoding would be longer than `usize::MAX` bytes (an input above 3/4 of the address
/// space, which cannot exist beside its encoding).
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let len = encoded_len(input.len()).expect("base64 output length overflows usize");
    out.resize(start + len, 0);
    encode_groups(input, &mut out[start..]);
}

/// Writes the encoding of `input` at the start of `out` and returns its length; `None` (with
/// nothing written) if `out` is shorter than [`encoded_len`]`(input.len())`.
pub fn encode_to_slice(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = encoded_len(input.len())?;
    let out = out.get_mut(..len)?;
    encode_groups(input, out);
    Some(len)
}

/// Encodes `input` into `out`, which is exactly [`encoded_len`] long.
fn encode_groups(input: &[u8], out: &mut [u8]) {
    let char_of = |sextet: u32| ALPHABET[(sextet & 0x3F) as usize];
    for (group, chars) in input.chunks(3).zip(out.chunks_exact_mut(4)) {
        // RFC 4648 §4: 24 bits, most significant first, zero bits added on the right for a
        // short final group, then `=` for each missing byte.
        let bits = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        chars[0] = char_of(bits >> 18);
        chars[1] = char_of(bits >> 12);
        chars[2] = if group.len() > 1 {
            char_of(bits >> 6)
        } else {
            PAD
        };
        chars[3] = if group.len() > 2 { char_of(bits) } else { PAD };
    }
}

/// The value of an alphabet character.
#[inline]
fn value_of(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Length of the data `input` decodes to, from its length and padding alone (the characters are
/// checked by [`decode`]).
///
/// # Errors
/// [`Base64Error::InvalidLength`] if the length is not a multiple of 4.
pub fn decoded_len(input: &[u8]) -> Result<usize, Base64Error> {
    if !input.len().is_multiple_of(4) {
        return Err(Base64Error::InvalidLength);
    }
    let pad = input
        .iter()
        .rev()
        .take(2)
        .take_while(|&&c| c == PAD)
        .count();
    Ok(input.len() / 4 * 3 - pad)
}

/// Appends the data `input` encodes to `out`. On error `out` is left as it was.
///
/// # Errors
/// A [`Base64Error`] for the first rule `input` breaks (see the module doc).
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), Base64Error> {
    let start = out.len();
    out.resize(start + decoded_len(input)?, 0);
    match decode_to_slice(input, &mut out[start..]) {
        Ok(_) => Ok(()),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Writes the data `input` encodes at the start of `out` and returns its length.
///
/// # Errors
/// A [`Base64Error`] for the first rule `input` breaks, or [`Base64Error::OutputTooSmall`] if
/// `out` is shorter than [`decoded_len`]; what was written to `out` before the error is
/// unspecified.
pub fn decode_to_slice(input: &[u8], out: &mut [u8]) -> Result<usize, Base64Error> {
    let len = decoded_len(input)?;
    let out = out.get_mut(..len).ok_or(Base64Error::OutputTooSmall)?;
    let groups = input.len() / 4;
    // `len` is 3 per group less the padding, so there is one output chunk per group.
    for (g, (chars, bytes)) in input.chunks_exact(4).zip(out.chunks_mut(3)).enumerate() {
        let last = g + 1 == groups;
        let mut bits = 0u32;
        let mut pads = 0;
        for (i, &c) in chars.iter().enumerate() {
            let offset = g * 4 + i;
            let v = match value_of(c) {
                // A character after `=` means the `=` was not at the end.
                Some(_) if pads > 0 => return Err(Base64Error::InvalidPadding),
                Some(v) => v,
                // `=` only in the last two places of the last group.
                None if c == PAD && last && i >= 2 => {
                    pads += 1;
                    0
                }
                None if c == PAD => return Err(Base64Error::InvalidPadding),
                None => return Err(Base64Error::InvalidByte { offset }),
            };
            bits = bits << 6 | u32::from(v);
        }
        // RFC 4648 §3.5: the bits that padding stands for must be zero.
        let unused = match pads {
            0 => 0,
            1 => bits & 0xFF,
            _ => bits & 0xFFFF,
        };
        if unused != 0 {
            return Err(Base64Error::NonCanonical);
        }
        let decoded = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        bytes.copy_from_slice(&decoded[..bytes.len()]);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10.
    const VECTORS: [(&[u8], &[u8]); 7] = [
        (b"", b""),
        (b"f", b"Zg=="),
        (b"fo", b"Zm8="),
        (b"foo", b"Zm9v"),
        (b"foob", b"Zm9vYg=="),
        (b"fooba", b"Zm9vYmE="),
        (b"foobar", b"Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_vectors_both_ways() {
        for (data, text) in VECTORS {
            let mut out = b"prefix".to_vec();
            encode(data, &mut out);
            assert_eq!(&out[6..], text);
            let mut back = b"prefix".to_vec();
            decode(text, &mut back).unwrap();
            assert_eq!(&back[6..], data);
            assert_eq!(decoded_len(text), Ok(data.len()));
            assert_eq!(encoded_len(data.len()), Some(text.len()));
        }
    }

    #[test]
    fn every_byte_value_round_trips() {
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for n in 0..data.len() {
            let mut text = Vec::new();
            encode(&data[..n], &mut text);
            let mut back = Vec::new();
            decode(&text, &mut back).unwrap();
            assert_eq!(back, &data[..n]);
        }
    }

    #[test]
    fn slices_too_small() {
        let mut out = [0u8; 7];
        assert_eq!(encode_to_slice(b"foob", &mut out), None);
        assert_eq!(encode_to_slice(b"foo", &mut out), Some(4));
        assert_eq!(&out[..4], b"Zm9v");
        let mut out = [0u8; 3];
        assert_eq!(
            decode_to_slice(b"Zm9vYg==", &mut out),
            Err(Base64Error::OutputTooSmall)
        );
    }

    #[test]
    fn rejections() {
        use Base64Error::*;
        let cases: [(&[u8], Base64Error); 16] = [
            (b"Zg=", InvalidLength),
            (b"Zm9vY", InvalidLength),
            (b"Zm9v\r\nYg==", InvalidLength),
            (b"Zm 9", InvalidByte { offset: 2 }),
            (b"Zm9-", InvalidByte { offset: 3 }),
            (b"Zm9_", InvalidByte { offset: 3 }),
            (b"Zm9v\x80g==", InvalidByte { offset: 4 }),
            (b"====", InvalidPadding),
            (b"Z===", InvalidPadding),
            (b"Zg=a", InvalidPadding),
            (b"Zg==Zg==", InvalidPadding),
            (b"Zm=v", InvalidPadding),
            (b"Zh==", NonCanonical),
            (b"Zm9=", NonCanonical),
            (b"Zm+=", NonCanonical),
            (b"Zm9vYh==", NonCanonical),
        ];
        for (text, want) in cases {
            let mut out = b"kept".to_vec();
            assert_eq!(decode(text, &mut out), Err(want), "{text:?}");
            assert_eq!(out, b"kept", "{text:?}: output restored");
        }
    }
}
