//! SHA-1 (RFC 3174, FIPS 180-4), incremental ([`Sha1::update`], [`Sha1::finish`]) and one-shot
//! ([`sha1`]).
//!
//! **Only for the opening handshake.** The server proves it read the client's
//! `Sec-WebSocket-Key` by hashing it with a fixed GUID (RFC 6455 §4.2.2, step 5.4); nothing
//! about that needs collision resistance, which SHA-1 no longer has (practical collisions since
//! 2017). Do not use this module for signatures, integrity or anything an attacker could exploit
//! by finding two inputs with the same digest.
//!
//! The implementation follows RFC 3174 §6.1 (method 1: an 80-word schedule per block) and keeps
//! a partial block in the state, so input may arrive split anywhere.
//!
//! ```
//! use asycamore::ws::sha1::{Sha1, sha1};
//!
//! let mut h = Sha1::new();
//! h.update(b"ab");
//! h.update(b"c");
//! assert_eq!(h.finish(), sha1(b"abc"));
//! assert_eq!(sha1(b"abc")[..4], [0xa9, 0x99, 0x3e, 0x36]);
//! ```

/// Length of a SHA-1 digest in bytes (160 bits).
pub const DIGEST_LEN: usize = 20;

/// Length of one SHA-1 block in bytes (512 bits, RFC 3174 §4).
const BLOCK_LEN: usize = 64;

/// The initial hash value H0..H4 (RFC 3174 §6.1).
const INITIAL: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// An incremental SHA-1 computation: feed bytes with [`Sha1::update`] in pieces of any size, then
/// take the digest with [`Sha1::finish`]. Allocates nothing.
#[derive(Debug, Clone)]
pub struct Sha1 {
    /// The hash value after the last complete block.
    state: [u32; 5],
    /// The bytes of the current, incomplete block: `block[..buffered]`.
    block: [u8; BLOCK_LEN],
    /// How many bytes of `block` are filled (always below [`BLOCK_LEN`] between calls).
    buffered: usize,
    /// Message length so far in bytes. RFC 3174 §4 appends the length in bits modulo 2^64, so this
    /// wraps the same way (a message of 2^61 bytes or more is far beyond any handshake key).
    len: u64,
}

impl Default for Sha1 {
    fn default() -> Sha1 {
        Sha1::new()
    }
}

impl Sha1 {
    /// A computation over the empty message.
    pub fn new() -> Sha1 {
        Sha1 {
            state: INITIAL,
            block: [0; BLOCK_LEN],
            buffered: 0,
            len: 0,
        }
    }

    /// Appends `data` to the message.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        // Top up a partial block first.
        if self.buffered > 0 {
            let take = (BLOCK_LEN - self.buffered).min(data.len());
            self.block[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < BLOCK_LEN {
                return;
            }
            let block = self.block;
            compress(&mut self.state, &block);
            self.buffered = 0;
        }
        // Whole blocks straight from the input, then keep the tail.
        let mut blocks = data.chunks_exact(BLOCK_LEN);
        for block in &mut blocks {
            compress(&mut self.state, block);
        }
        let rest = blocks.remainder();
        self.block[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// Pads the message (RFC 3174 §4: a 1 bit, zeros, the 64-bit length in bits) and returns
    /// the digest, H0..H4 in big-endian order.
    pub fn finish(mut self) -> [u8; DIGEST_LEN] {
        let bits = self.len.wrapping_mul(8);
        let mut block = self.block;
        block[self.buffered] = 0x80;
        block[self.buffered + 1..].fill(0);
        // The length needs the last 8 bytes of a block: if they are taken, pad a whole extra one.
        if self.buffered + 1 > BLOCK_LEN - 8 {
            compress(&mut self.state, &block);
            block = [0; BLOCK_LEN];
        }
        block[BLOCK_LEN - 8..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut self.state, &block);

        let mut digest = [0; DIGEST_LEN];
        for (out, word) in digest.chunks_exact_mut(4).zip(self.state) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }
}

/// The SHA-1 digest of `data` in one call.
pub fn sha1(data: &[u8]) -> [u8; DIGEST_LEN] {
    let mut h = Sha1::new();
    h.update(data);
    h.finish()
}

/// Processes one 64-byte block into `state` (RFC 3174 §6.1, steps a–e).
fn compress(state: &mut [u32; 5], block: &[u8]) {
    debug_assert_eq!(block.len(), BLOCK_LEN);
    let mut w = [0u32; 80];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    for t in 16..80 {
        w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
    }

    let [mut a, mut b, mut c, mut d, mut e] = *state;
    for (t, &word) in w.iter().enumerate() {
        // The round functions f(t;B,C,D) and constants K(t) of RFC 3174 §5.
        let (f, k) = match t {
            0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
            20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6),
        };
        let temp = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(word)
            .wrapping_add(k);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = temp;
    }
    for (h, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *h = h.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(digest: [u8; DIGEST_LEN]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 3174 §7.3's four tests: (input, repeat count, digest).
    const RFC3174: [(&[u8], usize, &str); 4] = [
        (b"abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            1,
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
        ),
        (b"a", 1_000_000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
        (
            b"0123456701234567012345670123456701234567012345670123456701234567",
            10,
            "dea356a2cddd90c7a7ecedc5ebb563934f460452",
        ),
    ];

    #[test]
    fn rfc3174_vectors_fed_in_repeats() {
        for (input, repeat, want) in RFC3174 {
            let mut h = Sha1::new();
            for _ in 0..repeat {
                h.update(input);
            }
            assert_eq!(hex(h.finish()), want, "{repeat} x {input:?}");
        }
    }

    #[test]
    fn empty_message() {
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn padding_at_every_length_around_a_block() {
        // 55 bytes is the most that pads into one block; 56..=63 need a second one; 64 is exact.
        // Incremental (byte by byte) and one-shot must agree at each length.
        let data: Vec<u8> = (0..130u8).collect();
        for n in 0..data.len() {
            let mut h = Sha1::new();
            for b in &data[..n] {
                h.update(std::slice::from_ref(b));
            }
            assert_eq!(h.finish(), sha1(&data[..n]), "length {n}");
        }
    }
}
