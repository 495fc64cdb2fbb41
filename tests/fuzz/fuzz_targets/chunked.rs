//! Fuzzes the chunked decoder: any bytes, delivered in pieces of a size chosen by the input, must
//! reassemble to what a one-shot decode gives (data, trailers, bytes consumed, or the same error),
//! no chunk may hand out more than its declared size, and the declared sizes never add up to more
//! than `Limits::max_request_body`.
#![no_main]

use asycamore::detect::{BodyDecoder, BodyError, BodyEvent, BodyFraming, Limits};
use asycamore::executor::Step;
use libfuzzer_sys::fuzz_target;

/// A body limit small enough for the fuzzer to reach.
const MAX_BODY: u64 = 4096;

#[derive(Debug, PartialEq)]
struct Outcome {
    chunks: Vec<(u64, Vec<u8>)>,
    trailers: Vec<(String, Vec<u8>)>,
    consumed: usize,
    done: bool,
}

fn decode(input: &[u8], step: usize) -> Result<Outcome, BodyError> {
    let limits = Limits {
        max_chunk_line: 32,
        max_trailers: 128,
        max_request_body: MAX_BODY,
        ..Limits::default()
    };
    let mut d = BodyDecoder::new(BodyFraming::Chunked, &limits);
    let mut out = Outcome {
        chunks: Vec::new(),
        trailers: Vec::new(),
        consumed: 0,
        done: false,
    };
    let (mut pos, mut avail) = (0, step.min(input.len()));
    loop {
        let (used, event) = d.decode(&input[pos..avail])?;
        pos += used;
        assert!(pos <= avail);
        match event {
            Step::Ready(BodyEvent::ChunkStart { size, data }) => {
                assert!(size > 0 && data.len() as u64 <= size);
                out.chunks.push((size, data.to_vec()));
                assert!(out.chunks.iter().map(|&(n, _)| n).sum::<u64>() <= MAX_BODY);
            }
            Step::Ready(BodyEvent::Data(data)) => {
                assert!(!data.is_empty());
                let (size, chunk) = out.chunks.last_mut().expect("Data after ChunkStart");
                chunk.extend_from_slice(data);
                assert!(chunk.len() as u64 <= *size);
            }
            Step::Ready(BodyEvent::End { trailers }) => {
                out.trailers = trailers
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_vec()))
                    .collect();
                assert_eq!(
                    out.trailers.len(),
                    trailers.as_bytes().split(|&b| b == b'\n').count() - 1
                );
                out.done = true;
                break;
            }
            Step::WouldBlock if avail == input.len() => break,
            Step::WouldBlock => avail = (avail + step).min(input.len()),
        }
    }
    out.consumed = pos;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let once = decode(input, input.len());
    assert_eq!(decode(input, usize::from(step).max(1)), once);
    assert_eq!(decode(input, 1), once);
});
