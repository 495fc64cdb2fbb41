//! Shared helpers for the detector tests: one-shot and "shotgun" drivers (every split point, and
//! one byte at a time) that turn detector output into owned values tests can compare.
#![allow(dead_code)]

use asycamore::detect::{
    BodyDecoder, BodyError, BodyEvent, BodyFraming, HeadDetector, HeadError, Limits, RequestHead,
    TargetForm, Version,
};
use asycamore::executor::Step;

/// Everything a parsed head says, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadSnapshot {
    pub len: usize,
    pub method: String,
    pub target: Vec<u8>,
    pub target_form: TargetForm,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
    pub host: Option<Vec<u8>>,
    pub framing: BodyFraming,
    pub keep_alive: bool,
    pub close: bool,
    pub expects_continue: bool,
}

impl HeadSnapshot {
    pub fn of(head: &RequestHead, buf: &[u8]) -> HeadSnapshot {
        HeadSnapshot {
            len: head.len(),
            method: head.method(buf).to_owned(),
            target: head.target(buf).to_vec(),
            target_form: head.target_form(),
            version: head.version(),
            headers: head
                .headers(buf)
                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                .collect(),
            host: head.host(buf).map(<[u8]>::to_vec),
            framing: head.framing(),
            keep_alive: head.keep_alive(),
            close: head.connection_close(),
            expects_continue: head.expects_continue(),
        }
    }
}

/// What detecting a head from a growing buffer came to.
pub type HeadOutcome = Result<Option<HeadSnapshot>, HeadError>;

/// Feeds `input` to a fresh detector as a buffer that grows to each of `ends` in turn (then to the
/// whole input); stops at the first `Ready` or error. `Ok(None)`: still incomplete at the end.
pub fn detect_growing(
    limits: Limits,
    input: &[u8],
    ends: impl IntoIterator<Item = usize>,
) -> HeadOutcome {
    let mut detector = HeadDetector::new(limits);
    let mut head = RequestHead::new();
    for end in ends.into_iter().chain([input.len()]) {
        let buf = &input[..end.min(input.len())];
        match detector.detect(buf, &mut head)? {
            (n, Step::Ready(())) => {
                assert_eq!(n, head.len());
                assert!(n <= buf.len());
                return Ok(Some(HeadSnapshot::of(&head, buf)));
            }
            (_, Step::WouldBlock) => {}
        }
    }
    Ok(None)
}

/// Detects a head in one call.
#[track_caller]
pub fn detect_once(limits: Limits, input: &[u8]) -> HeadOutcome {
    detect_growing(limits, input, [])
}

/// Detects a head at every split point and one byte at a time; asserts every way gives the
/// one-shot answer, and returns it.
#[track_caller]
pub fn detect_shotgun(limits: Limits, input: &[u8]) -> HeadOutcome {
    let once = detect_once(limits, input);
    for split in 0..=input.len() {
        assert_eq!(
            detect_growing(limits, input, [split]),
            once,
            "split at {split} of {:?}",
            lossy(input)
        );
    }
    assert_eq!(
        detect_growing(limits, input, 0..input.len()),
        once,
        "byte by byte: {:?}",
        lossy(input)
    );
    once
}

/// A body reassembled from events, owned: each chunk's declared size and data, and the trailers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodySnapshot {
    pub chunks: Vec<(u64, Vec<u8>)>,
    pub trailers: Vec<(String, Vec<u8>)>,
    /// How many input bytes the body took; what follows is the next request.
    pub consumed: usize,
    pub complete: bool,
}

impl BodySnapshot {
    /// All data bytes, concatenated.
    pub fn data(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|(_, d)| d.iter().copied())
            .collect()
    }
}

/// Decodes a body from `input`, delivered to the decoder in pieces ending at each of `ends` (then
/// the rest), the way a connection would: its buffer holds what arrived and was not consumed.
pub fn decode_growing(
    framing: BodyFraming,
    limits: Limits,
    input: &[u8],
    ends: impl IntoIterator<Item = usize>,
) -> Result<BodySnapshot, BodyError> {
    let mut decoder = BodyDecoder::new(framing, &limits);
    let mut snapshot = BodySnapshot::default();
    let mut pos = 0;
    let mut ends = ends.into_iter().chain([input.len()]);
    let mut avail = 0;
    loop {
        let (used, step) = decoder.decode(&input[pos..avail])?;
        pos += used;
        assert!(pos <= avail);
        match step {
            Step::Ready(BodyEvent::ChunkStart { size, data }) => {
                assert!(data.len() as u64 <= size);
                snapshot.chunks.push((size, data.to_vec()));
            }
            Step::Ready(BodyEvent::Data(data)) => {
                assert!(!data.is_empty());
                let (size, chunk) = snapshot.chunks.last_mut().expect("Data after ChunkStart");
                chunk.extend_from_slice(data);
                assert!(chunk.len() as u64 <= *size);
            }
            Step::Ready(BodyEvent::End { trailers }) => {
                snapshot.trailers = trailers
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_vec()))
                    .collect();
                snapshot.consumed = pos;
                snapshot.complete = true;
                assert!(decoder.is_done());
                return Ok(snapshot);
            }
            Step::WouldBlock => match ends.next() {
                Some(end) if end >= input.len() && avail == input.len() => {
                    snapshot.consumed = pos;
                    return Ok(snapshot);
                }
                Some(end) => avail = end.clamp(avail, input.len()),
                None => {
                    snapshot.consumed = pos;
                    return Ok(snapshot);
                }
            },
        }
    }
}

/// Decodes a body with everything available at once.
pub fn decode_once(
    framing: BodyFraming,
    limits: Limits,
    input: &[u8],
) -> Result<BodySnapshot, BodyError> {
    decode_growing(framing, limits, input, [])
}

/// Decodes at every split point and one byte at a time; asserts every way reassembles to the
/// one-shot answer (per chunk: size and data; trailers; bytes consumed), and returns it.
#[track_caller]
pub fn decode_shotgun(
    framing: BodyFraming,
    limits: Limits,
    input: &[u8],
) -> Result<BodySnapshot, BodyError> {
    let once = decode_once(framing, limits, input);
    for split in 0..=input.len() {
        assert_eq!(
            decode_growing(framing, limits, input, [split]),
            once,
            "split at {split} of {:?}",
            lossy(input)
        );
    }
    assert_eq!(
        decode_growing(framing, limits, input, 0..input.len()),
        once,
        "byte by byte: {:?}",
        lossy(input)
    );
    once
}

/// For assertion messages.
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
