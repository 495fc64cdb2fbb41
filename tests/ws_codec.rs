//! The WebSocket codec (`asycamore::ws`): the RFC vectors (RFC 3174 SHA-1, RFC 4648 base64,
//! RFC 6455's accept key and example frames), the handshake's refusals with their statuses, the
//! frame and message decoders fed at every split point and byte by byte, every error with its
//! close code, both sides of every limit, the UTF-8 validator against `std`, and a property loop
//! over pseudo-random frames from the encoder, masked like a client, through the decoder.

use asycamore::detect::{HeadDetector, Limits, RequestHead, Version};
use asycamore::executor::Step;
use asycamore::ws::base64::{self, Base64Error};
use asycamore::ws::sha1::{Sha1, sha1};
use asycamore::ws::{
    CloseCode, FrameDecoder, FrameError, FrameEvent, FrameHeader, HandshakeError,
    MAX_CONTROL_PAYLOAD, MessageDecoder, MessageError, MessageEvent, MessageKind, Opcode,
    UpgradeRequest, Utf8Validator, accept_key, apply_mask, header_len, validate_upgrade,
    write_close, write_frame, write_frame_masked, write_header, write_header_masked, write_ping,
    write_pong,
};

// ---------------------------------------------------------------------------------------------
// Helpers

/// xorshift64* (Vigna): small, deterministic, good enough to pick sizes and split points.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn key(&mut self) -> [u8; 4] {
        (self.next() as u32).to_be_bytes()
    }
}

/// Renders bytes for assertion messages without flooding them.
fn lossy(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
    if bytes.len() > 80 {
        format!("{shown:?}... ({} bytes)", bytes.len())
    } else {
        format!("{shown:?}")
    }
}

/// An event made owned, so runs over different splits can be compared. Payload pieces are
/// merged: how a payload is cut depends on the split, what it says does not.
trait Owned: Clone + PartialEq + std::fmt::Debug {
    /// Appends `event`, merging payload pieces into the previous one.
    fn push_into(events: &mut Vec<Self>, event: Self);
    /// True for an event after which the driver stops (a close).
    fn is_final(&self) -> bool;
}

/// A frame event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    Start(FrameHeader),
    Payload(Vec<u8>),
    End,
}

impl Owned for Frame {
    fn push_into(events: &mut Vec<Frame>, event: Frame) {
        match (events.last_mut(), event) {
            (Some(Frame::Payload(have)), Frame::Payload(more)) => have.extend(more),
            (_, event) => events.push(event),
        }
    }

    fn is_final(&self) -> bool {
        false
    }
}

fn own_frame(event: FrameEvent<'_>) -> Frame {
    match event {
        FrameEvent::Start(header) => Frame::Start(header),
        FrameEvent::Payload(p) => {
            assert!(!p.is_empty(), "payload pieces are never empty");
            Frame::Payload(p.to_vec())
        }
        FrameEvent::End => Frame::End,
    }
}

/// A message event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Msg {
    DataStart {
        kind: MessageKind,
        first: bool,
        fin: bool,
        len: u64,
    },
    Data(Vec<u8>),
    DataEnd {
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

impl Owned for Msg {
    fn push_into(events: &mut Vec<Msg>, event: Msg) {
        match (events.last_mut(), event) {
            (Some(Msg::Data(have)), Msg::Data(more)) => have.extend(more),
            (_, event) => events.push(event),
        }
    }

    fn is_final(&self) -> bool {
        matches!(self, Msg::Close(..))
    }
}

fn own_msg(event: MessageEvent<'_>) -> Msg {
    match event {
        MessageEvent::DataStart {
            kind,
            first,
            fin,
            len,
        } => Msg::DataStart {
            kind,
            first,
            fin,
            len,
        },
        MessageEvent::Data(p) => {
            assert!(!p.is_empty(), "data pieces are never empty");
            Msg::Data(p.to_vec())
        }
        MessageEvent::DataEnd { fin } => Msg::DataEnd { fin },
        MessageEvent::Ping(p) => Msg::Ping(p.as_bytes().to_vec()),
        MessageEvent::Pong(p) => Msg::Pong(p.as_bytes().to_vec()),
        MessageEvent::Close(c) => Msg::Close(c.code().map(|c| c.0), c.reason().to_owned()),
    }
}

/// What decoding a growing input came to.
#[derive(Debug, Clone, PartialEq)]
struct Run<E> {
    events: Vec<E>,
    /// Bytes consumed when the driver stopped.
    consumed: usize,
}

/// Feeds `input` to `decode` the way a connection would: its buffer holds what has arrived
/// (up to each of `ends` in turn, then everything) and was not consumed. Stops at a final event,
/// or when everything has arrived and the decoder wants more. Checks the calling convention on
/// the way: nothing consumed past what arrived, and `WouldBlock` only once all of it is consumed.
fn run_growing<E: Owned, Err>(
    mut decode: impl FnMut(&[u8]) -> Result<(usize, Step<E>), Err>,
    input: &[u8],
    ends: impl IntoIterator<Item = usize>,
) -> Result<Run<E>, Err> {
    let mut ends = ends.into_iter().chain([input.len()]);
    let mut events = Vec::new();
    let (mut pos, mut avail) = (0, 0);
    loop {
        let (used, step) = decode(&input[pos..avail])?;
        pos += used;
        assert!(pos <= avail, "consumed past the input");
        match step {
            Step::Ready(event) => {
                let last = event.is_final();
                E::push_into(&mut events, event);
                if last {
                    return Ok(Run {
                        events,
                        consumed: pos,
                    });
                }
            }
            Step::WouldBlock => {
                assert_eq!(pos, avail, "WouldBlock leaves nothing in the buffer");
                if avail == input.len() {
                    return Ok(Run {
                        events,
                        consumed: pos,
                    });
                }
                avail = ends.next().unwrap_or(input.len()).clamp(avail, input.len());
            }
        }
    }
}

/// Split points to try for `input`: all of them for inputs up to 4 KiB, else every point in the
/// first and last 64 bytes and a spread in between (the middle of a long payload is all alike).
fn split_points(len: usize) -> Vec<usize> {
    if len <= 4096 {
        (0..=len).collect()
    } else {
        (0..64)
            .chain((64..len - 64).step_by(997))
            .chain(len - 64..=len)
            .collect()
    }
}

/// Runs `decode` (a fresh decoder each time, from `fresh`) whole, at every split point and one
/// byte at a time; asserts every way gives the one-shot answer, and returns it.
#[track_caller]
fn shotgun<E: Owned, Err: PartialEq + std::fmt::Debug, D>(
    fresh: impl Fn() -> D,
    decode: impl Fn(&mut D, &[u8]) -> Result<(usize, Step<E>), Err>,
    input: &[u8],
) -> Result<Run<E>, Err> {
    let once = {
        let mut d = fresh();
        run_growing(|b| decode(&mut d, b), input, [])
    };
    for split in split_points(input.len()) {
        let mut d = fresh();
        assert_eq!(
            run_growing(|b| decode(&mut d, b), input, [split]),
            once,
            "split at {split} of {}",
            lossy(input)
        );
    }
    let mut d = fresh();
    assert_eq!(
        run_growing(|b| decode(&mut d, b), input, 0..input.len()),
        once,
        "byte by byte: {}",
        lossy(input)
    );
    once
}

fn frames_shotgun(max: u64, input: &[u8]) -> Result<Run<Frame>, FrameError> {
    shotgun(
        || FrameDecoder::new(max),
        |d, b| d.decode(b).map(|(n, s)| (n, s.map(own_frame))),
        input,
    )
}

fn messages_shotgun(max: u64, input: &[u8]) -> Result<Run<Msg>, MessageError> {
    shotgun(
        || MessageDecoder::new(max),
        |d, b| d.decode(b).map(|(n, s)| (n, s.map(own_msg))),
        input,
    )
}

/// The events of a complete, valid stream of messages, checked at every split.
#[track_caller]
fn messages_ok(input: &[u8]) -> Vec<Msg> {
    let run = messages_shotgun(asycamore::ws::MAX_MESSAGE, input)
        .unwrap_or_else(|e| panic!("{}: {e:?}", lossy(input)));
    assert_eq!(run.consumed, input.len(), "{}", lossy(input));
    run.events
}

/// Asserts that `input` fails with `want` (and its close code) at every split.
#[track_caller]
fn messages_err(max: u64, input: &[u8], want: MessageError, code: u16) {
    assert_eq!(messages_shotgun(max, input), Err(want), "{}", lossy(input));
    assert_eq!(want.close_code(), CloseCode(code), "{want:?}");
}

/// A client frame (masked with a fixed key).
fn client(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame_masked(&mut out, fin, opcode, payload, [0x9a, 0x0b, 0x5c, 0xe7]);
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn data_start(kind: MessageKind, first: bool, fin: bool, len: usize) -> Msg {
    Msg::DataStart {
        kind,
        first,
        fin,
        len: len as u64,
    }
}

// ---------------------------------------------------------------------------------------------
// SHA-1 (RFC 3174 §7.3)

const TEST1: &[u8] = b"abc";
const TEST2A: &[u8] = b"abcdbcdecdefdefgefghfghighijhi";
const TEST2B: &[u8] = b"jkijkljklmklmnlmnomnopnopq";
const TEST4: &[u8] = b"0123456701234567012345670123456701234567012345670123456701234567";

fn hex(digest: [u8; 20]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[track_caller]
fn sha1_at_every_split(input: &[u8], want: &str) {
    assert_eq!(hex(sha1(input)), want);
    for split in 0..=input.len() {
        let mut h = Sha1::new();
        h.update(&input[..split]);
        h.update(&input[split..]);
        assert_eq!(hex(h.finish()), want, "split at {split}");
    }
    for (a, b) in [(1, 2), (3, 60), (63, 64), (64, 65), (10, 129)] {
        let (a, b) = (a.min(input.len()), b.min(input.len()));
        let mut h = Sha1::new();
        h.update(&input[..a]);
        h.update(&input[a..b]);
        h.update(&input[b..]);
        assert_eq!(hex(h.finish()), want, "splits at {a} and {b}");
    }
    let mut h = Sha1::new();
    for b in input {
        h.update(std::slice::from_ref(b));
    }
    assert_eq!(hex(h.finish()), want, "byte by byte");
}

#[test]
fn sha1_rfc3174_test1_and_test2_at_every_split() {
    sha1_at_every_split(TEST1, "a9993e364706816aba3e25717850c26c9cd0d89d");
    let test2 = [TEST2A, TEST2B].concat();
    sha1_at_every_split(&test2, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    // As RFC 3174's test program feeds it: TEST2a, then TEST2b.
    let mut h = Sha1::new();
    h.update(TEST2A);
    h.update(TEST2B);
    assert_eq!(hex(h.finish()), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

#[test]
fn sha1_rfc3174_test4_ten_repeats_at_every_split() {
    sha1_at_every_split(
        &TEST4.repeat(10),
        "dea356a2cddd90c7a7ecedc5ebb563934f460452",
    );
}

#[test]
fn sha1_rfc3174_test3_a_million_a() {
    let want = "34aa973cd4c4daa4f61eeb2bdbad27316534016f";
    let million = vec![b'a'; 1_000_000];
    assert_eq!(hex(sha1(&million)), want);
    // One byte a thousand times a thousand, as RFC 3174 repeats TEST3; and odd piece sizes.
    for piece in [1, 7, 1000, 4099] {
        let mut h = Sha1::new();
        for chunk in million.chunks(piece) {
            h.update(chunk);
        }
        assert_eq!(hex(h.finish()), want, "pieces of {piece}");
    }
}

// ---------------------------------------------------------------------------------------------
// Base64 (RFC 4648)

#[test]
fn base64_rfc4648_section10_vectors_both_ways() {
    let vectors: [(&[u8], &[u8]); 7] = [
        (b"", b""),
        (b"f", b"Zg=="),
        (b"fo", b"Zm8="),
        (b"foo", b"Zm9v"),
        (b"foob", b"Zm9vYg=="),
        (b"fooba", b"Zm9vYmE="),
        (b"foobar", b"Zm9vYmFy"),
    ];
    for (data, text) in vectors {
        let mut encoded = Vec::new();
        base64::encode(data, &mut encoded);
        assert_eq!(encoded, text, "encode {data:?}");
        let mut decoded = Vec::new();
        base64::decode(text, &mut decoded).unwrap();
        assert_eq!(decoded, data, "decode {text:?}");
    }
}

#[test]
fn base64_decoder_refuses_what_the_encoder_never_writes() {
    use Base64Error::*;
    let cases: [(&[u8], Base64Error); 13] = [
        (b"Zg", InvalidLength),
        (b"Zm9vYg=", InvalidLength),
        (b"Zm9v Yg==", InvalidLength),
        (b"Zm9v\nYg=", InvalidByte { offset: 4 }),
        (b"Zm9vYg-_", InvalidByte { offset: 6 }),
        (b"Zm9vYg.=", InvalidByte { offset: 6 }),
        (b"=m9v", InvalidPadding),
        (b"Zm9vY===", InvalidPadding),
        (b"Zm==Zm9v", InvalidPadding),
        (b"Zm9vYg=x", InvalidPadding),
        (b"Zm9vYh==", NonCanonical),
        (b"Zm9vYmF=", NonCanonical),
        (b"Zm9vYmG=", NonCanonical),
    ];
    for (text, want) in cases {
        let mut out = Vec::new();
        assert_eq!(base64::decode(text, &mut out), Err(want), "{}", lossy(text));
        assert!(out.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// The opening handshake (RFC 6455 §4.2)

const SAMPLE_KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";
const SAMPLE_ACCEPT: &[u8; 28] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn good_request() -> UpgradeRequest<'static> {
    UpgradeRequest {
        method: b"GET",
        version: Version::Http11,
        connection: Some(b"Upgrade"),
        upgrade: Some(b"websocket"),
        sec_websocket_version: Some(b"13"),
        sec_websocket_key: Some(SAMPLE_KEY),
    }
}

#[test]
fn accept_key_rfc6455_section_1_3() {
    assert_eq!(&accept_key(SAMPLE_KEY), SAMPLE_ACCEPT);
    assert_eq!(good_request().validate().as_ref(), Ok(SAMPLE_ACCEPT));
}

#[test]
fn handshake_from_a_parsed_request_head() {
    // The RFC's example request (§1.2), as the connection would parse it.
    let buf = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
                Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
                Sec-WebSocket-Version: 13\r\n\r\n";
    let mut detector = HeadDetector::new(Limits::default());
    let mut head = RequestHead::new();
    assert!(matches!(
        detector.detect(buf, &mut head),
        Ok((_, Step::Ready(())))
    ));
    let accept = validate_upgrade(head.method_bytes(buf), head.version(), head.headers(buf));
    assert_eq!(accept.as_ref(), Ok(SAMPLE_ACCEPT));
}

#[test]
fn handshake_list_fields_in_any_case_and_on_several_lines() {
    let fields: [(&str, &[u8]); 6] = [
        ("connection", b"keep-alive"),
        ("UPGRADE", b"h2c, WebSocket"),
        ("Connection", b" , UPGRADE "),
        ("sec-websocket-version", b"13"),
        ("Sec-Websocket-Key", b" dGhlIHNhbXBsZSBub25jZQ== "),
        ("X-Other", b"ignored"),
    ];
    assert_eq!(
        validate_upgrade(b"GET", Version::Http11, fields).as_ref(),
        Ok(SAMPLE_ACCEPT)
    );
}

#[test]
fn handshake_refusals_with_status_and_fields() {
    use HandshakeError::*;
    let good = good_request();
    let cases: Vec<(UpgradeRequest<'static>, HandshakeError, u16)> = vec![
        (
            UpgradeRequest {
                method: b"POST",
                ..good
            },
            MethodNotGet,
            400,
        ),
        (
            UpgradeRequest {
                method: b"get",
                ..good
            },
            MethodNotGet,
            400,
        ),
        (
            UpgradeRequest {
                version: Version::Http10,
                ..good
            },
            HttpVersion,
            400,
        ),
        (
            UpgradeRequest {
                upgrade: None,
                ..good
            },
            MissingUpgrade,
            426,
        ),
        (
            UpgradeRequest {
                upgrade: Some(b"websocket/13"),
                ..good
            },
            MissingUpgrade,
            426,
        ),
        (
            UpgradeRequest {
                connection: None,
                ..good
            },
            MissingConnectionUpgrade,
            400,
        ),
        (
            UpgradeRequest {
                connection: Some(b"keep-alive, upgrades"),
                ..good
            },
            MissingConnectionUpgrade,
            400,
        ),
        (
            UpgradeRequest {
                sec_websocket_version: None,
                ..good
            },
            MissingVersion,
            400,
        ),
        (
            UpgradeRequest {
                sec_websocket_version: Some(b"8"),
                ..good
            },
            UnsupportedVersion,
            426,
        ),
        (
            UpgradeRequest {
                sec_websocket_version: Some(b"13, 8"),
                ..good
            },
            UnsupportedVersion,
            426,
        ),
        (
            UpgradeRequest {
                sec_websocket_key: None,
                ..good
            },
            MissingKey,
            400,
        ),
        // 15 and 17 bytes, base64 without its padding, a URL-safe alphabet, a space inside.
        (
            UpgradeRequest {
                sec_websocket_key: Some(b"AAAAAAAAAAAAAAAAAAAA"),
                ..good
            },
            InvalidKey,
            400,
        ),
        (
            UpgradeRequest {
                sec_websocket_key: Some(b"AAAAAAAAAAAAAAAAAAAAAAA="),
                ..good
            },
            InvalidKey,
            400,
        ),
        (
            UpgradeRequest {
                sec_websocket_key: Some(b"dGhlIHNhbXBsZSBub25jZQ"),
                ..good
            },
            InvalidKey,
            400,
        ),
        (
            UpgradeRequest {
                sec_websocket_key: Some(b"dGhlIHNhbXBsZSBub25jZ_=="),
                ..good
            },
            InvalidKey,
            400,
        ),
        (
            UpgradeRequest {
                sec_websocket_key: Some(b"dGhlIHNhbXBs ZSBub25jZQ=="),
                ..good
            },
            InvalidKey,
            400,
        ),
    ];
    for (request, want, status) in cases {
        assert_eq!(request.validate(), Err(want), "{request:?}");
        assert_eq!(want.status(), status, "{want:?}");
    }
    // What the refusals must say besides the status (RFC 9110 §15.5.22, RFC 6455 §4.4).
    let upgrade_required = [
        ("Upgrade", "websocket"),
        ("Connection", "upgrade"),
        ("Sec-WebSocket-Version", "13"),
    ];
    assert_eq!(UnsupportedVersion.headers(), upgrade_required);
    assert_eq!(MissingUpgrade.headers(), upgrade_required);
    assert_eq!(MissingVersion.headers(), [("Sec-WebSocket-Version", "13")]);
    assert_eq!(InvalidKey.headers(), []);
}

#[test]
fn handshake_refuses_repeated_key_and_version() {
    let base: [(&str, &[u8]); 4] = [
        ("Upgrade", b"websocket"),
        ("Connection", b"upgrade"),
        ("Sec-WebSocket-Version", b"13"),
        ("Sec-WebSocket-Key", SAMPLE_KEY),
    ];
    let with = |extra: (&'static str, &'static [u8])| {
        validate_upgrade(b"GET", Version::Http11, base.into_iter().chain([extra]))
    };
    assert_eq!(
        with(("sec-websocket-key", SAMPLE_KEY)),
        Err(HandshakeError::DuplicateKey)
    );
    assert_eq!(
        with(("Sec-WebSocket-Version", b"13")),
        Err(HandshakeError::DuplicateVersion)
    );
    assert_eq!(HandshakeError::DuplicateKey.status(), 400);
}

// ---------------------------------------------------------------------------------------------
// Frames

#[test]
fn frames_at_every_split_point() {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let body200: Vec<u8> = (0..200u8).collect();
    let body64k: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut input = Vec::new();
    // RFC 6455 §5.7's masked "Hello".
    input.extend_from_slice(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    write_frame_masked(&mut input, true, Opcode::Binary, &[], key); // empty
    write_frame_masked(&mut input, false, Opcode::Binary, &body200, key); // 16-bit length
    write_frame_masked(&mut input, true, Opcode::Ping, b"", key);
    write_frame_masked(&mut input, true, Opcode::Continuation, &[1; 125], key); // 7-bit max
    write_frame_masked(&mut input, true, Opcode::Pong, &[2; 125], key); // longest control
    write_frame_masked(&mut input, true, Opcode::Close, b"\x03\xe8bye", key);
    let short = input.clone();
    write_frame_masked(&mut input, true, Opcode::Binary, &body64k, key); // 64-bit length

    let header = |fin, opcode, len: usize| {
        Frame::Start(FrameHeader {
            fin,
            opcode,
            len: len as u64,
        })
    };
    let mut want = vec![
        header(true, Opcode::Text, 5),
        Frame::Payload(b"Hello".to_vec()),
        Frame::End,
        header(true, Opcode::Binary, 0),
        Frame::End,
        header(false, Opcode::Binary, 200),
        Frame::Payload(body200.clone()),
        Frame::End,
        header(true, Opcode::Ping, 0),
        Frame::End,
        header(true, Opcode::Continuation, 125),
        Frame::Payload(vec![1; 125]),
        Frame::End,
        header(true, Opcode::Pong, 125),
        Frame::Payload(vec![2; 125]),
        Frame::End,
        header(true, Opcode::Close, 5),
        Frame::Payload(b"\x03\xe8bye".to_vec()),
        Frame::End,
    ];
    let run = frames_shotgun(u64::MAX, &short).unwrap();
    assert_eq!(run.events, want);
    assert_eq!(run.consumed, short.len());

    want.extend([
        header(true, Opcode::Binary, 65536),
        Frame::Payload(body64k),
        Frame::End,
    ]);
    let run = frames_shotgun(65536, &input).unwrap();
    assert_eq!(run.events, want);
    assert_eq!(run.consumed, input.len());
}

#[test]
fn frame_errors_with_close_codes() {
    use FrameError::*;
    let mut cases: Vec<(Vec<u8>, FrameError)> = vec![
        (vec![0x91, 0x80], ReservedBits),
        (vec![0xA2, 0x80], ReservedBits),
        (vec![0xC1, 0x80], ReservedBits),
        (vec![0x09, 0x80], FragmentedControl),
        (vec![0x08, 0x80], FragmentedControl),
        (vec![0x0A, 0x80], FragmentedControl),
        (vec![0x89, 0xFE, 0x00, 0x7E], ControlTooLong),
        (vec![0x88, 0xFF], ControlTooLong),
        (vec![0x8A, 0xFE], ControlTooLong),
        (vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o'], Unmasked),
        (vec![0x88, 0x00], Unmasked),
        (vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], LengthHighBit),
        (vec![0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], LengthHighBit),
        (vec![0x82, 0xFE, 0x00, 0x00], NonMinimalLength),
        (vec![0x82, 0xFE, 0x00, 0x7D], NonMinimalLength),
        (
            vec![0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF],
            NonMinimalLength,
        ),
        (
            vec![0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0x7D],
            NonMinimalLength,
        ),
    ];
    for opcode in (0x3..=0x7).chain(0xB..=0xF) {
        cases.push((vec![0x80 | opcode, 0x80], UnknownOpcode));
    }
    for (input, want) in cases {
        assert_eq!(frames_shotgun(u64::MAX, &input), Err(want), "{input:02x?}");
        assert_eq!(want.close_code(), CloseCode::PROTOCOL_ERROR, "{want:?}");
    }
    assert_eq!(TooLarge.close_code(), CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn frame_errors_are_reported_at_the_byte_that_decides_them() {
    // Each input ends with the deciding byte: without it, the decoder only wants more.
    let cases: [(&[u8], FrameError); 5] = [
        (&[0xF1], FrameError::ReservedBits),
        (&[0x89, 0xFE], FrameError::ControlTooLong),
        (&[0x82, 0x05], FrameError::Unmasked),
        (&[0x82, 0xFF, 0x80], FrameError::LengthHighBit),
        (&[0x82, 0xFE, 0x00, 0x10], FrameError::NonMinimalLength),
    ];
    for (input, want) in cases {
        let (last, before) = input.split_last().unwrap();
        let mut d = FrameDecoder::default();
        assert_eq!(d.decode(before), Ok((before.len(), Step::WouldBlock)));
        assert_eq!(d.decode(&[*last]), Err(want), "{input:02x?}");
    }
}

#[test]
fn frame_length_limits_both_sides() {
    let key = [1, 2, 3, 4];
    let frame = |opcode, len: usize| {
        let mut out = Vec::new();
        write_header_masked(&mut out, true, opcode, len as u64, key);
        out
    };
    // The payload limit, at 7-, 16- and 64-bit lengths: at the limit the header is accepted.
    for limit in [100usize, 300, 70_000] {
        let run = frames_shotgun(limit as u64, &frame(Opcode::Binary, limit)).unwrap();
        assert_eq!(
            run.events,
            [Frame::Start(FrameHeader {
                fin: true,
                opcode: Opcode::Binary,
                len: limit as u64
            })]
        );
        assert_eq!(
            frames_shotgun(limit as u64, &frame(Opcode::Binary, limit + 1)),
            Err(FrameError::TooLarge),
            "{limit}"
        );
    }
    // Control frames: 125 passes even with a smaller data limit, 126 never does.
    assert!(frames_shotgun(10, &frame(Opcode::Ping, MAX_CONTROL_PAYLOAD)).is_ok());
    assert_eq!(
        frames_shotgun(u64::MAX, &frame(Opcode::Ping, MAX_CONTROL_PAYLOAD + 1)),
        Err(FrameError::ControlTooLong)
    );
    // The smallest length of each width, and the largest 64-bit length.
    for len in [126u64, 0xFFFF, 0x1_0000, (1 << 63) - 1] {
        let mut input = Vec::new();
        write_header_masked(&mut input, false, Opcode::Text, len, key);
        let run = frames_shotgun(u64::MAX, &input).unwrap();
        assert_eq!(
            run.events,
            [Frame::Start(FrameHeader {
                fin: false,
                opcode: Opcode::Text,
                len
            })],
            "{len}"
        );
        assert_eq!(input.len(), header_len(len) + 4);
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

#[test]
fn messages_at_every_split_point() {
    use MessageKind::*;
    let input = cat(&[
        client(true, Opcode::Text, "¡Hola!".as_bytes()),
        client(true, Opcode::Binary, &[0, 255, 1]),
        client(true, Opcode::Text, b""),
        // A fragmented text message with a ping between its fragments (Autobahn 5.6-5.8), the
        // "é" of "café" split between the fragments, and an empty middle fragment.
        client(false, Opcode::Text, b"caf\xc3"),
        client(true, Opcode::Ping, b"ping!"),
        client(false, Opcode::Continuation, b""),
        client(true, Opcode::Pong, b""),
        client(true, Opcode::Continuation, b"\xa9 \xf0\x9f\x98\x80"),
        client(true, Opcode::Close, b"\x03\xe8Goodbye \xe2\x9c\x8c"),
    ]);
    let events = messages_ok(&input);
    assert_eq!(
        events,
        [
            data_start(Text, true, true, 7),
            Msg::Data("¡Hola!".into()),
            Msg::DataEnd { fin: true },
            data_start(Binary, true, true, 3),
            Msg::Data(vec![0, 255, 1]),
            Msg::DataEnd { fin: true },
            data_start(Text, true, true, 0),
            Msg::DataEnd { fin: true },
            data_start(Text, true, false, 4),
            Msg::Data(b"caf\xc3".to_vec()),
            Msg::DataEnd { fin: false },
            Msg::Ping(b"ping!".to_vec()),
            data_start(Text, false, false, 0),
            Msg::DataEnd { fin: false },
            Msg::Pong(vec![]),
            data_start(Text, false, true, 6),
            Msg::Data(b"\xa9 \xf0\x9f\x98\x80".to_vec()),
            Msg::DataEnd { fin: true },
            Msg::Close(Some(1000), "Goodbye ✌".into()),
        ]
    );
}

#[test]
fn a_large_message_streams_in_pieces() {
    // 1 MiB in 4 fragments, read through a 16 KiB buffer: never more than 16 KiB at a time.
    let body: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    let quarter = body.len() / 4;
    let mut input = Vec::new();
    for (i, fragment) in body.chunks(quarter).enumerate() {
        let opcode = if i == 0 {
            Opcode::Binary
        } else {
            Opcode::Continuation
        };
        write_frame_masked(&mut input, i == 3, opcode, fragment, [i as u8, 7, 8, 9]);
    }
    let mut d = MessageDecoder::default();
    let mut received = Vec::new();
    let mut ends = 0;
    let mut at = 0;
    // Until the last fragment's end, which comes after its last byte without needing more.
    while ends < 4 {
        let window = &input[at..input.len().min(at + 16 * 1024)];
        let (used, step) = d.decode(window).unwrap();
        at += used;
        match step {
            Step::Ready(MessageEvent::Data(p)) => {
                assert!(p.len() <= 16 * 1024);
                p.unmask_into(&mut received);
            }
            Step::Ready(MessageEvent::DataEnd { fin }) => {
                ends += 1;
                assert_eq!(fin, ends == 4);
            }
            Step::Ready(MessageEvent::DataStart { len, .. }) => assert_eq!(len, quarter as u64),
            Step::Ready(other) => panic!("{other:?}"),
            Step::WouldBlock => {
                assert_eq!(used, window.len());
                assert!(at < input.len(), "the decoder wants more than the message");
            }
        }
    }
    assert_eq!(at, input.len());
    assert_eq!(ends, 4);
    assert!(received == body);
    assert!(d.is_idle());
}

#[test]
fn message_errors_with_close_codes() {
    use MessageError::*;
    let max = asycamore::ws::MAX_MESSAGE;
    let hello = client(true, Opcode::Text, b"hello");
    let cases: Vec<(Vec<u8>, MessageError, u16)> = vec![
        // §5.4: continuation with nothing to continue (Autobahn 5.9-5.11), also after a
        // finished message.
        (
            client(true, Opcode::Continuation, b"x"),
            UnexpectedContinuation,
            1002,
        ),
        (
            cat(&[hello.clone(), client(false, Opcode::Continuation, b"x")]),
            UnexpectedContinuation,
            1002,
        ),
        // A new message inside a fragmented one.
        (
            cat(&[
                client(false, Opcode::Text, b"a"),
                client(true, Opcode::Text, b"b"),
            ]),
            ExpectedContinuation,
            1002,
        ),
        (
            cat(&[
                client(false, Opcode::Binary, b"a"),
                client(true, Opcode::Ping, b""),
                client(true, Opcode::Binary, b"b"),
            ]),
            ExpectedContinuation,
            1002,
        ),
        // §8.1: text that is not UTF-8, in a whole frame and across fragments.
        (
            client(
                true,
                Opcode::Text,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            ),
            InvalidUtf8,
            1007,
        ),
        (
            cat(&[
                client(false, Opcode::Text, b"ok \xf0\x90"),
                client(true, Opcode::Continuation, b"\x28\x80"),
            ]),
            InvalidUtf8,
            1007,
        ),
        // A code point left unfinished by the final fragment.
        (
            cat(&[
                client(false, Opcode::Text, b"ok"),
                client(true, Opcode::Continuation, b"\xe2\x82"),
            ]),
            InvalidUtf8,
            1007,
        ),
        // Close frames (§5.5.1, §7.4): one byte, reserved codes, a reason that is not UTF-8
        // (Autobahn 7.3.2, 7.9.x, 7.5.1).
        (client(true, Opcode::Close, b"\x03"), CloseTooShort, 1002),
        (
            client(true, Opcode::Close, b"\x03\xed"),
            InvalidCloseCode,
            1002,
        ),
        (
            client(true, Opcode::Close, b"\x03\xe8\xce\xba\xed\xa0\x80"),
            InvalidCloseReason,
            1007,
        ),
        // Framing errors come through with their own codes.
        (
            vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o'],
            Frame(FrameError::Unmasked),
            1002,
        ),
        (
            cat(&[hello, vec![0x83, 0x80, 0, 0, 0, 0]]),
            Frame(FrameError::UnknownOpcode),
            1002,
        ),
    ];
    for (input, want, code) in cases {
        messages_err(max, &input, want, code);
    }
}

#[test]
fn message_size_limit_both_sides() {
    let limit = 1000;
    // A single frame at the limit, and one byte over.
    let at = client(true, Opcode::Binary, &[7; 1000]);
    assert!(messages_shotgun(limit, &at).is_ok());
    messages_err(
        limit,
        &client(true, Opcode::Binary, &[7; 1001]),
        MessageError::Frame(FrameError::TooLarge),
        1009,
    );
    // Fragments adding up to the limit, and one byte over, with control frames between them
    // (which do not count).
    let fragments = |last: usize| {
        cat(&[
            client(false, Opcode::Text, &[b'a'; 600]),
            client(true, Opcode::Ping, &[0; 125]),
            client(true, Opcode::Continuation, &vec![b'b'; last]),
        ])
    };
    let run = messages_shotgun(limit, &fragments(400)).unwrap();
    assert_eq!(run.events.last(), Some(&Msg::DataEnd { fin: true }));
    messages_err(limit, &fragments(401), MessageError::TooLarge, 1009);
    // The count restarts with each message.
    let two = cat(&[at.clone(), at]);
    assert!(messages_shotgun(limit, &two).is_ok());
}

#[test]
fn utf8_fails_fast_at_the_first_invalid_byte() {
    // Each case: a text payload and the index of the byte that makes it certainly invalid.
    let cases: [(&[u8], usize); 10] = [
        (b"abc\xff", 3),
        (b"\xc0\xaf", 0),         // overlong "/"
        (b"\xe0\x80\xaf", 1),     // overlong, 3 bytes
        (b"\xf0\x80\x80\xaf", 1), // overlong, 4 bytes
        (b"ok\xed\xa0\x80", 3),   // U+D800
        (b"\xed\xbf\xbf", 1),     // U+DFFF
        (b"\xf4\x90\x80\x80", 1), // U+110000
        (b"\xf5\x80\x80\x80", 0), // above U+10FFFF from its first byte
        (b"\xe2\x82\x28", 2),     // a truncated sequence, then ASCII
        (
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            12,
        ), // Autobahn 6.4.x
    ];
    for (text, bad) in cases {
        // One frame whose payload arrives in two reads: all bytes before the bad one are
        // accepted (handed out), the bad one fails the message at once.
        let frame = client(true, Opcode::Text, text);
        let payload_at = frame.len() - text.len();
        let mut d = MessageDecoder::default();
        let mut at = 0;
        let upto = payload_at + bad;
        loop {
            let (used, step) = d.decode(&frame[at..upto]).unwrap();
            at += used;
            if step == Step::WouldBlock {
                break;
            }
        }
        assert_eq!(at, upto, "{}", lossy(text));
        assert_eq!(
            d.decode(&frame[upto..upto + 1]),
            Err(MessageError::InvalidUtf8),
            "{}",
            lossy(text)
        );
    }
}

#[test]
fn utf8_unfinished_code_point_is_fine_between_fragments_but_not_at_the_end() {
    // "€" (E2 82 AC) cut after each of its bytes, between a non-final and a final fragment.
    let euro = "€".as_bytes();
    for cut in 1..euro.len() {
        let input = cat(&[
            client(false, Opcode::Text, &euro[..cut]),
            client(true, Opcode::Continuation, &euro[cut..]),
        ]);
        let events = messages_ok(&input);
        assert_eq!(events.last(), Some(&Msg::DataEnd { fin: true }));
        // The same first fragment, but final: unfinished at the end of the message.
        messages_err(
            u64::MAX,
            &client(true, Opcode::Text, &euro[..cut]),
            MessageError::InvalidUtf8,
            1007,
        );
    }
}

#[test]
fn close_codes_and_reasons() {
    // Autobahn 7.7.x: valid codes, echoed back.
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let events = messages_ok(&client(true, Opcode::Close, &code.to_be_bytes()));
        assert_eq!(events, [Msg::Close(Some(code), String::new())], "{code}");
    }
    // Autobahn 7.9.x (and the rest of the reserved range, 1012-1015, 5000 and above).
    for code in [
        0u16, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        messages_err(
            u64::MAX,
            &client(true, Opcode::Close, &code.to_be_bytes()),
            MessageError::InvalidCloseCode,
            1002,
        );
    }
    // Autobahn 7.3.x: empty; a code and the longest reason (123 bytes); one byte too many
    // makes a 126-byte control frame.
    assert_eq!(
        messages_ok(&client(true, Opcode::Close, b"")),
        [Msg::Close(None, String::new())]
    );
    let reason = "*".repeat(123);
    let long = cat(&[b"\x03\xe8".to_vec(), reason.clone().into_bytes()]);
    assert_eq!(
        messages_ok(&client(true, Opcode::Close, &long)),
        [Msg::Close(Some(1000), reason)]
    );
    let mut too_long = Vec::new();
    write_header_masked(&mut too_long, true, Opcode::Close, 126, [0; 4]);
    too_long.extend_from_slice(&[b'*'; 126]);
    messages_err(
        u64::MAX,
        &too_long,
        MessageError::Frame(FrameError::ControlTooLong),
        1002,
    );
}

#[test]
fn nothing_is_read_after_a_close() {
    let input = cat(&[
        client(true, Opcode::Close, b"\x03\xe9"),
        client(true, Opcode::Text, b"ignored"),
    ]);
    let mut d = MessageDecoder::default();
    let (n, step) = d.decode(&input).unwrap();
    assert!(
        matches!(step, Step::Ready(MessageEvent::Close(c)) if c.code() == Some(CloseCode::GOING_AWAY))
    );
    assert!(d.is_closed());
    // Asked again, it says the same and consumes nothing.
    let (m, again) = d.decode(&input[n..]).unwrap();
    assert_eq!((m, again), (0, step));
}

#[test]
fn ping_and_pong_payloads_up_to_125_bytes() {
    let payload: Vec<u8> = (0..125).collect();
    let input = cat(&[
        client(true, Opcode::Ping, &payload),
        client(true, Opcode::Pong, &payload[..1]),
    ]);
    assert_eq!(
        messages_ok(&input),
        [Msg::Ping(payload.clone()), Msg::Pong(vec![0])]
    );
    // The pong a server answers with.
    let mut out = Vec::new();
    write_pong(&mut out, &payload);
    let mut want = vec![0x8A, 125];
    want.extend_from_slice(&payload);
    assert_eq!(out, want);
}

// ---------------------------------------------------------------------------------------------
// The UTF-8 validator against std

/// Sequences around every edge of UTF-8, valid and not.
const TRICKY: [&[u8]; 32] = [
    b"",
    b"\x7f",
    b"\xc2\x80",
    b"\xdf\xbf",
    b"\xe0\xa0\x80",
    b"\xef\xbf\xbf",
    b"\xed\x9f\xbf",     // U+D7FF, last before the surrogates
    b"\xee\x80\x80",     // U+E000, first after them
    b"\xf0\x90\x80\x80", // U+10000
    b"\xf4\x8f\xbf\xbf", // U+10FFFF
    b"\xc0\x80",         // overlong NUL
    b"\xc1\xbf",
    b"\xe0\x80\x80",
    b"\xe0\x9f\xbf", // overlong U+07FF
    b"\xf0\x80\x80\x80",
    b"\xf0\x8f\xbf\xbf",         // overlong U+FFFF
    b"\xed\xa0\x80",             // U+D800
    b"\xed\xbf\xbf",             // U+DFFF
    b"\xed\xa0\x80\xed\xb0\x80", // a surrogate pair written as CESU-8
    b"\xf4\x90\x80\x80",         // U+110000
    b"\xf7\xbf\xbf\xbf",
    b"\xf8\x88\x80\x80\x80", // 5-byte form
    b"\xfc\x84\x80\x80\x80\x80",
    b"\xfe",
    b"\xff",
    b"\x80",
    b"\xbf\x80",
    b"\xc2",         // truncated
    b"\xe2\x82",     // truncated
    b"\xf0\x9f\x98", // truncated
    b"\xc2\x41",     // lead then ASCII
    "κόσμε ✌ 😀 ﷽".as_bytes(),
];

/// The first index after which `bytes` cannot be a prefix of valid UTF-8, according to std.
fn std_first_invalid(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len())
        .find(|&i| matches!(std::str::from_utf8(&bytes[..=i]), Err(e) if e.error_len().is_some()))
}

/// Validates `bytes` in pieces cut at `cuts`: the offset (in the whole) where it failed, or
/// whether the text was complete.
fn ours(bytes: &[u8], cuts: &[usize], slices: bool) -> Result<bool, usize> {
    let mut v = Utf8Validator::new();
    let mut from = 0;
    for &to in cuts.iter().chain([&bytes.len()]) {
        let piece = &bytes[from..to];
        let fed = if slices {
            v.feed_slice(piece)
        } else {
            v.feed(piece.iter().copied())
        };
        fed.map_err(|e| from + e.offset)?;
        from = to;
    }
    Ok(v.finish().is_ok())
}

#[track_caller]
fn agrees_with_std(bytes: &[u8], cuts: &[usize]) {
    let want = match std_first_invalid(bytes) {
        Some(at) => Err(at),
        None => Ok(std::str::from_utf8(bytes).is_ok()),
    };
    for slices in [false, true] {
        assert_eq!(
            ours(bytes, cuts, slices),
            want,
            "{bytes:02x?} cut at {cuts:?}"
        );
    }
}

#[test]
fn utf8_validator_matches_std_on_tricky_sequences_at_every_split() {
    // Each sequence alone and between ASCII, cut at every pair of points.
    for seq in TRICKY {
        for text in [
            seq.to_vec(),
            cat(&[b"ab".to_vec(), seq.to_vec(), b"cd".to_vec()]),
        ] {
            for a in 0..=text.len() {
                for b in a..=text.len() {
                    agrees_with_std(&text, &[a, b]);
                }
            }
        }
    }
    // Each pair of sequences back to back, cut at every point.
    for x in TRICKY {
        for y in TRICKY {
            let text = [x, y].concat();
            for a in 0..=text.len() {
                agrees_with_std(&text, &[a]);
            }
        }
    }
}

#[test]
fn utf8_validator_matches_std_on_random_inputs() {
    let mut rng = XorShift(0x5eed_0f00_07f8);
    // Bytes drawn mostly from the interesting ranges, so multi-byte sequences form often.
    let pick = |rng: &mut XorShift| -> u8 {
        match rng.below(8) {
            0 | 1 => b'a' + rng.below(26) as u8,
            2 | 3 => 0x80 + rng.below(0x40) as u8,
            4 => 0xC0 + rng.below(0x20) as u8,
            5 => 0xE0 + rng.below(0x10) as u8,
            6 => 0xF0 + rng.below(0x10) as u8,
            _ => rng.next() as u8,
        }
    };
    for _ in 0..20_000 {
        let len = rng.below(12);
        let text: Vec<u8> = (0..len).map(|_| pick(&mut rng)).collect();
        let cut = rng.below(len + 1);
        agrees_with_std(&text, &[cut]);
    }
    // And valid text built from random characters, cut anywhere.
    for _ in 0..2_000 {
        let s: String = (0..rng.below(10))
            .filter_map(|_| char::from_u32(rng.below(0x11_0000) as u32))
            .collect();
        let bytes = s.as_bytes();
        let cut = rng.below(bytes.len() + 1);
        assert_eq!(ours(bytes, &[cut], rng.chance(50)), Ok(true), "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The encoder, and the property loop

#[test]
fn header_alone_then_streamed_payload_equals_write_frame() {
    let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    for len in [0, 1, 125, 126, 65535, 65536, 70_000] {
        let mut whole = Vec::new();
        write_frame(&mut whole, true, Opcode::Binary, &payload[..len]);
        let mut streamed = Vec::new();
        write_header(&mut streamed, true, Opcode::Binary, len as u64);
        assert_eq!(streamed.len(), header_len(len as u64));
        for piece in payload[..len].chunks(4096) {
            streamed.extend_from_slice(piece);
        }
        assert!(whole == streamed, "{len}");
    }
}

/// Turns a server's (unmasked) frames into what a client would send: MASK set, a key after the
/// length, the payload masked (RFC 6455 §5.3). A test-side parser, independent of the decoder.
fn mask_like_client(mut server: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut out = Vec::new();
    while let [first, second, rest @ ..] = server {
        assert_eq!(second & 0x80, 0, "a server frame is never masked");
        let (len, ext) = match second & 0x7F {
            126 => (u64::from(u16::from_be_bytes([rest[0], rest[1]])), 2),
            127 => (u64::from_be_bytes(rest[..8].try_into().unwrap()), 8),
            len => (u64::from(len), 0),
        };
        let key = rng.key();
        out.extend_from_slice(&[*first, second | 0x80]);
        out.extend_from_slice(&rest[..ext]);
        out.extend_from_slice(&key);
        let payload = &rest[ext..ext + len as usize];
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(key, 0, &mut out[start..]);
        server = &rest[ext + len as usize..];
    }
    assert!(server.is_empty());
    out
}

/// A random payload length: mostly short, sometimes at or across the length encodings' edges.
fn random_len(rng: &mut XorShift) -> usize {
    match rng.below(20) {
        0 => 0,
        1 => 125 + rng.below(3),
        2 => 65535 + rng.below(3),
        3 => rng.below(3000),
        _ => rng.below(40),
    }
}

/// Random valid UTF-8 of about `len` bytes.
fn random_text(rng: &mut XorShift, len: usize) -> Vec<u8> {
    let mut s = String::new();
    while s.len() < len {
        let c = match rng.below(4) {
            0 => char::from_u32(rng.below(0x80) as u32),
            1 => char::from_u32(0x80 + rng.below(0x780) as u32),
            2 => char::from_u32(0x800 + rng.below(0xF800) as u32),
            _ => char::from_u32(0x1_0000 + rng.below(0x10_0000) as u32),
        };
        s.extend(c);
    }
    s.into_bytes()
}

#[test]
fn encoder_to_client_masking_to_decoder_round_trips() {
    let mut rng = XorShift(0x00dd_ba11_cafe);
    for round in 0..150 {
        let mut server = Vec::new();
        let mut want = Vec::new();
        for _ in 0..1 + rng.below(6) {
            let kind = if rng.chance(50) {
                MessageKind::Text
            } else {
                MessageKind::Binary
            };
            let len = random_len(&mut rng);
            let body = match kind {
                MessageKind::Text => random_text(&mut rng, len),
                MessageKind::Binary => rng.bytes(len),
            };
            // Cut into fragments anywhere (inside code points too), with control frames between.
            let mut cuts: Vec<usize> = (0..rng.below(4))
                .map(|_| rng.below(body.len() + 1))
                .collect();
            cuts.sort_unstable();
            cuts.push(body.len());
            let mut from = 0;
            for (i, &to) in cuts.iter().enumerate() {
                let (first, fin) = (i == 0, i + 1 == cuts.len());
                let opcode = if first {
                    kind.opcode()
                } else {
                    Opcode::Continuation
                };
                let fragment = &body[from..to];
                if rng.chance(50) {
                    write_frame(&mut server, fin, opcode, fragment);
                } else {
                    write_header(&mut server, fin, opcode, fragment.len() as u64);
                    server.extend_from_slice(fragment);
                }
                want.push(data_start(kind, first, fin, fragment.len()));
                if !fragment.is_empty() {
                    want.push(Msg::Data(fragment.to_vec()));
                }
                want.push(Msg::DataEnd { fin });
                if !fin && rng.chance(40) {
                    let len = rng.below(MAX_CONTROL_PAYLOAD + 1);
                    let ping = rng.bytes(len);
                    write_ping(&mut server, &ping);
                    want.push(Msg::Ping(ping));
                }
                from = to;
            }
        }
        // Under 123 bytes, so `write_close` keeps all of it.
        let len = rng.below(60);
        let reason = String::from_utf8(random_text(&mut rng, len)).unwrap();
        let code = 3000 + rng.below(2000) as u16;
        write_close(&mut server, CloseCode(code), &reason);
        want.push(Msg::Close(Some(code), reason));

        let wire = mask_like_client(&server, &mut rng);
        // A few random cuts per round (every split of every round would be slow), plus whole.
        let mut d = MessageDecoder::default();
        let whole = run_growing(|b| d.decode(b).map(|(n, s)| (n, s.map(own_msg))), &wire, []);
        let whole = whole.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert_eq!(whole.events, want, "round {round}");
        assert_eq!(whole.consumed, wire.len());
        for _ in 0..4 {
            let mut ends: Vec<usize> = (0..1 + rng.below(8))
                .map(|_| rng.below(wire.len() + 1))
                .collect();
            ends.sort_unstable();
            let mut d = MessageDecoder::default();
            let run = run_growing(
                |b| d.decode(b).map(|(n, s)| (n, s.map(own_msg))),
                &wire,
                ends.clone(),
            );
            assert_eq!(
                run.as_ref().map(|r| &r.events),
                Ok(&want),
                "round {round}, ends {ends:?}"
            );
        }
    }
}
